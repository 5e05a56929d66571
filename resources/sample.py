"""Where the sample archive shipped in this package lives (built by ``build_sample_archive``)."""

from __future__ import annotations

import importlib.resources
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
