"""Bulk work as jobs: progress reports and cooperative cancellation.

A job is a blocking function run off the event loop (``storage.threads.run_blocking``) that takes a
:class:`JobControl`. It calls ``control.step(...)`` as it goes; the control forwards progress to
the caller's callback (from the worker thread: GUI callers hop back to their loop) and raises
:class:`JobCancelled` at the next step once ``cancel()`` was called. Jobs write in units that are
complete on their own, so a cancelled or killed job leaves the archive valid and resumable.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from storage.errors import StorageError


class JobCancelled(StorageError):
    """The job stopped because it was asked to; what it finished is kept."""

    def __init__(self, what: str, done: int, total: int | None) -> None:
        self.done = done
        self.total = total
        of = f" of {total}" if total is not None else ""
        super().__init__(f"{what} cancelled after {done}{of} items; finished items are kept")


@dataclass(frozen=True)
class Progress:
    done: int
    total: int | None  # None while unknown
    current: str = ""  # the item being worked on, for the status bar

    @property
    def fraction(self) -> float | None:
        if not self.total:
            return None
        return min(1.0, self.done / self.total)


ProgressCallback = Callable[[Progress], None]
MIN_REPORT_INTERVAL = 0.05  # seconds: a GUI cannot show progress faster anyway


class JobControl:
    """Shared between the job (worker thread) and whoever started it."""

    def __init__(self, name: str = "job", on_progress: ProgressCallback | None = None) -> None:
        self.name = name
        self._on_progress = on_progress
        self._cancelled = threading.Event()
        self._last_report = 0.0
        self.done = 0
        self.total: int | None = None

    def cancel(self) -> None:
        self._cancelled.set()

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def check(self) -> None:
        if self._cancelled.is_set():
            raise JobCancelled(self.name, self.done, self.total)

    def set_total(self, total: int | None) -> None:
        self.total = total
        self._report("", force=True)

    def start_phase(self, name: str, total: int | None) -> None:
        """A new stage of the same job (e.g. indexing after ingesting): counts restart."""
        self.done = 0
        self.total = total
        self._report(name, force=True)

    def step(self, current: str = "", advance: int = 1) -> None:
        """Count ``advance`` items done, report (rate-limited) and honour a cancel."""
        self.done += advance
        self._report(current)
        self.check()

    def forward(self, progress: Progress) -> None:
        """Progress the job reported elsewhere (a worker process, already rate-limited)."""
        self.done, self.total = progress.done, progress.total
        if self._on_progress is not None:
            self._on_progress(progress)

    def _report(self, current: str, force: bool = False) -> None:
        if self._on_progress is None:
            return
        now = time.monotonic()
        if force or now - self._last_report >= MIN_REPORT_INTERVAL or self.done == self.total:
            self._last_report = now
            self._on_progress(Progress(self.done, self.total, current))


def control_or_default(control: JobControl | None, name: str) -> JobControl:
    return control if control is not None else JobControl(name)
