"""What changed in an archive, announced to subscribers (the GUI refreshes only that)."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from storage.files import stamp_path

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Change:
    """Base of every change event."""


@dataclass(frozen=True)
class UserChanged(Change):
    user_id: str
    deleted: bool = False


@dataclass(frozen=True)
class SessionChanged(Change):
    user_id: str
    session_id: str
    deleted: bool = False


@dataclass(frozen=True)
class MessagesAppended(Change):
    user_id: str
    session_id: str
    count: int


@dataclass(frozen=True)
class MessagesRewritten(Change):
    user_id: str
    session_id: str


@dataclass(frozen=True)
class DocumentsChanged(Change):
    user_id: str
    session_id: str | None


@dataclass(frozen=True)
class PersonasChanged(Change):
    user_id: str | None


Listener = Callable[[Change], None]


class ChangeBus:
    """Synchronous fan-out. Listeners run in the writing thread and must hand work over to
    their own loop (e.g. ``loop.call_soon_threadsafe``)."""

    def __init__(self) -> None:
        self._listeners: list[Listener] = []

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def emit(self, change: Change) -> None:
        for listener in list(self._listeners):
            try:
                listener(change)
            except Exception:  # a broken listener must not fail the write that already happened
                log.exception("change listener %r failed on %r", listener, change)


def change_stamp(root: Path) -> tuple[int, int] | None:
    """A value that differs after any write to the archive at ``root`` by any process (every
    writer touches one stamp file), or None before the first write. Blocking: one ``stat``."""
    try:
        st = os.stat(stamp_path(root))
    except FileNotFoundError:
        return None
    return st.st_mtime_ns, st.st_ino
