"""Imported conversations are searchable, attachments' extracted text included."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from storage import Archive
from tests.conftest import shared_data

pytestmark = pytest.mark.asyncio


async def test_imported_chatgpt_export_is_searchable(archive: Archive) -> None:
    await archive.create_user("ada")
    report = await archive.import_archive(shared_data("exports", "chatgpt", "chatgpt-tree.json"),
                                          "ada")
    assert report.imported >= 1
    results = await archive.search('"trust atoms"', "keyword")
    assert results.total >= 1
    hit = results.hits[0]
    assert hit.user_id == "ada" and hit.session_id and hit.message_id
    message = await archive.get_message("ada", hit.session_id, hit.message_id)
    assert "trust atoms" in message.content


async def test_claude_attachment_text_is_indexed(archive: Archive, tmp_path: Path) -> None:
    export = [{
        "uuid": "5a1f7c1e-0000-4000-8000-000000000001",
        "name": "Contract review",
        "created_at": "2025-02-01T10:00:00.000000Z",
        "updated_at": "2025-02-01T10:05:00.000000Z",
        "account": {"uuid": "acc"},
        "chat_messages": [
            {"uuid": "5a1f7c1e-0000-4000-8000-000000000002", "sender": "human",
             "text": "Please check the attached lease.", "content": [
                 {"type": "text", "text": "Please check the attached lease."}],
             "created_at": "2025-02-01T10:00:00.000000Z",
             "updated_at": "2025-02-01T10:00:00.000000Z",
             "attachments": [{"file_name": "lease.txt", "file_type": "text/plain",
                              "file_size": 60, "extracted_content":
                              "The tenant shall water the aspidistra every Tuesday."}],
             "files": []},
        ],
    }]
    path = tmp_path / "conversations.json"
    path.write_text(json.dumps(export))
    await archive.create_user("ada")
    await archive.import_archive(path, "ada")
    results = await archive.search("aspidistra", "keyword")
    assert [h.kind for h in results.hits] == ["message"]
    assert "aspidistra" in results.hits[0].snippet


async def test_imported_sessions_are_found_by_their_source(archive: Archive) -> None:
    """An import records where a conversation came from as {"format", "id", "title"}: the
    source: filter takes its format, and the session says it in one word."""
    await archive.create_user("ada")
    await archive.import_archive(shared_data("exports", "chatgpt", "chatgpt-tree.json"), "ada")
    results = await archive.search('"trust atoms"', "keyword")
    session = await archive.get_session("ada", results.hits[0].session_id)
    assert isinstance(session.metadata["source"], dict)
    assert session.source == "chatgpt"
    assert (await archive.search('source:chatgpt "trust atoms"', "keyword")).total == results.total
    assert (await archive.search('"trust atoms"', "keyword", source="chatgpt")).total >= 1
    assert (await archive.search('source:claude "trust atoms"', "keyword")).total == 0
