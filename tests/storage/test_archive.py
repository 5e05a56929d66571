"""The archive's API on real temp folders: users, sessions, messages, context, personas, panels,
documents, compaction, verify, and the errors bad input gets."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import orjson
import pytest

from storage import (
    AlreadyExistsError,
    Archive,
    CorruptRecordError,
    DocumentTooLargeError,
    DuplicateDocumentError,
    InvalidIdError,
    Message,
    MessageTooLargeError,
    NotAnArchiveError,
    NotFoundError,
    PanelInsight,
    PanelMessage,
    Persona,
    ReadOnlyArchiveError,
    SituationalContext,
    UnsupportedFormatError,
)
from storage.settings import Settings

pytestmark = pytest.mark.asyncio

Chat = tuple[Archive, str, str]


async def test_seed_readme_basic_usage_in_our_terms(archive: Archive) -> None:
    # The original README: create_user, create_session, add_message, get_all_messages.
    await archive.create_user("alice", {"name": "Alice Smith"})
    session = await archive.create_session("alice", "My First Chat")
    message = Message(role="user", content="Hello, how are you?", timestamp="2025-01-01T10:00:00")
    await archive.add_message("alice", session.session_id, message)
    messages = await archive.get_all_messages("alice", session.session_id)
    assert len(messages) == 1 and messages[0].content == "Hello, how are you?"
    assert (await archive.get_user("alice")).username == "Alice Smith"
    assert [s.title for s in await archive.list_sessions("alice")] == ["My First Chat"]


async def test_create_writes_archive_json_and_reopens(archive_dir: Path) -> None:
    async with await Archive.open(archive_dir, create=True) as archive:
        assert archive.format_version == 1
    info = orjson.loads((archive_dir / "archive.json").read_bytes())
    assert info["format_version"] == 1 and "created_at" in info
    async with await Archive.open(archive_dir) as again:
        assert await again.list_users() == []


async def test_newer_format_version_is_refused(archive_dir: Path) -> None:
    archive_dir.mkdir()
    (archive_dir / "archive.json").write_text('{"format_version": 99}')
    with pytest.raises(UnsupportedFormatError, match="format_version 99"):
        await Archive.open(archive_dir)


async def test_opening_what_is_not_an_archive(tmp_path: Path) -> None:
    with pytest.raises(NotAnArchiveError, match="does not exist"):
        await Archive.open(tmp_path / "missing")
    (tmp_path / "stuff").mkdir()
    (tmp_path / "stuff" / "file.txt").write_text("x")
    with pytest.raises(NotAnArchiveError, match=r"no archive\.json"):
        await Archive.open(tmp_path / "stuff")
    with pytest.raises(NotAnArchiveError, match="not empty"):
        await Archive.open(tmp_path / "stuff", create=True)


async def test_archive_json_settings_and_environment(archive_dir: Path) -> None:
    archive_dir.mkdir()
    (archive_dir / "archive.json").write_text(
        '{"format_version": 1, "settings": {"storage": {"max_message_bytes": 2048}}}'
    )
    archive = await Archive.open(archive_dir, environ={})
    assert archive.settings.storage.max_message_bytes == 2048
    archive = await Archive.open(
        archive_dir, environ={"FLATCHAT_STORAGE__MAX_MESSAGE_BYTES": "4096"}
    )
    assert archive.settings.storage.max_message_bytes == 4096


# ----------------------------------------------------------------------------- users
async def test_users_crud(archive: Archive) -> None:
    created = await archive.create_user("ada", username="Ada", preferences={"theme": "dark"})
    assert await archive.user_exists("ada") and not await archive.user_exists("bob")
    with pytest.raises(AlreadyExistsError, match="'ada'"):
        await archive.create_user("ada")
    updated = await archive.update_user("ada", preferences={"lang": "en"}, metadata={"team": "x"})
    assert updated.preferences == {"theme": "dark", "lang": "en"}
    assert updated.metadata == {"team": "x"}
    assert updated.created_at == created.created_at
    assert await archive.get_user("ada") == updated
    await archive.create_user("bob")
    assert [u.user_id for u in await archive.list_users()] == ["ada", "bob"]
    await archive.delete_user("bob")
    assert [u.user_id for u in await archive.list_users()] == ["ada"]
    with pytest.raises(NotFoundError, match="user 'bob' not found"):
        await archive.get_user("bob")


async def test_unknown_profile_fields_survive_update(archive: Archive) -> None:
    await archive.create_user("ada")
    path = archive.layout.profile("ada")
    data = orjson.loads(path.read_bytes())
    data["written_by_newer_version"] = {"keep": True}
    path.write_bytes(orjson.dumps(data))
    await archive.update_user("ada", username="Ada L.")
    assert orjson.loads(path.read_bytes())["written_by_newer_version"] == {"keep": True}


@pytest.mark.parametrize("bad", ["..", "../x", "a/b", "a\\b", "a\x00", ".hidden", "", "x" * 129])
async def test_bad_ids_never_touch_the_disk(archive: Archive, bad: str) -> None:
    before = sorted(p.relative_to(archive.root) for p in archive.root.rglob("*"))
    with pytest.raises(InvalidIdError) as info:
        await archive.create_user(bad)
    assert info.value.value == bad
    await archive.create_user("ok")
    with pytest.raises(InvalidIdError):
        await archive.create_session("ok", "t", session_id=bad)
    with pytest.raises(InvalidIdError):
        await archive.get_session("ok", bad)
    after = {p.relative_to(archive.root) for p in archive.root.rglob("*")}
    assert set(before) <= after
    assert not any(".." in str(p) for p in after)


# --------------------------------------------------------------------------- sessions
async def test_sessions_crud_sort_and_paging(archive: Archive) -> None:
    await archive.create_user("ada")
    made = [await archive.create_session("ada", f"s{i}") for i in range(5)]
    assert made == sorted(made, key=lambda s: s.session_id)  # ids sort by creation
    assert all(s.session_id.startswith("chat_session_") for s in made)
    await archive.add_message("ada", made[1].session_id, Message(role="user", content="x"))
    listed = await archive.list_sessions("ada")
    assert listed[0].session_id == made[1].session_id  # most recent activity first
    assert [s.title for s in await archive.list_sessions("ada", 2, 1)] == [
        s.title for s in listed[1:3]
    ]
    by_title = await archive.list_sessions("ada", sort_by="title", descending=False)
    assert [s.title for s in by_title] == ["s0", "s1", "s2", "s3", "s4"]
    updated = await archive.update_session(
        "ada", made[0].session_id, title="renamed", metadata={"pinned": True, "tags": ["a"]}
    )
    assert updated.title == "renamed" and updated.metadata == {"pinned": True, "tags": ["a"]}
    updated = await archive.update_session("ada", made[0].session_id, metadata={"tags": []})
    assert updated.metadata == {"pinned": True, "tags": []}
    await archive.delete_session("ada", made[0].session_id)
    with pytest.raises(NotFoundError, match="session"):
        await archive.get_session("ada", made[0].session_id)
    assert len(await archive.list_sessions("ada")) == 4


async def test_session_types(archive: Archive) -> None:
    await archive.create_user("ada")
    debate = await archive.create_session("ada", "d", "debate")
    assert debate.session_type == "debate" and debate.session_id.startswith("debate_session_")
    with pytest.raises(InvalidIdError, match="session type"):
        await archive.create_session("ada", "x", "karaoke")
    assert [s.session_id for s in await archive.list_sessions("ada", session_type="debate")] == [
        debate.session_id
    ]


async def test_missing_user_or_session(archive: Archive) -> None:
    with pytest.raises(NotFoundError, match="user 'nobody'"):
        await archive.create_session("nobody", "t")
    await archive.create_user("ada")
    with pytest.raises(NotFoundError, match="session 'nope'"):
        await archive.add_message("ada", "nope", Message(role="user"))
    with pytest.raises(NotFoundError, match="user 'ghost'"):
        await archive.get_messages("ghost", "nope")


# --------------------------------------------------------------------------- messages
async def test_all_means_all_and_pages(chat: Chat) -> None:
    archive, user, sid = chat
    batch = [Message(role="user" if i % 2 else "assistant", content=f"m{i}") for i in range(75)]
    await archive.add_messages(user, sid, batch)
    everything = await archive.get_all_messages(user, sid)
    assert everything == batch  # the original system capped "all" at 20
    assert await archive.get_messages(user, sid, 10, 0) == batch[:10]
    assert await archive.get_messages(user, sid, 10, 70) == batch[70:]
    assert await archive.get_messages(user, sid, 10, 0, from_end=True) == batch[-10:]
    assert await archive.count_messages(user, sid) == 75
    session = await archive.get_session(user, sid)
    assert session.message_count == 75 and session.updated_at >= session.created_at
    assert [m async for m in archive.iter_messages(user, sid)] == batch
    assert [m async for m in archive.iter_messages(user, sid, reverse=True, batch_size=7)] == batch[
        ::-1
    ]


async def test_add_many_is_one_line_per_message(chat: Chat) -> None:
    archive, user, sid = chat
    await archive.add_messages(user, sid, [{"role": "user", "content": "a\nb"}] * 3)
    path = archive.layout.session_dir(user, sid) / "messages.jsonl"
    assert path.read_bytes().count(b"\n") == 3


async def test_message_too_large_writes_nothing(archive_dir: Path) -> None:
    archive = await Archive.open(
        archive_dir, create=True, overrides={"storage": {"max_message_bytes": 2048}}
    )
    await archive.create_user("ada")
    sid = (await archive.create_session("ada", "t")).session_id
    await archive.add_message("ada", sid, Message(role="user", content="small"))
    session_file = archive.layout.session_json("ada", sid).read_bytes()
    with pytest.raises(MessageTooLargeError, match="over the limit of 2,048 bytes"):
        await archive.add_message("ada", sid, Message(role="user", content="x" * 5000))
    assert await archive.count_messages("ada", sid) == 1
    assert archive.layout.session_json("ada", sid).read_bytes() == session_file


async def test_edit_and_delete(chat: Chat) -> None:
    archive, user, sid = chat
    msgs = await archive.add_messages(
        user, sid, [Message(role="user", content=f"m{i}", metadata={"k": i}) for i in range(5)]
    )
    edited = await archive.edit_message(user, sid, msgs[2].message_id, content="changed")
    assert edited.content == "changed" and edited.metadata["k"] == 2
    assert "edited_at" in edited.metadata
    assert (await archive.get_message(user, sid, msgs[2].message_id)).content == "changed"
    await archive.delete_message(user, sid, msgs[0].message_id)
    remaining = await archive.get_all_messages(user, sid)
    assert [m.content for m in remaining] == ["m1", "changed", "m3", "m4"]
    assert (await archive.get_session(user, sid)).message_count == 4
    with pytest.raises(NotFoundError, match="message 'nope'"):
        await archive.delete_message(user, sid, "nope")


async def test_branches(chat: Chat) -> None:
    archive, user, sid = chat
    q = Message(message_id="q", role="user", content="joke?")
    a1 = Message(message_id="a1", role="assistant", content="first", parent_id="q")
    a2 = Message(message_id="a2", role="assistant", content="regenerated", parent_id="q")
    f = Message(message_id="f", role="user", content="another")  # follows a2 (previous line)
    await archive.add_messages(user, sid, [q, a1, a2, f])
    assert [m.message_id for m in await archive.get_branch(user, sid)] == ["q", "a2", "f"]
    assert [m.message_id for m in await archive.get_branch(user, sid, "a1")] == ["q", "a1"]
    assert await archive.list_leaves(user, sid) == ["a1", "f"]
    await archive.set_active_leaf(user, sid, "a1")
    assert [m.message_id for m in await archive.get_branch(user, sid)] == ["q", "a1"]
    with pytest.raises(NotFoundError):
        await archive.set_active_leaf(user, sid, "zzz")


async def test_compaction_round_trip(chat: Chat) -> None:
    archive, user, sid = chat
    msgs = await archive.add_messages(
        user, sid, [Message(role="user", content=f"m{i}" * 50) for i in range(300)]
    )
    assert await archive.compact_session(user, sid)
    folder = archive.layout.session_dir(user, sid)
    assert (folder / "messages.jsonl.zst").exists() and not (folder / "messages.jsonl").exists()
    assert await archive.get_all_messages(user, sid) == msgs
    assert await archive.get_messages(user, sid, 5, 0, from_end=True) == msgs[-5:]
    assert not await archive.compact_session(user, sid)
    new = await archive.add_message(user, sid, Message(role="user", content="later"))
    assert await archive.get_all_messages(user, sid) == [*msgs, new]
    assert (await archive.verify()).problems == []


async def test_compact_idle_uses_the_setting(chat: Chat) -> None:
    archive, user, sid = chat
    await archive.add_message(user, sid, Message(role="user", content="old"))
    assert await archive.compact_idle() == []  # 30 days by default: not idle yet
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=31)
    assert await archive.compact_idle(now=later) == [(user, sid)]
    assert await archive.compact_idle(idle_days=0, now=later) == []  # 0 = never


# ---------------------------------------------------------------------------- context
async def test_situational_context_and_history(chat: Chat) -> None:
    archive, user, sid = chat
    assert await archive.get_context(user, sid) is None
    base = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    for i in range(3):
        ctx = SituationalContext(
            summary=f"v{i}",
            key_points=["k"],
            entities={"t": ["x"]},
            confidence=0.5,
            timestamp=base + dt.timedelta(hours=i),
        )
        await archive.update_context(user, sid, ctx)
        await archive.save_context_snapshot(user, sid)
    assert (await archive.get_context(user, sid)).summary == "v2"
    history = await archive.get_context_history(user, sid)
    assert [c.summary for c in history] == ["v2", "v1", "v0"]
    assert [c.summary for c in await archive.get_context_history(user, sid, limit=2)] == [
        "v2",
        "v1",
    ]
    with pytest.raises(ValueError, match="confidence"):
        await archive.update_context(user, sid, {"summary": "x", "confidence": 3})


# ------------------------------------------------------------------- personas and panels
async def test_personas_global_and_user(archive: Archive) -> None:
    await archive.create_user("ada")
    await archive.save_persona(Persona(id="critic", name="Critic", traits=["sharp"]))
    await archive.save_persona(Persona(id="critic", name="Ada's critic"), user_id="ada")
    await archive.save_persona(Persona(id="muse", name="Muse"))
    assert (await archive.get_persona("critic")).name == "Critic"
    mine = await archive.get_persona("critic", "ada")
    assert mine.name == "Ada's critic" and mine.owner_id == "ada" and not mine.is_global
    assert [p.name for p in await archive.list_personas("ada")] == ["Ada's critic", "Muse"]
    await archive.delete_persona("critic", "ada")
    assert (await archive.get_persona("critic", "ada")).name == "Critic"
    with pytest.raises(InvalidIdError):
        await archive.save_persona(Persona(id="../evil", name="x"))


async def test_panels(archive: Archive) -> None:
    await archive.create_user("ada")
    for pid in ("optimist", "skeptic"):
        await archive.save_persona(Persona(id=pid, name=pid.title()))
    with pytest.raises(NotFoundError, match="persona 'nobody'"):
        await archive.create_panel("ada", ["optimist", "nobody"])
    panel = await archive.create_panel("ada", ["optimist", "skeptic"], "expert_panel", "Q")
    assert panel.is_panel and panel.participants == ["optimist", "skeptic"]
    assert panel.panel_type == "expert_panel"
    first = await archive.add_panel_message(
        "ada",
        panel.session_id,
        PanelMessage(role="optimist", persona_id="optimist", content="Yes!", consensus_level=0.7),
    )
    await archive.add_panel_message(
        "ada",
        panel.session_id,
        {
            "role": "skeptic",
            "persona_id": "skeptic",
            "content": "No.",
            "response_to": first.message_id,
        },
    )
    got = await archive.get_panel_messages("ada", panel.session_id)
    assert [m.persona_id for m in got] == ["optimist", "skeptic"]
    assert isinstance(got[1], PanelMessage) and got[1].response_to == first.message_id
    await archive.save_panel_insight(
        "ada",
        panel.session_id,
        PanelInsight(
            panel_id=panel.session_id,
            type="conclusion",
            content="Maybe",
            supporting_messages=[first.message_id],
        ),
    )
    insights = await archive.get_panel_insights("ada", panel.session_id)
    assert [i.content for i in insights] == ["Maybe"]
    assert [p.session_id for p in await archive.list_panels("ada")] == [panel.session_id]
    chat = await archive.create_session("ada", "plain")
    with pytest.raises(NotFoundError, match="panel"):
        await archive.add_panel_message("ada", chat.session_id, {"role": "x"})


# -------------------------------------------------------------------------- documents
async def test_documents(chat: Chat) -> None:
    archive, user, sid = chat
    record = await archive.save_document(user, b"hello world", "Notes ü.txt", session_id=sid)
    assert record.size == 11 and record.mime_type == "text/plain"
    assert record.sha256 and record.doc_id.startswith(record.sha256[:8])
    assert await archive.read_document(user, record.doc_id, sid) == b"hello world"
    with pytest.raises(DuplicateDocumentError) as dup:
        await archive.save_document(user, b"hello world", "copy.txt", session_id=sid)
    assert dup.value.existing_doc_id == record.doc_id
    library = await archive.save_document(user, b"\x00\x01", "blob.bin")
    assert [d.doc_id for d in await archive.list_documents(user)] == [library.doc_id]
    assert [d.doc_id for d in await archive.list_documents(user, sid)] == [record.doc_id]
    updated = await archive.update_document(user, record.doc_id, sid, analysis={"words": 2})
    assert updated.analysis == {"words": 2}
    await archive.delete_document(user, record.doc_id, sid)
    assert await archive.list_documents(user, sid) == []
    assert not (archive.layout.documents_dir(user, sid) / record.doc_id).exists()
    with pytest.raises(NotFoundError, match="document"):
        await archive.get_document(user, record.doc_id, sid)


async def test_document_size_limit(archive_dir: Path) -> None:
    archive = await Archive.open(
        archive_dir, create=True, settings=Settings.model_validate({"document": {"max_bytes": 10}})
    )
    await archive.create_user("ada")
    with pytest.raises(DocumentTooLargeError, match="11 bytes, over the limit of 10"):
        await archive.save_document("ada", b"x" * 11, "big.txt")
    assert not archive.layout.documents_dir("ada", None).exists()


# ----------------------------------------------------------------- corrupt and read-only
async def test_corrupt_session_is_named_and_others_still_open(archive: Archive) -> None:
    await archive.create_user("ada")
    good = await archive.create_session("ada", "good")
    bad = await archive.create_session("ada", "bad")
    path = archive.layout.session_json("ada", bad.session_id)
    path.write_text("{ not json")
    with pytest.raises(CorruptRecordError) as info:
        await archive.get_session("ada", bad.session_id)
    assert str(path) in str(info.value)
    assert (await archive.get_session("ada", good.session_id)).title == "good"
    report = await archive.verify()
    assert not report.ok
    assert [p.path for p in report.problems if p.severity == "error"] == [str(path)]


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores file permissions")
async def test_read_only_archive_says_so(chat: Chat) -> None:
    archive, user, sid = chat
    await archive.add_message(user, sid, Message(role="user", content="before"))
    paths = [archive.root, *archive.root.rglob("*")]
    try:
        for p in paths:
            p.chmod(0o555 if p.is_dir() else 0o444)
        with pytest.raises(ReadOnlyArchiveError, match="read-only"):
            await archive.create_user("bob")
        assert len(await archive.get_all_messages(user, sid)) == 1
    finally:
        for p in paths:
            p.chmod(0o755 if p.is_dir() else 0o644)


async def test_read_only_error_is_raised_for_permission_errors(tmp_path: Path) -> None:
    # Root ignores permissions, so the mapping itself is tested on the errno.
    import errno

    from storage.files import write_error

    error = write_error(tmp_path, OSError(errno.EROFS, "Read-only file system"))
    assert isinstance(error, ReadOnlyArchiveError)
    assert "read-only" in str(error) and str(tmp_path) in str(error)


async def test_stats(chat: Chat) -> None:
    archive, user, sid = chat
    await archive.add_messages(user, sid, [Message(role="user")] * 3)
    await archive.save_document(user, b"doc", "a.txt")
    stats = await archive.stats()
    assert (stats.users, stats.sessions, stats.messages, stats.documents) == (1, 1, 3, 1)


async def test_verify_repair(chat: Chat) -> None:
    archive, user, sid = chat
    await archive.add_messages(user, sid, [Message(role="user", content=str(i)) for i in range(3)])
    folder = archive.layout.session_dir(user, sid)
    with open(folder / "messages.jsonl", "ab") as fh:
        fh.write(b'{"role": "us')  # torn tail
    session = orjson.loads((folder / "session.json").read_bytes())
    session["message_count"] = 0
    (folder / "session.json").write_bytes(orjson.dumps(session))
    (archive.layout.documents_dir(user, sid)).mkdir()
    (archive.layout.documents_dir(user, sid) / "orphan.bin").write_bytes(b"x")
    report = await archive.verify()
    assert report.ok  # nothing here loses data: all warnings
    kinds = sorted(p.problem.split()[0] for p in report.problems)
    assert kinds == ["message_count", "orphan", "torn"]
    assert next(p for p in report.problems if p.problem.startswith("torn")).line == 4
    repaired = await archive.verify(repair=True)
    assert all(p.repaired for p in repaired.problems)
    assert (await archive.verify()).problems == []
    assert (await archive.get_session(user, sid)).message_count == 3


async def test_read_only_filesystem_surfaces_as_read_only_error(
    archive: Archive, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno

    def refuse(src: object, dst: object) -> None:
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(ReadOnlyArchiveError, match=r"archive is read-only, cannot write .*profile"):
        await archive.create_user("ada")
    monkeypatch.undo()
    # Nothing half-written is left behind: no profile, no temp file.
    leftovers = [p.name for p in archive.root.rglob("*") if p.is_file()]
    assert sorted(leftovers) in (["archive.json"], ["ada.lock", "archive.json"])
    assert await archive.list_users() == []
