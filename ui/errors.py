"""Turning storage errors into words a user can act on."""

from __future__ import annotations

import errno

from storage.errors import (
    CorruptRecordError,
    LockTimeoutError,
    NotAnArchiveError,
    NotFoundError,
    ReadOnlyArchiveError,
    StorageError,
    UnsupportedFormatError,
)

READ_ONLY_ERRNOS = frozenset({errno.EROFS, errno.EACCES, errno.EPERM})


def is_read_only(exc: BaseException) -> bool:
    if isinstance(exc, ReadOnlyArchiveError):
        return True
    return isinstance(exc, OSError) and exc.errno in READ_ONLY_ERRNOS


def headline(exc: BaseException) -> str:
    """A short title for an error box or the status bar."""
    if is_read_only(exc):
        return "The archive is read-only"
    if isinstance(exc, LockTimeoutError):
        return "The archive is busy (locked by another process)"
    if isinstance(exc, CorruptRecordError):
        return "A file in the archive is damaged"
    if isinstance(exc, NotAnArchiveError):
        return "Not a Flatchat archive"
    if isinstance(exc, UnsupportedFormatError):
        return "Archive written by a newer Flatchat"
    if isinstance(exc, NotFoundError):
        return "Not found"
    if isinstance(exc, StorageError):
        return "Archive error"
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return "The disk is full"
    if isinstance(exc, OSError):
        return "File system error"
    return "Unexpected error"


def advice(exc: BaseException) -> str:
    """What the user can do about it."""
    if is_read_only(exc):
        return "Browsing and search still work; changes cannot be saved here."
    if isinstance(exc, LockTimeoutError):
        return "Wait for the other program (an import?) to finish, then try again."
    if isinstance(exc, CorruptRecordError):
        return "What could be read is shown. `flatchat verify` lists every damaged file."
    if isinstance(exc, UnsupportedFormatError):
        return "Upgrade Flatchat to open this archive."
    return ""
