"""Which files a list of dropped paths means: files as given, folders walked.

Inside a walked folder, hidden entries (dot-files and dot-folders) are skipped, symlinks are
followed only while they stay inside the folder, and each real folder is visited once (a
symlink loop ends there). Paths given explicitly are taken as given, hidden or linked.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Skipped:
    path: str
    reason: str


def collect(paths: Iterable[str | os.PathLike[str]]) -> tuple[list[Path], list[Skipped]]:
    """The files to ingest, in a stable order, and what was skipped with why. A path that does
    not exist is returned as it is, so it fails as one file of the batch."""
    files: list[Path] = []
    skipped: list[Skipped] = []
    for given in paths:
        path = Path(given)
        if path.is_dir():
            root = path.resolve()
            _walk(path, root, {root}, files, skipped)
        else:
            files.append(path)
    return files, skipped


def _walk(
    folder: Path, root: Path, visited: set[Path], files: list[Path], skipped: list[Skipped]
) -> None:
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError as exc:
        log.warning("cannot list %s: %s", folder, exc)
        skipped.append(Skipped(str(folder), f"cannot list folder: {exc.strerror or exc}"))
        return
    for entry in entries:
        path = Path(entry.path)
        if entry.name.startswith("."):
            continue  # hidden: .git, .DS_Store, editors' swap files
        if entry.is_symlink():
            real = path.resolve()
            if not real.is_relative_to(root):
                skipped.append(Skipped(str(path), f"symlink to {real}, outside {root}"))
                continue
            if not real.exists():
                skipped.append(Skipped(str(path), "broken symlink"))
                continue
        if entry.is_dir():
            real = path.resolve()
            if real in visited:
                skipped.append(Skipped(str(path), "folder already visited (symlink loop)"))
                continue
            visited.add(real)
            _walk(path, root, visited, files, skipped)
        else:
            files.append(path)
