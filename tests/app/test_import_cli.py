"""``flatchat import``: report on stdout (human and --json), user created, dry run, errors."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from app.cli import main
from tests.conftest import shared_data

ROOT = Path(__file__).resolve().parents[2]


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = main(list(argv), out=out)
    return code, out.getvalue()


@pytest.fixture
def archive_root(archive_dir: Path) -> Path:
    assert run("--archive", str(archive_dir), "init")[0] == 0
    return archive_dir


def test_import_json_report_and_reimport(archive_root: Path) -> None:
    sample = shared_data("exports", "chatgpt", "chatgpt-modern-export.json")
    code, out = run("--archive", str(archive_root), "import", str(sample), "--user", "u",
                    "--json")  # fmt: skip
    assert code == 0
    report = json.loads(out)
    assert {k: report[k] for k in ("format", "imported", "updated", "skipped", "failed")} == {
        "format": "chatgpt", "imported": 2, "updated": 0, "skipped": 1, "failed": 0}  # fmt: skip
    assert [
        {k: c[k] for k in ("source_id", "session_id", "title", "messages", "status", "reason")}
        for c in report["conversations"]
    ][1] == {
        "source_id": "6b0f0d9c-0000-4000-8000-000000000002",
        "session_id": None,
        "title": "Corrupted entry",
        "messages": 0,
        "status": "skipped",
        "reason": "entry has no 'mapping' (no messages)",
    }
    assert Path(report["report_path"]).exists()
    code, out = run("--archive", str(archive_root), "import", str(sample), "--user", "u")
    assert code == 0
    assert "imported 0 new conversations, updated 0, skipped 3, failed 0" in out
    code, out = run("--archive", str(archive_root), "sessions", "--user", "u", "--json")
    assert sorted(s["title"] for s in json.loads(out)) == [
        "Deploying the staging cluster", "Weeknight pasta"]  # fmt: skip


def test_dry_run_writes_nothing(archive_root: Path) -> None:
    sample = shared_data("exports", "openwebui", "openwebui-export.json")
    code, out = run("--archive", str(archive_root), "import", str(sample), "--user", "u",
                    "--dry-run")  # fmt: skip
    assert code == 0
    assert "openwebui: would import 3 new conversations" in out
    assert not (archive_root / "users" / "u").exists()


def test_real_process_progress_errors_and_exit_codes(archive_root: Path, tmp_path: Path) -> None:
    sample = shared_data("exports", "claude", "claude_thinking_example.json")
    cmd = [sys.executable, "-m", "app", "--archive", str(archive_root), "import"]
    done = subprocess.run([*cmd, str(sample), "--user", "bo"], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "created user 'bo'" in done.stderr and "importing" in done.stderr
    assert "claude: imported 1 new conversations" in done.stdout
    bad = tmp_path / "cut.json"
    bad.write_bytes(sample.read_bytes()[:500])
    done = subprocess.run([*cmd, str(bad), "--user", "bo"], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    assert done.returncode == 1
    assert f"{bad} at byte 500: truncated JSON" in done.stderr
    empty = tmp_path / "empty.json"
    empty.write_text("[]")
    done = subprocess.run([*cmd, str(empty), "--user", "bo", "--json"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 1
    assert "imported 0 conversations" in done.stderr
