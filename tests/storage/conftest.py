from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio

from storage import Archive


@pytest_asyncio.fixture
async def archive(archive_dir: Path) -> AsyncIterator[Archive]:
    async with await Archive.open(archive_dir, create=True) as opened:
        yield opened


@pytest_asyncio.fixture
async def chat(archive: Archive) -> tuple[Archive, str, str]:
    """An archive with user 'ada' and one empty chat session."""
    await archive.create_user("ada", username="Ada Lovelace")
    session = await archive.create_session("ada", "Notes")
    return archive, "ada", session.session_id
