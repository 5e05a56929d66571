"""Where our keyword search and our index build spend their time, beside raw tantivy's.

Run from the repository root::

    .venv/bin/python benchmarks/profile_search.py                     # 100,000 messages
    .venv/bin/python benchmarks/profile_search.py --messages 1000000

Results go to ``benchmarks/results/profile_search.md`` and ``.json`` (one section per corpus
size, as ``bench_search.py`` keeps them). The corpus, the raw tantivy baseline and the query
classes are ``bench_search.py``'s (same seed: the same messages and queries). Not a benchmark
of targets: it explains the ratios ``bench_search.py`` measures.

Searches: every query of every class runs on raw tantivy, raw tantivy with our 2 KiB store
blocks, then ours twice (the second straight after the first, its code and data still in the
CPU caches), for ``PASSES`` passes; all synchronously on this thread (no thread hop), so the
times are the engines' own. Ours is ``SearchEngine.search`` (what ``archive.search`` runs on
its worker thread after its change check), timed as a whole and by part: the query parsed,
its words made tantivy queries, tantivy's search (top hits and count), the stored documents
read and their hit fields decoded, and the snippets and hit records made (with their set-up).
The parts are timed by wrapping those functions, which adds ~1 µs a part; each part's
median is its own, so the parts need not add up to the whole's median. The whole call through
the event loop is timed too (warm): ``archive.search`` (with its change check) and
``asyncio.to_thread`` of raw's search; less the engines' own times, that is the thread hop.

Builds: ours (``refresh_index``, vectors off) and raw tantivy, each in a fresh process that
samples the CPU time of each of its threads (``/proc/self/task``, every 50 ms) while it
builds: who does the work, and whether the two cores are both busy.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import bench_search as bench  # noqa: E402
from benchmarks.common import storage_revision  # noqa: E402
from storage import Archive  # noqa: E402
from storage.search import engine as engine_module  # noqa: E402
from storage.search.fulltext import FullTextIndex  # noqa: E402

log = logging.getLogger("profile_search")

RESULTS = Path(__file__).resolve().parent / "results" / "profile_search"
PASSES = 4
HOP_QUERIES = 50  # searches of each class timed through archive.search and to_thread
SAMPLE_S = 0.05  # how often the build probe reads its threads' CPU times

# The parts of ours' search, by the function that does each: (label, owner, attribute).
PARTS: tuple[tuple[str, Any, str], ...] = (
    ("parse", engine_module, "parse"),
    ("query words", FullTextIndex, "text_query"),
    ("tantivy search", engine_module, "_run"),
    ("documents read", engine_module, "_docs"),
    ("snippets and hit records", engine_module.SearchEngine, "_hits"),
)


class PartTimer:
    """Wraps each of :data:`PARTS` to add up the time spent in it."""

    def __init__(self) -> None:
        self.spent: dict[str, float] = {}
        self._undo: list[tuple[Any, str, Any]] = []

    def install(self) -> None:
        for label, owner, name in PARTS:
            original = getattr(owner, name)
            self._undo.append((owner, name, original))
            setattr(owner, name, self._wrap(label, original))

    def uninstall(self) -> None:
        for owner, name, original in reversed(self._undo):
            setattr(owner, name, original)
        self._undo.clear()

    def _wrap(self, label: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        spent = self.spent
        clock = time.perf_counter

        def timed(*args: Any, **kwargs: Any) -> Any:
            start = clock()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[label] = spent.get(label, 0.0) + clock() - start

        return timed

    def take(self) -> dict[str, float]:
        taken = dict(self.spent)
        self.spent.clear()
        return taken


def _us(values: list[float]) -> float:
    return statistics.median(values) * 1e6


# --------------------------------------------------------------------------- searches


async def profile_searches(root: Path, workdir: Path, corpus: Any) -> dict[str, Any]:
    queries = bench.make_queries(corpus, bench.QUERIES, 20260126)
    raw = bench.RawTantivy(workdir / "raw-tantivy", create=False)
    raw_blocks = bench.RawTantivy(workdir / "raw-tantivy-our-blocks", create=False)
    archive = await Archive.open(root, overrides={"vector": {"enabled": False}})
    try:
        await archive.search("warm", mode="keyword")
        engine = archive._search_engine()
        classes: dict[str, Any] = {}
        timer = PartTimer()
        for kind, qs in queries.items():
            for q in qs:  # warm every engine on every query once
                raw.search(q)
                raw_blocks.search(q)
                engine.search(q.ours, "keyword", bench.LIMIT)
            times: dict[str, list[float]] = {"raw": [], "raw_blocks": [], "cold": [], "warm": []}
            parts: dict[str, dict[str, list[float]]] = {"cold": {}, "warm": {}}
            timer.install()
            try:
                for _ in range(PASSES):
                    for q in qs:
                        for name, search in (
                            ("raw", raw.search),
                            ("raw_blocks", raw_blocks.search),
                        ):
                            start = time.perf_counter()
                            search(q)
                            times[name].append(time.perf_counter() - start)
                        for state in ("cold", "warm"):
                            timer.take()
                            start = time.perf_counter()
                            engine.search(q.ours, "keyword", bench.LIMIT)
                            times[state].append(time.perf_counter() - start)
                            for label, spent in timer.take().items():
                                parts[state].setdefault(label, []).append(spent)
            finally:
                timer.uninstall()
            # The hop to a thread and back: each side through its event loop path, minus
            # its own call (medians of separate runs).
            hop_ours: list[float] = []
            hop_raw: list[float] = []
            for q in qs[:HOP_QUERIES]:
                start = time.perf_counter()
                await archive.search(q.ours, mode="keyword", limit=bench.LIMIT)
                hop_ours.append(time.perf_counter() - start)
                start = time.perf_counter()
                await asyncio.to_thread(raw.search, q)
                hop_raw.append(time.perf_counter() - start)
            row = {
                "example": qs[0].ours,
                "raw_us": _us(times["raw"]),
                "raw_blocks_us": _us(times["raw_blocks"]),
                "ours_cold_us": _us(times["cold"]),
                "ours_warm_us": _us(times["warm"]),
                "parts_cold_us": {k: _us(v) for k, v in parts["cold"].items()},
                "parts_warm_us": {k: _us(v) for k, v in parts["warm"].items()},
                "archive_search_us": _us(hop_ours),
                "raw_to_thread_us": _us(hop_raw),
            }
            log.info(
                "%s: raw %.0f µs, raw (our blocks) %.0f, ours cold %.0f, warm %.0f",
                kind,
                row["raw_us"],
                row["raw_blocks_us"],
                row["ours_cold_us"],
                row["ours_warm_us"],
            )
            classes[kind] = row
        return classes
    finally:
        await archive.close()


# --------------------------------------------------------------------------- builds


def thread_cpu() -> dict[str, float]:
    """CPU seconds (user + system) of each thread of this process, by thread id and name."""
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            with open(f"/proc/self/task/{tid}/comm") as fh:
                name = fh.read().strip()
        except OSError:  # the thread ended meanwhile
            continue
        out[f"{tid} {name}"] = (int(fields[11]) + int(fields[12])) / tick
    return out


def build_threads(engine: str, root: Path, target: Path) -> int:
    """``--build-threads``: build one index here, sampling every thread's CPU time; prints
    JSON: the build's seconds and each thread's CPU seconds during it (by thread name)."""
    seen: dict[str, float] = {}
    before = thread_cpu()
    done = threading.Event()

    def sample() -> None:
        while not done.wait(SAMPLE_S):
            seen.update(thread_cpu())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    start = time.perf_counter()
    if engine == "ours":

        async def ours() -> None:
            archive = await Archive.open(root, overrides={"vector": {"enabled": False}})
            try:
                await archive.refresh_index()
            finally:
                await archive.close()

        asyncio.run(ours())
    else:
        bench.RawTantivy(target).build(root)
    seconds = time.perf_counter() - start
    seen.update(thread_cpu())
    done.set()
    sampler.join()
    by_name: dict[str, float] = {}
    for key, cpu in seen.items():
        name = key.split(" ", 1)[1]
        by_name[name] = by_name.get(name, 0.0) + cpu - before.get(key, 0.0)
    sys.stdout.write(orjson.dumps({"seconds": seconds, "threads": by_name}).decode() + "\n")
    return 0


def profile_builds(root: Path, workdir: Path) -> dict[str, Any]:
    out = {}
    for engine in ("ours", "raw"):
        target = workdir / "raw-tantivy"  # kept for the searches (ours: root/.index)
        if engine == "ours":
            shutil.rmtree(root / ".index", ignore_errors=True)
        bench.settle()
        done = subprocess.run(
            [sys.executable, __file__, "--build-threads", engine, str(root), str(target)],
            check=True,
            capture_output=True,
            text=True,
            env={**os.environ, "OPENBLAS_NUM_THREADS": "1"},
        )
        out[engine] = orjson.loads(done.stdout.strip().splitlines()[-1])
        log.info(
            "build %s: %.1f s, threads %s", engine, out[engine]["seconds"], out[engine]["threads"]
        )
    return out


# --------------------------------------------------------------------------- report


def section(n: str, run: dict[str, Any]) -> list[str]:
    lines = [
        f"## {int(n):,} messages",
        "",
        f"Measured {run['started_at']} at storage {run['revision']}.",
        "",
        "### Searches (µs, median; no thread hop; each part's median on its own)",
        "",
        "| Class | Raw tantivy | Raw (our blocks) | Ours, cold | Ours, warm | Parts, cold / warm "
        "| Hop: `archive.search` | Hop: raw `to_thread` |",
        "|---|---:|---:|---:|---:|---|---:|---:|",
    ]
    for kind, row in run["searches"].items():
        parts = ", ".join(
            f"{label} {row['parts_cold_us'].get(label, 0):.0f} / "
            f"{row['parts_warm_us'].get(label, 0):.0f}"
            for label, _owner, _name in PARTS
        )
        lines.append(
            f"| {bench.CLASSES[kind]} (`{row['example']}`) | {row['raw_us']:.0f} "
            f"| {row['raw_blocks_us']:.0f} | {row['ours_cold_us']:.0f} | {row['ours_warm_us']:.0f} "
            f"| {parts} | {row['archive_search_us']:.0f} | {row['raw_to_thread_us']:.0f} |"
        )
    lines += [
        "",
        "Hop columns: the whole call through the event loop (ours: `archive.search`, with its "
        "change check; raw: `asyncio.to_thread(raw.search)`), warm.",
        "",
        "### Builds: CPU seconds of each thread",
        "",
        "| Engine | Wall s | Threads (CPU s) | All threads CPU s |",
        "|---|---:|---|---:|",
    ]
    for engine, built in run["builds"].items():
        threads = ", ".join(
            f"{name} {cpu:.1f}"
            for name, cpu in sorted(built["threads"].items(), key=lambda kv: -kv[1])
            if cpu >= 0.05
        )
        total = sum(built["threads"].values())
        lines.append(f"| {engine} | {built['seconds']:.1f} | {threads} | {total:.1f} |")
    return [*lines, ""]


def markdown(report: dict[str, Any]) -> str:
    lines = ["# Where search and build time goes: ours beside raw tantivy", ""]
    lines.append(
        "Method: the docstring of `benchmarks/profile_search.py`. Corpus and queries: "
        "`benchmarks/bench_search.py`'s."
    )
    lines.append("")
    for n, run in sorted(report["runs"].items(), key=lambda kv: int(kv[0])):
        lines += section(n, run)
    return "\n".join(lines)


async def amain(args: argparse.Namespace) -> int:
    json_path = args.out.with_suffix(".json")
    report: dict[str, Any] = {"runs": {}}
    if json_path.exists():
        report = json.loads(json_path.read_text(encoding="utf-8"))
    for n in args.messages:
        workdir = Path(tempfile.mkdtemp(prefix="flatchat-profile-search-"))
        try:
            run: dict[str, Any] = {
                "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "revision": storage_revision(),
            }
            root = workdir / "archive"
            corpus = bench.generate(n, 20260126)
            archive = await bench.write_archive(root, corpus)
            await archive.close()
            run["builds"] = profile_builds(root, workdir)
            bench.build_in_process("raw_blocks", root, workdir / "raw-tantivy-our-blocks")
            run["searches"] = await profile_searches(root, workdir, corpus)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        report["runs"][str(n)] = run
        args.out.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        args.out.with_suffix(".md").write_text(markdown(report), encoding="utf-8")
    sys.stdout.write(markdown(report))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--messages", type=int, nargs="+", default=[100_000])
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--build-threads", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if not args.build_threads:  # the whole run (--build-threads: one of its build probes)
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
        return asyncio.run(amain(args))
    engine, root, target = args.build_threads
    return build_threads(engine, Path(root), Path(target))


if __name__ == "__main__":
    sys.exit(main())
