"""Append-only JSONL logs (messages, panel insights), plain or zstd-compacted.

Reading never loads a whole file: lines stream forward or backward in fixed-size blocks, so a
first or last page costs a block or two and a full iteration keeps memory flat. A last line
without a newline that does not parse is a torn append: it is skipped on read and cut off before
the next append. A bad line elsewhere is logged with its path and line and skipped.

Compacted logs (``messages.jsonl.zst``) are written as independent zstd frames of whole lines,
followed by a zstd seek table (the "seekable format" skippable frame), so they can be read
backward frame by frame too. Any zstd file is readable forward; the seek table is only a
shortcut.
"""

from __future__ import annotations

import logging
import os
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Generic, NamedTuple, Protocol, TypeVar

import orjson
import zstandard
from pydantic import ValidationError

from storage.errors import MessageTooLargeError
from storage.files import atomic_write_from, durable_append, fsync_dir, write_error
from storage.models import Record

log = logging.getLogger(__name__)

BLOCK = 1 << 20
FRAME_TARGET = 1 << 20  # uncompressed bytes per zstd frame in a compacted log
ZSTD_LEVEL = 9
_SKIPPABLE_SEEK_MAGIC = 0x184D2A5E
_SEEKABLE_FOOTER_MAGIC = 0x8F92EAB1

R = TypeVar("R", bound=Record)


class _Seekable(Protocol):
    def seek(self, pos: int, whence: int = 0, /) -> object: ...
    def read(self, n: int = -1, /) -> bytes: ...


@dataclass(frozen=True)
class LineProblem:
    path: str
    line: int | None
    offset: int
    problem: str
    torn: bool = False


class RawLine(NamedTuple):
    """One line of a log as read (a named tuple: one is made per line, in a third of a frozen
    dataclass's time)."""

    data: bytes
    terminated: bool
    offset: int  # byte offset of the line's start in the (uncompressed) stream


def _forward(fh: IO[bytes], start: int = 0) -> Iterator[RawLine]:
    pending = b""
    pos = start
    while chunk := fh.read(BLOCK):
        parts = (pending + chunk).split(b"\n")
        pending = parts.pop()
        for part in parts:
            yield RawLine(part, True, pos)
            pos += len(part) + 1
    if pending:
        yield RawLine(pending, False, pos)


def _backward(fh: _Seekable, size: int) -> Iterator[RawLine]:
    end = size
    carry = b""
    first = True
    while end > 0:
        start = max(0, end - BLOCK)
        fh.seek(start)
        buf = fh.read(end - start) + carry
        parts = buf.split(b"\n")
        carry = parts[0]
        offset = start + len(buf) - len(parts[-1])
        for index in range(len(parts) - 1, 0, -1):
            part = parts[index]
            if first:
                first = False
                if part:  # the file does not end with a newline
                    yield RawLine(part, False, offset)
                offset -= len(parts[index - 1]) + 1
                continue
            yield RawLine(part, True, offset)
            offset -= len(parts[index - 1]) + 1
        end = start
    if carry:
        yield RawLine(carry, not first, 0)


def _seek_table(fh: _Seekable, size: int) -> list[tuple[int, int]] | None:
    """[(compressed_offset, compressed_size)] per frame, from the seekable-format table."""
    if size < 17:
        return None
    fh.seek(size - 9)
    count, descriptor, magic = struct.unpack("<IBI", fh.read(9))
    if magic != _SEEKABLE_FOOTER_MAGIC:
        return None
    entry = 12 if descriptor & 0x80 else 8
    table_size = count * entry + 9
    fh.seek(size - table_size - 8)
    header_magic, frame_size = struct.unpack("<II", fh.read(8))
    if header_magic != _SKIPPABLE_SEEK_MAGIC or frame_size != table_size:
        return None
    raw = fh.read(count * entry)
    frames, offset = [], 0
    for i in range(count):
        (csize,) = struct.unpack_from("<I", raw, i * entry)
        frames.append((offset, csize))
        offset += csize
    return frames


class JsonlLog(Generic[R]):
    """One append-only log of records of type ``model``: ``<name>`` or ``<name>.zst``.

    Not thread-safe by itself: writers hold the session lock; readers need no lock because
    writes are appends of whole lines or atomic replacements.
    """

    def __init__(
        self,
        path: Path,
        model: type[R],
        *,
        legacy_paths: Callable[[], list[Path]] | None = None,
    ) -> None:
        self.path = path
        self.zst_path = path.with_name(path.name + ".zst")
        self.model = model
        self._legacy_paths = legacy_paths

    # ---------------------------------------------------------------- sources
    def exists(self) -> bool:
        return self.path.exists() or self.zst_path.exists()

    @property
    def is_compacted(self) -> bool:
        return not self.path.exists() and self.zst_path.exists()

    def _open(self) -> tuple[IO[bytes], int | None] | None:
        """Open the current source: (stream, size if plain and seekable) or None if empty.

        The plain file wins when both exist: compaction writes the .zst before removing the
        plain file, and decompaction writes the plain file before removing the .zst.
        """
        for attempt in (self.path, self.zst_path, self.path):
            try:
                fh = open(attempt, "rb")  # noqa: SIM115 - returned to the caller, who closes it
            except FileNotFoundError:
                continue
            if attempt is self.zst_path:
                reader = zstandard.ZstdDecompressor().stream_reader(
                    fh, read_across_frames=True, closefd=True
                )
                return reader, None
            return fh, os.fstat(fh.fileno()).st_size
        return None

    def raw_forward(self) -> Iterator[RawLine]:
        opened = self._open()
        if opened is None:
            return
        fh, _ = opened
        with fh:
            yield from _forward(fh)

    def raw_from(self, offset: int) -> Iterator[RawLine]:
        """Lines of the plain file from byte ``offset`` (a line start) on: the tail an index
        has not seen yet."""
        try:
            fh = open(self.path, "rb")  # noqa: SIM115 - closed by the `with` below
        except FileNotFoundError:
            return
        with fh:
            fh.seek(offset)
            yield from _forward(fh, start=offset)

    def raw_backward(self) -> Iterator[RawLine]:
        opened = self._open()
        if opened is None:
            return
        fh, size = opened
        with fh:
            if size is not None:
                yield from _backward(fh, size)
                return
        yield from self._zst_backward()

    def _zst_backward(self) -> Iterator[RawLine]:
        try:
            fh = open(self.zst_path, "rb")  # noqa: SIM115 - closed by the `with` below
        except FileNotFoundError:
            return
        with fh:
            size = os.fstat(fh.fileno()).st_size
            frames = _seek_table(fh, size)
            if frames is None:
                # Written by another tool: no seek table, so buffer the lines (rare, logged).
                log.info("%s has no seek table; reading it whole to go backward", self.zst_path)
                fh.seek(0)
                reader = zstandard.ZstdDecompressor().stream_reader(fh, read_across_frames=True)
                lines = list(_forward(reader))
                yield from reversed(lines)
                return
            dctx = zstandard.ZstdDecompressor()
            for offset, csize in reversed(frames):
                fh.seek(offset)
                data = dctx.decompress(fh.read(csize))
                yield from _backward(_BytesReader(data), len(data))

    # ---------------------------------------------------------------- parsing
    def _parse(self, raw: RawLine, line_no: int | None) -> R | None:
        try:
            return _decode(self.model, raw.data)
        except _BAD_LINE as exc:
            if not raw.terminated:
                log.info("skipping torn last line of %s (%d bytes)", self.path, len(raw.data))
                return None
            where = f"line {line_no}" if line_no is not None else f"byte {raw.offset}"
            log.warning("skipping bad record at %s %s: %s", self.path, where, _short(exc))
            return None

    def legacy_merged(self) -> list[R] | None:
        """Seed sessions also keep per-persona copies: merged, deduplicated, in time order."""
        extra = self._legacy_paths() if self._legacy_paths else []
        if not extra:
            return None
        seen: set[str] = set()
        merged: list[R] = []
        sources = [self] + [JsonlLog(p, self.model) for p in extra]
        for source in sources:
            for record in source._iter_file(reverse=False):
                key = _record_key(record)
                if key in seen:
                    continue
                seen.add(key)
                merged.append(record)
        merged.sort(key=lambda r: getattr(r, "timestamp", None) or 0)
        return merged

    def _iter_file(self, reverse: bool) -> Iterator[R]:
        if reverse:
            for raw in self.raw_backward():
                if raw.data.strip():
                    record = self._parse(raw, None)
                    if record is not None:
                        yield record
            return
        for line_no, raw in enumerate(self.raw_forward(), start=1):
            if raw.data.strip():
                record = self._parse(raw, line_no)
                if record is not None:
                    yield record

    # ---------------------------------------------------------------- reading
    def iter(self, reverse: bool = False) -> Iterator[R]:
        merged = self.legacy_merged()
        if merged is not None:
            yield from (reversed(merged) if reverse else merged)
            return
        yield from self._iter_file(reverse)

    def page(self, offset: int, limit: int | None, from_end: bool = False) -> list[R]:
        """Records ``offset``..``offset+limit`` counted from the start (or from the end), in
        file order. Only the lines returned are parsed."""
        if offset < 0 or (limit is not None and limit < 0):
            raise ValueError(f"offset and limit must be >= 0, got {offset}, {limit}")
        merged = self.legacy_merged()
        if merged is not None:
            ordered = merged[::-1] if from_end else merged
            chosen = ordered[offset : None if limit is None else offset + limit]
            return chosen[::-1] if from_end else chosen
        picked: list[tuple[RawLine, int | None]] = []
        skipped = 0
        source = self.raw_backward() if from_end else self.raw_forward()
        line_no = 0
        for raw in source:
            line_no += 1
            if not raw.data.strip():
                continue
            if not raw.terminated and self._parse(raw, None) is None:
                continue  # torn tail: not a message
            if skipped < offset:
                skipped += 1
                continue
            if limit is not None and len(picked) >= limit:
                break
            picked.append((raw, None if from_end else line_no))
        if from_end:
            picked.reverse()
        return [r for raw, n in picked if (r := self._parse(raw, n)) is not None]

    def tail(self, limit: int) -> list[R]:
        return self.page(0, limit, from_end=True)

    def count(self) -> int:
        merged = self.legacy_merged()
        if merged is not None:
            return len(merged)
        total = 0
        last_unterminated: RawLine | None = None
        for raw in self.raw_forward():
            if raw.data.strip():
                total += 1
                if not raw.terminated:
                    last_unterminated = raw
        if last_unterminated is not None and self._parse(last_unterminated, None) is None:
            total -= 1
        return total

    def problems(self) -> list[LineProblem]:
        """Every unparsable line (with its number) and a torn tail, for ``verify``."""
        found: list[LineProblem] = []
        shown = str(self.path if not self.is_compacted else self.zst_path)
        for line_no, raw in enumerate(self.raw_forward(), start=1):
            if not raw.data.strip():
                continue
            try:
                _decode(self.model, raw.data)
            except _BAD_LINE as exc:
                if raw.terminated:
                    found.append(LineProblem(shown, line_no, raw.offset, _short(exc)))
                else:
                    found.append(
                        LineProblem(
                            shown,
                            line_no,
                            raw.offset,
                            f"torn last line ({len(raw.data)} bytes, no newline): an "
                            "interrupted append; ignored on read, cut off on the next append",
                            torn=True,
                        )
                    )
                continue
            if not raw.terminated:
                found.append(
                    LineProblem(
                        shown,
                        line_no,
                        raw.offset,
                        "last line has no newline; completed on the next append",
                        torn=True,
                    )
                )
        return found

    # ---------------------------------------------------------------- writing (lock held)
    def encode(self, records: list[R], max_bytes: int | None) -> list[bytes]:
        """Each record's line (without newline); all checked before anything is written."""
        lines = []
        for record in records:
            line = record.to_json()
            if max_bytes is not None and len(line) > max_bytes:
                raise MessageTooLargeError(len(line), max_bytes, _record_key(record))
            lines.append(line)
        return lines

    def append(self, records: list[R], max_bytes: int | None = None) -> None:
        """Append records in one write + fsync. The caller holds the log's lock."""
        lines = self.encode(records, max_bytes)
        if not lines:
            return
        self._decompact()
        lines.append(b"")  # the final newline
        durable_append(self.path, self._prepare_tail() + b"\n".join(lines))

    def _prepare_tail(self) -> bytes:
        """Cut a torn tail off (it was never acknowledged); return b"\\n" if the last line is a
        complete record without its newline."""
        try:
            fh = open(self.path, "r+b")  # noqa: SIM115 - closed by the `with` below
        except FileNotFoundError:
            return b""
        with fh:
            size = os.fstat(fh.fileno()).st_size
            if size == 0:
                return b""
            fh.seek(size - 1)
            if fh.read(1) == b"\n":
                return b""
            last = next(_backward(fh, size))
            try:
                _decode(self.model, last.data)
            except _BAD_LINE:
                log.warning(
                    "cutting torn last line off %s (%d bytes at byte %d)",
                    self.path,
                    len(last.data),
                    last.offset,
                )
                try:
                    fh.truncate(last.offset)
                    os.fsync(fh.fileno())
                except OSError as exc:
                    raise write_error(self.path, exc) from exc
                return b""
            return b"\n"

    def _decompact(self) -> None:
        """Make the plain file the source again before appending or rewriting."""
        if self.path.exists() or not self.zst_path.exists():
            if self.path.exists() and self.zst_path.exists():
                self.zst_path.unlink()  # left by an interrupted (de)compaction
                fsync_dir(self.path.parent)
            return
        atomic_write_from(
            self.path,
            (
                raw.data + b"\n"
                for raw in self.raw_forward()
                if raw.terminated or self._parse(raw, None) is not None
            ),
        )
        self.zst_path.unlink()
        fsync_dir(self.path.parent)

    def rewrite(self, transform: Callable[[R], R | None]) -> int:
        """Stream every record through ``transform`` (None drops it) into a new file that
        atomically replaces the log. Bad lines are kept as they are. Returns the count."""
        kept = 0
        merged = self.legacy_merged()

        def lines() -> Iterator[bytes]:
            nonlocal kept
            if merged is not None:
                for record in merged:
                    out = transform(record)
                    if out is not None:
                        kept += 1
                        yield out.to_json() + b"\n"
                return
            for raw in self.raw_forward():
                if not raw.data.strip():
                    continue
                try:
                    record = _decode(self.model, raw.data)
                except _BAD_LINE:
                    if raw.terminated:
                        yield raw.data + b"\n"  # keep what we cannot read; verify reports it
                    continue
                out = transform(record)
                if out is not None:
                    kept += 1
                    yield out.to_json() + b"\n"

        atomic_write_from(self.path, lines())
        if self.zst_path.exists():
            self.zst_path.unlink()
            fsync_dir(self.path.parent)
        if merged is not None and self._legacy_paths:
            # The merged view now lives in the main log; keep the old copies, renamed aside.
            for legacy in self._legacy_paths():
                legacy.rename(legacy.with_name(legacy.name + ".merged"))
            fsync_dir(self.path.parent)
        return kept

    def compact(self, level: int = ZSTD_LEVEL) -> None:
        """Rewrite the plain log as ``.zst`` frames plus a seek table, atomically."""
        if not self.path.exists():
            return
        cctx = zstandard.ZstdCompressor(level=level, write_content_size=True)
        sizes: list[tuple[int, int]] = []

        def frames() -> Iterator[bytes]:
            batch: list[bytes] = []
            batch_len = 0
            for raw in self.raw_forward():
                if not raw.terminated and self._parse(raw, None) is None:
                    continue  # torn tail: never acknowledged
                batch.append(raw.data + b"\n")
                batch_len += len(raw.data) + 1
                if batch_len >= FRAME_TARGET:
                    yield self._frame(cctx, batch, sizes)
                    batch, batch_len = [], 0
            if batch:
                yield self._frame(cctx, batch, sizes)
            yield _seek_table_frame(sizes)

        atomic_write_from(self.zst_path, frames())
        self.path.unlink()
        fsync_dir(self.path.parent)

    @staticmethod
    def _frame(
        cctx: zstandard.ZstdCompressor, batch: list[bytes], sizes: list[tuple[int, int]]
    ) -> bytes:
        data = b"".join(batch)
        frame = cctx.compress(data)
        sizes.append((len(frame), len(data)))
        return frame


def _seek_table_frame(sizes: list[tuple[int, int]]) -> bytes:
    entries = b"".join(struct.pack("<II", c, d) for c, d in sizes)
    footer = struct.pack("<IBI", len(sizes), 0, _SEEKABLE_FOOTER_MAGIC)
    body = entries + footer
    return struct.pack("<II", _SKIPPABLE_SEEK_MAGIC, len(body)) + body


class _BytesReader:
    """Minimal seek/read over bytes for :func:`_backward` (no copy on slicing views)."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    def seek(self, pos: int, whence: int = 0, /) -> int:
        self._pos = pos
        return pos

    def read(self, n: int = -1, /) -> bytes:
        out = self._data[self._pos : self._pos + n]
        self._pos += len(out)
        return out


# orjson + model_validate is ~1.6x faster than model_validate_json for our records.
_BAD_LINE = (ValidationError, orjson.JSONDecodeError)


def _decode(model: type[R], data: bytes) -> R:
    return model.model_validate(orjson.loads(data))


def _record_key(record: Record) -> str:
    for name in ("message_id", "id"):
        value = getattr(record, name, None)
        if isinstance(value, str):
            return value
    return orjson.dumps(record.to_dict()).decode()


def _short(exc: ValidationError | orjson.JSONDecodeError) -> str:
    if not isinstance(exc, ValidationError):
        return f"not valid JSON ({exc})"
    err = exc.errors(include_url=False)[0]
    loc = ".".join(str(p) for p in err.get("loc", ()))
    msg = err.get("msg", "invalid")
    return f"{loc}: {msg}" if loc else msg
