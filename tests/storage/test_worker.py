"""Bulk jobs in a real worker process: results, progress, changes, errors, cancel and a kill."""

from __future__ import annotations

import asyncio
import os
import pickle
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from storage import Archive, Message
from storage.errors import ImportFormatError, NotAnArchiveError, UnknownExportFormatError
from storage.events import Change, SessionChanged
from storage.ingest.job import IngestCancelled
from storage.jobs import JobControl, Progress
from storage.worker import WorkerFailed, run_here, run_in_worker
from tests.storage.export_factory import linear_conversations, write_chatgpt_export


class Recorder:
    """Progress and change batches as the worker's helper thread hands them over."""

    def __init__(self, name: str = "job") -> None:
        self.progress: list[Progress] = []
        self.changes: list[Change] = []
        self.first_progress = threading.Event()
        self.control = JobControl(name, self._on_progress)

    def _on_progress(self, progress: Progress) -> None:
        self.progress.append(progress)
        self.first_progress.set()

    def on_changes(self, batch: list[Change]) -> None:
        self.changes.extend(batch)


@pytest_asyncio.fixture
async def hashing_archive(archive: Archive) -> Archive:
    """The fast deterministic embedder, so the worker's indexing stage stays quick."""
    await archive.update_settings({"vector": {"embedder": "hashing"}})
    reopened = await Archive.open(archive.root)
    await reopened.create_user("ada")
    return reopened


async def import_with(
    runner: Any, archive: Archive, folder: Path, conversations: int, seen: Recorder
) -> Any:
    export = folder / "conversations.json"
    write_chatgpt_export(export, linear_conversations(conversations, 6))
    return await runner(
        archive.root, "import", seen.control, seen.on_changes, path=str(export), user_id="ada"
    )


@pytest.mark.asyncio
async def test_import_runs_in_the_worker_and_the_caller_sees_it_searchable(
    hashing_archive: Archive, tmp_path: Path
) -> None:
    archive = hashing_archive
    seen = Recorder("import")
    report = await import_with(run_in_worker, archive, tmp_path, 12, seen)
    assert report.imported == 12 and report.user_id == "ada"
    sessions = await archive.list_sessions("ada")
    assert len(sessions) == 12
    # What changed came back, once per session (coalesced), for the window to update rows.
    changed = {c.session_id for c in seen.changes if isinstance(c, SessionChanged)}
    assert changed == {s.session_id for s in sessions}
    assert seen.progress and seen.progress[-1].done >= 1
    # The worker indexed them: this process takes in its commit and indexes nothing again.
    results = await archive.search("babbage", "keyword", limit=100)
    assert results.total > 0
    assert (await archive.index_status())["sources"] == 12 * 2  # the logs and their titles
    assert (await archive.verify()).ok


@pytest.mark.asyncio
async def test_an_error_in_the_worker_is_raised_here_as_itself(
    hashing_archive: Archive, tmp_path: Path
) -> None:
    bad = tmp_path / "export.json"
    bad.write_text('{"hello": "not a chat export"}')
    with pytest.raises(UnknownExportFormatError) as caught:
        await run_in_worker(hashing_archive.root, "import", path=str(bad), user_id="ada")
    assert caught.value.path == str(bad) and "formats tried" in str(caught.value)
    missing = tmp_path / "nope.zip"
    with pytest.raises(ImportFormatError, match="no such file"):
        await run_in_worker(hashing_archive.root, "import", path=str(missing), user_id="ada")
    with pytest.raises(NotAnArchiveError):
        await run_in_worker(tmp_path / "empty", "refresh_index")
    assert await hashing_archive.list_sessions("ada") == []
    with pytest.raises(ValueError, match="unknown worker job"):
        await run_in_worker(hashing_archive.root, "format_disk")


def test_storage_errors_pickle_with_their_attributes() -> None:
    error = UnknownExportFormatError("/x/export.json", ["chatgpt", "claude"], "empty list")
    back = pickle.loads(pickle.dumps(error))
    assert type(back) is UnknownExportFormatError
    assert (str(back), back.path, back.tried) == (str(error), error.path, error.tried)


def worker_pids() -> list[int]:
    """Our worker processes, found in /proc (children running storage.worker_main)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:  # gone meanwhile
            continue
        parent = int(stat.rpartition(")")[2].split()[1])
        if parent == os.getpid() and b"storage.worker_main" in cmdline:
            found.append(int(entry.name))
    return found


def make_documents(folder: Path, count: int) -> Path:
    folder.mkdir()
    for n in range(count):
        (folder / f"note-{n:03d}.md").write_text(f"# Note {n}\n\n" + "lighthouse keeper " * 400)
    return folder


def ingest_then(
    tmp_path: Path, seen: Recorder, action: Callable[[], None]
) -> tuple[Path, asyncio.Task[None]]:
    """150 documents to ingest, and a task that runs ``action`` once the worker reports its
    first progress (await it after the ingest)."""
    folder = make_documents(tmp_path / "notes", 150)

    async def after_first_progress() -> None:
        await asyncio.to_thread(seen.first_progress.wait, 120)
        action()

    return folder, asyncio.create_task(after_first_progress())


async def ingest_in_worker(
    archive: Archive, folder: Path, control: JobControl | None = None
) -> Any:
    return await run_in_worker(
        archive.root, "ingest", control, paths=[str(folder)], user_id="ada", session_id=None
    )


@pytest.mark.asyncio
async def test_cancel_stops_the_worker_and_keeps_what_it_finished(
    hashing_archive: Archive, tmp_path: Path
) -> None:
    seen = Recorder("ingest")
    folder, canceller = ingest_then(tmp_path, seen, seen.control.cancel)
    with pytest.raises(IngestCancelled) as caught:
        await ingest_in_worker(hashing_archive, folder, seen.control)
    await canceller
    finished = caught.value.report.stored
    assert len(finished) < 150
    stored = await hashing_archive.list_documents("ada")
    assert {d.doc_id for d in stored} == {d.doc_id for d in finished}
    assert (await hashing_archive.verify()).ok


@pytest.mark.asyncio
async def test_a_killed_worker_is_an_error_and_the_archive_stays_valid(
    hashing_archive: Archive, tmp_path: Path
) -> None:
    def kill() -> None:
        for pid in worker_pids():
            os.kill(pid, signal.SIGKILL)

    seen = Recorder("ingest")
    folder, killer = ingest_then(tmp_path, seen, kill)
    with pytest.raises(WorkerFailed, match="stopped without a result"):
        await ingest_in_worker(hashing_archive, folder, seen.control)
    await killer
    assert (await hashing_archive.verify()).ok
    # The job can simply run again: it completes what the killed one left.
    report = await ingest_in_worker(hashing_archive, folder)
    assert len(await hashing_archive.list_documents("ada")) == 150
    assert report.count("ingested") + report.count("duplicate") == 150


@pytest.mark.asyncio
async def test_run_here_is_the_same_job_in_this_process(
    hashing_archive: Archive, tmp_path: Path
) -> None:
    seen = Recorder("import")
    report = await import_with(run_here, hashing_archive, tmp_path, 3, seen)
    assert report.imported == 3 and worker_pids() == []
    changed = {c.session_id for c in seen.changes if isinstance(c, SessionChanged)}
    assert changed == {s.session_id for s in await hashing_archive.list_sessions("ada")}
    with pytest.raises(ValueError, match="unknown worker job"):
        await run_here(hashing_archive.root, "format_disk")


@pytest.mark.asyncio
async def test_the_worker_uses_the_callers_settings(hashing_archive: Archive) -> None:
    """Settings given on the command line (not in archive.json) reach the worker: both
    processes must build the index alike, or each would find it "built with other settings"."""
    session = await hashing_archive.create_session("ada", "notes")
    await hashing_archive.add_message(
        "ada", session.session_id, Message(role="user", content="quartz harbour")
    )
    keyword_only = await Archive.open(
        hashing_archive.root, overrides={"vector": {"enabled": False}}
    )
    report = await run_in_worker(keyword_only.root, "reindex", settings=keyword_only.settings)
    assert report.sources_indexed == 2 and report.vectors_added == 0  # the log and its title
    results = await keyword_only.search("quartz", "keyword")
    assert results.total == 1 and results.degraded is None  # not "being rebuilt"
    assert (await keyword_only.index_status())["vectors"] == 0
