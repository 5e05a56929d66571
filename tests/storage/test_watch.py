"""MappedFiles: files of a keyword index folder cut shorter are found, with the folder
watched (Linux) and without a watch (every check stats every file)."""

from __future__ import annotations

import os
import shutil
import struct
import sys
import zlib
from pathlib import Path

import orjson
import pytest

from storage.search import watch
from storage.search.watch import FOOTER_MAGIC, FileCutError, MappedFiles, footer_problems

SEGMENT = "0123456789abcdef0123456789abcdef"


def folder_with_segment(root: Path) -> Path:
    root.mkdir()
    (root / "meta.json").write_bytes(orjson.dumps({"segments": [{"segment_id": SEGMENT}]}))
    for ext in ("store", "idx", "term"):
        (root / f"{SEGMENT}.{ext}").write_bytes(b"x" * 10_000)
    (root / "other.lock").write_bytes(b"")  # not a segment's: not recorded
    return root


def cut(path: Path, size: int) -> None:
    with open(path, "r+b") as f:
        f.truncate(size)


@pytest.fixture(params=["watched", "unwatched"])
def files(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> MappedFiles:
    if request.param == "unwatched":
        monkeypatch.setattr(watch, "_LIBC", None)
    elif watch._LIBC is None:
        pytest.skip("inotify is Linux's")
    mapped = MappedFiles(folder_with_segment(tmp_path / "ft"))
    mapped.reload(lambda: None)
    assert (mapped._watch is not None) == (request.param == "watched")
    return mapped


def test_the_segments_files_are_recorded(files: MappedFiles) -> None:
    assert files.sizes == {f"{SEGMENT}.{ext}": 10_000 for ext in ("store", "idx", "term")}
    assert files.check() is True


def test_a_cut_file_is_found(files: MappedFiles) -> None:
    cut(Path(files.folder) / f"{SEGMENT}.term", 4_000)
    with pytest.raises(FileCutError, match=r"\.term was cut from 10,000 to 4,000 bytes"):
        files.check()


def test_a_file_gone_asks_for_a_reload(files: MappedFiles) -> None:
    os.remove(Path(files.folder) / f"{SEGMENT}.idx")
    assert files.check() is False


def test_a_file_cut_before_a_reload_keeps_its_mapped_size(files: MappedFiles) -> None:
    """tantivy keeps its maps of the segments a commit left alone: a reload must not take a
    cut file's new size as the mapped one (the next read past it would be SIGBUS)."""
    store = Path(files.folder) / f"{SEGMENT}.store"
    cut(store, 4_000)
    with pytest.raises(FileCutError, match=r"\.store was cut from 10,000 to 4,000"):
        files.reload(lambda: None)


def test_a_file_cut_while_tantivy_reloads_is_found(files: MappedFiles) -> None:
    idx = Path(files.folder) / f"{SEGMENT}.idx"
    files.sizes = {}  # as for a new segment: first seen in this reload
    with pytest.raises(FileCutError, match=r"\.idx was cut from 10,000 to 10"):
        files.reload(lambda: cut(idx, 10))


def test_a_file_grown_or_rewritten_at_its_size_passes(files: MappedFiles) -> None:
    (Path(files.folder) / f"{SEGMENT}.store").write_bytes(b"y" * 12_000)
    assert files.check() is True


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="inotify is Linux's")
def test_watched_checks_stat_nothing_until_the_folder_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mapped = MappedFiles(folder_with_segment(tmp_path / "ft"))
    mapped.reload(lambda: None)
    stats: list[str] = []
    real_stat = os.stat

    def counting_stat(path: str, *args: object, **kwargs: object) -> os.stat_result:
        stats.append(os.fspath(path))
        return real_stat(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(watch.os, "stat", counting_stat)
    for _ in range(5):
        assert mapped.check() is True
    assert stats == []
    cut(Path(mapped.folder) / f"{SEGMENT}.store", 100)
    with pytest.raises(FileCutError):
        mapped.check()
    assert len(stats) >= 1
    mapped.close()


def with_footer(body: bytes) -> bytes:
    footer = orjson.dumps({"version": {"major": 0}, "crc": zlib.crc32(body)})
    return body + footer + struct.pack("<II", len(footer), FOOTER_MAGIC)


@pytest.mark.parametrize(
    ("content", "said"),
    [
        (with_footer(b"body" * 100), None),
        (with_footer(b"body" * 100).replace(b"body", b"bodY", 1), "does not match its checksum"),
        (with_footer(b"body" * 100)[:-3], "has no footer"),
        (b"abc", "is 3 bytes long, too short for a footer"),
        (b"body" + b"{not json" + struct.pack("<II", 9, FOOTER_MAGIC), "unreadable footer"),
        (b"body" + struct.pack("<II", 1 << 30, FOOTER_MAGIC), "has no footer"),
    ],
)
def test_footers_are_checked(tmp_path: Path, content: bytes, said: str | None) -> None:
    folder = folder_with_segment(tmp_path / "ft")
    for ext in ("store", "idx", "term"):
        (folder / f"{SEGMENT}.{ext}").write_bytes(with_footer(b"fine"))
    (folder / f"{SEGMENT}.term").write_bytes(content)
    problems = footer_problems(folder)
    if said is None:
        assert problems == []
    else:
        assert len(problems) == 1 and problems[0].startswith(f"keyword index file {SEGMENT}.term")
        assert said in problems[0]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="inotify is Linux's")
def test_one_watch_follows_reloads_and_a_folder_made_again(tmp_path: Path) -> None:
    """Closing an inotify instance takes the kernel ~9 ms: reloads keep the one they have
    (and watch a folder that another process's rebuild deleted and made again)."""
    folder = folder_with_segment(tmp_path / "ft")
    mapped = MappedFiles(folder)
    mapped.reload(lambda: None)
    fd = mapped._watch
    fds = len(os.listdir("/proc/self/fd"))
    for _ in range(20):
        mapped.reload(lambda: None)
    assert mapped._watch == fd and len(os.listdir("/proc/self/fd")) == fds
    shutil.rmtree(folder)
    folder_with_segment(folder)
    mapped.sizes = {}
    mapped.reload(lambda: None)
    assert mapped._watch == fd and mapped.check() is True  # nothing changed since
    cut(folder / f"{SEGMENT}.idx", 10)
    with pytest.raises(FileCutError):
        mapped.check()  # the new folder's change was seen
    mapped.close()
