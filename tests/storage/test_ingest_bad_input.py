"""Every bad input of issue 4 gets a clear per-file error; the rest of the batch goes on and
nothing of a failed file is stored."""

from __future__ import annotations

import io
import os
import zipfile
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
import pytest_asyncio
from pypdf import PdfReader, PdfWriter

from storage import Archive
from storage.ingest import StoredDocument, ingest
from storage.ingest import docx as docx_extractor
from storage.settings import Settings
from tests.conftest import shared_data
from tests.storage.ingest_support import docs_dir, extracted_text

pytestmark = pytest.mark.asyncio

LIMIT = 64 * 1024


@pytest_asyncio.fixture
async def small(archive_dir: Path) -> AsyncIterator[Archive]:
    """An archive with user 'ada' and a 64 KiB document size limit."""
    settings = Settings.model_validate({"document": {"max_bytes": LIMIT}})
    async with await Archive.open(archive_dir, create=True, settings=settings) as archive:
        await archive.create_user("ada")
        yield archive


def _docx(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buffer.getvalue()


def _encrypted_pdf() -> bytes:
    """RC4 (no 'cryptography' package needed) with a user password."""
    writer = PdfWriter()
    writer.append(PdfReader(shared_data("docs", "multilang.pdf")))
    writer.encrypt("secret", algorithm="RC4-128")
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def _truncated_pdf() -> bytes:
    return shared_data("docs", "GeoBase_NHNC1_Data_Model_UML_EN.pdf").read_bytes()[:50_000]


BAD: dict[str, tuple[Callable[[], bytes], str]] = {
    "empty.txt": (lambda: b"", "empty file (0 bytes)"),
    "huge.txt": (lambda: b"words " * (LIMIT // 5), "over the limit of 65,536 bytes"),
    "junk.txt": (lambda: bytes(range(256)) * 20, "content is binary"),
    "latin-junk.txt": (lambda: bytes(range(0x80, 0x100)) * 20, "not text"),
    "encrypted.pdf": (_encrypted_pdf, "password-protected PDF"),
    "truncated.pdf": (_truncated_pdf, "corrupt or truncated PDF"),
    "not-a-pdf.pdf": (lambda: b"just some text\n", "is not a PDF"),
    "not-a-zip.docx": (lambda: b"plain words, no zip\n", "DOCX files are zip archives"),
    "other-zip.docx": (lambda: _docx({"hello.txt": b"hi"}), "without word/document.xml"),
    "bomb.docx": (
        lambda: _docx({"word/document.xml": b"<" + b" " * (20 * 1024 * 1024)}),
        "zip bomb",
    ),
    "broken.docx": (
        lambda: _docx({"word/document.xml": b"<w:document>not xml", "[Content_Types].xml": b""}),
        "corrupt DOCX",
    ),
}


@pytest.mark.parametrize("name", sorted(BAD))
async def test_bad_file_fails_alone(small: Archive, tmp_path: Path, name: str) -> None:
    make, expected = BAD[name]
    src = tmp_path / "in"
    src.mkdir()
    (src / "a-good.txt").write_text("A good file before.\n")
    (src / name).write_bytes(make())
    (src / "z-good.md").write_text("# Fine\n\nA good file after.\n")
    report = await ingest(small, [src], "ada")
    by_name = {Path(f.path).name: f for f in report.files}
    assert by_name[name].status == "failed"
    assert expected in (by_name[name].reason or ""), by_name[name].reason
    assert by_name[name].doc_id is None
    assert by_name["a-good.txt"].status == by_name["z-good.md"].status == "ingested"
    stored = {d.original_name for d in await small.list_documents("ada")}
    assert stored == {"a-good.txt", "z-good.md"}
    names = sorted(os.listdir(docs_dir(small, "ada")))
    assert not any(n.startswith(".") for n in names)  # no temp files left
    assert len(names) == 1 + 2 * 3  # metadata.json + (original, .txt, .chunks.jsonl) x 2
    assert (await small.verify()).problems == []


async def test_invalid_utf8_is_kept_with_replacement_characters(
    small: Archive, tmp_path: Path
) -> None:
    path = tmp_path / "latin1.txt"
    path.write_bytes("Un café au lait, s'il vous plaît. ".encode("latin-1") * 10)
    [result] = (await ingest(small, [path], "ada")).files
    assert result.status == "ingested"
    assert any("U+FFFD" in w for w in result.warnings)
    text = extracted_text(docs_dir(small, "ada"), result.doc_id or "")
    assert "caf\ufffd au lait" in text
    record = await small.get_document("ada", result.doc_id or "")
    assert record.analysis["warnings"] == result.warnings


async def test_html_declared_charset_is_used(small: Archive, tmp_path: Path) -> None:
    path = tmp_path / "page.html"
    html = '<html><head><meta charset="iso-8859-1"></head><body><p>Crème brûlée</p></body></html>'
    path.write_bytes(html.encode("latin-1"))
    [result] = (await ingest(small, [path], "ada")).files
    assert "Crème brûlée" in extracted_text(docs_dir(small, "ada"), result.doc_id or "")
    assert any("iso-8859-1" in w for w in result.warnings)


async def test_html_with_megabytes_of_script(archive: Archive, tmp_path: Path) -> None:
    await archive.create_user("ada")
    path = tmp_path / "app.html"
    script = "var s = '<p>hidden</p>'; function f(x) { return x * 2; }\n" * 100_000
    path.write_text(
        f"<html><head><title>App</title><style>p {{color: red}}</style></head><body>"
        f"<p>Visible words here.</p><script>{script}</script><p>And after.</p></body></html>"
    )
    assert path.stat().st_size > 5_000_000
    [result] = (await ingest(archive, [path], "ada")).files
    assert result.status == "ingested"
    text = extracted_text(docs_dir(archive, "ada"), result.doc_id or "")
    assert text == "Visible words here.\n\nAnd after."
    assert (await archive.get_document("ada", result.doc_id or "")).analysis["title"] == "App"


async def test_zip_bomb_by_total_size(
    small: Archive, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(docx_extractor, "MAX_UNCOMPRESSED", 1000)
    path = tmp_path / "many.docx"
    path.write_bytes(_docx({"word/document.xml": b"<a/>", "word/x.xml": b"x" * 2000}))
    [result] = (await ingest(small, [path], "ada")).files
    assert result.status == "failed"
    assert "over the cap of 1,000" in (result.reason or "")


async def test_missing_path_fails_alone(small: Archive, tmp_path: Path) -> None:
    good = tmp_path / "good.txt"
    good.write_text("still here")
    report = await ingest(small, [tmp_path / "gone.txt", good], "ada")
    assert [f.status for f in report.files] == ["failed", "ingested"]
    assert "file not found" in (report.files[0].reason or "")


async def test_path_vanishing_mid_job(small: Archive, tmp_path: Path) -> None:
    files = [tmp_path / f"{n}.txt" for n in range(3)]
    for n, path in enumerate(files):
        path.write_text(f"file number {n}")

    def delete_next(stored: StoredDocument) -> None:
        if stored.record.original_name == "0.txt":
            files[1].unlink()

    report = await ingest(small, files, "ada", after_store=delete_next)
    assert [f.status for f in report.files] == ["ingested", "failed", "ingested"]
    assert "moved or deleted" in (report.files[1].reason or "")
    assert (await small.verify()).ok


async def test_unreadable_file(
    small: Archive, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Root reads anything whatever its mode, so the permission error is simulated where the
    # job opens the file; the real-permissions variant below runs as a normal user.
    import storage.ingest.job as job

    path = tmp_path / "secret.txt"
    path.write_text("no")

    def denied(*args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(job, "open", denied, raising=False)
    [result] = (await ingest(small, [path], "ada")).files
    assert result.status == "failed"
    assert result.reason == "cannot read: permission denied"


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores file permissions")
async def test_unreadable_file_for_real(small: Archive, tmp_path: Path) -> None:
    path = tmp_path / "secret.txt"
    path.write_text("no")
    path.chmod(0)
    [result] = (await ingest(small, [path], "ada")).files
    assert result.reason == "cannot read: permission denied"


async def test_fifo_is_not_read(small: Archive, tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.txt"
    os.mkfifo(fifo)
    [result] = (await ingest(small, [fifo], "ada")).files
    assert result.status == "failed"
    assert "not a regular file" in (result.reason or "")
