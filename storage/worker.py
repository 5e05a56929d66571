"""Bulk jobs in a worker process: import, ingest, index refresh and rebuild.

Parsing exports, extracting documents, tokenizing and embedding are CPU-bound Python and
extension code that holds the GIL in long stretches. Run in a thread of the GUI process they
starve its event loop (measured: 80-110 ms stalls while 50,000 messages were written and
indexed). In a separate process they cannot: the window's process only receives progress and
the list of what changed.

The worker is a fresh interpreter (not a fork: forking a process that runs Qt threads is not
safe) that opens the same archive and runs the same job code as the CLI. Everything that makes
that safe already holds between processes: writes take the archive's file locks, the index
has its own lock and each process takes in the other's commits. A cancel is a flag the job
sees at its next step; a killed worker leaves the archive valid like any killed writer.

The job goes to the worker over one pipe (closing it cancels the job); messages come back over
another: ``("progress", Progress)``,
``("changes", [Change, ...])`` (coalesced, at most every CHANGES_INTERVAL seconds),
``("result", value)`` or ``("error", exception)``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pickle
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any

from storage.errors import StorageError
from storage.events import Change
from storage.jobs import JobCancelled, JobControl
from storage.threads import run_blocking

if TYPE_CHECKING:
    from storage.archive import Archive
    from storage.settings import Settings

log = logging.getLogger(__name__)

CHANGES_INTERVAL = 0.3  # seconds: how often the worker sends what changed (coalesced)
POLL_INTERVAL = 0.1  # seconds: the caller's thread looks at cancel and the process this often
WORKER_NICENESS = 10  # added to the worker's nice value: the window gets the CPU first
STOP_GRACE = 30.0  # seconds a cancelled worker gets to finish its step before it is killed

ChangesCallback = Callable[[list[Change]], None]


class WorkerFailed(Exception):
    """A job failed in the worker process with an error that is a bug (not a StorageError),
    or the worker died. The message carries the worker's traceback."""


# ---------------------------------------------------------------------- the jobs
async def _import(archive: Archive, control: JobControl, path: str, user_id: str) -> Any:
    report = await archive.import_archive(path, user_id, control=control)
    # Making the new conversations searchable is part of the job, so the window's process
    # never embeds them itself. Cancelled here, the import stands; searches index the rest.
    control.start_phase("making the conversations searchable", None)
    try:
        await archive.refresh_index(control)
    except JobCancelled:
        log.info("indexing after the import cancelled; the next search indexes the rest")
    return report


async def _ingest(
    archive: Archive,
    control: JobControl,
    paths: Sequence[str],
    user_id: str,
    session_id: str | None,
) -> Any:
    return await archive.ingest(list(paths), user_id, session_id, control=control)


async def _refresh_index(archive: Archive, control: JobControl) -> Any:
    return await archive.refresh_index(control)


async def _reindex(archive: Archive, control: JobControl) -> Any:
    return await archive.reindex(control)


JOBS: dict[str, Callable[..., Any]] = {
    "import": _import,
    "ingest": _ingest,
    "refresh_index": _refresh_index,
    "reindex": _reindex,
}


# ---------------------------------------------------------------------- the caller's side
async def run_in_worker(
    root: str | os.PathLike[str],
    job: str,
    control: JobControl | None = None,
    on_changes: ChangesCallback | None = None,
    *,
    settings: Settings | None = None,
    **kwargs: Any,
) -> Any:
    """Run ``job`` (a name in :data:`JOBS`) on the archive at ``root`` in a worker process and
    return its result; its error is raised here as it was raised there. Progress goes to
    ``control`` (whose ``cancel()`` stops the worker at its next step), batches of changes to
    ``on_changes`` (both called from a helper thread: hop to your loop). Cancelling the
    awaiting task cancels the job too. ``settings``: the caller's archive settings (with its
    command-line overrides), so both processes index alike; default: the archive's own."""
    control = _checked(job, control)
    request = (str(root), job, kwargs, settings)
    try:
        return await run_blocking(_run, request, control, on_changes)
    except asyncio.CancelledError:
        control.cancel()  # the helper thread sees it, stops the worker and reaps it
        raise


async def run_here(
    root: str | os.PathLike[str],
    job: str,
    control: JobControl | None = None,
    on_changes: ChangesCallback | None = None,
    *,
    settings: Settings | None = None,
    **kwargs: Any,
) -> Any:
    """:func:`run_in_worker`'s twin that runs the job in this process (threads): for
    callers without a GUI to keep responsive, and tests that fake the disk."""
    control = _checked(job, control)
    request = (str(root), job, kwargs, settings)
    return await _work(request, control, on_changes or (lambda _batch: None))


def _checked(job: str, control: JobControl | None) -> JobControl:
    if job not in JOBS:
        raise ValueError(f"unknown worker job {job!r}; known: {', '.join(JOBS)}")
    return control or JobControl(job)


Request = tuple[str, str, dict[str, Any], "Settings | None"]  # root, job, kwargs, settings


def _run(request: Request, control: JobControl, on_changes: ChangesCallback | None) -> Any:
    # A plain child interpreter with two pipes, not multiprocessing: no fork of a process
    # running Qt threads, and no semaphores or resource-tracker process to leak or lose.
    to_child_r, to_child_w = os.pipe()
    from_child_r, from_child_w = os.pipe()
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "storage.worker_main", str(to_child_r), str(from_child_w)],
            pass_fds=(to_child_r, from_child_w),
            stdin=subprocess.DEVNULL,
            env=_child_environment(),
        )
    finally:
        os.close(to_child_r)
        os.close(from_child_w)
    commands = Connection(to_child_w, readable=False)
    messages = Connection(from_child_r, writable=False)
    cancelled_at: float | None = None
    try:
        commands.send(request)
        job = request[1]
        while True:
            if control.cancelled and cancelled_at is None:
                cancelled_at = time.monotonic()
                commands.close()  # end of input: the worker's watcher cancels the job
            if cancelled_at is not None and time.monotonic() - cancelled_at > STOP_GRACE:
                log.warning("worker %s ignored the cancel for %.0f s: killing it", job, STOP_GRACE)
                process.kill()
            if not messages.poll(POLL_INTERVAL):
                continue
            try:
                kind, value = messages.recv()
            except EOFError:
                code = process.wait()
                raise WorkerFailed(
                    f"the worker process for {job} stopped without a result (exit code {code})"
                ) from None
            if kind == "progress":
                control.forward(value)
            elif kind == "changes":
                if on_changes is not None:
                    on_changes(value)
            elif kind == "result":
                return value
            elif kind == "error":
                raise value
    finally:
        messages.close()
        if not commands.closed:
            commands.close()
        try:
            process.wait(timeout=STOP_GRACE)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _child_environment() -> dict[str, str]:
    """Ours, with this copy of ``storage`` first on the worker's import path (whatever the
    current folder, installed or not)."""
    package_parent = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    paths = [package_parent, *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}


# ---------------------------------------------------------------------- the worker's side
def worker_main(commands_fd: int, messages_fd: int) -> None:
    """The worker process's body (``python -m storage.worker_main IN OUT``): reads the job
    from ``IN``, sends progress, changes and the outcome to ``OUT``; closing ``IN`` (or the
    caller dying) cancels the job."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s worker: %(message)s")
    # Background work yields the CPU to the window: on two cores a busy worker preempted the
    # GUI process's threads while one of them held the GIL, and the window stalled.
    with contextlib.suppress(OSError, AttributeError):  # not on every platform
        os.nice(WORKER_NICENESS)
    commands = Connection(commands_fd, writable=False)
    messages = Connection(messages_fd, readable=False)
    lock = threading.Lock()  # the job's threads and this one share the pipe

    def send(kind: str, value: object) -> None:
        with lock:
            messages.send((kind, value))

    try:
        request = commands.recv()
        control = JobControl(request[1], lambda progress: send("progress", progress))
        threading.Thread(target=_watch_cancel, args=(commands, control), daemon=True).start()
        result = asyncio.run(_work(request, control, lambda b: send("changes", b)))
    except BaseException as exc:  # everything goes back to the caller, bugs included
        send("error", _sendable(exc))
    else:
        send("result", result)
    finally:
        messages.close()


async def _work(request: Request, control: JobControl, send_changes: ChangesCallback) -> Any:
    from storage.archive import Archive

    root, job, kwargs, settings = request
    pending: dict[Change, None] = {}  # insertion-ordered and without repeats
    pending_lock = threading.Lock()
    last_sent = time.monotonic()

    def flush() -> None:
        nonlocal last_sent
        with pending_lock:
            batch = list(pending)
            pending.clear()
        last_sent = time.monotonic()
        if batch:
            send_changes(batch)

    def collect(change: Change) -> None:  # runs in the job's writing thread
        with pending_lock:
            pending[change] = None
        if time.monotonic() - last_sent >= CHANGES_INTERVAL:
            flush()

    archive = await Archive.open(root, settings=settings)
    unsubscribe = archive.changes.subscribe(collect)
    try:
        return await JOBS[job](archive, control, **kwargs)
    finally:
        unsubscribe()
        flush()
        await archive.close()


def _watch_cancel(commands: Connection, control: JobControl) -> None:
    """Any command, or the end of input (the caller cancelled, or died), cancels the job."""
    with contextlib.suppress(EOFError, OSError):  # end of input is the signal itself
        commands.recv()
    control.cancel()


def _sendable(exc: BaseException) -> BaseException:
    """The exception itself when it survives pickling (StorageErrors do, with their
    reports), else a WorkerFailed carrying its type, message and traceback."""
    if isinstance(exc, StorageError | OSError | ValueError):
        try:
            pickle.loads(pickle.dumps(exc))
            return exc
        except Exception as problem:  # any pickling failure: describe it instead
            log.debug("cannot send %r back as it is: %s", exc, problem)
    detail = "".join(traceback.format_exception(exc))
    return WorkerFailed(f"{type(exc).__name__} in the worker process: {exc}\n{detail}")
