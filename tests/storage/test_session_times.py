"""Sessions keep the times an importer gives them (create_session times, touch=False)."""

from __future__ import annotations

import datetime as dt

import pytest

from storage import Archive, Message

pytestmark = pytest.mark.asyncio

T0 = dt.datetime(2023, 5, 1, 12, 0, tzinfo=dt.UTC)


async def test_create_with_source_times_and_append_without_touching(archive: Archive) -> None:
    await archive.create_user("ada")
    session = await archive.create_session(
        "ada", "Old chat", session_id="old_chat", created_at=T0,
        updated_at=T0 + dt.timedelta(minutes=1))  # fmt: skip
    assert (session.created_at, session.updated_at) == (T0, T0 + dt.timedelta(minutes=1))
    later = T0 + dt.timedelta(minutes=5)
    await archive.add_messages(
        "ada", "old_chat", [Message(role="user", content="hi", timestamp=later)], touch=False
    )
    assert (await archive.get_session("ada", "old_chat")).updated_at == later
    earlier = T0 + dt.timedelta(minutes=2)  # older than updated_at: updated_at stays
    await archive.add_messages(
        "ada", "old_chat", [Message(role="user", content="x", timestamp=earlier)], touch=False
    )
    assert (await archive.get_session("ada", "old_chat")).updated_at == later
    await archive.update_session("ada", "old_chat", title="Renamed", touch=False)
    renamed = await archive.get_session("ada", "old_chat")
    assert (renamed.title, renamed.updated_at, renamed.message_count) == ("Renamed", later, 2)
    await archive.update_session("ada", "old_chat", touch=False, updated_at=T0.isoformat())
    assert (await archive.get_session("ada", "old_chat")).updated_at == T0


async def test_defaults_still_touch(archive: Archive) -> None:
    await archive.create_user("ada")
    session = await archive.create_session("ada", "New", created_at=T0)
    assert session.updated_at == T0  # updated_at defaults to created_at when given
    await archive.add_message(
        "ada", session.session_id, Message(role="user", content="hi", timestamp=T0)
    )
    touched = await archive.get_session("ada", session.session_id)
    assert touched.updated_at > T0 + dt.timedelta(days=365)
    await archive.update_session("ada", session.session_id, updated_at=T0.isoformat())
    assert (await archive.get_session("ada", session.session_id)).updated_at > T0
