"""A killed ingest (SIGKILL at a random moment) leaves no half document: every record has its
complete files, every acknowledged document is there, and ``verify --repair`` removes the
files of the document that was being written."""

from __future__ import annotations

import asyncio
import hashlib
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from storage import Archive
from tests.storage.ingest_support import read_chunks

ROOT = Path(__file__).resolve().parents[2]
WORKER = """
import asyncio, sys
sys.path.insert(0, sys.argv[3])
from storage import Archive
from storage.ingest import ingest

async def main():
    archive = await Archive.open(sys.argv[1])
    def ack(stored):
        print("ack", stored.record.doc_id, flush=True)
    print("start", flush=True)
    await ingest(archive, [sys.argv[2]], "ada", after_store=ack)

asyncio.run(main())
"""


def _sources(folder: Path, count: int) -> Path:
    folder.mkdir()
    rng = random.Random(7)
    words = ["archive", "flat", "chat", "engine", "number", "page", "ledger", "quill", "ink"]
    for n in range(count):
        text = " ".join(rng.choice(words) for _ in range(3000)) + f". Document {n}."
        (folder / f"doc{n:03}.txt").write_text(text)
    return folder


def _kill_once(
    archive_dir: Path, sources: Path, delay: float, after_first_ack: bool = False
) -> tuple[list[str], bool]:
    """The documents the worker acknowledged, and whether the kill landed mid-job."""
    proc = subprocess.Popen(
        [sys.executable, "-c", WORKER, str(archive_dir), str(sources), str(ROOT)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "start"
    first: list[str] = []
    if after_first_ack:  # on a slow machine the first document may take a while
        first.append(proc.stdout.readline())
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode in (0, -signal.SIGKILL), err  # 0: it finished first
    lines = [*first, *out.splitlines()]
    acked = [line.split()[1] for line in lines if line.startswith("ack ")]
    return acked, proc.returncode == -signal.SIGKILL


async def _check(archive_dir: Path, acked: list[str]) -> None:
    async with await Archive.open(archive_dir) as archive:
        folder = archive.layout.documents_dir("ada", None)
        records = {r.doc_id: r for r in await archive.list_documents("ada")}
        assert set(acked) <= set(records)
        for doc_id, record in records.items():
            assert hashlib.sha256((folder / doc_id).read_bytes()).hexdigest() == record.sha256
            assert len(read_chunks(folder, doc_id)) == record.analysis["chunks"]
        await archive.verify(repair=True)
        after = await archive.verify()
        assert after.ok and after.problems == [], after.problems
        names = {p.name for p in folder.iterdir()} if folder.exists() else set()
        owned = {n for n in names if n == "metadata.json" or n.split(".")[0] + ".txt" in records}
        assert names == owned  # no orphan file survives the repair


async def _setup(archive_dir: Path) -> None:
    async with await Archive.open(archive_dir, create=True) as archive:
        await archive.create_user("ada")


def test_sigkill_during_ingest(archive_dir: Path, tmp_path: Path) -> None:
    asyncio.run(_setup(archive_dir))
    sources = _sources(tmp_path / "src", 200)
    acked, killed = _kill_once(archive_dir, sources, 0.1, after_first_ack=True)
    assert killed and acked  # mid-job: some documents done, not all
    asyncio.run(_check(archive_dir, acked))


@pytest.mark.slow
def test_sigkill_at_random_moments_10_times(archive_dir: Path, tmp_path: Path) -> None:
    asyncio.run(_setup(archive_dir))
    sources = _sources(tmp_path / "src", 400)
    rng = random.Random(11)
    kills = 0
    for _ in range(10):
        acked, killed = _kill_once(archive_dir, sources, rng.uniform(0.02, 0.5))
        kills += killed
        asyncio.run(_check(archive_dir, acked))
    assert kills >= 5
