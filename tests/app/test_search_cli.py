"""flatchat search / reindex on a copy of the sample archive."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pytest

from app.cli import main
from resources.sample import sample_archive_path


@pytest.fixture
def sample(tmp_path: Path) -> Path:
    root = tmp_path / "sample"
    shutil.copytree(sample_archive_path(), root)
    return root


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    return main(list(argv), out=out), out.getvalue()


def test_search_json_shape(sample: Path) -> None:
    code, out = run("--archive", str(sample), "search", "generator memory", "--mode",
                    "keyword", "--json")
    assert code == 0
    data = json.loads(out)
    assert data["total"] >= 1 and data["mode"] == "keyword"
    hit = data["hits"][0]
    assert set(hit) >= {"kind", "user_id", "session_id", "message_id", "doc_id", "chunk",
                        "score", "snippet", "highlights"}
    assert hit["kind"] == "message" and hit["user_id"] == "ada"
    start, end = hit["highlights"][0]
    assert hit["snippet"][start:end].lower() in {"generator", "memory"}


def test_search_human_with_filters(sample: Path) -> None:
    code, out = run("--archive", str(sample), "search", "python", "--user", "grace",
                    "--limit", "2")
    assert code == 0
    assert "matches (hybrid)" in out and "grace/" in out and "ada/" not in out


def test_bad_query_is_an_error_on_stderr(sample: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run("--archive", str(sample), "search", '"unclosed')
    assert code == 1 and out == ""
    assert 'this " is never closed at character 1' in capsys.readouterr().err


def test_reindex(sample: Path) -> None:
    code, out = run("--archive", str(sample), "reindex", "--json")
    assert code == 0
    report = json.loads(out)
    assert report["rebuilt"] is True and report["documents_added"] >= 70
    code, out = run("--archive", str(sample), "verify", "--json")
    assert json.loads(out)["ok"] is True
