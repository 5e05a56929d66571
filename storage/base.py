"""State shared by the parts of :class:`storage.archive.Archive`, and the sync→async bridge.

Each part (users, sessions, messages, …) is a mixin whose public methods are written as plain
blocking bodies and turned into coroutines by :func:`threaded`, so the event loop never touches
the disk and each operation has exactly one body.
"""

from __future__ import annotations

import collections
import functools
import os
import threading
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar, cast

from storage.errors import CorruptRecordError, NotFoundError
from storage.events import Change, ChangeBus
from storage.files import read_model, stamp_signature, touch_stamp, write_model
from storage.layout import Layout
from storage.locks import Locks
from storage.models import Session, UserProfile
from storage.settings import Settings
from storage.threads import run_blocking

P = ParamSpec("P")
Stamp = list[int] | None  # the change stamp's signature (None: never written)
OWN_WRITES_KEPT = 256
T = TypeVar("T")
S = TypeVar("S", bound="ArchiveBase")


def threaded(
    fn: Callable[Concatenate[S, P], T],
) -> Callable[Concatenate[S, P], Coroutine[Any, Any, T]]:
    """Run a blocking archive method in a worker thread; the caller awaits it."""

    @functools.wraps(fn)
    async def wrapper(self: S, *args: P.args, **kwargs: P.kwargs) -> T:
        return await run_blocking(fn, self, *args, **kwargs)

    wrapper.sync = fn  # type: ignore[attr-defined]  # for other blocking code paths
    return cast(Callable[Concatenate[S, P], Coroutine[Any, Any, T]], wrapper)


class ArchiveBase:
    """Layout, locks, settings and the small caches every part uses."""

    def __init__(self, root: Path, settings: Settings) -> None:
        self.root = root
        self.settings = settings
        self.layout = Layout(root)
        self.locks = Locks(self.layout, settings.storage.lock_timeout)
        self.changes = ChangeBus()
        # session.json parsed once per (mtime, size): listing 10,000 sessions stays fast.
        # Keyed by the path as a string; the inode catches a same-size rewrite within one
        # mtime tick on file systems with coarse timestamps.
        self._session_cache: dict[str, tuple[int, int, int, Session]] = {}
        # Sessions the last listing of each user skipped because their session.json is
        # corrupt (the GUI shows them as problems next to the list).
        self.listing_problems: dict[str, list[CorruptRecordError]] = {}
        # This archive's own last writes: the change stamp before and after each (see
        # others_wrote); one at a time, or writes from several threads interleave and look
        # like another process's.
        self._own_writes: collections.deque[tuple[Stamp, Stamp]] = collections.deque(
            maxlen=OWN_WRITES_KEPT
        )
        self._stamp_lock = threading.Lock()

    # ------------------------------------------------------------------ users
    def _user_exists(self, user_id: str) -> bool:
        return self.layout.user_dir(user_id).is_dir()

    def _require_user(self, user_id: str) -> Path:
        folder = self.layout.user_dir(user_id)
        if not folder.is_dir():
            raise NotFoundError("user", user_id, self.layout.users_dir)
        return folder

    def _read_profile(self, user_id: str) -> UserProfile:
        folder = self._require_user(user_id)
        path = folder / "profile.json"
        if not path.exists():
            # Seed archives have users with sessions but no profile: show them as they are.
            stat = folder.stat()
            return UserProfile(
                user_id=user_id, username=user_id, created_at=_mtime(stat), updated_at=_mtime(stat)
            )
        return read_model(path, UserProfile, user_id=user_id)

    # --------------------------------------------------------------- sessions
    def _session_path(self, user_id: str, session_id: str) -> Path:
        path = self.layout.session_json(user_id, session_id)
        if not path.exists():
            self._require_user(user_id)
            raise NotFoundError("session", session_id, path.parent.parent)
        return path

    def _read_session(self, user_id: str, session_id: str) -> Session:
        path = self._session_path(user_id, session_id)
        return self._load_session_file(str(path), user_id, session_id)

    def _load_session_file(self, path: str, user_id: str, session_id: str) -> Session:
        stat = os.stat(path)
        key = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
        cached = self._session_cache.get(path)
        if cached is not None and cached[:3] == key:
            return cached[3]
        session = read_model(Path(path), Session, session_id=session_id, user_id=user_id)
        self._session_cache[path] = (*key, session)
        return session

    def _write_session(self, session: Session) -> Session:
        path = self.layout.session_json(session.user_id, session.session_id)
        write_model(path, session)
        self._session_cache.pop(str(path), None)
        return session

    def _emit(self, change: Change) -> None:
        with self._stamp_lock:
            before = stamp_signature(self.root)
            touch_stamp(self.root)
            self._own_writes.append((before, stamp_signature(self.root)))
        self.changes.emit(change)

    def others_wrote(self, since: Stamp, now: Stamp) -> bool:
        """Whether the change stamp went from ``since`` to ``now`` (:func:`stamp_signature`)
        by another process's writes, not only by this archive's own: searchers and the
        window index our writes from their events, and rescan the archive only for others'.
        Our writes are followed back from ``now``: one that started from a stamp we did not
        leave (another process wrote between two of ours) means others wrote. So does a
        history longer than the writes kept: a rescan then finds nothing more. Not seen: a
        write whose stamp lands between our look at the stamp and our touch of it (a few
        microseconds; the rescan every SCAN_INTERVAL finds it)."""
        # (A write within the clock tick of the last one leaves the stamp as it was: no step.)
        back = {tuple(a): b for b, a in list(self._own_writes) if a is not None and a != b}
        stamp = now
        for _ in range(len(back) + 1):
            if stamp == since:
                return False
            if stamp is None or tuple(stamp) not in back:
                return True
            stamp = back[tuple(stamp)]
        return True


def _mtime(stat: os.stat_result) -> Any:
    import datetime as dt

    return dt.datetime.fromtimestamp(stat.st_mtime, dt.UTC)
