"""The status bar's job indicator: what runs, how far, and a cancel button."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QToolButton, QWidget

from storage.jobs import JobControl, Progress

T = TypeVar("T")


class JobIndicator(QWidget):
    """Runs one job at a time with progress; progress arrives from worker threads and hops to
    the GUI loop with ``call_soon_threadsafe``."""

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
        self.hide()

    @property
    def busy(self) -> bool:
        return self.control is not None

    def cancel(self) -> None:
        if self.control is not None:
            self.control.cancel()
            self.label.setText(f"{self.control.name}: cancelling…")

    def _show_progress(self, name: str, progress: Progress) -> None:
        if progress.total:
            self.bar.setRange(0, progress.total)
            self.bar.setValue(min(progress.done, progress.total))
        else:
            self.bar.setRange(0, 0)  # busy indicator while the total is unknown
        current = f" — {progress.current}" if progress.current else ""
        if len(current) > 60:
            current = current[:59] + "…"
        self.label.setText(f"{name}{current}")

    async def run(self, name: str, start: Callable[[JobControl], Coroutine[Any, Any, T]]) -> T:
        """Await ``start(control)`` with progress shown; cancel asks the job to stop."""
        loop = asyncio.get_running_loop()

        def report(progress: Progress) -> None:
            loop.call_soon_threadsafe(self._show_progress, name, progress)

        control = JobControl(name, report)
        self.control = control
        self.label.setText(f"{name}…")
        self.bar.setRange(0, 0)
        self.show()
        try:
            return await start(control)
        finally:
            self.control = None
            self.hide()
