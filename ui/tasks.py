"""Running the archive's coroutines from Qt: one in-flight task per key, errors forwarded.

Errors a user can act on (:class:`storage.StorageError`, and an ``OSError`` such as a read-only
or full disk met outside the storage's own translation, e.g. taking a lock) are emitted as
``failed`` and shown non-modally; anything else is a bug and goes to ``sys.excepthook`` (the
app's excepthook logs it and shows it; under pytest-qt it fails the test).
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Coroutine
from typing import Any

from PySide6.QtCore import QObject, Signal

from storage import StorageError

log = logging.getLogger(__name__)


def loop_running() -> bool:
    """Whether the asyncio loop is running. Qt can process events outside it (while the app
    shuts down, or a test's teardown flushes events): a timer's slot then has no loop to run
    its coroutine on, and starts none."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


class TaskRunner(QObject):
    """Starts coroutines as tasks; a new task under a key cancels the one before it."""

    failed = Signal(str, object)  # what was being done, the StorageError
    idle_changed = Signal(bool)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._by_key: dict[str, asyncio.Task[Any]] = {}
        self._all: set[asyncio.Task[Any]] = set()

    def start(self, key: str, coro: Coroutine[Any, Any, Any], what: str = "") -> asyncio.Task[Any]:
        previous = self._by_key.get(key)
        if previous is not None and not previous.done():
            previous.cancel()
        task = asyncio.ensure_future(self._guard(coro, what or key))
        self._by_key[key] = task
        self._all.add(task)
        task.add_done_callback(self._all.discard)
        # A task cancelled before it ran never started ``coro``: close it ("never awaited").
        task.add_done_callback(lambda _: coro.close())
        return task

    def running(self, key: str) -> bool:
        task = self._by_key.get(key)
        return task is not None and not task.done()

    async def wait_idle(self, timeout: float = 10.0) -> None:
        """Wait until every task started so far (and those they started) has finished."""
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while pending := [t for t in self._all if not t.done()]:
            await asyncio.wait(pending, timeout=max(0.0, end - loop.time()))
            if loop.time() >= end:
                raise TimeoutError("tasks still running")

    def cancel_all(self) -> None:
        for task in list(self._all):
            task.cancel()

    async def _guard(self, coro: Coroutine[Any, Any, Any], what: str) -> Any:
        try:
            return await coro
        except asyncio.CancelledError:
            raise
        except (StorageError, OSError) as exc:  # actionable: locked, read-only, disk full
            log.warning("%s failed: %s", what, exc)
            self.failed.emit(what, exc)
        except Exception:  # the one UI boundary: a bug, reported through the excepthook
            sys.excepthook(*sys.exc_info())
        return None
