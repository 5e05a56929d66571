"""The flatchat command line, in-process for output and as a real process for exit codes."""

from __future__ import annotations

import asyncio
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from app.cli import main
from storage import Archive, Message


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = main(list(argv), out=out)
    return code, out.getvalue()


@pytest.fixture
def filled(archive_dir: Path) -> tuple[Path, str]:
    async def fill() -> str:
        archive = await Archive.open(archive_dir, create=True)
        await archive.create_user("ada", username="Ada Lovelace")
        await archive.create_user("bob")
        old = await archive.create_session("ada", "Older")
        new = await archive.create_session("ada", "Newer")
        await archive.add_messages("ada", new.session_id, [
            Message(role="user", content="What is an engine?"),
            Message(role="assistant", content="A machine.\nWith parts.")])
        await archive.add_message("ada", old.session_id, Message(role="user", content="x"))
        await archive.update_session("ada", new.session_id, title="Newer")
        await archive.save_document("ada", b"notes", "notes.txt")
        return new.session_id

    return archive_dir, asyncio.run(fill())


def test_init_creates_an_archive(archive_dir: Path) -> None:
    code, out = run("--archive", str(archive_dir), "init", "--json")
    assert code == 0
    assert json.loads(out)["format_version"] == 1
    assert (archive_dir / "archive.json").exists()


def test_stats_json(filled: tuple[Path, str]) -> None:
    root, _ = filled
    code, out = run("--archive", str(root), "stats", "--json")
    stats = json.loads(out)
    assert code == 0
    assert {k: stats[k] for k in ("users", "sessions", "messages", "documents")} == {
        "users": 2, "sessions": 2, "messages": 3, "documents": 1}
    code, out = run("--archive", str(root), "stats")
    assert "sessions  2" in out


def test_sessions_newest_first(filled: tuple[Path, str]) -> None:
    root, newest = filled
    code, out = run("--archive", str(root), "sessions", "--user", "ada", "--json")
    assert code == 0
    sessions = json.loads(out)
    assert [s["title"] for s in sessions] == ["Newer", "Older"]
    assert sessions[0]["session_id"] == newest
    _code, out = run("--archive", str(root), "sessions", "--user", "ada")
    assert out.index("Newer") < out.index("Older")


def test_show_human_and_json(filled: tuple[Path, str]) -> None:
    root, sid = filled
    code, out = run("--archive", str(root), "show", "--user", "ada", sid)
    assert code == 0
    assert "# Newer" in out and "What is an engine?" in out and "    With parts." in out
    code, out = run("--archive", str(root), "show", "--user", "ada", sid, "--json")
    shown = json.loads(out)
    assert shown["session"]["session_id"] == sid
    assert [m["role"] for m in shown["messages"]] == ["user", "assistant"]
    code, out = run("--archive", str(root), "show", "--user", "ada", sid, "--tail", "1",
                    "--json")
    assert [m["role"] for m in json.loads(out)["messages"]] == ["assistant"]


def test_verify_reports_problems_with_paths(filled: tuple[Path, str]) -> None:
    root, sid = filled
    code, out = run("--archive", str(root), "verify", "--json")
    assert code == 0 and json.loads(out) == {**json.loads(out), "ok": True, "problems": []}
    log = root / "users" / "ada" / sid / "messages.jsonl"
    lines = log.read_bytes().split(b"\n")
    log.write_bytes(lines[0] + b"\n{broken\n" + b"\n".join(lines[1:]) + b'{"torn')
    code, out = run("--archive", str(root), "verify", "--json")
    report = json.loads(out)
    assert code == 1 and report["ok"] is False
    found = {(p["path"], p["line"], p["severity"]) for p in report["problems"]}
    assert (str(log), 2, "error") in found
    assert (str(log), 4, "warning") in found
    code, out = run("--archive", str(root), "verify")
    assert f"{log}:2" in out and "PROBLEMS FOUND" in out


def test_compact(filled: tuple[Path, str]) -> None:
    root, sid = filled
    code, out = run("--archive", str(root), "compact", "--user", "ada", "--session", sid,
                    "--json")
    assert json.loads(out) == {"compacted": [{"user": "ada", "session": sid}]}
    assert (root / "users" / "ada" / sid / "messages.jsonl.zst").exists()
    code, out = run("--archive", str(root), "show", "--user", "ada", sid, "--json")
    assert code == 0 and len(json.loads(out)["messages"]) == 2
    _code, out = run("--archive", str(root), "compact", "--idle-days", "0")
    assert "0 sessions compacted" in out


def test_settings_flag(filled: tuple[Path, str]) -> None:
    root, _ = filled
    code, _ = run("--archive", str(root), "--set", "storage.lock_timeout=2", "stats")
    assert code == 0


def cli(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "app", *argv], capture_output=True, text=True,
                          timeout=60, env={**os.environ, **(env or {})},
                          cwd=Path(__file__).resolve().parents[2])


def test_errors_go_to_stderr_with_nonzero_status(filled: tuple[Path, str], tmp_path: Path) -> None:
    root, _ = filled
    result = cli("--archive", str(tmp_path / "nope"), "stats")
    assert result.returncode == 1 and result.stdout == ""
    assert "does not exist" in result.stderr
    result = cli("--archive", str(root), "show", "--user", "ada", "../etc")
    assert result.returncode == 1 and "invalid session id '../etc'" in result.stderr
    result = cli("--archive", str(root), "sessions", "--user", "nobody")
    assert result.returncode == 1 and "user 'nobody' not found" in result.stderr
    result = cli("--archive", str(root), "stats",
                 env={"FLATCHAT_STORAGE__LOCK_TIMEOUT": "soon"})
    assert result.returncode == 1
    assert "storage.lock_timeout" in result.stderr
    assert "FLATCHAT_STORAGE__LOCK_TIMEOUT" in result.stderr
    result = cli("--archive", str(root), "--set", "nonsense", "stats")
    assert result.returncode == 2 and "GROUP.KEY=VALUE" in result.stderr
    result = cli("stats", env={"FLATCHAT_ARCHIVE": ""})
    assert result.returncode == 2 and "--archive" in result.stderr
