"""Import input handling: Jan data folders, ZIPs (zip-slip, zip bombs, ChatGPT assets), bad
JSON, unknown shapes, broken trees, duplicate ids, cancel/kill and resume, random trees."""

from __future__ import annotations

import asyncio
import io
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import pytest
import pytest_asyncio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from storage import Archive
from storage.errors import (
    ImportFormatError,
    NothingImportedError,
    UnknownExportFormatError,
    UnsafeArchiveError,
)
from storage.importers import ImportReport, import_archive, import_path, sources
from storage.jobs import JobCancelled, JobControl
from tests.conftest import shared_data
from tests.storage.export_factory import (
    chatgpt_conversation,
    linear_conversations,
    write_chatgpt_export,
)

USER = "ada"
ROOT = Path(__file__).resolve().parents[2]


@pytest_asyncio.fixture
async def archive(archive: Archive) -> Archive:
    await archive.create_user(USER)
    return archive


async def run(archive: Archive, path: Path, **kwargs: object) -> ImportReport:
    return await import_archive(archive, path, USER, **kwargs)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------ Jan
def make_jan_folder(root: Path) -> Path:
    """A Jan data folder as Jan 0.4/0.5 writes it (threads, messages.jsonl, assistants)."""
    thread = root / "threads" / "jan_1712345678"
    thread.mkdir(parents=True)
    (thread / "thread.json").write_text(
        json.dumps(
            {
                "id": "jan_1712345678",
                "object": "thread",
                "title": "Rust lifetimes",
                "assistants": [
                    {
                        "assistant_id": "jan",
                        "assistant_name": "Jan",
                        "model": {"id": "llama3-8b-instruct", "settings": {}, "parameters": {}},
                        "instructions": "",
                    }
                ],
                "created": 1712345678,
                "updated": 1712345999000,
                "metadata": {"lastMessage": "They tie references to scopes."},
            }
        )
    )

    def line(mid: str, role: str, text: str, created: int) -> str:
        return json.dumps(
            {
                "id": mid,
                "object": "thread.message",
                "thread_id": "jan_1712345678",
                **({"assistant_id": "jan"} if role == "assistant" else {}),
                "role": role,
                "content": [{"type": "text", "text": {"value": text, "annotations": []}}],
                "status": "ready",
                "created_at": created,
                "completed_at": created,
                "metadata": {},
                "type": "Thread",
            }
        )

    (thread / "messages.jsonl").write_text(
        line("01HV0000000000000000000001", "user", "What is a lifetime?", 1712345680000)
        + "\n"
        + line("01HV0000000000000000000002", "assistant", "They tie references to scopes.",
               1712345690)
        + "\n"
        + '{"id": "torn'  # an interrupted write by Jan
    )  # fmt: skip
    empty = root / "threads" / "jan_empty"
    empty.mkdir()
    (empty / "thread.json").write_text(json.dumps({"id": "jan_empty", "title": "", "created": 1}))
    assistant = root / "assistants" / "jan"
    assistant.mkdir(parents=True)
    (assistant / "assistant.json").write_text(
        json.dumps(
            {
                "avatar": "",
                "id": "jan",
                "object": "assistant",
                "created_at": 1712345000,
                "name": "Jan",
                "description": "A default assistant that can use all downloaded models",
                "model": "*",
                "instructions": "",
                "tools": [{"type": "retrieval", "enabled": False}],
                "file_ids": [],
            }
        )
    )
    (root / "settings").mkdir()
    (root / "settings" / "settings.json").write_text('{"theme": "dark"}')
    return root


@pytest.mark.asyncio
async def test_jan_data_folder(archive: Archive, tmp_path: Path) -> None:
    folder = make_jan_folder(tmp_path / "jan")
    report = await run(archive, folder)
    assert report.format == "jan"
    assert [(c.source_id, c.status, c.messages) for c in report.conversations] == [
        ("jan_1712345678", "imported", 2),
        ("jan_empty", "skipped", 0),
    ]
    assert "torn last line" in report.conversations[0].problems[0]
    sid = "jan_jan_1712345678"
    session = await archive.get_session(USER, sid)
    assert session.title == "Rust lifetimes"
    assert session.created_at.isoformat() == "2024-04-05T19:34:38+00:00"
    assert session.updated_at.isoformat() == "2024-04-05T19:39:59+00:00"  # milliseconds
    assert session.metadata["model"] == "llama3-8b-instruct"
    path = await archive.get_branch(USER, sid)
    assert [(m.role, m.content) for m in path] == [
        ("user", "What is a lifetime?"),
        ("assistant", "They tie references to scopes."),
    ]
    assert path[0].timestamp.isoformat() == "2024-04-05T19:34:40+00:00"
    assert path[1].timestamp.isoformat() == "2024-04-05T19:34:50+00:00"
    assert path[1].metadata["persona_id"] == "jan"
    assert path[1].parent_id == path[0].message_id
    assert report.personas == [{"source_id": "jan", "persona_id": "jan", "status": "imported"}]
    persona = await archive.get_persona("jan", USER)
    assert persona.name == "Jan"
    assert persona.metadata["source"] == {"format": "jan", "id": "jan"}
    again = await run(archive, folder)
    assert [c.status for c in again.conversations] == ["skipped", "skipped"]
    assert again.personas[0]["status"] == "skipped"


# ---------------------------------------------------------------------------------- ZIPs
@pytest.mark.asyncio
async def test_chatgpt_zip_with_split_files_and_images(archive: Archive, tmp_path: Path) -> None:
    conv = chatgpt_conversation("z1", "With a picture", [None, 0], 1)
    conv["mapping"]["m0"]["message"]["content"] = {
        "content_type": "multimodal_text",
        "parts": [
            {
                "content_type": "image_asset_pointer",
                "asset_pointer": "file-service://file-AbC123",
                "size_bytes": 4,
                "width": 1,
                "height": 1,
            },
            "What is in this picture?",
        ],
    }
    zpath = tmp_path / "export.zip"
    with zipfile.ZipFile(zpath, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("conversations-000.json", json.dumps([conv]))
        zf.writestr(
            "conversations-001.json", json.dumps([chatgpt_conversation("z2", "Two", [None], 0)])
        )
        zf.writestr("file-AbC123-photo.png", b"\x89PNG")
        zf.writestr("user.json", json.dumps({"id": "user-1", "email": "a@example.org"}))
        zf.writestr("chat.html", "<html></html>")
    report = await run(archive, zpath)
    assert (report.format, report.imported) == ("chatgpt", 2)
    assert report.ignored_files == ["user.json: not a chat export"]
    first = await archive.get_message(USER, "chatgpt_z1", "m0")
    assert first.content == "What is in this picture?"
    assert first.attachments[0]["type"] == "image"
    assert first.attachments[0]["export_file"] == "file-AbC123-photo.png"
    # The picture itself is kept in the session, so the export can be deleted.
    docs = await archive.list_documents(USER, "chatgpt_z1")
    assert [d.original_name for d in docs] == ["file-AbC123-photo.png"]
    assert await archive.read_document(USER, docs[0].doc_id, "chatgpt_z1") == b"\x89PNG"
    await run(archive, zpath)  # importing again keeps one copy
    assert len(await archive.list_documents(USER, "chatgpt_z1")) == 1


@pytest.mark.parametrize(
    "name", ["../evil.json", "/etc/evil.json", "a/../../evil.json", "C:/evil.json", "a\\..\\b"]
)
def test_zip_slip_is_rejected_before_anything_is_written(tmp_path: Path, name: str) -> None:
    zpath = tmp_path / "slip.zip"
    with zipfile.ZipFile(zpath, "w") as zf:
        zf.writestr("conversations.json", "[]")
        zf.writestr(name, "[]")
    archive = asyncio.run(_new_archive(tmp_path / "archive"))
    before = sorted(p.name for p in tmp_path.rglob("*"))
    with pytest.raises(UnsafeArchiveError) as err:
        import_path(archive, zpath, USER)
    assert err.value.member == name and str(zpath) in str(err.value)
    assert sorted(p.name for p in tmp_path.rglob("*")) == before


def test_zip_bomb_ratio_and_total_caps(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    archive = asyncio.run(_new_archive(tmp_path / "archive"))
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        zf.writestr("conversations.json", b"[" + b" " * (20 * 1024 * 1024) + b"]")
    assert bomb.stat().st_size < 100_000
    with pytest.raises(UnsafeArchiveError, match=r"compressed .* times"):
        import_path(archive, bomb, USER)
    many = tmp_path / "many.zip"
    with zipfile.ZipFile(many, "w", zipfile.ZIP_DEFLATED) as zf:
        for i in range(4):
            zf.writestr(f"part-{i}.json", json.dumps([{"i": i}] * 1000))
    monkeypatch.setattr(sources, "MAX_UNCOMPRESSED", 20_000)
    with pytest.raises(UnsafeArchiveError, match="unpacks to more than 20,000 bytes"):
        import_path(archive, many, USER)


def test_member_that_inflates_past_its_declared_size_is_stopped(tmp_path: Path) -> None:
    info = zipfile.ZipInfo("conversations.json")
    info.file_size = 10  # a header that lies about the size
    stream = sources._Capped(io.BytesIO(b"[" + b" " * 99), tmp_path / "liar.zip", info)
    with pytest.raises(UnsafeArchiveError, match="inflates past its declared 10 bytes"):
        stream.read(100)


def test_corrupt_zip_member_names_the_member(tmp_path: Path) -> None:
    zpath = tmp_path / "corrupt.zip"
    payload = json.dumps([chatgpt_conversation("x", "X" * 5000, [None], 0)]).encode()
    with zipfile.ZipFile(zpath, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("conversations.json", payload)
    data = bytearray(zpath.read_bytes())
    at = data.index(b"XXXXX")
    data[at : at + 5] = b"YYYYY"  # the bytes no longer match the CRC
    zpath.write_bytes(bytes(data))
    archive = asyncio.run(_new_archive(tmp_path / "archive"))
    with pytest.raises(ImportFormatError, match="corrupt ZIP member") as err:
        import_path(archive, zpath, USER)
    assert f"{zpath}!conversations.json" in str(err.value)


async def _new_archive(path: Path) -> Archive:
    archive = await Archive.open(path, create=True)
    await archive.create_user(USER)
    return archive


# ------------------------------------------------------------------------- bad JSON/shape
def test_truncated_json_names_file_and_offset(tmp_path: Path) -> None:
    archive = asyncio.run(_new_archive(tmp_path / "archive"))
    data = shared_data("exports", "chatgpt", "chatgpt-export.json").read_bytes()
    cut = tmp_path / "conversations.json"
    cut.write_bytes(data[:100_000])
    with pytest.raises(ImportFormatError) as err:
        import_path(archive, cut, USER)
    assert err.value.offset == 100_000
    assert str(cut) in str(err.value) and "truncated JSON" in str(err.value)
    assert "at byte 100,000" in str(err.value)


def test_not_json_and_bad_json_offsets(tmp_path: Path) -> None:
    archive = asyncio.run(_new_archive(tmp_path / "archive"))
    text = tmp_path / "notes.json"
    text.write_text("hello, this is not JSON")
    with pytest.raises(ImportFormatError, match="not JSON") as err:
        import_path(archive, text, USER)
    assert err.value.offset == 0
    bad = tmp_path / "bad.json"
    bad.write_text('[{"mapping": {}, "title": "é"}, {"title" 2}]')
    with pytest.raises(ImportFormatError) as err:
        import_path(archive, bad, USER)
    assert err.value.offset == len('[{"mapping": {}, "title": "é"}, {"title" '.encode())


def test_unknown_shape_lists_formats_tried(tmp_path: Path) -> None:
    archive = asyncio.run(_new_archive(tmp_path / "archive"))
    other = tmp_path / "data.json"
    other.write_text(json.dumps([{"name": "not a chat", "rows": [1, 2]}]))
    with pytest.raises(UnknownExportFormatError) as err:
        import_path(archive, other, USER)
    message = str(err.value)
    assert str(other) in message
    for name in ("ChatGPT", "Claude", "Open WebUI", "Jan", "Flatfile"):
        assert name in message
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "readme.txt").write_text("hi")
    with pytest.raises(UnknownExportFormatError, match="looked at 1 files"):
        import_path(archive, folder, USER)


def test_an_export_with_nothing_to_import_is_not_a_success(tmp_path: Path) -> None:
    archive = asyncio.run(_new_archive(tmp_path / "archive"))
    empty = tmp_path / "conversations.json"
    empty.write_text(json.dumps([{"title": "No mapping", "mapping": None}, {"mapping": {}}]))
    with pytest.raises(NothingImportedError) as err:
        import_path(archive, empty, USER)
    assert "imported 0 conversations" in str(err.value)
    report = err.value.report
    assert isinstance(report, ImportReport)
    assert [c.status for c in report.conversations] == ["skipped", "skipped"]
    assert report.report_path is not None and Path(report.report_path).exists()


# ----------------------------------------------------------------- broken trees, duplicates
def test_cycles_missing_parents_and_duplicate_ids(tmp_path: Path) -> None:
    archive = asyncio.run(_new_archive(tmp_path / "archive"))
    conv = chatgpt_conversation("t1", "Broken tree", [None, 0, 1, 2], 3)
    conv["mapping"]["m1"]["parent"] = "m2"  # m1 <-> m2: a cycle
    conv["mapping"]["m3"]["parent"] = "gone"  # a parent that does not exist
    dup = chatgpt_conversation("t1", "Broken tree again", [None], 0)
    path = tmp_path / "conversations.json"
    write_chatgpt_export(path, iter([conv, dup]))
    report = import_path(archive, path, USER)
    first, second = report.conversations
    assert (first.status, first.messages) == ("imported", 4)
    assert any("parent cycle" in p for p in first.problems)
    assert any("'gone' is missing" in p for p in first.problems)
    assert (second.status, second.reason) == (
        "skipped",
        "duplicate id in this export; the first conversation with it was imported",
    )
    stored = asyncio.run(archive.get_all_messages(USER, "chatgpt_t1"))
    assert sorted(m.message_id for m in stored) == ["m0", "m1", "m2", "m3"]
    seen: set[str] = set()
    for m in stored:
        assert m.parent_id is None or m.parent_id in seen
        seen.add(m.message_id)
    assert asyncio.run(archive.get_branch(USER, "chatgpt_t1"))[-1].message_id == "m3"


# -------------------------------------------------------------------- cancel, kill, resume
def _expected(count: int, messages: int) -> dict[str, int]:
    return {
        f"chatgpt_0000{n:08d}-0000-4000-8000-{n:012d}": messages + (n % 10 == 0)
        for n in range(count)
    }


def _check_complete(archive: Archive, expected: dict[str, int]) -> None:
    for sid, count in expected.items():
        stored = asyncio.run(archive.get_all_messages(USER, sid))
        ids = [m.message_id for m in stored]
        assert len(ids) == len(set(ids)) == count, sid
        assert asyncio.run(archive.count_messages(USER, sid)) == count
    report = asyncio.run(archive.verify())
    assert [p for p in report.problems if p.severity == "error"] == []


def test_cancelled_import_resumes_without_duplicates(tmp_path: Path) -> None:
    archive = asyncio.run(_new_archive(tmp_path / "archive"))
    export = tmp_path / "conversations.json"
    write_chatgpt_export(export, linear_conversations(40, 6))

    class CancelAfterTen(JobControl):
        def step(self, current: str = "", advance: int = 1) -> None:
            self.steps = getattr(self, "steps", 0) + 1
            if self.steps == 10:
                self.cancel()
            super().step(current, advance)

    control = CancelAfterTen("import")
    with pytest.raises(JobCancelled):
        import_path(archive, export, USER, control=control)
    done = len(asyncio.run(archive.list_sessions(USER)))
    assert done == 10
    report = import_path(archive, export, USER)
    assert report.imported == 40 - done
    assert report.skipped == done
    _check_complete(archive, _expected(40, 6))


def test_killed_import_resumes_without_duplicates(tmp_path: Path) -> None:
    root = tmp_path / "archive"
    archive = asyncio.run(_new_archive(root))
    export = tmp_path / "conversations.json"
    count = 300
    write_chatgpt_export(export, linear_conversations(count, 8))
    script = (
        "import asyncio, sys\n"
        "from storage import Archive\n"
        "from storage.importers import import_path\n"
        "archive = asyncio.run(Archive.open(sys.argv[1]))\n"
        "import_path(archive, sys.argv[2], 'ada')\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script, str(root), str(export)], cwd=ROOT, env={**os.environ}
    )
    user_dir = root / "users" / USER
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if sum(1 for p in user_dir.iterdir() if p.name.startswith("chatgpt_")) >= 30:
            break
        time.sleep(0.005)
    assert proc.poll() is None, "the import finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    partial = sum(1 for p in user_dir.iterdir() if p.name.startswith("chatgpt_"))
    assert 30 <= partial < count
    report = import_path(archive, export, USER)
    assert report.imported + report.updated + report.skipped == count
    assert report.failed == 0
    _check_complete(archive, _expected(count, 8))


# ----------------------------------------------------------------- property: random trees
@st.composite
def trees(draw: st.DrawFn) -> tuple[list[int | None], int, list[int]]:
    size = draw(st.integers(min_value=1, max_value=25))
    parents: list[int | None] = [None]
    for i in range(1, size):
        parents.append(draw(st.integers(min_value=0, max_value=i - 1)))
    current = draw(st.integers(min_value=0, max_value=size - 1))
    order = draw(st.permutations(range(size)))
    return parents, current, list(order)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(trees(), st.booleans())
def test_random_trees_keep_active_path_and_branch_count(
    tree: tuple[list[int | None], int, list[int]], with_children: bool
) -> None:
    parents, current, order = tree
    conv = chatgpt_conversation("prop", "Random tree", parents, current)
    nodes = list(conv["mapping"].items())
    conv["mapping"] = dict([nodes[0]] + [nodes[1 + i] for i in order])  # shuffled node order
    for i in order:  # times out of order too: a child may be "older" than its parent
        conv["mapping"][f"m{i}"]["message"]["create_time"] = 1_700_000_000 + (i * 7919) % 101
    if not with_children:
        for node in conv["mapping"].values():
            node.pop("children")
    expected_path = []
    node: int | None = current
    while node is not None:
        expected_path.append(f"m{node}")
        node = parents[node]
    expected_path.reverse()
    leaves = {i for i in range(len(parents))} - {p for p in parents if p is not None}
    with tempfile.TemporaryDirectory() as tmp:
        archive = asyncio.run(_new_archive(Path(tmp) / "archive"))
        export = Path(tmp) / "conversations.json"
        export.write_text(json.dumps([conv]))
        import_path(archive, export, USER)
        path = asyncio.run(archive.get_branch(USER, "chatgpt_prop"))
        assert [m.message_id for m in path] == expected_path
        found = asyncio.run(archive.list_leaves(USER, "chatgpt_prop"))
        assert sorted(found) == sorted(f"m{i}" for i in leaves)
