"""Where the sample archive shipped in this package lives (built by ``build_sample_archive``)."""

from __future__ import annotations

import importlib.resources
import shutil
from pathlib import Path

SAMPLE_ARCHIVE = "sample_archive"


def sample_archive_path() -> Path:
    """The folder of the sample archive, as a real path on disk.

    The folder may be read-only (a system-wide install): open it to read, and copy it before
    writing to it. Raises FileNotFoundError if the package is not installed as plain files
    (e.g. zipped), since an archive is a folder that must be opened in place.
    """
    resource = importlib.resources.files("resources") / SAMPLE_ARCHIVE
    if not isinstance(resource, Path):
        raise FileNotFoundError(
            f"the sample archive is inside {resource!r}, not a folder on disk; "
            "install Flatchat unzipped to use it"
        )
    if not resource.is_dir():
        raise FileNotFoundError(
            f"no sample archive at {resource}; build it with "
            "`python -m resources.build_sample_archive`"
        )
    return resource


def copy_sample_archive(destination: Path) -> Path:
    """A writable copy of the sample archive at ``destination`` (made once; later calls return
    it with whatever the user changed), so the packaged files are never written to."""
    if (destination / "archive.json").exists():
        return destination
    source = sample_archive_path()
    partial = destination.with_name(destination.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    shutil.copytree(source, partial, ignore=shutil.ignore_patterns(".locks", ".index"))
    for path in [partial, *partial.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    partial.rename(destination)  # a copy interrupted half-way is never opened
    return destination
