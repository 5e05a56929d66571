"""The search language parser: what it accepts and the errors bad queries get."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from storage.search.query import QuerySyntaxError, Term, parse, parse_full


def test_words_phrases_prefixes_exclusions_and_or() -> None:
    parsed = parse('alpha "exact phrase" pre* -beta -"not this" gamma OR delta')
    assert parsed.groups == [
        [Term("alpha")],
        [Term("exact phrase", "phrase")],
        [Term("pre", "prefix")],
        [Term("gamma"), Term("delta")],
    ]
    assert parsed.excluded == [Term("beta"), Term("not this", "phrase")]
    assert parsed.free_text == "alpha exact phrase pre gamma delta"


def test_filters() -> None:
    parsed = parse(
        'role:user role:assistant user:ada session:"s1" kind:document '
        "source:chatgpt after:2025-03 before:2025-04-02 words"
    )
    f = parsed.filters
    assert f.role == ["user", "assistant"] and f.user == ["ada"] and f.session == ["s1"]
    assert f.kind == ["document"] and f.source == ["chatgpt"]
    assert f.after == dt.datetime(2025, 3, 1).astimezone()
    assert f.before == dt.datetime(2025, 4, 2).astimezone()
    assert parsed.groups == [[Term("words")]]


def test_unknown_fields_are_text() -> None:
    parsed = parse("https://example.com at 10:30 foo:bar")
    assert [g[0].text for g in parsed.groups] == ["https://example.com", "at", "10:30", "foo:bar"]


@pytest.mark.parametrize(
    ("query", "message", "position"),
    [
        ('say "hello', 'this " is never closed', 5),
        ("after:yesterday", "after:yesterday is not a date", 1),
        ("before:2025-13-40", "is not a date", 1),
        ("kind:email", "kind:email is not one of message, document, context", 1),
        ("role:", "role: needs a value", 1),
        ("OR cats", "OR needs something before it", 1),
        ("cats OR", "OR needs something after it", 7),
    ],
)
def test_errors_say_what_and_where(query: str, message: str, position: int) -> None:
    with pytest.raises(QuerySyntaxError) as info:
        parse(query)
    assert message in str(info.value)
    assert f"at character {position}" in str(info.value)
    assert info.value.position == position - 1


def test_huge_query_is_refused_quickly() -> None:
    with pytest.raises(QuerySyntaxError, match="10,000 characters long; at most 1,000"):
        parse("word " * 2000)
    with pytest.raises(QuerySyntaxError, match="more than 64 search terms"):
        parse(" ".join(f"w{i}" for i in range(70)))


def test_lone_operators_and_control_characters() -> None:
    assert parse("- * ** --").empty
    parsed = parse("tab\there\x00nul\x1bescape")
    assert [g[0].text for g in parsed.groups] == ["tab", "here", "nul", "escape"]


@given(st.text(max_size=300))
def test_any_text_parses_or_raises_a_syntax_error(text: str) -> None:
    try:
        parsed = parse(text)
    except QuerySyntaxError as exc:
        assert exc.query == text
        return
    for term in parsed.positive_terms + parsed.excluded:
        assert term.text and "\x00" not in term.text


QUERY_PARTS = st.sampled_from(
    [
        "alpha",
        "Beta",
        "x1",
        "é",
        "ü2",
        "_u",
        "a_b",
        "e-mail",
        "-",
        "-neg",
        "*",
        "pre*",
        '"',
        '"two words"',
        "role:user",
        "kind:message",
        "http://x.y",
        "OR",
        "or",
        ":",
        " ",
        "  ",
        "\t",
        "\n",
        "\x01",
        "\x1f",
        "\x7f",
        "\u2028",
        "…",
        "日本",
    ]
)


@settings(max_examples=1000)
@given(st.lists(QUERY_PARTS, max_size=12).map("".join))
def test_the_plain_words_shortcut_parses_as_the_full_parser(query: str) -> None:
    try:
        expected = parse_full(query)
    except QuerySyntaxError as exc:
        with pytest.raises(QuerySyntaxError) as raised:
            parse(query)
        assert str(raised.value) == str(exc)
        return
    assert parse(query) == expected
