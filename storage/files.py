"""Crash-safe file primitives: atomic whole-file writes, durable appends, JSON records.

Whole-file writes go to a temp file in the same folder, are flushed and fsynced, then
``os.replace``d over the target and the folder is fsynced, so a reader sees the old file or the
new one, never half of either. Temp files are dot-files named after the writing host and pid, so
a later process can tell a dead writer's leftovers (:func:`remove_stale_temp_files`).
"""

from __future__ import annotations

import errno
import logging
import os
import secrets
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypeVar

import orjson
from pydantic import BaseModel, ValidationError

from storage.errors import CorruptRecordError, ReadOnlyArchiveError, StorageError

log = logging.getLogger(__name__)

TEMP_SUFFIX = ".tmp"
_HOST = socket.gethostname().replace(".", "_").replace("-", "_")[:40] or "host"
_READ_ONLY_ERRNOS = {errno.EACCES, errno.EPERM, errno.EROFS}

M = TypeVar("M", bound=BaseModel)


def write_error(path: Path, exc: OSError) -> StorageError | OSError:
    """Turn a permission/read-only OSError into ReadOnlyArchiveError; keep others as they are."""
    if exc.errno in _READ_ONLY_ERRNOS:
        return ReadOnlyArchiveError(path, exc.strerror or str(exc))
    return exc


def fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def temp_path_for(path: Path) -> Path:
    return path.with_name(f".{path.name}.{_HOST}-{os.getpid()}-{secrets.token_hex(4)}{TEMP_SUFFIX}")


def make_dirs(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise write_error(folder, exc) from exc


def atomic_write(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically and durably."""
    make_dirs(path.parent)
    tmp = temp_path_for(path)
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        fsync_dir(path.parent)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise write_error(path, exc) from exc


def atomic_write_from(path: Path, chunks: Iterator[bytes]) -> None:
    """Like :func:`atomic_write`, but streams ``chunks`` so memory stays flat."""
    make_dirs(path.parent)
    tmp = temp_path_for(path)
    try:
        with open(tmp, "xb") as fh:
            for chunk in chunks:
                fh.write(chunk)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        fsync_dir(path.parent)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise write_error(path, exc) from exc
        raise


def durable_append(path: Path, data: bytes) -> None:
    """Append ``data`` with one ``write`` and fsync. The caller holds the file's lock."""
    make_dirs(path.parent)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            written = os.write(fd, data)
            if written != len(data):  # a short write on a full disk: undo it, then fail
                os.ftruncate(fd, os.fstat(fd).st_size - written)
                raise OSError(errno.ENOSPC, "short write", str(path))
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        raise write_error(path, exc) from exc


def remove_tree(folder: Path) -> None:
    """Delete a folder so that no reader ever sees it half-deleted: rename it aside to a
    hidden name atomically (durably), then remove the renamed tree."""
    trash = folder.with_name(f".deleted-{folder.name}-{secrets.token_hex(4)}")
    try:
        folder.rename(trash)
        fsync_dir(folder.parent)
    except OSError as exc:
        raise write_error(folder, exc) from exc
    shutil.rmtree(trash)


def stamp_path(root: Path) -> Path:
    return root / ".locks" / "changes.stamp"


def stamp_signature(root: Path) -> list[int] | None:
    """[inode, size, mtime_ns] of the change stamp, or None if nothing was ever written."""
    try:
        st = os.stat(stamp_path(root))
    except FileNotFoundError:
        return None
    return [st.st_ino, st.st_size, st.st_mtime_ns]


def touch_stamp(root: Path) -> None:
    """Tell searchers in every process that the archive changed: one stat tells them."""
    path = stamp_path(root)
    try:
        os.utime(path)
    except FileNotFoundError:
        make_dirs(path.parent)
        path.touch()
    except OSError as exc:  # a read-only archive has no writes to announce
        log.debug("cannot touch %s: %s", path, exc)


def read_json(path: Path) -> Any:
    """Parse a JSON file; a parse error becomes :class:`CorruptRecordError` with the path."""
    data = path.read_bytes()
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise CorruptRecordError(path, f"not valid JSON ({exc})") from exc


def read_model(path: Path, model: type[M], **defaults: Any) -> M:
    """Read a JSON object file into ``model``; ``defaults`` fill fields the file lacks."""
    raw = read_json(path)
    if not isinstance(raw, dict):
        raise CorruptRecordError(path, f"expected a JSON object, found {type(raw).__name__}")
    for key, value in defaults.items():
        raw.setdefault(key, value)
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise CorruptRecordError(path, _first_error(exc)) from exc


def write_json(path: Path, value: Any) -> None:
    atomic_write(path, orjson.dumps(value, option=orjson.OPT_INDENT_2) + b"\n")


def write_model(path: Path, record: Any) -> None:
    """Write a :class:`storage.models.Record` (or plain JSON value) atomically, indented."""
    value = record.to_dict() if hasattr(record, "to_dict") else record
    write_json(path, value)


def _first_error(exc: ValidationError) -> str:
    err = exc.errors(include_url=False)[0]
    where = ".".join(str(p) for p in err.get("loc", ())) or "record"
    return f"{where}: {err.get('msg', 'invalid')}"


def describe_validation_error(exc: ValidationError) -> str:
    return _first_error(exc)


def parse_temp_owner(name: str) -> tuple[str, int] | None:
    """(host, pid) of the process that wrote a temp file, from its name."""
    if not (name.startswith(".") and name.endswith(TEMP_SUFFIX)):
        return None
    stem = name[: -len(TEMP_SUFFIX)]
    owner = stem.rsplit(".", 1)[-1]
    parts = owner.split("-")
    if len(parts) != 3 or not parts[1].isdigit():
        return None
    return parts[0], int(parts[1])


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def is_stale_temp(path: Path) -> bool:
    """A temp file left by a dead process on this host (safe to delete)."""
    owner = parse_temp_owner(path.name)
    if owner is None:
        return False
    host, pid = owner
    return host == _HOST and not _pid_alive(pid)


def remove_stale_temp_files(folder: Path) -> int:
    """Delete dead writers' temp files directly in ``folder``; returns how many."""
    removed = 0
    try:
        entries = list(os.scandir(folder))
    except FileNotFoundError:
        return 0
    for entry in entries:
        if entry.is_file(follow_symlinks=False) and is_stale_temp(Path(entry.path)):
            try:
                os.unlink(entry.path)
                removed += 1
            except FileNotFoundError:  # another process cleaned it first
                continue
            except OSError as exc:  # read-only archive: leave it, verify reports it
                log.debug("cannot remove stale temp file %s: %s", entry.path, exc)
    return removed
