"""A Flatfile v1 archive with documents, context history and per-persona message copies is
imported whole: nothing in it is left behind, and importing it again adds nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from storage import Archive
from storage.importers.job import import_path

pytestmark = pytest.mark.asyncio


def v1_archive(root: Path) -> Path:
    session = root / "carol" / "chat_session_20250101_120000"
    (session / "documents").mkdir(parents=True)
    (session / "context_history").mkdir()
    (session / "session.json").write_text(json.dumps({
        "id": "chat_session_20250101_120000", "user_id": "carol", "title": "Budget review",
        "created_at": "2025-01-01T12:00:00", "updated_at": "2025-01-01T12:05:00",
        "message_count": 0, "metadata": {}}))
    lines = [
        {"id": "m1", "role": "user", "content": "Here is the budget.",
         "timestamp": "2025-01-01T12:00:00", "attachments": [], "metadata": {}},
        {"id": "m3", "role": "assistant", "content": "Travel is over by 12%.",
         "timestamp": "2025-01-01T12:02:00", "attachments": [], "metadata": {}},
    ]
    (session / "messages.jsonl").write_text("".join(json.dumps(m) + "\n" for m in lines))
    persona = [lines[0], {"id": "m2", "role": "analyst", "content": "Reading the sheet now.",
                          "timestamp": "2025-01-01T12:01:00", "attachments": [],
                          "metadata": {"persona": "analyst"}}]
    (session / "analyst_messages.jsonl").write_text(
        "".join(json.dumps(m) + "\n" for m in persona))
    (session / "situational_context.json").write_text(json.dumps({
        "summary": "Budget, second pass", "key_points": [], "entities": {},
        "timestamp": "2025-01-01T12:05:00", "confidence": 0.9, "message_range": None}))
    for stamp, summary in (("20250101_120100", "First look"), ("20250101_120300", "Travel")):
        (session / "context_history" / f"context_{stamp}.json").write_text(json.dumps({
            "summary": summary, "key_points": [], "entities": {},
            "timestamp": f"2025-01-01T{stamp[9:11]}:{stamp[11:13]}:00", "confidence": 0.5,
            "message_range": None}))
    (session / "documents" / "ab12cd34_budget.csv").write_bytes(b"item,cost\ntravel,1200\n")
    (session / "documents" / "metadata.json").write_text(json.dumps({
        "ab12cd34_budget.csv": {"filename": "ab12cd34_budget.csv", "original_name": "budget.csv",
                                "mime_type": "text/csv", "size": 22,
                                "uploaded_at": "2025-01-01T12:00:00", "uploaded_by": "carol",
                                "metadata": {"quarter": "Q1"}}}))
    return root


async def test_documents_history_and_persona_copies_come_along(
        archive: Archive, tmp_path: Path) -> None:
    source = v1_archive(tmp_path / "v1")
    await archive.create_user("carol")
    report = import_path(archive, source, "carol")
    assert (report.format, report.imported, report.ignored_files) == ("flatfile", 1, [])
    sid = "chat_session_20250101_120000"
    messages = await archive.get_all_messages("carol", sid)
    assert [m.message_id for m in messages] == ["m1", "m2", "m3"]  # merged, in time order
    history = await archive.get_context_history("carol", sid)
    assert [c.summary for c in history] == ["Travel", "First look"]
    assert (await archive.get_context("carol", sid)).summary == "Budget, second pass"
    docs = await archive.list_documents("carol", sid)
    assert [(d.original_name, d.mime_type, d.metadata["quarter"]) for d in docs] == [
        ("budget.csv", "text/csv", "Q1")]
    assert await archive.read_document("carol", docs[0].doc_id, sid) == \
        b"item,cost\ntravel,1200\n"
    again = import_path(archive, source, "carol")
    assert [c.status for c in again.conversations] == ["skipped"]
    assert len(await archive.get_context_history("carol", sid)) == 2
    assert len(await archive.list_documents("carol", sid)) == 1
