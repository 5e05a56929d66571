from __future__ import annotations

import os
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from storage.errors import InvalidIdError
from storage.ids import MAX_ID_LENGTH, new_id, validate_id, validate_session_id


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("..", "'..'"),
        ("a..b", "'..'"),
        ("../etc", "starts with a dot"),
        ("a/../b", "'..'"),
        ("a/b", "'/'"),
        ("a\\b", "'\\\\'"),
        ("a\x00b", "'\\x00'"),
        (".hidden", "starts with a dot"),
        ("", "is empty"),
        ("x" * (MAX_ID_LENGTH + 1), "over 128"),
        ("CON", "Windows"),
        ("nul.txt", "Windows"),
        ("has space", "' '"),
    ],
)
def test_bad_ids_raise_naming_the_id(value: str, reason: str) -> None:
    with pytest.raises(InvalidIdError) as info:
        validate_id(value, "user")
    message = str(info.value)
    assert repr(value) in message
    assert reason in message
    assert info.value.value == value


def test_non_string_id() -> None:
    with pytest.raises(InvalidIdError, match="must be a string"):
        validate_id(42, "user")


def test_reserved_session_names() -> None:
    for name in ("documents", "personas"):
        with pytest.raises(InvalidIdError, match="reserves"):
            validate_session_id(name)


def test_good_ids_pass_unchanged() -> None:
    for value in ("alice", "dr._sarah_wilson", "chat_session_20250101_1", "a" * 128, "A-b.c_9"):
        assert validate_id(value) == value


@given(st.text(max_size=140))
def test_accepted_ids_are_single_safe_path_components(value: str) -> None:
    try:
        validate_id(value)
    except InvalidIdError:
        return
    assert 1 <= len(value) <= MAX_ID_LENGTH
    assert os.sep not in value and "/" not in value and "\\" not in value
    assert not value.startswith(".") and ".." not in value
    assert re.fullmatch(r"[A-Za-z0-9_.\-]+", value)
    assert os.path.normpath(value) == value


@given(st.text(alphabet=st.sampled_from("ab./\\\x00 -_"), min_size=1, max_size=10))
def test_ids_are_never_rewritten(value: str) -> None:
    try:
        assert validate_id(value) == value
    except InvalidIdError as exc:
        assert exc.value == value


def test_new_ids_sort_by_creation_and_are_unique() -> None:
    ids = [new_id("chat_session") for _ in range(2000)]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    assert all(validate_id(i) == i for i in ids)
