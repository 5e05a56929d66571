"""flatchat search / reindex on a copy of the sample archive."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import sys
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
    # how many match the words, how many are there for their meaning alone
    assert re.match(r"[\d,]+ matches, [\d,]+ similar \(hybrid\); showing 1-2\n", out)
    assert "grace/" in out and "ada/" not in out


def test_bad_query_is_an_error_on_stderr(sample: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run("--archive", str(sample), "search", '"unclosed')
    assert code == 1 and out == ""
    assert 'this " is never closed at character 1' in capsys.readouterr().err


def test_a_query_of_only_exclusions_says_what_to_add(
    sample: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = run("--archive", str(sample), "search", '-"lazy dog"', "--mode", "keyword")
    assert code == 1 and out == ""
    assert "only excludes words; add a word, a phrase or a filter" in capsys.readouterr().err
    # With a filter, typed or as an option, it is a search.
    code, out = run("--archive", str(sample), "search", "user:grace -python", "--json")
    assert code == 0 and json.loads(out)["total"] >= 1
    code, out = run("--archive", str(sample), "search", "--user", "grace", "--json", "--",
                    "-python")
    assert code == 0 and json.loads(out)["total"] >= 1


@pytest.mark.parametrize(("option", "value"), [("--limit", "-1"), ("--offset", "-5"),
                                               ("--limit", "many")])
def test_a_bad_limit_or_offset_is_a_usage_error(
    sample: Path, capsys: pytest.CaptureFixture[str], option: str, value: str
) -> None:
    with pytest.raises(SystemExit) as info:
        run("--archive", str(sample), "search", "python", option, value)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {option}:" in err and "Traceback" not in err


def test_a_query_starting_with_a_dash_says_to_put_it_after_dashes(
    sample: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        run("--archive", str(sample), "search", "-generator")
    assert info.value.code == 2
    assert 'goes after "--": flatchat search -- -generator' in capsys.readouterr().err
    # As told: a query of only an exclusion, which says what to add.
    code, _out = run("--archive", str(sample), "search", "--", "-generator")
    assert code == 1
    assert "it only excludes words" in capsys.readouterr().err


def test_a_page_far_past_the_end_is_empty(sample: Path) -> None:
    code, out = run("--archive", str(sample), "search", "python", "--mode", "keyword",
                    "--offset", str(2**31), "--json")
    assert code == 0
    data = json.loads(out)
    assert data["hits"] == [] and data["total"] > 0


@pytest.mark.parametrize("mode", ["keyword", "semantic", "hybrid"])
@pytest.mark.parametrize("output", [[], ["--json"]])
def test_a_query_that_is_not_utf8_is_an_error_on_stderr(
    sample: Path, capsys: pytest.CaptureFixture[str], mode: str, output: list[str]
) -> None:
    # What Python makes of the command-line bytes b"fox \xff" (surrogateescape).
    code, out = run("--archive", str(sample), "search", os.fsdecode(b"fox \xff"),
                    "--mode", mode, *output)
    assert code == 1 and out == ""
    assert "not valid UTF-8 (byte 0xFF) at character 5" in capsys.readouterr().err


def test_a_query_that_is_not_utf8_from_a_real_command_line(sample: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "app", "--archive", str(sample), "search", b"fox \xff", "--json"],
        capture_output=True, timeout=60, cwd=Path(__file__).resolve().parents[2],
    )
    assert result.returncode == 1 and result.stdout == b""
    assert b"not valid UTF-8 (byte 0xFF) at character 5" in result.stderr
    assert b"Traceback" not in result.stderr


def test_a_mistyped_embedder_is_a_settings_error(
    sample: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = run("--archive", str(sample), "--set", "vector.embedder=hashng", "search",
                    "python")
    assert code == 1 and out == ""
    err = capsys.readouterr().err
    assert "vector.embedder (from command line)" in err and "'model2vec' or 'hashing'" in err


def test_reindex(sample: Path) -> None:
    code, out = run("--archive", str(sample), "reindex", "--json")
    assert code == 0
    report = json.loads(out)
    assert report["rebuilt"] is True and report["documents_added"] >= 70
    code, out = run("--archive", str(sample), "verify", "--json")
    assert json.loads(out)["ok"] is True
