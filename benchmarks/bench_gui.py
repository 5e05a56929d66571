"""GUI responsiveness: startup to first paint on a large archive, and the longest event-loop
stall while a bulk write job runs and while a user types a search.

    QT_QPA_PLATFORM=offscreen .venv/bin/python benchmarks/bench_gui.py [--sessions 10000]
        [--messages 50000]

A 5 ms QTimer ticks on the GUI loop; a stall is the longest gap between two ticks minus 5 ms.
Target (issue 6): stalls under 50 ms, first paint under 1 s.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("QT_API", "pyside6")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import qasync  # type: ignore[import-untyped]
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

from storage import Archive
from storage.models import Session
from ui.widgets.main_window import MainWindow

TICK_MS = 5
QUERY = "sensor readings memory"


class StallMeter:
    def __init__(self) -> None:
        self.timer = QTimer()
        self.timer.setInterval(TICK_MS)
        self.timer.timeout.connect(self._tick)
        self.last = 0.0
        self.worst = 0.0

    def _tick(self) -> None:
        now = time.perf_counter()
        if self.last:
            self.worst = max(self.worst, now - self.last - TICK_MS / 1000)
        self.last = now

    def start(self) -> None:
        self.last, self.worst = 0.0, 0.0
        self.timer.start()

    def stop(self) -> float:
        self.timer.stop()
        return self.worst * 1000


def build_sessions(root: Path, count: int) -> None:
    """session.json files written directly: building 10,000 with fsyncs would take minutes."""
    users = root / "users" / "bench"
    users.mkdir(parents=True)
    (root / "archive.json").write_text('{"format_version": 1}')
    (users / "profile.json").write_text('{"user_id": "bench", "username": "Bench"}')
    for n in range(count):
        sid = f"chat_session_bench_{n:06d}"
        folder = users / sid
        folder.mkdir()
        session = Session(session_id=sid, user_id="bench", title=f"Session {n}")
        (folder / "session.json").write_bytes(session.to_json())


async def first_paint(window: MainWindow, root: Path, started: float) -> float:
    await window.open_archive(root)
    await asyncio.sleep(0)  # queued layout events (processEvents inside a task re-enters it)
    window.grab()  # a real paint of the whole window
    return time.perf_counter() - started


async def bulk_write_stall(archive: Archive, messages: int, meter: StallMeter) -> float:
    session = await archive.create_session("bench", "bulk")
    batch = [{"role": "user", "content": f"sensor readings memory {i} " * 8} for i in range(500)]
    meter.start()
    for _ in range(messages // len(batch)):
        await archive.add_messages("bench", session.session_id, batch)
    return meter.stop()


async def typing_stall(window: MainWindow, meter: StallMeter) -> float:
    panel = window.search_panel
    window.show_search()
    await window.tasks.wait_idle(timeout=600)  # the index refresh job
    meter.start()
    for n in range(1, len(QUERY) + 1):
        panel.query.setText(QUERY[:n])
        await asyncio.sleep(0.08)  # a fast typist: 12 keys per second
    panel.run_now()
    if panel.task is not None:
        await panel.task
    return meter.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sessions", type=int, default=10_000)
    parser.add_argument("--messages", type=int, default=50_000)
    args = parser.parse_args()
    app = QApplication.instance() or QApplication(sys.argv[:1])
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "archive"
        build_sessions(root, args.sessions)
        window = MainWindow()
        window.resize(1280, 800)
        meter = StallMeter()

        async def run() -> None:
            started = time.perf_counter()
            window.show()
            QApplication.processEvents()
            window.grab()
            shell = time.perf_counter() - started
            print(f"window painted (data still loading): {shell * 1000:.0f} ms")
            paint = await first_paint(window, root, started)
            print(f"first paint with sessions listed ({args.sessions:,}): {paint * 1000:.0f} ms")
            assert window.archive is not None
            started = time.perf_counter()
            await window.tasks.wait_idle(timeout=1800)  # the index update started on open
            print(f"index brought up to date on open: {time.perf_counter() - started:.1f} s")
            stall = await bulk_write_stall(window.archive, args.messages, meter)
            print(f"longest stall, bulk write of {args.messages:,} messages: {stall:.1f} ms")
            if hasattr(window.archive, "search"):
                stall = await typing_stall(window, meter)
                print(f"longest stall, as-you-type search: {stall:.1f} ms")
            window.close()

        with asyncio.Runner(loop_factory=qasync.QEventLoop) as runner:
            runner.run(run())
    del app


if __name__ == "__main__":
    main()
