"""Dropped documents become searchable, hits pointing at the right chunk and page."""

from __future__ import annotations

import pytest

from storage import Archive
from tests.conftest import shared_data

pytestmark = pytest.mark.asyncio

# (file, known phrase, page or None) from ../shared/data/SOURCES.md
KNOWN = [
    ("crazyones.txt", "round pegs in the square holes", None),
    ("GeoBase_NHNC1_Data_Model_UML_EN.pdf", "NetworkLinearFlow", 10),
    ("Seige_of_Vicksburg_Sample_OCR.pdf", "expedite the glorious victory", 4),
    ("multilang.pdf", "Привет, мир", 1),
    ("blk-paras-and-tables.docx", "Donec semper facilisis metus finibus malesuada", None),
    ("hdr-header-footer.docx", "Header for section-1", None),
    ("utf-8-kanji.sample.html", "智に働けば角が立つ", None),
    ("si-game.sample.html", "Royals pitchers allowed seven home runs", None),
    ("country-codes.csv", "阿富汗伊斯兰共和国", None),
    ("pypdf-history.md", "wider range of real-world PDF instances", None),
]


async def test_each_real_document_is_found_by_its_phrase(archive: Archive) -> None:
    await archive.create_user("ada")
    session = await archive.create_session("ada", "Reading")
    paths = [shared_data("docs", name) for name, _, _ in KNOWN]
    report = await archive.ingest(paths, "ada", session.session_id)
    statuses = {f.path: f.status for f in report.files}
    assert set(statuses.values()) == {"ingested"}, statuses
    records = {r.original_name: r for r in await archive.list_documents("ada",
                                                                        session.session_id)}
    for name, phrase, page in KNOWN:
        results = await archive.search(f'"{phrase}"', "keyword", kind="document")
        doc_id = records[name].doc_id
        hits = [h for h in results.hits if h.doc_id == doc_id]
        assert hits, f"{phrase!r} not found in {name}"
        hit = hits[0]
        assert hit.session_id == session.session_id and hit.chunk is not None
        assert hit.char_start is not None and hit.char_end is not None
        if page is not None:
            assert any(h.page == page for h in hits), (name, [h.page for h in hits])
    assert archive.index_problems() == []
    # Deleting a document takes its chunks out of the index.
    await archive.delete_document("ada", records["crazyones.txt"].doc_id, session.session_id)
    results = await archive.search('"round pegs"', "keyword", kind="document")
    assert results.total == 0
