"""Every real document in ../shared/data/docs/ ingested: its known phrase (SOURCES.md) is in
the chunk that names the right page or line, and the on-disk contract holds."""

from __future__ import annotations

from pathlib import Path

import pytest

from storage import Archive
from storage.ingest import ingest
from tests.conftest import shared_data
from tests.storage.ingest_support import chunks_with, docs_dir, extracted_text, read_chunks

pytestmark = pytest.mark.asyncio

# (file, phrase, the pages it is on, or None for a document without pages)
PHRASES = [
    ("GeoBase_NHNC1_Data_Model_UML_EN.pdf", "NetworkLinearFlow", {10, 18}),
    ("GeoBase_NHNC1_Data_Model_UML_EN.pdf", "National Hydro Network", {1, 3, 10, 19}),
    ("multilang.pdf", "Привет, мир", {1}),
    ("multilang.pdf", "こんにちは世界", {1}),
    ("multilang.pdf", "مرحبا بالعالم", {1}),
    ("multilang.pdf", "你好世界", {1}),
    ("multilang.pdf", "สวัสดีชาวโลก", {1}),
    ("issue-297.pdf", "test example", {1}),
    ("Seige_of_Vicksburg_Sample_OCR.pdf", "expedite the glorious victory", {4}),
    ("crazyones.txt", "The round pegs in the square holes", None),
    ("pypdf-history.md", "wider range of real-world PDF instances", None),
    ("blk-paras-and-tables.docx", "Donec semper facilisis metus finibus malesuada", None),
    ("blk-paras-and-tables.docx", "Text before", None),
    ("blk-paras-and-tables.docx", "Between", None),
    ("par-hyperlinks.docx", "One awesome hyperlink.", None),
    ("hdr-header-footer.docx", "section with header", None),
    ("hdr-header-footer.docx", "Header for section-1", None),
    ("hdr-header-footer.docx", "Footer for section 1", None),
    ("utf-8-kanji.sample.html", "智に働けば角が立つ", None),
    ("si-game.sample.html", "Royals pitchers allowed seven home runs", None),
    ("country-codes.csv", "阿富汗伊斯兰共和国", None),
    ("country-codes.csv", "Afghanistan", None),
]


async def _ingest_one(archive: Archive, name: str) -> tuple[Path, str]:
    await archive.create_user("ada")
    report = await ingest(archive, [shared_data("docs", name)], "ada")
    [result] = report.files
    assert result.status == "ingested", result.reason
    assert result.doc_id is not None
    return docs_dir(archive, "ada"), result.doc_id


@pytest.mark.parametrize(("name", "phrase", "pages"), PHRASES)
async def test_known_phrase_in_the_right_chunk(
    archive: Archive, name: str, phrase: str, pages: set[int] | None
) -> None:
    folder, doc_id = await _ingest_one(archive, name)
    chunks = read_chunks(folder, doc_id)
    hits = chunks_with(chunks, phrase)
    assert hits, f"{phrase!r} not in any chunk of {name}"
    if pages is None:
        assert all(h["page"] is None for h in hits)
        text = extracted_text(folder, doc_id)
        for hit in hits:  # the line range names the lines the phrase is on
            lines = text.split("\n")[hit["line_start"] - 1 : hit["line_end"]]
            assert phrase.split()[0] in "\n".join(lines)
    else:
        assert pages <= {h["page"] for h in hits}
        assert all(h["line_start"] is None for h in hits)
    record = await archive.get_document("ada", doc_id)
    assert record.analysis["searchable"] is True
    assert record.analysis["chunks"] == len(chunks)
    assert (folder / doc_id).read_bytes() == shared_data("docs", name).read_bytes()


async def test_pdf_analysis(archive: Archive) -> None:
    folder, doc_id = await _ingest_one(archive, "GeoBase_NHNC1_Data_Model_UML_EN.pdf")
    record = await archive.get_document("ada", doc_id)
    analysis = record.analysis
    assert record.mime_type == "application/pdf"
    assert analysis["pages"] == 19
    assert analysis["extractor"] == "pdf"
    assert analysis["language"] == "en"
    assert analysis["words"] > 2000
    assert analysis["characters"] == len(extracted_text(folder, doc_id))
    assert analysis["reading_time_minutes"] > 5
    assert {"network", "hydro"} <= set(analysis["keywords"])
    assert analysis["title"] == "National Hydro Network, Canada, Level 1"
    assert {c["page"] for c in read_chunks(folder, doc_id)} == set(range(1, 20))


async def test_image_only_pdf_is_stored_not_searchable(archive: Archive) -> None:
    folder, doc_id = await _ingest_one(archive, "git.pdf")
    record = await archive.get_document("ada", doc_id)
    assert record.analysis["searchable"] is False
    assert record.analysis["chunks"] == 0
    assert record.analysis["pages"] == 1
    assert any("no extractable text" in w for w in record.analysis["warnings"])
    assert read_chunks(folder, doc_id) == []


async def test_encrypted_pdf_fails_clearly(archive: Archive) -> None:
    await archive.create_user("ada")
    path = shared_data("docs", "crazyones-encrypted-256.pdf")
    report = await ingest(archive, [path], "ada")
    [result] = report.files
    assert result.status == "failed"
    assert "password-protected PDF" in (result.reason or "")
    assert await archive.list_documents("ada") == []


async def test_broken_xref_pdf_is_read_with_a_warning(archive: Archive) -> None:
    _, doc_id = await _ingest_one(archive, "issue-297.pdf")
    record = await archive.get_document("ada", doc_id)
    assert any("startxref" in w for w in record.analysis["warnings"])


@pytest.mark.parametrize(
    ("name", "language"),
    [
        ("utf-8-kanji.sample.html", "ja"),
        ("crazyones.txt", "en"),
        ("si-game.sample.html", "en"),
    ],
)
async def test_language(archive: Archive, name: str, language: str) -> None:
    _, doc_id = await _ingest_one(archive, name)
    assert (await archive.get_document("ada", doc_id)).analysis["language"] == language


async def test_html_visible_text_only(archive: Archive) -> None:
    folder, doc_id = await _ingest_one(archive, "si-game.sample.html")
    text = extracted_text(folder, doc_id)
    assert "function(" not in text and "document.write" not in text
    record = await archive.get_document("ada", doc_id)
    assert record.mime_type == "text/html"
    assert record.analysis["title"].startswith("Detroit Tigers vs. Kansas City Royals")


async def test_docx_titles_and_markdown_heading(archive: Archive) -> None:
    _, doc_id = await _ingest_one(archive, "pypdf-history.md")
    record = await archive.get_document("ada", doc_id)
    assert record.analysis["title"] == "History of pypdf"
    assert record.mime_type == "text/markdown"


async def test_the_whole_folder_verifies(archive: Archive) -> None:
    await archive.create_user("ada")
    report = await ingest(archive, [shared_data("docs", "crazyones.txt").parent], "ada")
    assert report.count("ingested") == 13
    assert report.count("failed") == 1  # the AES-encrypted PDF
    verify = await archive.verify()
    assert verify.ok and verify.problems == []
