"""Qt + qasync test helpers (QT-TESTING.md §4): the qloop fixture, run_async, signal_to_future."""

from __future__ import annotations

import asyncio
import gc
import shutil
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("PySide6")

import qasync
from PySide6.QtCore import QMimeData, QPointF, QSettings, Qt
from PySide6.QtGui import QDragEnterEvent, QDragMoveEvent, QDropEvent
from PySide6.QtWidgets import QApplication

from resources.sample import sample_archive_path
from ui.models import SessionRoles
from ui.widgets.main_window import MainWindow


@pytest.fixture
def qloop(qapp: QApplication) -> Iterator[qasync.QEventLoop]:
    """A qasync loop on pytest-qt's QApplication; fresh per test, closed afterwards."""
    qapp.setQuitOnLastWindowClosed(False)
    # The cyclic collector must not run inside a worker thread (asyncio.to_thread) while Qt
    # objects of a window are garbage: "Timers cannot be stopped from another thread".
    # Collect on this (GUI) thread before and after instead.
    gc.collect()
    gc.disable()
    loop = qasync.QEventLoop(qapp)
    asyncio.set_event_loop(loop)
    try:
        yield loop
    finally:
        pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
        for t in pending:
            t.cancel()
        if pending:
            loop.run_until_complete(asyncio.wait(pending, timeout=2))
        loop.close()
        asyncio.set_event_loop(None)
        gc.enable()
        gc.collect()  # collect QObjects on the GUI thread, not later inside a worker thread


def run_async(loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, Any],
              timeout: float = 10.0) -> Any:
    """Run ``coro`` on the qasync loop, never longer than ``timeout``; cancel what it spawned."""

    async def main() -> Any:
        try:
            return await asyncio.wait_for(coro, timeout)
        finally:
            me = asyncio.current_task()
            others = [t for t in asyncio.all_tasks() if t is not me and not t.done()]
            for t in others:
                t.cancel()
            if others:
                await asyncio.wait(others, timeout=2)

    return loop.run_until_complete(main())


def signal_to_future(signal: Any) -> asyncio.Future[tuple[Any, ...]]:
    """Await a Qt signal inside a coroutine: resolves with the signal's arguments."""
    fut: asyncio.Future[tuple[Any, ...]] = asyncio.get_running_loop().create_future()

    def handler(*args: Any) -> None:
        if not fut.done():
            fut.set_result(args)
        signal.disconnect(handler)

    signal.connect(handler)
    return fut


async def until(predicate: Any, timeout: float = 5.0) -> None:
    """Inside a coroutine: wait (yielding to the loop) until ``predicate()`` is true."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not predicate():
        if loop.time() > end:
            raise TimeoutError(f"condition not met within {timeout} s: {predicate}")
        await asyncio.sleep(0.01)


@pytest.fixture
def sample_copy(tmp_path: Path) -> Path:
    """A writable copy of the sample archive."""
    target = tmp_path / "archive"
    shutil.copytree(sample_archive_path(), target)
    return target


@pytest.fixture
def window(qtbot: Any, qloop: Any, tmp_path: Path, qtmodeltester: Any) -> MainWindow:
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    win = MainWindow(settings)
    qtbot.addWidget(win)
    win.resize(1280, 800)
    win.show()
    for model in (win.sidebar.sessions, win.sidebar.session_proxy, win.sidebar.panels,
                  win.sidebar.documents, win.sidebar.personas, win.sidebar.users,
                  win.messages, win.search_panel.model):
        qtmodeltester.check(model)
    return win


def listed(win: MainWindow) -> list[str]:
    proxy = win.sidebar.session_proxy
    return [proxy.index(r, 0).data(SessionRoles.SESSION_ID) for r in range(proxy.rowCount())]


def _drag(cls: Any, pos: QPointF, *args: Any) -> Any:
    try:
        return cls(pos, *args)
    except TypeError:
        return cls(pos.toPoint(), *args)


def simulate_drop(target: Any, mime: QMimeData) -> tuple[bool, bool]:
    pos = QPointF(target.rect().center())
    args = (Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
            Qt.KeyboardModifier.NoModifier)
    enter = _drag(QDragEnterEvent, pos, *args)
    QApplication.sendEvent(target, enter)
    if not enter.isAccepted():
        return False, False
    QApplication.sendEvent(target, _drag(QDragMoveEvent, pos, *args))
    drop = QDropEvent(pos, *args)
    QApplication.sendEvent(target, drop)
    return True, drop.isAccepted()
