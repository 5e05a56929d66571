"""Shared test setup: headless Qt, isolated XDG folders, the shared sample data, temp archives."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

# Before anything imports Qt: no display here or in CI, and never pick up another binding.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("QT_API", "pyside6")
_XDG = Path(tempfile.mkdtemp(prefix="flatchat-xdg-"))
atexit.register(shutil.rmtree, _XDG, ignore_errors=True)  # one per test run: not left behind
for _name in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME", "XDG_RUNTIME_DIR"):
    (_XDG / _name).mkdir(mode=0o700, exist_ok=True)
    os.environ[_name] = str(_XDG / _name)
# Settings from the developer's shell must not leak into tests.
for _name in [n for n in os.environ if n.startswith("FLATCHAT_")]:
    del os.environ[_name]

# CI machines are shared and slow at times: a per-example deadline would make property
# tests flaky without telling us anything about correctness.
settings.register_profile("flatchat", deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("flatchat")

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def shared_data(*parts: str) -> Path:
    """A file under ../shared/data/, or skip the test saying why."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared sample data not found at {path} (CI provides ../shared/data/)")
    return path


@pytest.fixture
def archive_dir(tmp_path: Path) -> Path:
    return tmp_path / "archive"


@pytest.fixture
def time_zone(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], None]]:
    """Set the local time zone (TZ) for the test; the real one comes back after it."""

    def use(name: str) -> None:
        monkeypatch.setenv("TZ", name)
        time.tzset()

    yield use
    monkeypatch.undo()
    time.tzset()
