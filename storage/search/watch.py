"""Cut files under an open keyword index, found before tantivy reads them.

tantivy reads its segment files through memory maps. A file cut shorter under an open index
(another program, a sync tool, a disk tool) turns the next read past its new end into SIGBUS,
which kills the process with no exception to catch. Before each search, :class:`MappedFiles`
checks that the files the searcher opened are still as long as they were. Stat-ing every
file costs ~3 µs each (a segment has six or seven), so on Linux the folder is watched with
inotify and the files are checked only after something in it changed: one read of the
watch (~1 µs) otherwise. Elsewhere, or when the system has no watch to spare, every check
stats them all.
"""

from __future__ import annotations

import ctypes
import logging
import os
import struct
import sys
import weakref
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

log = logging.getLogger(__name__)

# inotify(7): a file written or cut, its metadata changed, files moved, made or deleted, and
# the folder itself deleted or moved.
_IN_MODIFY, _IN_ATTRIB, _IN_MOVED_FROM, _IN_MOVED_TO = 0x2, 0x4, 0x40, 0x80
_IN_CREATE, _IN_DELETE, _IN_DELETE_SELF, _IN_MOVE_SELF = 0x100, 0x200, 0x400, 0x800
_MASK = (
    _IN_MODIFY
    | _IN_ATTRIB
    | _IN_MOVED_FROM
    | _IN_MOVED_TO
    | _IN_CREATE
    | _IN_DELETE
    | _IN_DELETE_SELF
    | _IN_MOVE_SELF
)
_IN_NONBLOCK = getattr(os, "O_NONBLOCK", 0)  # (no such flag on Windows, no inotify)
_IN_CLOEXEC = os.O_CLOEXEC if hasattr(os, "O_CLOEXEC") else 0


def _libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.inotify_init1  # noqa: B018 - present in every glibc and musl since 2008
    except (OSError, AttributeError):
        return None
    return libc


_LIBC = _libc()


def segment_files(folder: str | Path) -> dict[str, int] | None:
    """The files of the segments ``meta.json`` in ``folder`` names, with their sizes; None
    when meta.json cannot be read (tantivy reports that one itself)."""
    try:
        meta = orjson.loads(Path(folder, "meta.json").read_bytes())
        ids = {str(s["segment_id"]).replace("-", "") for s in meta["segments"]}
    except (OSError, orjson.JSONDecodeError, KeyError, TypeError) as exc:
        log.debug("no segment list in %s/meta.json: %s", folder, exc)
        return None
    sizes = {}
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.name.split(".", 1)[0] in ids:
                try:
                    sizes[entry.name] = entry.stat().st_size
                except FileNotFoundError:  # a merge's garbage collection, since meta.json
                    continue
    return sizes


FOOTER_MAGIC = 1337  # tantivy's, after every file's footer


def footer_problems(folder: Path) -> list[str]:
    """Each segment file whose body does not match the CRC-32 in its footer (or that has
    no footer). tantivy ends every file with its footer: JSON holding the body's CRC-32,
    the footer's length and FOOTER_MAGIC (two little-endian 32-bit integers). tantivy reads
    without checking it: a bit flipped in a term file silently lost hits. Reads every file
    (in blocks: ~0.5 s a GB). A file gone since meta.json was read was merged away by a
    writer: not a problem (the caller holds the index lock, so no writer should run)."""
    problems = []
    for name in sorted(segment_files(folder) or {}):
        try:
            problem = _footer_problem(folder / name)
        except FileNotFoundError:
            continue
        except OSError as exc:
            problem = f"cannot be read: {exc.strerror}"
        if problem is not None:
            problems.append(f"keyword index file {name} {problem}")
    return problems


def _footer_problem(path: Path) -> str | None:
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        if size < 8:
            return f"is {size} bytes long, too short for a footer"
        fh.seek(size - 8)
        length, magic = struct.unpack("<II", fh.read(8))
        if magic != FOOTER_MAGIC or length > size - 8:
            return "has no footer (cut short or overwritten at its end)"
        body = size - 8 - length
        fh.seek(body)
        try:
            crc = orjson.loads(fh.read(length))["crc"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return "has an unreadable footer"
        fh.seek(0)
        actual, left = 0, body
        while left > 0:
            block = fh.read(min(left, 1 << 20))
            if not block:
                return "has no footer (cut short or overwritten at its end)"
            actual = zlib.crc32(block, actual)
            left -= len(block)
    if actual != crc:
        return "does not match its checksum (its content changed)"
    return None


class FileCutError(Exception):
    """A file the searcher mapped is shorter than when it was opened."""


class MappedFiles:
    """The segment files of a tantivy index folder as a searcher opened them."""

    def __init__(self, folder: Path) -> None:
        self.folder = os.fspath(folder)
        self.sizes: dict[str, int] = {}
        self._watch: int | None = None
        self._finalizer: Any = None  # weakref.finalize closing the watch

    def reload(self, reload: Callable[[], None]) -> None:
        """Run ``reload`` (tantivy's, which maps new segments' files and keeps its maps of
        the others) and note the sizes it mapped: each file's largest size seen before,
        during or after it. A file shorter after than before was cut under it. A meta.json
        that cannot be read leaves nothing to check: tantivy reports that one itself."""
        before = segment_files(self.folder) or {}
        self.watch()  # first: whatever changes from here on shows at the next check
        reload()
        after = segment_files(self.folder) or {}
        sizes = {}
        for name, now in after.items():
            size = max(now, before.get(name, 0), self.sizes.get(name, 0))
            if size > now:
                raise FileCutError(f"{name} was cut from {size:,} to {now:,} bytes")
            sizes[name] = size
        self.sizes = sizes

    def check(self) -> bool:
        """Raise :class:`FileCutError` for a file that is now shorter than recorded. False
        when a file is gone (tantivy replaced its segments: :meth:`reload`), True when every
        file is as long as it was. Call it before every reload as well: tantivy keeps its
        maps of the segments a commit left alone."""
        if self._watch is not None and not self._changed():
            return True
        whole = True
        for name, size in self.sizes.items():
            try:
                now = os.stat(os.path.join(self.folder, name)).st_size
            except FileNotFoundError:
                whole = False  # and the others are still checked: one may be cut
                continue
            if now < size:
                raise FileCutError(f"{name} was cut from {size:,} to {now:,} bytes")
        return whole

    def close(self) -> None:
        if self._finalizer is not None:
            self._finalizer()
        self._watch = self._finalizer = None

    def _changed(self) -> bool:
        """Whether the folder changed since the last look (the watch is emptied)."""
        assert self._watch is not None
        changed = False
        while True:
            try:
                if not os.read(self._watch, 65536):
                    return changed
            except BlockingIOError:
                return changed
            changed = True

    def watch(self) -> None:
        """Watch the folder as it is now (a folder deleted and made again ends the last
        watch: adding it again watches the new one), and forget what the watch saw so far
        (the caller is about to read the files again). One inotify instance for the life of
        this object: closing one takes the kernel ~9 ms (it waits for a grace period), which
        every commit's reload paid when each reload made a new one. None where inotify is
        missing or out of instances or watches: then every check stats the files."""
        if _LIBC is None:
            return
        if self._watch is None:
            fd = _LIBC.inotify_init1(_IN_NONBLOCK | _IN_CLOEXEC)
            if fd < 0:
                log.debug("no inotify for %s: %s", self.folder, os.strerror(ctypes.get_errno()))
                return
            self._watch = fd
            self._finalizer = weakref.finalize(self, os.close, fd)
        if _LIBC.inotify_add_watch(self._watch, os.fsencode(self.folder), _MASK) < 0:
            log.debug("cannot watch %s: %s", self.folder, os.strerror(ctypes.get_errno()))
            self.close()
            return
        self._changed()  # emptied: what it saw is read again now
