"""Id validation and generation.

An id that reaches a path is 1-128 characters of letters, digits, ``_``, ``-`` and ``.``, with no
leading dot, never ``..`` and never a name Windows reserves. Invalid ids raise
:class:`InvalidIdError`; they are never silently rewritten.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import secrets
import threading

from storage.errors import InvalidIdError

MAX_ID_LENGTH = 128
_ID_RE = re.compile(r"[A-Za-z0-9_.\-]+")
# Windows refuses these as file names whatever the extension; archives get synced to Windows.
_WINDOWS_RESERVED = frozenset(
    ["CON", "PRN", "AUX", "NUL"]
    + [f"COM{i}" for i in range(1, 10)]
    + [f"LPT{i}" for i in range(1, 10)]
)
# Names the layout uses inside a user folder; a session with such an id would shadow them.
RESERVED_SESSION_NAMES = frozenset({"documents", "imports", "personas", "profile.json", "sessions"})


def validate_id(value: object, kind: str = "") -> str:
    """Return ``value`` if it is a safe id, else raise :class:`InvalidIdError` naming it."""
    kind = kind or "record"
    if not isinstance(value, str):
        raise InvalidIdError(kind, value, f"must be a string, not {type(value).__name__}")
    if not value:
        raise InvalidIdError(kind, value, "is empty")
    if len(value) > MAX_ID_LENGTH:
        raise InvalidIdError(kind, value, f"is {len(value)} characters, over {MAX_ID_LENGTH}")
    if value.startswith("."):
        raise InvalidIdError(kind, value, "starts with a dot")
    if ".." in value:
        raise InvalidIdError(kind, value, "contains '..'")
    if not _ID_RE.fullmatch(value):
        bad = sorted({c for c in value if not _ID_RE.fullmatch(c)})
        shown = ", ".join(repr(c) for c in bad[:5])
        raise InvalidIdError(
            kind, value, f"contains {shown}; allowed are letters, digits, '_', '-' and '.'"
        )
    if value.split(".", 1)[0].upper() in _WINDOWS_RESERVED:
        raise InvalidIdError(kind, value, "is a name Windows reserves for devices")
    return value


def validate_session_id(value: object) -> str:
    session_id = validate_id(value, "session")
    if session_id in RESERVED_SESSION_NAMES:
        raise InvalidIdError("session", value, "is a name the archive layout reserves")
    return session_id


_last_stamp = ""
_stamp_lock = threading.Lock()


def _stamp() -> str:
    """A UTC timestamp with microseconds, strictly increasing within this process."""
    global _last_stamp
    with _stamp_lock:
        now = dt.datetime.now(dt.UTC)
        stamp = now.strftime("%Y%m%d_%H%M%S_%f")
        while stamp <= _last_stamp:
            now += dt.timedelta(microseconds=1)
            stamp = now.strftime("%Y%m%d_%H%M%S_%f")
        _last_stamp = stamp
        return stamp


def new_id(prefix: str) -> str:
    """A time-sortable id unique across processes: ``<prefix>_<utc stamp>_<random hex>``.

    The stamp orders ids by creation time; 32 random bits (plus the pid's low bits) keep two
    processes creating ids in the same microsecond apart.
    """
    rand = f"{os.getpid() & 0xFF:02x}{secrets.token_hex(3)}"
    return validate_id(f"{prefix}_{_stamp()}_{rand}", prefix)
