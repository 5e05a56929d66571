"""Two processes that both index one archive (the window and a ``flatchat`` command, or the
window and its worker process): each takes in the other's commits, so nothing is indexed
twice and no vector segment is lost."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from storage import Archive, Message

WORKER = Path(__file__).with_name("worker.py")
pytestmark = pytest.mark.asyncio


def other_process(root: Path, *args: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, str(WORKER), str(root), *args],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return done.stdout.split()


async def test_each_process_takes_in_the_others_index_commits(archive: Archive) -> None:
    await archive.update_settings({"vector": {"embedder": "hashing"}})
    reopened = await Archive.open(archive.root)  # the setting applies from the next open
    await reopened.create_user("ada")
    mine = await reopened.create_session("ada", "mine")
    await reopened.add_message(
        "ada",
        mine.session_id,
        Message(message_id="m-1", role="user", content="harbour lighthouse keeper"),
    )
    assert (await reopened.search("lighthouse", "keyword")).total == 1  # indexed here

    theirs = await reopened.create_session("ada", "theirs")
    other_process(reopened.root, "append", "ada", theirs.session_id, "3", "zebra")
    # The other process indexes (its search refreshes) and commits: our view is now stale.
    assert other_process(reopened.root, "search", "keyword", "zebra")[0] == "3"
    assert other_process(reopened.root, "search", "keyword", "lighthouse") == ["1", "m-1"]

    await reopened.add_message(
        "ada",
        mine.session_id,
        Message(message_id="m-2", role="user", content="a second lighthouse note"),
    )
    # Our refresh works from the other's commit: its messages are there once, ours added.
    found = await reopened.search("lighthouse", "keyword")
    assert sorted(h.message_id for h in found.hits) == ["m-1", "m-2"]
    zebras = await reopened.search("zebra", "keyword")
    assert sorted(h.message_id for h in zebras.hits) == ["zebra-0", "zebra-1", "zebra-2"]
    # Its vectors were kept when we committed ours, and ours are there too.
    semantic = await reopened.search("zebra says", "semantic", limit=50)
    assert {"zebra-0", "zebra-1", "zebra-2", "m-2"} <= {h.message_id for h in semantic.hits}
    status = await reopened.index_status()
    assert status["vectors"] == 5 + 2 and status["problems"] == []  # and the two titles
    # And the other process, in turn, sees ours exactly once.
    assert other_process(reopened.root, "search", "keyword", "lighthouse")[0] == "2"
    assert (await reopened.verify()).ok
    await reopened.close()
