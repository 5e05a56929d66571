"""The desktop app: a qasync event loop, the main window, an excepthook, QSettings, and the
headless ``--screenshot`` mode."""

from __future__ import annotations

import asyncio
import gc
import importlib
import logging
import os
import sys
import traceback
from pathlib import Path
from types import TracebackType
from typing import Any

log = logging.getLogger(__name__)
SCREEN_SIZE = (1280, 800)


def _prepare_environment(headless: bool) -> None:
    os.environ.setdefault("QT_API", "pyside6")  # qasync picks its binding from this
    if headless or (
        sys.platform.startswith("linux")
        and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    ):
        # No display (a server, CI, --screenshot): render offscreen instead of aborting.
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def install_excepthook(show: object) -> None:
    """Unexpected errors (bugs) are logged and shown non-modally; the app keeps running."""
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QMessageBox, QWidget

    def hook(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        text = "".join(traceback.format_exception(kind, exc, tb))
        log.error("unexpected error:\n%s", text)
        parent = show if isinstance(show, QWidget) else None
        box = QMessageBox(parent)
        box.setIcon(QMessageBox.Icon.Critical)
        box.setWindowTitle("Flatchat: unexpected error")
        box.setText(f"Something went wrong: {exc}")
        box.setInformativeText("Flatchat keeps running. The details below are also in the log.")
        box.setDetailedText(text)
        box.setWindowModality(Qt.WindowModality.NonModal)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.show()

    sys.excepthook = hook


TABS = ("sessions", "panels", "documents", "personas")  # the sidebar's tabs, in order


async def prepare_view(
    window: object,
    select: str | None = None,
    search: str | None = None,
    tab: str | None = None,
) -> None:
    """Bring the window to the state the screenshot shows: a session selected, a search run,
    a sidebar tab shown (documents: the first one previewed)."""
    from ui.models.lists import SessionRoles
    from ui.widgets.main_window import MainWindow

    assert isinstance(window, MainWindow)
    await window.tasks.wait_idle()
    if window.archive is None:
        return
    if select is None:
        proxy = window.sidebar.session_proxy
        if proxy.rowCount():
            select = str(proxy.index(0, 0).data(SessionRoles.SESSION_ID))
    if select is not None:
        if not window.select_session_in_list(select):
            await window.open_session(select)
        await window.tasks.wait_idle()
    if search:
        window.show_search()
        window.search_panel.query.setText(search)
        window.search_panel.run_now()
        task = window.search_panel.task
        if task is not None:
            await task
        hits = window.search_panel.model
        if hits.rowCount():  # show where the best hit is, highlighted in its conversation
            window.search_panel.view.setCurrentIndex(hits.index(0, 0))
            window.search_panel.view.activated.emit(hits.index(0, 0))
        await window.tasks.wait_idle()
    if tab is not None:
        window.sidebar.tabs.setCurrentIndex(TABS.index(tab))
        if tab == "documents" and window.sidebar.documents.rowCount():
            window.sidebar.document_view.setCurrentIndex(window.sidebar.documents.index(0, 0))
        await window.tasks.wait_idle()


# How long a thread may hold the GIL before another waiting thread gets it (Python's default
# is 5 ms). The GUI thread takes the GIL for every Qt-to-Python call, many per frame, so behind
# a busy background thread each call could wait 5 ms: a frame then stalls for tens of ms.
GIL_SWITCH_INTERVAL = 0.001


# Imported before the window shows (~70 ms): imported later by the thread that loads the
# model, their extension modules' initialisation held the GIL while the window painted.
PRELOAD = ("model2vec", "tokenizers", "safetensors.numpy", "tantivy")


def configure_process() -> None:
    """Interpreter settings for the window's process (also used by benchmarks/bench_gui)."""
    sys.setswitchinterval(GIL_SWITCH_INTERVAL)
    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except ImportError as exc:  # search then says why it is degraded, when it loads
            log.warning("could not preload %s: %s", name, exc)
    freeze_long_lived()


def freeze_long_lived() -> None:
    """Move every object alive now out of the cyclic garbage collector's scans. A full
    collection walks every tracked object: with Qt, the libraries and 10,000 listed sessions
    that took 40-65 ms with the GIL held, a stall wherever it struck (measured during an
    import). Modules and the rows of an open archive live as long as the window anyway."""
    gc.freeze()


def configure_window(window: Any) -> None:
    """Process tuning that follows the window: what an opened archive loads is long-lived."""
    window.archive_opened.connect(lambda _root: freeze_long_lived())


def run_gui(
    archive: str | None = None,
    *,
    screenshot: str | None = None,
    select: str | None = None,
    search: str | None = None,
    tab: str | None = None,
    settings_dialog: bool = False,
    sample: bool = False,
) -> int:
    _prepare_environment(headless=screenshot is not None)
    configure_process()
    import qasync  # type: ignore[import-untyped]
    from PySide6.QtCore import QSettings, QStandardPaths
    from PySide6.QtWidgets import QApplication

    from resources.sample import copy_sample_archive
    from ui import theme
    from ui.widgets.main_window import MainWindow

    app = QApplication.instance() or QApplication(sys.argv[:1])
    assert isinstance(app, QApplication)
    app.setOrganizationName("Flatchat")
    app.setApplicationName("Flatchat")
    theme.follow_system(app)

    def sample_copy() -> Path:
        # The packaged sample is never written to: the window opens the user's own copy.
        data = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppDataLocation)
        return copy_sample_archive(Path(data) / "sample-archive")

    window = MainWindow(QSettings(), sample_copy)
    configure_window(window)
    install_excepthook(window)

    async def main() -> int:
        quitting = asyncio.Event()
        app.aboutToQuit.connect(quitting.set)
        window.resize(*SCREEN_SIZE)
        window.show()
        target = archive
        if sample:
            target = str(sample_copy())
        if target is None and screenshot is None and window.recent_archives():
            target = window.recent_archives()[0]
        if target:
            window.start_open(target)
        if screenshot is not None:
            await window.tasks.wait_idle(timeout=60)
            await prepare_view(window, select, search, tab)
            shown: Any = window
            if settings_dialog:
                shown = window.show_settings() or window
                await window.tasks.wait_idle()
            await asyncio.sleep(0)  # let queued layout and paint events run
            app.processEvents()
            saved = shown.grab().save(screenshot)
            if not saved:
                log.error("could not write %s", screenshot)
            window.close()
            return 0 if saved else 1
        await quitting.wait()
        return 0

    with asyncio.Runner(loop_factory=qasync.QEventLoop) as runner:
        return runner.run(main())
