"""Helpers shared by the benchmark scripts."""

from __future__ import annotations

import subprocess
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
