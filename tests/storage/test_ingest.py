"""The ingest job: storing, duplicates, unsupported types, folders, progress, cancellation,
deletion and the on-disk contract the search indexer reads."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from storage import Archive
from storage.errors import NotFoundError
from storage.ingest import Extracted, IngestCancelled, StoredDocument, default_extractors, ingest
from storage.jobs import JobControl, Progress
from storage.settings import Settings
from tests.conftest import shared_data
from tests.storage.ingest_support import docs_dir, extracted_text, read_chunks

pytestmark = pytest.mark.asyncio

Chat = tuple[Archive, str, str]
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(50)


def _write(folder: Path, files: dict[str, str | bytes]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str):
            path.write_text(content, encoding="utf-8")
        else:
            path.write_bytes(content)
    return folder


async def test_into_a_session(chat: Chat, tmp_path: Path) -> None:
    archive, user, sid = chat
    path = _write(tmp_path / "in", {"notes.md": "# Notes\n\nThe engine computes.\n"}) / "notes.md"
    [result] = (await ingest(archive, [path], user, sid)).files
    assert result.status == "ingested"
    [record] = await archive.list_documents(user, sid)
    assert record.doc_id == result.doc_id
    assert record.original_name == "notes.md"
    assert record.mime_type == "text/markdown"
    assert record.uploaded_by == user
    assert record.size == path.stat().st_size
    assert await archive.read_document(user, record.doc_id, sid) == path.read_bytes()
    assert record.analysis["title"] == "Notes"
    folder = docs_dir(archive, user, sid)
    assert read_chunks(folder, record.doc_id)[0]["line_start"] == 1
    assert await archive.list_documents(user) == []  # not in the user's library


async def test_duplicates(chat: Chat, tmp_path: Path) -> None:
    archive, user, _ = chat
    src = _write(tmp_path / "in", {"a.txt": "same words", "b.txt": "same words", "c.txt": "other"})
    report = await ingest(archive, [src], user)
    assert [f.status for f in report.files] == ["ingested", "duplicate", "ingested"]
    first = report.files[0].doc_id
    assert report.files[1].doc_id == first
    assert f"same content as {first!r}" in (report.files[1].reason or "")
    again = await ingest(archive, [src / "c.txt"], user)
    assert again.files[0].status == "duplicate"
    assert len(await archive.list_documents(user)) == 2


async def test_unsupported_is_stored_not_searchable(chat: Chat, tmp_path: Path) -> None:
    archive, user, _ = chat
    path = _write(tmp_path / "in", {"picture.png": PNG, "data.bin": b"\x00\x01\x02" * 10})
    report = await ingest(archive, [path], user)
    assert [(f.status, f.reason) for f in report.files] == [
        ("unsupported", "stored, not searchable"),
        ("unsupported", "stored, not searchable"),
    ]
    records = {r.original_name: r for r in await archive.list_documents(user)}
    assert records["picture.png"].mime_type == "image/png"
    assert records["picture.png"].analysis["searchable"] is False
    assert sorted(os.listdir(docs_dir(archive, user))) == sorted(
        ["metadata.json", *(r.doc_id for r in records.values())]
    )


async def test_content_decides_the_type(chat: Chat, tmp_path: Path) -> None:
    archive, user, _ = chat
    pdf = shared_data("docs", "issue-297.pdf").read_bytes()
    _write(tmp_path / "in", {"report.dat": pdf, "page": "<!DOCTYPE html><p>Hi there</p>"})
    report = await ingest(archive, [tmp_path / "in" / "report.dat", tmp_path / "in" / "page"], user)
    records = {r.original_name: r for r in await archive.list_documents(user)}
    assert [f.status for f in report.files] == ["ingested", "ingested"]
    assert records["report.dat"].mime_type == "application/pdf"
    assert records["page"].mime_type == "text/html"


async def test_large_text_is_compressed(archive_dir: Path, tmp_path: Path) -> None:
    settings = Settings.model_validate({"document": {"compress_text_above": 1000}})
    async with await Archive.open(archive_dir, create=True, settings=settings) as archive:
        await archive.create_user("ada")
        big = _write(tmp_path / "in", {"big.txt": "A sentence of words. " * 500}) / "big.txt"
        [result] = (await ingest(archive, [big], "ada")).files
        folder = docs_dir(archive, "ada")
        doc_id = result.doc_id or ""
        assert (folder / f"{doc_id}.txt.zst").exists()
        assert not (folder / f"{doc_id}.txt").exists()
        assert extracted_text(folder, doc_id) == big.read_text()
        assert len(read_chunks(folder, doc_id)) > 10
        assert (await archive.verify()).problems == []


async def test_after_store_sees_each_complete_document(chat: Chat, tmp_path: Path) -> None:
    archive, user, sid = chat
    src = _write(tmp_path / "in", {"a.txt": "alpha", "b.txt": "beta", "c.png": PNG})
    seen: list[StoredDocument] = []

    def index(stored: StoredDocument) -> None:
        meta = stored.folder / "metadata.json"
        assert stored.record.doc_id in meta.read_text()  # the record is already written
        seen.append(stored)

    report = await ingest(archive, [src], user, sid, after_store=index)
    assert [s.record.doc_id for s in seen] == [r.doc_id for r in report.stored]
    assert all(s.session_id == sid and s.user_id == user for s in seen)
    assert seen[0].chunks_path.exists()
    assert report.timings["after_store"] >= 0


async def test_progress_reports_every_file(chat: Chat, tmp_path: Path) -> None:
    archive, user, _ = chat
    src = _write(tmp_path / "in", {f"{n}.txt": f"file {n}" for n in range(3)})
    seen: list[Progress] = []
    control = JobControl("ingest", seen.append)
    await ingest(archive, [src], user, control=control)
    assert seen[0] == Progress(0, 3, "")
    assert seen[-1].done == seen[-1].total == 3


async def test_cancel_mid_batch_keeps_finished_files(chat: Chat, tmp_path: Path) -> None:
    archive, user, _ = chat
    src = _write(tmp_path / "in", {f"{n}.txt": f"file number {n}" for n in range(6)})
    control = JobControl("ingest")

    def cancel_after_two(stored: StoredDocument) -> None:
        if len(seen) == 1:
            control.cancel()
        seen.append(stored)

    seen: list[StoredDocument] = []
    with pytest.raises(IngestCancelled) as info:
        await ingest(archive, [src], user, control=control, after_store=cancel_after_two)
    assert [f.status for f in info.value.report.files] == ["ingested", "ingested"]
    assert info.value.done == 2 and info.value.total == 6
    assert len(await archive.list_documents(user)) == 2
    verify = await archive.verify()
    assert verify.ok and verify.problems == []


async def test_cancel_during_extraction_stores_nothing_of_that_file(
    chat: Chat, tmp_path: Path
) -> None:
    archive, user, _ = chat
    control = JobControl("ingest")
    text = default_extractors()["text"]

    class Cancelling:
        name = "text"

        def extract(self, data: bytes, source: str) -> Extracted:
            control.cancel()  # the user presses cancel while this file is extracted
            return text.extract(data, source)

    src = _write(tmp_path / "in", {"a.txt": "one"})
    with pytest.raises(IngestCancelled) as info:
        await ingest(archive, [src], user, control=control, extractors={"text": Cancelling()})
    assert info.value.report.files == []
    assert await archive.list_documents(user) == []
    assert (await archive.verify()).problems == []


async def test_delete_removes_every_derived_file(chat: Chat, tmp_path: Path) -> None:
    archive, user, _ = chat
    src = _write(tmp_path / "in", {"keep.txt": "keep me", "drop.txt": "drop me"})
    report = await ingest(archive, [src], user)
    drop = next(f.doc_id for f in report.files if f.path.endswith("drop.txt"))
    assert drop is not None
    await archive.delete_document(user, drop)
    folder = docs_dir(archive, user)
    assert not [n for n in os.listdir(folder) if n.startswith(drop)]
    assert len(os.listdir(folder)) == 1 + 3
    with pytest.raises(NotFoundError):
        await archive.get_document(user, drop)


async def test_unknown_user_or_session(archive: Archive, tmp_path: Path) -> None:
    path = _write(tmp_path / "in", {"a.txt": "x"}) / "a.txt"
    with pytest.raises(NotFoundError, match="user 'nobody'"):
        await ingest(archive, [path], "nobody")
    await archive.create_user("ada")
    with pytest.raises(NotFoundError, match="session"):
        await ingest(archive, [path], "ada", "chat_session_missing")


async def test_folder_walk(chat: Chat, tmp_path: Path) -> None:
    archive, user, _ = chat
    outside = _write(tmp_path / "outside", {"secret.txt": "outside the folder"})
    src = _write(
        tmp_path / "in",
        {
            "a.txt": "top",
            "sub/b.md": "# nested",
            ".hidden.txt": "hidden",
            ".git/config": "hidden folder",
        },
    )
    (src / "link-out.txt").symlink_to(outside / "secret.txt")
    (src / "link-dir-out").symlink_to(outside)
    (src / "sub" / "loop").symlink_to(src)  # a loop back to the top
    (src / "sub" / "alias.txt").symlink_to(src / "a.txt")  # inside: followed
    report = await ingest(archive, [src], user)
    names = [Path(f.path).relative_to(src).as_posix() for f in report.files]
    assert names == ["a.txt", "sub/alias.txt", "sub/b.md"]
    assert [f.status for f in report.files] == ["ingested", "duplicate", "ingested"]
    skipped = {Path(s.path).name: s.reason for s in report.skipped}
    assert "outside" in skipped["link-out.txt"]
    assert "outside" in skipped["link-dir-out"]
    assert "loop" in skipped["loop"]
