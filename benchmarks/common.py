"""Helpers shared by the benchmark scripts."""

from __future__ import annotations

import math
import statistics
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def storage_revision() -> str | None:
    """The commit whose storage/ is measured, with "-dirty" if storage/ has local changes."""

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True)
        return done.stdout.strip()

    try:
        head = git("rev-parse", "--short", "HEAD")
        dirty = git("status", "--porcelain", "--", "storage")
    except (OSError, subprocess.CalledProcessError):  # not a checkout, or no git
        return None
    return head + ("-dirty" if dirty else "")


@dataclass
class Stats:
    """Timings of repeated runs, in milliseconds (p95 by nearest rank)."""

    runs: int
    p50_ms: float
    p95_ms: float
    mean_ms: float
    min_ms: float
    max_ms: float

    @classmethod
    def of(cls, seconds: Sequence[float]) -> Stats:
        ms = sorted(s * 1000 for s in seconds)
        p95 = ms[max(0, math.ceil(0.95 * len(ms)) - 1)]
        return cls(len(ms), statistics.median(ms), p95, statistics.fmean(ms), ms[0], ms[-1])


def expect(condition: bool, problem: str) -> None:
    """Both sides must give the same answer, or the timings compare nothing."""
    if not condition:
        raise RuntimeError(problem)


def dir_size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
