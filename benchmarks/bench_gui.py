"""GUI responsiveness (issue 6): startup to first paint on a 10,000-session archive, and the
longest event-loop stall while the window imports 50,000 messages, while another process
imports 50,000 messages into the open archive, and while a user types a search on a
1,000,000-message archive.

    QT_QPA_PLATFORM=offscreen .venv/bin/python benchmarks/bench_gui.py
        [--sessions 10000] [--import-messages 50000] [--search-messages 1000000]
    (--quick: 2,000 sessions, 10,000 imported, 100,000 searched)

A 5 ms QTimer ticks on the GUI loop; a stall is the longest gap between two ticks minus 5 ms.
Targets: stalls under 50 ms, first paint under 1 s. Results go to benchmarks/results/.

The 1,000,000-message archive is bench_search's corpus (Zipf vocabulary from real text,
sessions of 10-200 messages), written as files and indexed (keyword + vectors) by the same
worker job the window runs; building it takes a few minutes and is reported separately.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("QT_API", "pyside6")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import qasync  # type: ignore[import-untyped]  # noqa: E402
from PySide6.QtCore import QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from app.gui import configure_process, configure_window  # noqa: E402
from benchmarks.common import Stats, storage_revision  # noqa: E402
from storage.models import Session  # noqa: E402
from storage.worker import run_in_worker  # noqa: E402
from tests.storage.export_factory import linear_conversations, write_chatgpt_export  # noqa: E402
from ui.widgets.main_window import POLL_MS, MainWindow  # noqa: E402
from ui.widgets.search import MODES  # noqa: E402

TICK_MS = 5
TARGET_STALL_MS = 50
TARGET_PAINT_MS = 1000
MESSAGES_PER_CONVERSATION = 50
KEY_INTERVAL = 0.08  # a fast typist: 12 keys a second
RESULTS = Path(__file__).resolve().parent / "results"


class StallMeter:
    """The longest gap between ticks of a 5 ms timer on the GUI loop, minus the 5 ms."""

    def __init__(self) -> None:
        self.timer = QTimer()
        self.timer.setInterval(TICK_MS)
        self.timer.timeout.connect(self._tick)
        self.last = 0.0
        self.gaps: list[float] = []

    def _tick(self) -> None:
        now = time.perf_counter()
        if self.last:
            self.gaps.append(max(0.0, now - self.last - TICK_MS / 1000))
        self.last = now

    def start(self) -> None:
        self.last, self.gaps = 0.0, []
        self.timer.start()

    def stop(self) -> dict[str, float]:
        self.timer.stop()
        gaps = sorted(self.gaps) or [0.0]
        return {
            "worst_ms": gaps[-1] * 1000,
            "p99_ms": gaps[int(len(gaps) * 0.99)] * 1000,
            "over_50ms": sum(1 for g in gaps if g * 1000 > TARGET_STALL_MS),
            "ticks": len(gaps),
        }


def since_process_start() -> float:
    """Seconds since this process was started (Linux: /proc), interpreter start-up included."""
    try:
        ticks = int(Path("/proc/self/stat").read_text().rpartition(")")[2].split()[19])
        uptime = float(Path("/proc/uptime").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return float("nan")
    return uptime - ticks / os.sysconf("SC_CLK_TCK")


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


def write_export(path: Path, messages: int, seed: int) -> None:
    conversations = max(1, messages // MESSAGES_PER_CONVERSATION)
    write_chatgpt_export(path, linear_conversations(conversations, MESSAGES_PER_CONVERSATION, seed))


async def first_paint(window: MainWindow, root: Path, started: float) -> float:
    await window.open_archive(root)
    await asyncio.sleep(0)  # queued layout events (processEvents inside a task re-enters it)
    window.grab()  # a real paint of the whole window
    return (time.perf_counter() - started) * 1000


async def window_import(window: MainWindow, export: Path, meter: StallMeter) -> dict[str, Any]:
    """File → Import of an export: the job runs in the worker process."""
    meter.start()
    started = time.perf_counter()
    report = await window.import_path(str(export))
    seconds = time.perf_counter() - started
    await window.tasks.wait_idle(timeout=600)
    stall = meter.stop()
    assert report is not None and report.imported > 0, "the import imported nothing"
    return {**stall, "seconds": seconds, "sessions_imported": report.imported}


async def external_import(
    window: MainWindow, root: Path, export: Path, meter: StallMeter
) -> dict[str, Any]:
    """``flatchat import`` in a terminal while the window is open; measured until the
    window's change poll has looked at the result (POLL_MS after the import ends)."""
    meter.start()
    started = time.perf_counter()
    command = [sys.executable, "-m", "app", "--archive", str(root), "import", str(export)]
    process = await asyncio.create_subprocess_exec(
        *command, "--user", "bench", stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    _out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    seconds = time.perf_counter() - started
    await asyncio.sleep(POLL_MS / 1000 + 0.5)
    await window.tasks.wait_idle(timeout=600)
    stall = meter.stop()
    return {**stall, "seconds": seconds}


async def build_search_archive(root: Path, messages: int) -> dict[str, Any]:
    """bench_search's corpus as files, then indexed by the window's own worker job."""
    from benchmarks import bench_search

    started = time.perf_counter()
    corpus = bench_search.generate(messages, seed=7)
    archive = await bench_search.write_archive(root, corpus)
    await archive.close()
    written = time.perf_counter() - started
    started = time.perf_counter()
    report = await run_in_worker(root, "reindex")
    # What a user types: the opening words of two messages of the corpus.
    queries = [" ".join(corpus.texts[n].split()[:words]) for n, words in ((1234, 3), (98765, 5))]
    return {
        "messages": messages,
        "sessions": len(corpus.sessions),
        "write_seconds": written,
        "index_seconds": time.perf_counter() - started,
        "vectors": report.vectors_added,
        "queries": queries,
    }


async def typing(window: MainWindow, meter: StallMeter, queries: list[str]) -> dict[str, Any]:
    """Type each query a key at a time, in keyword and in hybrid mode (the heaviest: BM25 and
    the 1M-vector scan fused); every keystroke restarts the debounce and cancels the search
    in flight, as the panel does. Then each full query once more, timed to results shown."""
    panel = window.search_panel
    window.show_search()
    await window.tasks.wait_idle(timeout=3600)
    result: dict[str, Any] = {}
    for mode in ("keyword", "hybrid"):
        panel.mode.setCurrentIndex(MODES.index(mode))
        latencies: list[float] = []
        hits: list[int] = []
        meter.start()
        for query in queries:
            panel.query.clear()
            for n in range(1, len(query) + 1):
                panel.query.setText(query[:n])
                await asyncio.sleep(KEY_INTERVAL)
            started = time.perf_counter()
            panel.run_now()
            if panel.task is not None:
                await panel.task
            latencies.append(time.perf_counter() - started)
            hits.append(panel.model.total)
        result[mode] = {**meter.stop(), "search_ms": Stats.of(latencies).__dict__, "hits": hits}
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sessions", type=int, default=10_000)
    parser.add_argument("--import-messages", type=int, default=50_000)
    parser.add_argument("--search-messages", type=int, default=1_000_000)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.sessions, args.import_messages, args.search_messages = 2_000, 10_000, 100_000
    started = time.perf_counter()
    configure_process()  # as the app does before its window shows
    preload = (time.perf_counter() - started) * 1000
    app = QApplication.instance() or QApplication(sys.argv[:1])
    results: dict[str, Any] = {
        "machine": f"{platform.python_version()}, {platform.platform()}, {os.cpu_count()} CPUs",
        "storage_revision": storage_revision(),
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "archive"
        building = time.perf_counter()
        build_sessions(root, args.sessions)
        exports = [Path(tmp) / f"export-{n}.json" for n in (1, 2)]
        for seed, export in enumerate(exports, start=1):
            write_export(export, args.import_messages, seed)
        build_seconds = time.perf_counter() - building
        window = MainWindow()
        configure_window(window)  # as the app does
        window.resize(1280, 800)
        meter = StallMeter()

        async def run() -> None:
            started = time.perf_counter()
            window.show()
            QApplication.processEvents()
            window.grab()
            shell = (time.perf_counter() - started) * 1000
            paint = await first_paint(window, root, started)
            # From process start, minus building the test archive (not part of a start-up).
            startup = (since_process_start() - build_seconds) * 1000
            # Opening goes on after the first paint (whose own cost is the number above): the
            # index update (a worker) and search made ready (the model loaded) in the
            # background, while the user can already scroll and click.
            meter.start()
            await window.tasks.wait_idle(timeout=1800)
            opening = meter.stop()
            results["first_paint"] = {
                "sessions": args.sessions,
                "preload_ms": preload,
                "window_ms": shell,
                "listed_ms": paint,
                "from_process_start_ms": startup,
                "after_first_paint_stall": opening,
            }
            print(
                f"preload {preload:.0f} ms, window painted {shell:.0f} ms, {args.sessions:,} "
                f"sessions in {paint:.0f} ms; then worst stall {opening['worst_ms']:.1f} ms"
            )
            print(f"first paint with the sessions listed, from process start: {startup:.0f} ms")
            label = f"{args.import_messages:,} messages"
            result = await window_import(window, exports[0], meter)
            results["window_import"] = {"messages": args.import_messages, **result}
            print(f"import of {label} by the window: worst stall {result['worst_ms']:.1f} ms")
            result = await external_import(window, root, exports[1], meter)
            results["external_import"] = {"messages": args.import_messages, **result}
            print(f"import of {label} by another process: worst stall {result['worst_ms']:.1f} ms")
            if args.search_messages:
                big = Path(tmp) / "search-archive"
                built = await build_search_archive(big, args.search_messages)
                print(
                    f"{args.search_messages:,}-message archive written in "
                    f"{built['write_seconds']:.0f} s, indexed in {built['index_seconds']:.0f} s"
                )
                await window.open_archive(big)
                result = await typing(window, meter, built["queries"])
                results["typing"] = {"archive": built, **result}
                for mode, numbers in result.items():
                    print(
                        f"as-you-type {mode} search: worst stall {numbers['worst_ms']:.1f} ms, "
                        f"search {numbers['search_ms']['p50_ms']:.0f} ms p50"
                    )
            window.close()

        with asyncio.Runner(loop_factory=qasync.QEventLoop) as runner:
            runner.run(run())
    del app
    RESULTS.mkdir(exist_ok=True)
    name = "bench_gui_quick.json" if args.quick else "bench_gui.json"
    (RESULTS / name).write_text(json.dumps(results, indent=2) + "\n")
    print(f"results: {RESULTS / name}")


if __name__ == "__main__":
    main()
