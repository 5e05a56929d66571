"""The input of an import: a ZIP, a folder or one file, seen as a list of entries; and JSON
read from an entry as a stream of values (bounded memory for multi-GB exports).

ZIPs are checked before anything is read: a member whose name is absolute or climbs with
``..`` (zip-slip) or a ZIP that would unpack to more than :data:`MAX_UNCOMPRESSED` bytes, or a
large member compressed more than :data:`MAX_RATIO` times (a zip bomb), rejects the whole ZIP.
Members are never extracted to disk; they are streamed, and a member that inflates past its
declared size is stopped.
"""

from __future__ import annotations

import io
import os
import re
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from types import TracebackType
from typing import IO, Any

import ijson  # type: ignore[import-untyped]
import ijson.backends.python as ijson_python  # type: ignore[import-untyped]
import orjson

from storage.errors import ImportFormatError, UnsafeArchiveError

MAX_UNCOMPRESSED = 32 * 1024**3  # a ZIP may hold a 2 GB conversations.json, not 32 GB
MAX_RATIO = 200  # JSON deflates 5-20x; zeros-filled bombs 1000x
RATIO_MIN_SIZE = 8 * 1024**2  # small members may compress well; only big ones are suspect
READ_CHUNK = 64 * 1024
EXACT_OFFSET_LIMIT = 64 * 1024**2  # re-parse files up to this size to name the exact offset
_BOM = b"\xef\xbb\xbf"
_DRIVE = re.compile(r"^[A-Za-z]:")
_WHITESPACE = b" \t\r\n"


@dataclass(frozen=True)
class Entry:
    name: str  # a relative POSIX path inside the input ("conversations.json" for one file)
    size: int
    display: str  # how errors name it: a path, or "export.zip!conversations.json"
    opener: Callable[[], IO[bytes]]

    def open(self) -> IO[bytes]:
        return self.opener()

    @property
    def parts(self) -> tuple[str, ...]:
        return PurePosixPath(self.name).parts


class Source:
    """An opened input; use as a context manager so a ZIP is closed."""

    def __init__(self, path: Path, entries: list[Entry], zip_file: zipfile.ZipFile | None):
        self.path = path
        self.entries = entries
        self._zip = zip_file

    @property
    def is_zip(self) -> bool:
        return self._zip is not None

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()

    def __enter__(self) -> Source:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def open_source(path: Path) -> Source:
    """The entries of a ZIP (checked for zip-slip and bombs), a folder (walked, symlinked
    folders not followed) or a single file."""
    if not path.exists():
        raise ImportFormatError(path, "no such file or folder")
    if path.is_dir():
        return Source(path, _folder_entries(path), None)
    if zipfile.is_zipfile(path):
        try:
            archive = zipfile.ZipFile(path)
        except zipfile.BadZipFile as exc:
            raise ImportFormatError(path, f"not a readable ZIP ({exc})") from exc
        try:
            entries = _zip_entries(path, archive)
        except BaseException:
            archive.close()
            raise
        return Source(path, entries, archive)
    size = path.stat().st_size
    return Source(path, [Entry(path.name, size, str(path), lambda: open(path, "rb"))], None)


def _folder_entries(root: Path) -> list[Entry]:
    entries = []
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(files):
            full = Path(folder) / name
            if not full.is_file():
                continue
            rel = full.relative_to(root).as_posix()
            entries.append(Entry(rel, full.stat().st_size, str(full), _file_opener(full)))
    return entries


def _file_opener(path: Path) -> Callable[[], IO[bytes]]:
    return lambda: open(path, "rb")


def check_member_name(zip_path: Path, name: str) -> None:
    """Reject names that would land outside a folder the ZIP were unpacked into."""
    if name.startswith(("/", "\\")) or _DRIVE.match(name):
        raise UnsafeArchiveError(zip_path, name, "absolute path (zip-slip)")
    if "\\" in name:
        raise UnsafeArchiveError(zip_path, name, "backslash in the path (zip-slip on Windows)")
    if ".." in PurePosixPath(name).parts:
        raise UnsafeArchiveError(zip_path, name, "'..' in the path (zip-slip)")
    if "\x00" in name:
        raise UnsafeArchiveError(zip_path, name, "NUL byte in the path")


def _zip_entries(path: Path, archive: zipfile.ZipFile) -> list[Entry]:
    infos = archive.infolist()
    total = 0
    for info in infos:
        check_member_name(path, info.filename)
        total += info.file_size
        if total > MAX_UNCOMPRESSED:
            raise UnsafeArchiveError(
                path,
                info.filename,
                f"the ZIP unpacks to more than {MAX_UNCOMPRESSED:,} bytes (a zip bomb?)",
            )
        if info.file_size > RATIO_MIN_SIZE:
            ratio = info.file_size / max(info.compress_size, 1)
            if ratio > MAX_RATIO:
                raise UnsafeArchiveError(
                    path,
                    info.filename,
                    f"compressed {ratio:,.0f} times ({info.compress_size:,} → "
                    f"{info.file_size:,} bytes), over the limit of {MAX_RATIO} (a zip bomb?)",
                )
    entries = []
    for info in infos:
        if info.is_dir():
            continue
        if info.flag_bits & 0x1:
            raise ImportFormatError(path, f"member {info.filename!r} is encrypted")
        entries.append(
            Entry(
                info.filename,
                info.file_size,
                f"{path}!{info.filename}",
                _member_opener(path, archive, info),
            )
        )
    return entries


def _member_opener(
    path: Path, archive: zipfile.ZipFile, info: zipfile.ZipInfo
) -> Callable[[], IO[bytes]]:
    def opener() -> IO[bytes]:
        return _Capped(archive.open(info), path, info)  # type: ignore[return-value]

    return opener


class _Capped(io.RawIOBase):
    """A member stream that stops a member inflating past its declared size."""

    def __init__(self, fh: IO[bytes], path: Path, info: zipfile.ZipInfo) -> None:
        self._fh = fh
        self._path = path
        self._info = info
        self._read = 0

    def readable(self) -> bool:
        return True

    def read(self, n: int | None = -1) -> bytes:
        data = self._fh.read(-1 if n is None else n)
        self._read += len(data)
        if self._read > self._info.file_size:
            raise UnsafeArchiveError(
                self._path,
                self._info.filename,
                f"inflates past its declared {self._info.file_size:,} bytes",
            )
        return data

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self._fh.close()
        super().close()


class _Counting:
    """Counts the bytes the parser has read, to say where an error is and how far we are."""

    def __init__(self, fh: IO[bytes]) -> None:
        self._fh = fh
        self.pos = 0
        self.chunk_start = 0

    def read(self, n: int = -1) -> bytes:
        data = self._fh.read(n)
        self.chunk_start = self.pos
        self.pos += len(data)
        return data


def first_byte(entry: Entry) -> bytes:
    """The first byte that is not whitespace or a BOM (``b""`` for an empty file)."""
    with entry.open() as fh:
        head = fh.read(4096)
        if head.startswith(_BOM):
            head = head[len(_BOM) :]
        while head:
            stripped = head.lstrip(_WHITESPACE)
            if stripped:
                return stripped[:1]
            head = fh.read(4096)
    return b""


def looks_like_json(entry: Entry) -> bool:
    return first_byte(entry) in (b"[", b"{")


def iter_json(entry: Entry, limit: int | None = None) -> Iterator[tuple[Any, int]]:
    """The values of a JSON file, one at a time, each with the bytes read so far: the items of
    a top-level array, or each object of a file of one object or of JSON Lines."""
    start = first_byte(entry)
    if start not in (b"[", b"{"):
        what = "the file is empty" if not start else f"it starts with {start!r}"
        raise ImportFormatError(entry.display, f"not JSON: {what}", 0)
    with entry.open() as fh:
        head = fh.read(len(_BOM))
        if head != _BOM:
            fh = _Prefixed(head, fh)  # type: ignore[assignment]
        reader = _Counting(fh)
        prefix = "item" if start == b"[" else ""
        items = ijson.items(
            reader, prefix, use_float=True, multiple_values=True, buf_size=READ_CHUNK
        )
        count = 0
        try:
            for item in items:
                yield item, reader.pos
                count += 1
                if limit is not None and count >= limit:
                    return
        except ijson.JSONError as exc:
            raise _json_error(entry, exc, reader) from exc
        except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
            raise ImportFormatError(
                entry.display, f"corrupt ZIP member ({exc})", reader.chunk_start
            ) from exc
        except UnicodeDecodeError as exc:
            raise ImportFormatError(
                entry.display, f"not UTF-8 text ({exc.reason})", reader.chunk_start + exc.start
            ) from exc


class _Prefixed:
    """Puts bytes already read back in front of a stream."""

    def __init__(self, head: bytes, fh: IO[bytes]) -> None:
        self._head = head
        self._fh = fh

    def read(self, n: int = -1) -> bytes:
        if n == 0:
            return b""  # ijson probes the type with read(0)
        if self._head:
            head, self._head = self._head, b""
            if n is None or n < 0:
                return head + self._fh.read()
            return head + self._fh.read(max(0, n - len(head)))
        return self._fh.read(n)

    def __enter__(self) -> _Prefixed:
        return self

    def __exit__(self, *exc: object) -> None:
        self._fh.close()


def _json_error(entry: Entry, exc: Exception, reader: _Counting) -> ImportFormatError:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if "premature EOF" in text or "Incomplete JSON" in text:
        return ImportFormatError(
            entry.display, "truncated JSON: the file ends in the middle of a value", reader.pos
        )
    if entry.size <= EXACT_OFFSET_LIMIT:
        exact = _exact_offset(entry)
        if exact is not None:
            return ImportFormatError(entry.display, f"invalid JSON ({text})", exact)
    return ImportFormatError(
        entry.display,
        f"invalid JSON ({text}) within the {READ_CHUNK // 1024} KiB from this offset",
        reader.chunk_start,
    )


def _exact_offset(entry: Entry) -> int | None:
    """Re-parse a small file with the pure-Python parser, which knows where it stopped."""
    with entry.open() as fh:
        data = fh.read()
    body = data[len(_BOM) :] if data.startswith(_BOM) else data
    try:
        for _event in ijson_python.basic_parse(io.BytesIO(body), multiple_values=True):
            pass
    except ijson.JSONError as exc:
        found = re.search(r" at (\d+)$", str(exc))
        if found is None:
            return None
        chars = int(found.group(1))
        prefix = body.decode("utf-8", errors="replace")[:chars]
        return len(data) - len(body) + len(prefix.encode("utf-8", errors="replace"))
    return None


def read_json_entry(entry: Entry) -> Any:
    """A small JSON file (a thread, a session record) parsed whole."""
    with entry.open() as fh:
        data = fh.read()
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise ImportFormatError(entry.display, f"not valid JSON ({exc.msg})", exc.pos) from exc


def read_jsonl_entry(entry: Entry, problems: list[str]) -> list[Any]:
    """The values of a JSON Lines file; a bad line is reported (file and line) and skipped."""
    values = []
    with entry.open() as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                values.append(orjson.loads(line))
            except orjson.JSONDecodeError as exc:
                torn = "" if line.endswith(b"\n") else " (a torn last line)"
                problems.append(f"{entry.display}:{number}: not valid JSON{torn} ({exc.msg})")
    return values
