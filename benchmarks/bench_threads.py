"""The hop from the event loop to a worker thread and back: ``storage.threads.run_blocking``
(what every ``await archive.<method>(...)`` goes through) against ``asyncio.to_thread`` and
``loop.run_in_executor`` on a one-thread executor, side by side in one run.

    .venv/bin/python benchmarks/bench_threads.py              # 6 rounds of 3,000 calls each way
    .venv/bin/python benchmarks/bench_threads.py --calls 500  # quick

Each round times ``calls`` awaited calls of a function that does nothing, one after the other,
for each way in turn (so a slow spell of the machine hits all of them); p50 and mean over all
rounds. A second part does some work in each call (sums a 20,000-item list held by the
caller, ~0.1 ms) and runs two such calls at once, as the GUI does when a listing and a search
overlap: it checks the calls still run side by side. Results go to
``benchmarks/results/bench_threads.{json,md}`` (or ``--out``).
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import json
import platform
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.common import Stats, expect, storage_revision  # noqa: E402
from storage.threads import run_blocking  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
ROUNDS = 6


def nothing() -> None:
    return None


async def measure(
    ways: dict[str, Callable[[Callable[[], Any]], Awaitable[Any]]],
    fn: Callable[[], Any],
    calls: int,
) -> dict[str, Stats]:
    times: dict[str, list[float]] = {name: [] for name in ways}
    for _ in range(ROUNDS):
        for name, way in ways.items():
            for _ in range(calls):
                start = time.perf_counter()
                await way(fn)
                times[name].append(time.perf_counter() - start)
    return {name: Stats.of(seconds) for name, seconds in times.items()}


async def side_by_side() -> dict[str, Any]:
    """Two calls that each wait for the other: they finish only if they run at once."""
    both = threading.Barrier(2, timeout=10)
    start = time.perf_counter()
    await asyncio.gather(run_blocking(both.wait), run_blocking(both.wait))
    return {"two_waiting_calls_s": time.perf_counter() - start}


async def amain(args: argparse.Namespace) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    one = concurrent.futures.ThreadPoolExecutor(1)
    ways: dict[str, Callable[[Callable[[], Any]], Awaitable[Any]]] = {
        "asyncio.to_thread": lambda fn: asyncio.to_thread(fn),
        "run_in_executor, 1 thread": lambda fn: loop.run_in_executor(one, fn),
        "run_blocking (ours)": lambda fn: run_blocking(fn),
    }
    for way in ways.values():  # threads started before timing
        await way(nothing)
    data = list(range(20_000))
    work = {
        "nothing": (nothing, args.calls),
        "sum of 20,000 ints": (lambda: sum(data), max(args.calls // 10, 50)),
    }
    results: dict[str, Any] = {}
    for label, (fn, calls) in work.items():
        stats = await measure(ways, fn, calls)
        results[label] = {name: s.__dict__ for name, s in stats.items()}
    one.shutdown()
    parallel = await side_by_side()
    expect(parallel["two_waiting_calls_s"] < 10, "two calls did not run side by side")
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "revision": storage_revision(),
        "rounds": ROUNDS,
        "calls": args.calls,
        "round_trips": results,
        **parallel,
    }


def markdown(r: dict[str, Any]) -> str:
    lines = [
        "# Event loop → worker thread → event loop",
        "",
        f"Python {r['python']}, {r['platform']}, storage {r['revision']}. {r['rounds']} rounds; "
        "each round times the calls one after the other, each way in turn. Times in µs.",
        "",
    ]
    for label, ways in r["round_trips"].items():
        base = ways["asyncio.to_thread"]["p50_ms"]
        lines += [
            f"## Call: {label}",
            "",
            "| Way | Calls | p50 µs | mean µs | p95 µs | p50 ÷ to_thread |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for name, s in ways.items():
            lines.append(
                f"| {name} | {s['runs']:,} | {s['p50_ms'] * 1000:.1f} | {s['mean_ms'] * 1000:.1f} "
                f"| {s['p95_ms'] * 1000:.1f} | {s['p50_ms'] / base:.2f} |"
            )
        lines.append("")
    lines.append(
        f"Two calls that wait for each other (they finish only side by side): "
        f"{r['two_waiting_calls_s'] * 1000:.1f} ms."
    )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=3000, help="calls a round, each way")
    parser.add_argument("--out", type=Path, default=RESULTS / "bench_threads")
    args = parser.parse_args(argv)
    if args.calls < 1:
        parser.error("--calls must be at least 1")
    report = asyncio.run(amain(args))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(report, indent=2))
    text = markdown(report)
    args.out.with_suffix(".md").write_text(text)
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
