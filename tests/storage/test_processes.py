"""Real processes on one archive: concurrent writers lose nothing; SIGKILL at any moment
leaves an archive that opens, verifies, and holds every acknowledged message."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from storage import Archive

WORKER = Path(__file__).with_name("worker.py")


def spawn(*args: object) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(WORKER), *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_all(procs: list[subprocess.Popen[str]], timeout: float = 300) -> None:
    for p in procs:
        _out, err = p.communicate(timeout=timeout)
        assert p.returncode == 0, err


async def _setup(root: Path) -> str:
    archive = await Archive.open(root, create=True)
    await archive.create_user("ada")
    return (await archive.create_session("ada", "shared")).session_id


@pytest.mark.slow
def test_four_processes_append_2000_messages(archive_dir: Path) -> None:
    sid = asyncio.run(_setup(archive_dir))
    wait_all([spawn(archive_dir, "append", "ada", sid, 500, f"p{i}") for i in range(4)])

    async def check() -> None:
        archive = await Archive.open(archive_dir)
        messages = await archive.get_all_messages("ada", sid)
        assert len(messages) == 2000
        assert len({m.message_id for m in messages}) == 2000
        for i in range(4):  # each writer's messages keep their order
            mine = [
                int(m.message_id.split("-")[1])
                for m in messages
                if m.message_id.startswith(f"p{i}-")
            ]
            assert mine == list(range(500))
        assert (await archive.get_session("ada", sid)).message_count == 2000
        path = archive.layout.session_dir("ada", sid) / "messages.jsonl"
        assert path.read_bytes().count(b"\n") == 2000
        assert (await archive.verify()).problems == []

    asyncio.run(check())


@pytest.mark.slow
def test_concurrent_metadata_updates_lose_nothing(archive_dir: Path) -> None:
    sid = asyncio.run(_setup(archive_dir))
    wait_all(
        [spawn(archive_dir, "metadata", "ada", sid, 50, f"p{i}") for i in range(4)]
        + [spawn(archive_dir, "append", "ada", sid, 100, "w")]
    )

    async def check() -> None:
        archive = await Archive.open(archive_dir)
        session = await archive.get_session("ada", sid)
        assert {f"p{i}-{j}" for i in range(4) for j in range(50)} <= set(session.metadata)
        assert session.message_count == 100

    asyncio.run(check())


@pytest.mark.slow
def test_sigkill_at_random_moments_50_times(archive_dir: Path) -> None:
    sid = asyncio.run(_setup(archive_dir))
    rng = random.Random(20260126)
    acked: set[str] = set()
    problems_seen: set[str] = set()
    for round_ in range(50):
        proc = spawn(archive_dir, "chaos", "ada", sid, round_)
        time.sleep(0.25 + rng.random() * 0.6)  # interpreter start-up is ~0.2 s
        proc.send_signal(signal.SIGKILL)
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == -signal.SIGKILL, err
        acked |= {line.split()[1] for line in out.splitlines() if line.startswith("ack ")}

        async def check(round_: int, acked: set[str]) -> None:
            archive = await Archive.open(archive_dir)
            report = await archive.verify()
            assert report.ok, report.problems
            for p in report.problems:
                # Only the marks of an interrupted write: never a corrupt record.
                assert p.severity == "warning", p
                assert p.problem.startswith(
                    (
                        "torn last line",
                        "last line has no newline",
                        "leftover temp",
                        "message_count is",
                        "both messages.jsonl",
                    )
                ), p
                problems_seen.add(p.problem.split(" (")[0].split(":")[0])
            present = {m.message_id for m in await archive.get_all_messages("ada", sid)}
            missing = acked - present
            assert not missing, f"round {round_}: acknowledged messages lost: {sorted(missing)}"
            if rng.random() < 0.3:
                await archive.verify(repair=True)  # repairs must not lose anything either

        asyncio.run(check(round_, acked))
    assert len(acked) > 200  # the chaos really ran
    print(
        f"{len(acked)} acknowledged messages survived; interrupted-write marks seen: "
        f"{sorted(problems_seen)}"
    )
    assert os.path.exists(archive_dir / "archive.json")
