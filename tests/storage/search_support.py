"""Archives for the search tests: real files in a temp folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from storage import Archive, Message

HASHING = {"vector": {"embedder": "hashing"}}  # fast, deterministic, and a real index


async def archive_with(
    root: Path, texts: dict[str, str], title: str = "Chat", overrides: dict[str, Any] | None = None
) -> Archive:
    """A new archive (hashing embedder, or ``overrides``) in which user "ada" has one session,
    ``title``, of user messages: message id -> text."""
    archive = await Archive.open(root, create=True, overrides=overrides or HASHING)
    await archive.create_user("ada")
    session = await archive.create_session("ada", title)
    await archive.add_messages(
        "ada",
        session.session_id,
        [Message(message_id=k, role="user", content=v) for k, v in texts.items()],
    )
    return archive
