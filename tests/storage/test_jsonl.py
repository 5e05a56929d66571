"""The message log on its own: streaming both ways, pages, torn tails, compaction."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from storage import jsonl as jsonl_module
from storage.errors import MessageTooLargeError
from storage.jsonl import JsonlLog
from storage.models import Message

contents = st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\x00"), max_size=60)


def make(folder: Path, texts: list[str]) -> tuple[JsonlLog[Message], list[Message]]:
    log = JsonlLog(folder / "messages.jsonl", Message)
    messages = [Message(message_id=f"m{i}", role="user", content=t) for i, t in enumerate(texts)]
    if messages:
        log.append(messages)
    return log, messages


@pytest.fixture(params=[7, 1 << 20], ids=["tiny-blocks", "1MiB-blocks"])
def block(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> int:
    # Tiny blocks make every line cross block boundaries, the hard case of the readers.
    monkeypatch.setattr(jsonl_module, "BLOCK", request.param)
    monkeypatch.setattr(jsonl_module, "FRAME_TARGET", 64 if request.param == 7 else 1 << 20)
    return int(request.param)


@pytest.mark.parametrize("compacted", [False, True], ids=["plain", "zstd"])
def test_forward_backward_pages_and_count_agree(
    tmp_path: Path, block: int, compacted: bool
) -> None:
    texts = [f"message {i} " + "x" * (i * 7 % 50) for i in range(120)]
    log, messages = make(tmp_path, texts)
    if compacted:
        log.compact()
        assert log.is_compacted and not log.path.exists()
    assert list(log.iter()) == messages
    assert list(log.iter(reverse=True)) == messages[::-1]
    assert log.count() == 120
    assert log.page(0, 10) == messages[:10]
    assert log.page(50, 7) == messages[50:57]
    assert log.page(0, 10, from_end=True) == messages[-10:]
    assert log.page(5, 10, from_end=True) == messages[-15:-5]
    assert log.page(115, 10) == messages[115:]
    assert log.page(200, 10) == []
    assert log.page(0, None) == messages


@settings(max_examples=60, deadline=None)
@given(
    texts=st.lists(contents, min_size=1, max_size=12), cut=st.integers(min_value=0), extra=contents
)
def test_torn_tail_is_ignored_and_cut_before_the_next_append(
    texts: list[str], cut: int, extra: str
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        log, messages = make(Path(tmp), texts)
        data = log.path.read_bytes()
        cut %= len(data) + 1
        log.path.write_bytes(data[:cut])  # the crash: an append stopped anywhere
        survivors = list(log.iter())
        # Whatever survives is a prefix of what was written, each message whole.
        assert survivors == messages[: len(survivors)]
        complete_lines = data[:cut].count(b"\n")
        assert len(survivors) in (complete_lines, complete_lines + 1)
        assert log.count() == len(survivors)
        assert list(log.iter(reverse=True)) == survivors[::-1]
        assert log.page(0, 3, from_end=True) == survivors[-3:]
        # The next append never glues onto the torn bytes.
        new = Message(message_id="new", role="assistant", content=extra)
        log.append([new])
        assert list(log.iter()) == [*survivors, new]
        assert all(not p.torn for p in log.problems())


def test_bad_middle_line_is_reported_with_line_number_and_skipped(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    log, messages = make(tmp_path, ["a", "b", "c"])
    lines = log.path.read_bytes().split(b"\n")
    lines[1] = b'{"role": '
    log.path.write_bytes(b"\n".join(lines))
    with caplog.at_level(logging.WARNING):
        assert list(log.iter()) == [messages[0], messages[2]]
    assert f"{log.path} line 2" in caplog.text
    problems = log.problems()
    assert [(p.line, p.torn) for p in problems] == [(2, False)]
    assert str(log.path) == problems[0].path


def test_complete_last_line_without_newline_is_kept(tmp_path: Path) -> None:
    log, messages = make(tmp_path, ["a", "b"])
    log.path.write_bytes(log.path.read_bytes().rstrip(b"\n"))
    assert list(log.iter()) == messages
    log.append([Message(message_id="c", role="user", content="c")])
    assert [m.message_id for m in log.iter()] == ["m0", "m1", "c"]


def test_too_large_message_writes_nothing(tmp_path: Path) -> None:
    log, _messages = make(tmp_path, ["a"])
    before = log.path.read_bytes()
    with pytest.raises(MessageTooLargeError, match="over the limit of 1,024 bytes") as info:
        log.append(
            [Message(role="user", content="ok"), Message(role="user", content="x" * 2000)],
            max_bytes=1024,
        )
    assert info.value.limit == 1024 and info.value.size > 2000
    assert log.path.read_bytes() == before


def test_appending_to_a_compacted_log_decompacts_it(tmp_path: Path) -> None:
    log, messages = make(tmp_path, ["a", "b"])
    log.compact()
    extra = Message(message_id="c", role="user", content="c")
    log.append([extra])
    assert log.path.exists() and not log.zst_path.exists()
    assert list(log.iter()) == [*messages, extra]


def test_compacted_file_is_plain_zstd(tmp_path: Path) -> None:
    import zstandard

    log, _messages = make(tmp_path, ["a" * 100] * 50)
    plain = log.path.read_bytes()
    log.compact()
    # Any zstd tool reads it: the seek table is a skippable frame.
    reader = zstandard.ZstdDecompressor().stream_reader(
        log.zst_path.read_bytes(), read_across_frames=True
    )
    assert reader.read() == plain
    assert log.zst_path.stat().st_size < len(plain) / 5


def test_rewrite_keeps_unreadable_lines(tmp_path: Path) -> None:
    log, _messages = make(tmp_path, ["a", "b", "c"])
    lines = log.path.read_bytes().split(b"\n")
    lines[1] = b"not json"
    log.path.write_bytes(b"\n".join(lines))
    kept = log.rewrite(lambda m: None if m.message_id == "m0" else m)
    assert kept == 1
    assert b"not json" in log.path.read_bytes()
    assert [m.message_id for m in log.iter()] == ["m2"]
