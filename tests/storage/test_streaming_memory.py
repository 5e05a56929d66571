"""Streaming a 200,000-message session keeps memory flat (peak RSS measured, not assumed)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from storage import Archive, Message

PROBE = Path(__file__).with_name("memory_probe.py")
N = 200_000


async def build(root: Path) -> str:
    archive = await Archive.open(root, create=True)
    await archive.create_user("ada")
    sid = (await archive.create_session("ada", "huge")).session_id
    filler = "Lorem ipsum dolor sit amet, consectetur adipiscing elit. " * 3
    for start in range(0, N, 5000):
        await archive.add_messages(
            "ada",
            sid,
            [
                Message(role="user" if i % 2 else "assistant", content=f"{i} {filler}")
                for i in range(start, start + 5000)
            ],
        )
    return sid


def probe(root: Path, sid: str, mode: str) -> tuple[int, int]:
    out = subprocess.run(
        [sys.executable, str(PROBE), str(root), "ada", sid, mode],
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    ).stdout
    seen, growth_kib = map(int, out.split())
    return seen, growth_kib


@pytest.mark.slow
def test_streaming_200k_messages_keeps_memory_flat(archive_dir: Path) -> None:
    sid = asyncio.run(build(archive_dir))
    size_mib = (archive_dir / "users" / "ada" / sid / "messages.jsonl").stat().st_size / 2**20
    assert size_mib > 40
    seen, forward = probe(archive_dir, sid, "forward")
    assert seen == N
    seen, backward = probe(archive_dir, sid, "backward")
    assert seen == N
    seen, everything = probe(archive_dir, sid, "all")
    assert seen == N
    print(
        f"file {size_mib:.0f} MiB; peak RSS growth: forward {forward / 1024:.1f} MiB, "
        f"backward {backward / 1024:.1f} MiB, get_all_messages {everything / 1024:.0f} MiB"
    )
    # Streaming holds a batch of messages and a 1 MiB block, whatever the session's size;
    # loading everything is the contrast that shows the probe can see growth.
    assert forward < 32 * 1024
    assert backward < 32 * 1024
    assert everything > 8 * max(forward, backward, 1024)
