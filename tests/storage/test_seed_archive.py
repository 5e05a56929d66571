"""Archives written by the original "Flatfile Chat Database v2" open as they are."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from storage import Archive, Message
from tests.conftest import shared_data

pytestmark = pytest.mark.asyncio


async def test_complex_data_users_sessions_panel_and_personas() -> None:
    archive = await Archive.open(shared_data("seed-archive", "v2", "complex_data"))
    assert [u.user_id for u in await archive.list_users()] == ["markly2"]
    sessions = await archive.list_sessions("markly2")
    assert {s.session_id for s in sessions} == {
        "chat_session_20250811_213534_522068",
        "chat_session_20250811_213649_411156",
        "panel_session_76e50845",
    }
    panel = await archive.get_session("markly2", "panel_session_76e50845")
    assert panel.is_panel and panel.participants == ["jake_thompson", "marcus_chen"]
    messages = await archive.get_all_messages("markly2", "panel_session_76e50845")
    assert messages[0].content == "please introduce yourself"
    # Per-persona copies are merged without duplicates, in time order.
    assert len({m.message_id for m in messages}) == len(messages)
    assert [m.timestamp for m in messages] == sorted(m.timestamp for m in messages)
    assert await archive.count_messages("markly2", "panel_session_76e50845") == len(messages)
    personas = await archive.list_personas()
    assert len(personas) == 14
    wilson = await archive.get_persona("dr._sarah_wilson")
    assert wilson.name == "Dr. Sarah Wilson" and "analysis" in wilson.expertise
    report = await archive.verify()
    assert report.ok, report.problems


async def test_demo_data_users_sessions_documents() -> None:
    archive = await Archive.open(shared_data("seed-archive", "v2", "demo_data_automated"))
    users = {u.user_id: u for u in await archive.list_users()}
    assert set(users) == {"alice_researcher", "bob_developer", "carol_analyst"}
    assert users["alice_researcher"].username == "Dr. Alice Johnson"
    titles = [s.title for s in await archive.list_sessions("alice_researcher")]
    assert "Deep Learning Research Discussion" in titles
    sid = "chat_session_20250805_215718_834707"
    messages = await archive.get_all_messages("alice_researcher", sid)
    assert len(messages) == 6 and messages[0].role == "user"
    docs = await archive.list_documents("alice_researcher", sid)
    assert [d.original_name for d in docs] == ["transformer_architecture_guide.md"]
    data = await archive.read_document("alice_researcher", docs[0].doc_id, sid)
    assert data.startswith(b"#")
    assert (await archive.verify()).ok


async def test_writing_to_a_copy_of_a_seed_archive(tmp_path: Path) -> None:
    copy = tmp_path / "seed"
    shutil.copytree(shared_data("seed-archive", "v2", "complex_data"), copy)
    for p in copy.rglob("*"):
        p.chmod(0o755 if p.is_dir() else 0o644)
    archive = await Archive.open(copy)
    sid = "chat_session_20250811_213534_522068"
    before = await archive.get_all_messages("markly2", sid)
    await archive.add_message("markly2", sid, Message(role="user", content="new question"))
    after = await archive.get_all_messages("markly2", sid)
    assert after[:-1] == before and after[-1].content == "new question"
    # The seed's stale message_count (0) is recounted by the first write.
    assert (await archive.get_session("markly2", sid)).message_count == len(after)
    assert not (copy / "archive.json").exists()  # we never convert an archive behind its back
    await archive.delete_message("markly2", sid, before[0].message_id)
    assert before[0].message_id not in {
        m.message_id for m in await archive.get_all_messages("markly2", sid)
    }
