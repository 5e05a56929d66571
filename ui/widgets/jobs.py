"""The status bar's job indicator: what runs, how far, and a cancel button."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QToolButton, QWidget

from storage.jobs import JobControl, Progress

T = TypeVar("T")

# A quiet job shows in the status bar once it reports work to do (a total), or has run this
# long: the index check finds nothing to do in about 0.7 s (starting its worker process).
QUIET_SHOW_S = 3.0


class JobIndicator(QWidget):
    """Runs one job at a time with progress; progress arrives from worker threads and hops to
    the GUI loop with ``call_soon_threadsafe``.

    A *background* job (bringing the search index up to date) gives way: a job the user
    started cancels it and waits for it to stop. Its finished work is kept; the window starts
    it again at the next search (MainWindow.update_index). A *quiet* job (the index check
    the window makes now and then) shows only once it reports work to do or has run
    ``QUIET_SHOW_S``: a check that finds nothing to do does not flash in the status bar."""

    job_finished = Signal()  # a job ended (done, failed or cancelled): the indicator is free

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.label = QLabel("", self)
        self.bar = QProgressBar(self)
        self.bar.setFixedWidth(160)
        self.bar.setTextVisible(True)
        self.cancel_button = QToolButton(self)
        self.cancel_button.setText("Cancel")
        self.cancel_button.clicked.connect(self.cancel)
        for w in (self.label, self.bar, self.cancel_button):
            layout.addWidget(w)
        self.control: JobControl | None = None
        self.background = False
        self.last_progress: Progress | None = None
        self._finished: asyncio.Future[None] | None = None
        self.hide()

    @property
    def busy(self) -> bool:
        """A job the user started is running (a background job gives way instead)."""
        return self.control is not None and not self.background

    def cancel(self) -> None:
        if self.control is not None:
            self.control.cancel()
            self.label.setText(f"{self.control.name}: cancelling…")

    def _show_progress(self, control: JobControl, progress: Progress) -> None:
        if control is not self.control:
            return  # a late report of a job that ended
        self.last_progress = progress
        if progress.total:
            if self.isHidden():
                self.show()  # a quiet job with work to do
            self.bar.setRange(0, progress.total)
            self.bar.setValue(min(progress.done, progress.total))
        else:
            self.bar.setRange(0, 0)  # busy indicator while the total is unknown
        current = f" — {progress.current}" if progress.current else ""
        if len(current) > 60:
            current = current[:59] + "…"
        self.label.setText(f"{control.name}{current}")

    async def run(
        self,
        name: str,
        start: Callable[[JobControl], Coroutine[Any, Any, T]],
        *,
        background: bool = False,
        quiet: bool = False,
    ) -> T:
        """Await ``start(control)`` with progress shown; cancel asks the job to stop.
        ``quiet``: shown only once it reports a total of work or runs ``QUIET_SHOW_S``."""
        while self.control is not None and self._finished is not None:
            if not self.background:
                raise RuntimeError(f"{self.control.name} is still running")
            self.control.cancel()  # the user's job goes first
            await asyncio.shield(self._finished)
        loop = asyncio.get_running_loop()

        def report(progress: Progress) -> None:  # runs in the worker thread
            if not loop.is_closed():
                loop.call_soon_threadsafe(self._show_progress, control, progress)

        control = JobControl(name, report)
        self.control, self.background = control, background
        self._finished = loop.create_future()
        self.last_progress = None
        self.label.setText(f"{name}…")
        self.bar.setRange(0, 0)
        shown = loop.call_later(QUIET_SHOW_S, self.show) if quiet else None
        if shown is None:
            self.show()
        try:
            return await start(control)
        except asyncio.CancelledError:
            control.cancel()  # the worker thread stops at its next step
            raise
        finally:
            if shown is not None:
                shown.cancel()
            finished = self._finished
            self.control, self.background, self._finished = None, False, None
            if not finished.done():
                finished.set_result(None)
            self.hide()
            self.job_finished.emit()
