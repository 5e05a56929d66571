"""Importing the sample exports of ../shared/data/exports/ (values checked by hand once),
re-import, the v1 seed round-trip, branches, and the raw source kept under each session."""

from __future__ import annotations

import datetime as dt
import itertools
import json
from pathlib import Path

import pytest
import pytest_asyncio

from storage import Archive
from storage.importers import SOURCE_FILE, ImportReport, import_archive, read_source
from tests.conftest import shared_data

pytestmark = pytest.mark.asyncio

USER = "ada"


def utc(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


@pytest_asyncio.fixture
async def archive(archive: Archive) -> Archive:
    await archive.create_user(USER)
    return archive


async def run(archive: Archive, path: Path, **kwargs: object) -> ImportReport:
    return await import_archive(archive, path, USER, **kwargs)  # type: ignore[arg-type]


async def branch_contents(archive: Archive, session_id: str) -> list[tuple[str, str]]:
    return [(m.role, m.content) for m in await archive.get_branch(USER, session_id)]


# ---------------------------------------------------------------------------------- ChatGPT
async def test_chatgpt_tree_keeps_every_branch_and_the_active_path(archive: Archive) -> None:
    report = await run(archive, shared_data("exports", "chatgpt", "chatgpt-tree.json"))
    assert (report.format, report.imported, report.skipped, report.failed) == ("chatgpt", 1, 0, 0)
    sid = "chatgpt_d5dc5307-6807-41a0-8b04-4acee626eeb7"
    assert [(c.session_id, c.messages, c.status) for c in report.conversations] == [
        (sid, 12, "imported")
    ]
    session = await archive.get_session(USER, sid)
    assert session.title == "Assist user with summary"
    assert session.message_count == 12  # 13 nodes, the message-less root is not stored
    assert session.created_at == utc("2024-05-01T17:37:11.148505+00:00")
    assert session.updated_at == utc("2024-05-01T17:37:40.879308+00:00")
    assert session.metadata["active_leaf_id"] == "f63b8e17-aa5c-4ca6-a1bf-d4d285e269b8"
    assert session.metadata["model"] == "text-davinci-002-render-sha"
    assert session.metadata["source"] == {
        "format": "chatgpt",
        "id": "d5dc5307-6807-41a0-8b04-4acee626eeb7",
        "title": "Assist user with summary",
    }
    path = await archive.get_branch(USER, sid)
    assert [(m.role, m.content[:30]) for m in path] == [
        ("system", ""),
        ("user", "hi there"),
        ("assistant", "Hello! How can I assist you to"),
        ("user", "hi again"),
        ("assistant", "Hey! Welcome back. What's on y"),
        ("user", "tell me a joke"),
        ("assistant", "Sure, here's one for you:\n\nWhy"),
    ]
    assert "Why don't scientists trust atoms?" in path[-1].content
    assert path[0].metadata["hidden"] is True  # weight 0: kept, but not shown
    assert path[0].parent_id is None
    assert all(m.parent_id == p.message_id for p, m in itertools.pairwise(path))
    assert path[1].timestamp == utc("2024-05-01T17:37:11.150442+00:00")
    # A null create_time takes the conversation's time.
    assert path[0].timestamp == utc("2024-05-01T17:37:11.148505+00:00")
    leaves = await archive.list_leaves(USER, sid)
    assert sorted(leaves) == sorted(
        [
            "ada93f81-f59e-4b31-933d-1357efd68bfc",  # the interrupted story
            "d0d2a7df-d2fc-4df9-bf0a-1c5121e227ae",  # the first joke
            "f63b8e17-aa5c-4ca6-a1bf-d4d285e269b8",  # the regenerated joke (active)
        ]
    )
    story = await archive.get_message(USER, sid, "ada93f81-f59e-4b31-933d-1357efd68bfc")
    assert story.metadata["status"] == "in_progress"
    assert story.metadata["source_metadata"]["finish_details"]["type"] == "interrupted"
    other = await archive.get_branch(USER, sid, "ada93f81-f59e-4b31-933d-1357efd68bfc")
    assert [m.content for m in other][1:6] == [
        "hi there",
        "Hello! How can I assist you today?",
        "so cool bro",
        "Thanks! What brings you here today?",
        "tell me a story",
    ]
    # Every message is stored after its parent (time order within that).
    stored = await archive.get_all_messages(USER, sid)
    seen: set[str] = set()
    for m in stored:
        assert m.parent_id is None or m.parent_id in seen
        seen.add(m.message_id)


async def test_chatgpt_web_browsing_export(archive: Archive) -> None:
    report = await run(archive, shared_data("exports", "chatgpt", "chatgpt-export.json"))
    assert [(c.title, c.messages, c.status) for c in report.conversations] == [
        ("Conversation 1. Web Search", 16, "imported"),
        ("Conversation 2", 5, "imported"),
    ]
    sid = "chatgpt_d6523d1e-7ec3-474f-a363-0e9dffdb3d93"
    path = await archive.get_branch(USER, sid)
    assert [m.role for m in path] == [
        "system", "user", "assistant", "tool", "assistant", "tool", "tool", "assistant",
        "user", "assistant", "tool", "assistant", "tool", "assistant", "user", "assistant",
    ]  # fmt: skip
    known = "What is the fuel consumption of vw  transporter with 8 people in l/km"
    assert path[1].content == known
    assert path[2].content == 'search("Volkswagen Transporter fuel consumption with 8 people l/km")'
    assert path[2].metadata["content_type"] == "code"
    assert path[2].metadata["recipient"] == "browser"
    assert path[3].metadata["content_type"] == "tether_browsing_display"
    assert path[6].metadata["content_type"] == "tether_quote"
    assert path[6].metadata["content_fields"]["domain"]
    assert path[-1].content.endswith("\u301013\u2020source\u3011.")
    assert path[-1].metadata["model"] == "gpt-4"
    assert path[-1].timestamp == utc("2024-01-07T12:20:34.629284+00:00")
    session = await archive.get_session(USER, sid)
    assert session.updated_at == utc("2024-01-08T12:37:22.442031+00:00")
    short = await branch_contents(archive, "chatgpt_7c5ab593-dbab-43bd-862d-2c3c1eeebf6a")
    assert [r for r, _ in short] == ["system", "user", "assistant", "user", "assistant"]
    assert short[3] == ("user", "give me code in C#")


async def test_chatgpt_modern_export_skips_the_entry_without_mapping(archive: Archive) -> None:
    report = await run(archive, shared_data("exports", "chatgpt", "chatgpt-modern-export.json"))
    assert [(c.title, c.messages, c.status, c.reason) for c in report.conversations] == [
        ("Deploying the staging cluster", 5, "imported", ""),
        ("Corrupted entry", 0, "skipped", "entry has no 'mapping' (no messages)"),
        ("Weeknight pasta", 2, "imported", ""),
    ]
    sid = "chatgpt_6b0f0d9c-0000-4000-8000-000000000001"
    path = await archive.get_branch(USER, sid)
    assert [(m.role, m.content) for m in path if not m.metadata.get("hidden")] == [
        ("user", "How do I roll back the deploy?"),
        ("assistant", "Run `helm rollback staging`."),
        ("user", "And if that fails?"),
        ("assistant", "Restore from the last known-good chart."),
    ]
    context = path[0]
    assert context.metadata["content_type"] == "user_editable_context"
    assert context.metadata["hidden"] is True
    session = await archive.get_session(USER, sid)
    assert session.metadata["user_context"] == {
        "user_profile": "The user is an SRE.",
        "user_instructions": "Answer concisely.",
    }
    assert session.metadata["model"] == "gpt-5-thinking"
    assert session.metadata["source_fields"]["memory_scope"] == "global_enabled"
    assert path[2].metadata["source_fields"] == {"end_turn": True, "channel": "final"}
    pasta = await branch_contents(archive, "chatgpt_6b0f0d9c-0000-4000-8000-000000000003")
    assert pasta == [("user", "Something with anchovies?"), ("assistant", "Puttanesca.")]


# ---------------------------------------------------------------------------------- Claude
async def test_claude_real_export_counts_titles_and_timestamps(archive: Archive) -> None:
    report = await run(archive, shared_data("exports", "claude", "claude_example.json"))
    assert (report.format, report.imported, report.skipped, report.failed) == ("claude", 83, 2, 0)
    assert report.messages_added == 557
    assert {c.reason for c in report.conversations if c.status == "skipped"} == {
        "conversation has no messages"
    }
    sid = "claude_76a904ac-7838-4a01-9e91-020411c40566"
    session = await archive.get_session(USER, sid)
    assert session.title == "How Photosynthesis Works"
    assert session.message_count == 10
    path = await archive.get_branch(USER, sid)
    assert [m.role for m in path] == ["user", "assistant"] * 5
    assert path[0].content == "Can you explain how photosynthesis works in simple terms?"
    assert path[-2].content == "What about forests?"
    first = "claude_636f35a1-13bb-479e-836b-e320aec9c6ac"
    session = await archive.get_session(USER, first)
    assert session.title == ""  # empty name and empty text: nothing to title it with
    assert session.created_at == utc("2024-03-13T14:48:37.115821+00:00")
    messages = await archive.get_all_messages(USER, first)
    assert len(messages) == 4
    assert messages[0].timestamp == utc("2024-03-13T14:48:44.500345+00:00")
    assert [m.parent_id for m in messages] == [None] + [m.message_id for m in messages[:-1]]
    assert len(await archive.list_sessions(USER)) == 83


async def test_claude_thinking_and_tool_blocks(archive: Archive) -> None:
    await run(archive, shared_data("exports", "claude", "claude_thinking_example.json"))
    path = await archive.get_branch(USER, "claude_11111111-2222-3333-4444-555555555555")
    assert [(m.role, m.content) for m in path] == [
        ("user", "Can you greet me?"),
        ("assistant", "Hello there! It's great to hear from you."),
    ]
    assert path[1].metadata["reasoning"].startswith("The user asked for a greeting.")
    assert path[1].metadata["content_blocks"][0]["summaries"] == [
        {"summary": "Planning a warm greeting"}
    ]
    await run(archive, shared_data("exports", "claude", "claude_tooluse_example.json"))
    sid = "claude_7b1e2b3a-1111-4a1a-9c1a-000000000001"
    assert (await archive.get_session(USER, sid)).title == "Tokyo weather"
    path = await archive.get_branch(USER, sid)
    assert [(m.message_id, m.role, m.content) for m in path] == [
        ("m1", "user", "What's the weather in Tokyo right now?"),
        ("m2", "assistant", "It's 68F and clear in Tokyo right now."),
        ("m3", "user", "Also, is it going to rain tomorrow?"),
        ("m4", "assistant", ""),
        ("m5", "user", ""),
    ]
    assert [b["type"] for b in path[3].metadata["content_blocks"]] == ["tool_use", "tool_result"]
    assert path[4].attachments[0]["source"]["media_type"] == "image/png"


async def test_claude_attachments_branches_and_jsonl(archive: Archive, tmp_path: Path) -> None:
    root = "00000000-0000-4000-8000-000000000000"

    def msg(uuid: str, sender: str, text: str, parent: str, minute: int) -> dict[str, object]:
        return {
            "uuid": uuid,
            "text": text,
            "content": [{"type": "text", "text": text}],
            "sender": sender,
            "created_at": f"2025-02-01T10:{minute:02d}:00Z",
            "attachments": [],
            "files": [],
            "parent_message_uuid": parent,
        }

    first = msg("q1", "human", "Summarise the report", root, 0)
    first["attachments"] = [
        {
            "file_name": "report.txt",
            "file_size": 27,
            "file_type": "txt",
            "extracted_content": "Quarterly zeppelin revenue",
        }
    ]
    conv = {
        "uuid": "c-branch",
        "name": "",
        "created_at": "2025-02-01T10:00:00Z",
        "updated_at": "2025-02-01T10:09:00Z",
        "current_leaf_message_uuid": "a1b",
        "chat_messages": [
            first,
            msg("a1", "assistant", "First answer", "q1", 1),
            msg("a1b", "assistant", "Second answer", "q1", 2),
        ],
    }
    path = tmp_path / "conversations.jsonl"
    path.write_bytes(json.dumps(conv).encode() + b"\n")
    report = await run(archive, path)
    assert (report.format, report.imported) == ("claude", 1)
    sid = "claude_c-branch"
    session = await archive.get_session(USER, sid)
    assert session.title == "Summarise the report"  # no name: the first human message
    assert session.metadata["active_leaf_id"] == "a1b"
    assert await branch_contents(archive, sid) == [
        ("user", "Summarise the report"),
        ("assistant", "Second answer"),
    ]
    assert sorted(await archive.list_leaves(USER, sid)) == ["a1", "a1b"]
    q1 = await archive.get_message(USER, sid, "q1")
    assert q1.parent_id is None
    assert q1.attachments[0]["extracted_content"] == "Quarterly zeppelin revenue"


# ------------------------------------------------------------------------------- Open WebUI
async def test_openwebui_export(archive: Archive) -> None:
    report = await run(archive, shared_data("exports", "openwebui", "openwebui-export.json"))
    assert [(c.session_id, c.title, c.messages) for c in report.conversations] == [
        ("openwebui_reasoning-chat", "Chat with reasoning", 2),
        ("openwebui_tool-chat", "Chat with tool call", 2),
        ("openwebui_simple-chat", "Simple linear chat", 2),
    ]
    path = await archive.get_branch(USER, "openwebui_reasoning-chat")
    assert [(m.role, m.content) for m in path] == [
        ("user", "What is 15 * 17?"),
        ("assistant", "255"),
    ]
    assert path[1].metadata["reasoning"] == "> Let me break this down..."
    assert path[1].metadata["model"] == "deepseek-r1"
    assert path[1].metadata["details"][0]["attributes"] == {"done": "true", "duration": "3"}
    assert path[1].metadata["raw_content"].startswith('<details type="reasoning"')
    assert path[1].timestamp == utc("2023-11-14T22:13:30+00:00")
    assert path[1].metadata["source_fields"]["output"][0]["type"] == "reasoning"
    tool = await archive.get_branch(USER, "openwebui_tool-chat")
    assert tool[1].content == "The weather in Paris is 18C with rain."
    assert tool[1].metadata["details"][0]["type"] == "tool_calls"
    assert "reasoning" not in tool[1].metadata
    session = await archive.get_session(USER, "openwebui_simple-chat")
    assert session.created_at == utc("2023-11-14T22:46:40+00:00")
    assert session.updated_at == utc("2023-11-14T22:46:45+00:00")
    assert session.metadata["model"] == "llama3.1:latest"
    assert (session.metadata["pinned"], session.metadata["archived"]) == (False, False)


async def test_openwebui_legacy_form_branches_and_tags(archive: Archive, tmp_path: Path) -> None:
    chat = {
        "id": "legacy-1",
        "title": "Legacy",
        "tags": [{"name": "work"}],
        "history": {
            "currentId": "b",
            "messages": {
                "q": {"id": "q", "parentId": None, "childrenIds": ["a", "b"], "role": "user",
                      "content": "Pick one", "timestamp": 1_700_000_000_000},
                "a": {"id": "a", "parentId": "q", "childrenIds": [], "role": "assistant",
                      "content": "A", "timestamp": 1_700_000_001},
                "b": {"id": "b", "parentId": "q", "childrenIds": [], "role": "assistant",
                      "content": "B", "timestamp": 1_700_000_002},
            },
        },
    }  # fmt: skip
    path = tmp_path / "export.json"
    path.write_text(json.dumps([chat]))
    report = await run(archive, path)
    assert (report.format, report.imported) == ("openwebui", 1)
    q = await archive.get_message(USER, "openwebui_legacy-1", "q")
    assert q.timestamp == utc("2023-11-14T22:13:20+00:00")  # milliseconds read as such
    assert await branch_contents(archive, "openwebui_legacy-1") == [
        ("user", "Pick one"),
        ("assistant", "B"),
    ]
    session = await archive.get_session(USER, "openwebui_legacy-1")
    assert session.metadata["tags"] == ["work"]
    assert len(await archive.list_leaves(USER, "openwebui_legacy-1")) == 2


# ------------------------------------------------------------------------ v1 seed archive
async def test_v1_seed_round_trip(archive: Archive) -> None:
    seed = shared_data("seed-archive", "v1")
    report = await run(archive, seed)
    assert (report.format, report.imported, report.failed) == ("flatfile", 3, 0)
    for folder in sorted((seed / "alice").iterdir()):
        if not folder.is_dir():
            continue
        original = json.loads((folder / "session.json").read_text())
        session = await archive.get_session(USER, folder.name)
        assert session.title == original["title"] == "Web Development Questions"
        assert session.created_at == dt.datetime.fromisoformat(original["created_at"]).astimezone()
        assert session.message_count == 8  # the seed's own count was a stale 0
        lines = [json.loads(x) for x in (folder / "messages.jsonl").read_text().splitlines()]
        stored = await archive.get_all_messages(USER, folder.name)
        assert len(stored) == len(lines) == 8
        for line, message in zip(lines, stored, strict=True):
            assert message.message_id == line["id"]
            assert (message.role, message.content) == (line["role"], line["content"])
            assert message.timestamp == dt.datetime.fromisoformat(line["timestamp"]).astimezone()
            assert (message.attachments, message.metadata) == (
                line["attachments"],
                line["metadata"],
            )
        assert stored[0].content == "Hi! I'm learning Python and need help with lists"
        context = await archive.get_context(USER, folder.name)
        original_context = json.loads((folder / "situational_context.json").read_text())
        assert context is not None
        assert context.summary == original_context["summary"]
        assert context.entities == original_context["entities"]
        assert session.metadata["source"]["id"] == f"alice/{folder.name}"
    again = await run(archive, seed)
    assert (again.imported, again.updated, again.skipped) == (0, 0, 3)


# ----------------------------------------------------------------------- idempotency, report
async def test_reimport_of_every_sample_changes_nothing(archive: Archive) -> None:
    exports = shared_data("exports")
    files = sorted(exports.rglob("*.json"))
    for path in files:
        await run(archive, path)
    before = _snapshot(archive.root)
    for path in files:
        report = await run(archive, path)
        assert report.imported == report.updated == report.failed == 0
        assert report.messages_added == 0
    after = _snapshot(archive.root)
    changed = {k for k in before if before[k] != after.get(k)}
    assert changed == set()
    new = set(after) - set(before)
    assert len(new) == len(files)  # one report per import, nothing else
    assert all(p.startswith(f"users/{USER}/imports/") for p in new)
    check = await archive.verify()
    assert check.problems == []


def _snapshot(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in root.rglob("*")
        if p.is_file() and ".locks" not in p.parts
    }


async def test_newer_export_adds_only_new_messages_and_updates_title(
    archive: Archive, tmp_path: Path
) -> None:
    from tests.storage.export_factory import chatgpt_conversation, write_chatgpt_export

    path = tmp_path / "conversations.json"
    write_chatgpt_export(path, iter([chatgpt_conversation("c1", "Old title", [None, 0], 1)]))
    await run(archive, path)
    await archive.update_session(USER, "chatgpt_c1", metadata={"note": "mine"})
    newer = chatgpt_conversation("c1", "New title", [None, 0, 1, 2], 3)
    newer["is_archived"] = True
    write_chatgpt_export(path, iter([newer]))
    report = await run(archive, path)
    assert [(c.status, c.added, c.messages) for c in report.conversations] == [("updated", 2, 4)]
    session = await archive.get_session(USER, "chatgpt_c1")
    assert session.title == "New title"
    assert session.metadata["archived"] is True
    assert session.metadata["note"] == "mine"
    assert session.metadata["active_leaf_id"] == "m3"
    assert [m.message_id for m in await archive.get_all_messages(USER, "chatgpt_c1")] == [
        "m0", "m1", "m2", "m3"
    ]  # fmt: skip
    # A title the user changed in Flatchat survives re-importing the same export.
    await archive.update_session(USER, "chatgpt_c1", title="My own title")
    again = await run(archive, path)
    assert again.conversations[0].status == "skipped"
    assert (await archive.get_session(USER, "chatgpt_c1")).title == "My own title"


async def test_report_is_stored_and_raw_source_kept(archive: Archive) -> None:
    sample = shared_data("exports", "openwebui", "openwebui-export.json")
    report = await run(archive, sample)
    assert report.report_path is not None
    stored = json.loads(Path(report.report_path).read_text())
    assert Path(report.report_path).parent == archive.root / "users" / USER / "imports"
    assert {k: stored[k] for k in ("format", "imported", "updated", "skipped", "failed")} == {
        "format": "openwebui",
        "imported": 3,
        "updated": 0,
        "skipped": 0,
        "failed": 0,
    }
    assert stored["conversations"][0] == {
        "source_id": "reasoning-chat",
        "session_id": "openwebui_reasoning-chat",
        "title": "Chat with reasoning",
        "messages": 2,
        "status": "imported",
        "reason": "",
        "added": 2,
        "file": "openwebui-export.json",
        "problems": [],
    }
    folder = archive.root / "users" / USER / "openwebui_tool-chat"
    assert (folder / SOURCE_FILE).exists()
    original = json.loads(sample.read_text())[1]
    assert read_source(archive, USER, "openwebui_tool-chat") == original
    assert [s.session_id for s in await archive.list_sessions(USER)] != []
    assert (await archive.verify()).problems == []


async def test_dry_run_writes_nothing(archive: Archive) -> None:
    before = _snapshot(archive.root)
    report = await run(
        archive, shared_data("exports", "chatgpt", "chatgpt-export.json"), dry_run=True
    )
    assert (report.dry_run, report.imported, report.messages_added) == (True, 2, 21)
    assert report.report_path is None
    assert _snapshot(archive.root) == before
