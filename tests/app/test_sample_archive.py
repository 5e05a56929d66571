"""The sample archive shipped in ``resources/``: complete, valid, and exactly what
``python -m resources.build_sample_archive`` builds."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio

from resources.build_sample_archive import build
from resources.sample import sample_archive_path
from storage import Archive, SessionType

REBUILD_HINT = "rebuild it with `python -m resources.build_sample_archive` and commit the result"


def _tree(root: Path) -> dict[str, str]:
    """Every file under ``root`` (dot-folders like .locks included) -> sha256 of its bytes."""
    return {
        path.relative_to(root).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


@pytest.fixture(scope="module", autouse=True)
def committed_sample_untouched() -> Iterator[None]:
    """Reading the committed sample must not change a byte of it (no locks, no repairs)."""
    before = _tree(sample_archive_path())
    yield
    assert _tree(sample_archive_path()) == before


@pytest_asyncio.fixture
async def sample() -> AsyncIterator[Archive]:
    async with await Archive.open(sample_archive_path()) as archive:
        yield archive


def test_sample_archive_path_is_the_packaged_folder() -> None:
    path = sample_archive_path()
    assert path.is_dir()
    assert path.parent.name == "resources"
    assert (path / "archive.json").is_file()
    assert not (path / ".locks").exists()
    assert not (path / ".index").exists()
    assert sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) < 200_000


@pytest.mark.asyncio
async def test_two_users_with_profiles_and_sessions(sample: Archive) -> None:
    users = await sample.list_users()
    assert [(u.user_id, u.username) for u in users] == [
        ("ada", "Ada Lovelace"),
        ("grace", "Grace Hopper"),
    ]
    pinned = 0
    for user in users:
        assert user.preferences
        sessions = await sample.list_sessions(user.user_id)
        chats = [s for s in sessions if s.session_type == SessionType.CHAT]
        assert len(chats) >= 2
        for session in sessions:
            assert session.title
            assert session.metadata["tags"]
            assert session.metadata["source"] in {"chatgpt", "claude", "flatchat"}
            count = await sample.count_messages(user.user_id, session.session_id)
            assert session.message_count == count
            assert 8 <= count <= 40
            assert session.created_at <= session.updated_at
            pinned += bool(session.metadata.get("pinned"))
    assert pinned == 1


@pytest.mark.asyncio
async def test_panel_with_resolvable_personas_messages_and_insights(sample: Archive) -> None:
    panels = await sample.list_panels("ada")
    assert len(panels) == 1
    panel = panels[0]
    assert panel.is_panel
    assert panel.panel_type == "expert_panel"
    assert len(panel.participants) == 3
    for persona_id in panel.participants:
        persona = await sample.get_persona(persona_id, "ada")
        assert persona.name and persona.description and persona.traits and persona.expertise
        assert persona.communication_style

    messages = await sample.get_panel_messages("ada", panel.session_id)
    assert len(messages) == 8
    ids = {m.message_id for m in messages}
    for message in messages:
        if message.role == "user":
            assert message.persona_id is None
            continue
        assert message.persona_id in panel.participants
        assert message.response_to in ids
        assert message.consensus_level is not None
        assert 0.0 <= message.consensus_level <= 1.0

    insights = await sample.get_panel_insights("ada", panel.session_id)
    assert len(insights) == 2
    for insight in insights:
        assert insight.panel_id == panel.session_id
        assert insight.content
        assert insight.supporting_messages
        assert set(insight.supporting_messages) <= ids


@pytest.mark.asyncio
async def test_global_and_user_personas(sample: Archive) -> None:
    global_personas = await sample.list_personas()
    assert len(global_personas) >= 3
    assert all(p.is_global and p.owner_id is None for p in global_personas)
    ada_personas = await sample.list_personas("ada")
    own = [p for p in ada_personas if not p.is_global]
    assert len(own) == 1
    assert own[0].owner_id == "ada"
    assert own[0].name and own[0].traits and own[0].expertise and own[0].communication_style


@pytest.mark.asyncio
async def test_documents_are_listed_and_stored(sample: Archive) -> None:
    found: list[tuple[str, str | None, str]] = []
    for user in await sample.list_users():
        places: list[str | None] = [None]
        places += [s.session_id for s in await sample.list_sessions(user.user_id)]
        for session_id in places:
            for record in await sample.list_documents(user.user_id, session_id):
                path = await sample.document_path(user.user_id, record.doc_id, session_id)
                assert path.is_file()
                data = await sample.read_document(user.user_id, record.doc_id, session_id)
                assert len(data) == record.size
                assert hashlib.sha256(data).hexdigest() == record.sha256
                assert record.mime_type.startswith("text/")
                found.append((user.user_id, session_id, record.doc_id))
    assert len(found) >= 3
    assert any(session_id is None for _, session_id, _ in found)  # a library document
    attached = [(u, s, d) for u, s, d in found if s is not None]
    assert len(attached) >= 2
    for user_id, session_id, doc_id in attached:
        assert session_id is not None
        messages = await sample.get_all_messages(user_id, session_id)
        referenced = {a["doc_id"] for m in messages for a in m.attachments}
        assert doc_id in referenced


@pytest.mark.asyncio
async def test_situational_context_and_history(sample: Archive) -> None:
    with_context = []
    histories = []
    for user in await sample.list_users():
        for session in await sample.list_sessions(user.user_id):
            context = await sample.get_context(user.user_id, session.session_id)
            if context is not None:
                assert context.summary and context.key_points and context.entities
                assert 0.0 < context.confidence <= 1.0
                with_context.append(session.session_id)
            history = await sample.get_context_history(user.user_id, session.session_id)
            if history:
                histories.append(history)
    assert len(with_context) >= 2
    assert any(len(h) == 2 for h in histories)
    for history in histories:
        assert [c.timestamp for c in history] == sorted(
            (c.timestamp for c in history), reverse=True
        )


@pytest.mark.asyncio
async def test_branched_session_follows_its_active_leaf(sample: Archive) -> None:
    branched = [
        s
        for user in await sample.list_users()
        for s in await sample.list_sessions(user.user_id)
        if s.metadata.get("active_leaf_id")
    ]
    assert len(branched) == 1
    session = branched[0]
    leaf = session.metadata["active_leaf_id"]

    branch = await sample.get_branch(session.user_id, session.session_id)
    in_file_order = await sample.get_all_messages(session.user_id, session.session_id)
    assert [m.message_id for m in branch] != [m.message_id for m in in_file_order]
    assert branch[-1].message_id == leaf
    assert len(branch) < len(in_file_order)
    assert {m.message_id for m in branch} < {m.message_id for m in in_file_order}

    regenerated = [m for m in in_file_order if m.parent_id is not None]
    assert len(regenerated) == 1
    assert regenerated[0] in branch
    assert regenerated[0].role == "assistant"
    leaves = await sample.list_leaves(session.user_id, session.session_id)
    assert len(leaves) == 2
    assert leaf in leaves


@pytest.mark.asyncio
async def test_verify_reports_no_problems(sample: Archive) -> None:
    report = await sample.verify()
    assert report.ok
    assert report.problems == []
    assert report.checked_files > 20


@pytest.mark.asyncio
async def test_rebuild_is_byte_identical_to_the_committed_sample(tmp_path: Path) -> None:
    rebuilt = tmp_path / "sample_archive"
    await build(rebuilt)
    committed = _tree(sample_archive_path())
    fresh = _tree(rebuilt)
    missing = sorted(committed.keys() - fresh.keys())
    extra = sorted(fresh.keys() - committed.keys())
    changed = sorted(k for k in committed.keys() & fresh.keys() if committed[k] != fresh[k])
    assert not (missing or extra or changed), (
        f"the committed sample is stale ({REBUILD_HINT}): only committed {missing}, "
        f"only rebuilt {extra}, different {changed}"
    )
