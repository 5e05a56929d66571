"""``flatchat ingest``: per-file summary, --json, and exit status."""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path

import pytest

from app.cli import main
from storage import Archive


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = main(list(argv), out=out)
    return code, out.getvalue()


@pytest.fixture
def root(archive_dir: Path) -> Path:
    async def make() -> None:
        archive = await Archive.open(archive_dir, create=True)
        await archive.create_user("ada")
        await archive.create_session("ada", "Talk")

    asyncio.run(make())
    return archive_dir


@pytest.fixture
def src(tmp_path: Path) -> Path:
    folder = tmp_path / "src"
    folder.mkdir()
    (folder / "a.txt").write_text("The analytical engine weaves algebraic patterns.")
    (folder / "b.txt").write_text("The analytical engine weaves algebraic patterns.")
    (folder / "empty.txt").write_bytes(b"")
    (folder / "img.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(30))
    return folder


def test_ingest_json(root: Path, src: Path) -> None:
    code, out = run("--archive", str(root), "ingest", str(src), "--user", "ada", "--json")
    assert code == 0
    files = json.loads(out)["files"]
    assert [(Path(f["path"]).name, f["status"]) for f in files] == [
        ("a.txt", "ingested"),
        ("b.txt", "duplicate"),
        ("empty.txt", "failed"),
        ("img.png", "unsupported"),
    ]
    assert files[1]["doc_id"] == files[0]["doc_id"]
    assert "empty file" in files[2]["reason"]
    assert files[3]["reason"] == "stored, not searchable"
    assert all({"path", "status", "doc_id", "reason"} <= set(f) for f in files)


def test_ingest_text_summary_into_a_session(root: Path, src: Path) -> None:
    session = next((root / "users" / "ada").glob("chat_session_*")).name
    code, out = run(
        "--archive", str(root), "ingest", str(src / "a.txt"), "--user", "ada",
        "--session", session,
    )
    assert code == 0
    assert out.startswith("ingested    ")
    assert out.endswith("1 files: 1 ingested, 0 duplicate, 0 unsupported, 0 failed\n")
    assert (root / "users" / "ada" / session / "documents" / "metadata.json").exists()


def test_exit_status(root: Path, src: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Every file failed: 1.
    code, out = run("--archive", str(root), "ingest", str(src / "empty.txt"), "--user", "ada")
    assert code == 1
    assert "failed      " in out
    # A missing path is one failed file, not a usage error.
    code, _ = run("--archive", str(root), "ingest", str(src / "nope.txt"), "--user", "ada")
    assert code == 1
    # No path at all: usage error.
    code, _ = run("--archive", str(root), "ingest", "--user", "ada")
    assert code == 2
    assert "ingest needs at least one PATH" in capsys.readouterr().err
    # An unknown user: an error in the input, nothing ingested.
    code, _ = run("--archive", str(root), "ingest", str(src), "--user", "nobody")
    assert code == 1
    assert "user 'nobody' not found" in capsys.readouterr().err
