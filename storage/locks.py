"""Inter-process locks (``filelock`` lock files under ``.locks/``).

Lock order is archive -> user -> session. A fresh ``FileLock`` object is made per acquisition,
so two threads of one process exclude each other exactly as two processes do (each holds its own
file descriptor). Lock files are never deleted: deleting a lock file someone holds breaks it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager

import filelock

from storage.errors import LockTimeoutError
from storage.files import make_dirs, write_error
from storage.layout import Layout


class Locks:
    def __init__(self, layout: Layout, timeout: float) -> None:
        self._layout = layout
        self._timeout = timeout

    @contextmanager
    def _hold(self, *parts: str) -> Iterator[None]:
        path = self._layout.lock_file(*parts)
        make_dirs(path.parent)
        lock = filelock.FileLock(str(path), timeout=self._timeout, thread_local=False)
        try:
            lock.acquire()
        except filelock.Timeout as exc:
            raise LockTimeoutError(path, self._timeout) from exc
        except OSError as exc:  # e.g. a read-only disk refuses to create the lock file
            raise write_error(path, exc) from exc
        try:
            yield
        finally:
            lock.release()

    def archive(self) -> AbstractContextManager[None]:
        return self._hold()

    def user(self, user_id: str) -> AbstractContextManager[None]:
        return self._hold(user_id)

    def session(self, user_id: str, session_id: str) -> AbstractContextManager[None]:
        return self._hold(user_id, session_id)
