"""The window opens a writable copy of the sample archive, never the packaged files."""

from __future__ import annotations

import asyncio
from pathlib import Path

from resources.sample import copy_sample_archive, sample_archive_path
from storage import Archive, Message


def test_copy_is_made_once_and_is_writable(tmp_path: Path) -> None:
    source = sample_archive_path()
    packaged = sorted(p.relative_to(source) for p in source.rglob("*"))
    copy = copy_sample_archive(tmp_path / "sample")
    assert sorted(p.relative_to(copy) for p in copy.rglob("*")) == packaged

    async def write() -> int:
        archive = await Archive.open(copy)
        session = (await archive.list_sessions("ada"))[0]
        await archive.add_message("ada", session.session_id, Message(role="user", content="x"))
        return await archive.count_messages("ada", session.session_id)

    count = asyncio.run(write())
    again = copy_sample_archive(tmp_path / "sample")  # the user's changes are kept
    assert again == copy
    first = asyncio.run(Archive.open(again))
    sessions = asyncio.run(first.list_sessions("ada"))
    assert sessions[0].message_count == count
    assert not (tmp_path / "sample.partial").exists()
