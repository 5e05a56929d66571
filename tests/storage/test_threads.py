"""The worker threads behind every blocking archive call (storage.threads)."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from storage.threads import Workers, _current_cpu, run_blocking

ROOT = Path(__file__).resolve().parents[2]
WAIT = 10.0  # seconds a test waits for a thread before it fails (never reached when it works)


class Boom(ValueError):
    pass


@pytest.mark.asyncio
async def test_a_call_returns_its_result_and_raises_its_error() -> None:
    assert await run_blocking(sum, [1, 2, 3]) == 6
    assert await run_blocking(int, "ff", base=16) == 255

    def fail() -> None:
        raise Boom("disk said no")

    with pytest.raises(Boom, match="disk said no") as caught:
        await run_blocking(fail)
    assert caught.value.__traceback__ is not None


@pytest.mark.asyncio
async def test_a_call_runs_off_the_event_loop_thread_and_sees_context_variables() -> None:
    var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="unset")
    var.set("the caller's")
    ident, seen = await run_blocking(lambda: (threading.get_ident(), var.get()))
    assert ident != threading.get_ident()
    assert seen == "the caller's"


@pytest.mark.asyncio
async def test_one_after_another_calls_run_on_the_same_thread() -> None:
    """What makes the hop cheap: the thread that ran the last call (warm caches) runs the
    next, where the default executor goes round its threads."""
    pool = Workers(max_threads=4)
    busy = threading.Event()
    # Start several threads first: calls that run at the same time.
    blockers = [asyncio.ensure_future(pool.run(busy.wait, WAIT)) for _ in range(3)]
    await asyncio.sleep(0.05)
    busy.set()
    await asyncio.gather(*blockers)
    assert pool.threads == 3
    idents = {await pool.run(threading.get_ident) for _ in range(20)}
    assert len(idents) == 1
    pool.shutdown()


PINNABLE = _current_cpu() is not None and len(os.sched_getaffinity(0)) > 1


@pytest.mark.skipif(not PINNABLE, reason="needs per-thread CPU affinity (Linux) and two CPUs")
@pytest.mark.asyncio
async def test_an_idle_thread_wakes_on_the_callers_cpu_and_its_call_may_run_anywhere() -> None:
    getcpu = _current_cpu()
    assert getcpu is not None
    every_cpu = os.sched_getaffinity(0)
    pool = Workers()
    asked: list[int] = []

    def caller_cpu() -> int:
        asked.append(getcpu())
        return asked[-1]

    pool._getcpu = caller_cpu

    def inside() -> tuple[int, set[int], set[int]]:
        """Where the call runs, what it may run on, and what a thread it starts may."""
        cpu = getcpu()
        started: list[set[int]] = []
        child = threading.Thread(target=lambda: started.append(os.sched_getaffinity(0)))
        child.start()
        child.join(WAIT)
        return cpu, os.sched_getaffinity(0), started[0]

    await pool.run(inside)  # starts the thread: nothing to pin yet
    woke = []
    for _ in range(30):
        cpu, allowed, child = await pool.run(inside)
        woke.append(cpu == asked[-1])
        assert allowed == every_cpu  # unpinned once the call starts
        assert child == every_cpu
    # The call runs where the thread woke (it can only be moved away when it is preempted
    # between the unpinning and the call's first line).
    assert sum(woke) >= 27, woke
    pool.shutdown()


@pytest.mark.skipif(not PINNABLE, reason="needs per-thread CPU affinity (Linux) and two CPUs")
@pytest.mark.asyncio
async def test_a_call_keeps_to_the_cpus_the_process_was_narrowed_to_later() -> None:
    """``taskset -a -p`` on a running app: its threads may use fewer CPUs than when the pool
    started. Unpinning gives a thread back what it had, never the pool's first view."""
    every_cpu = os.sched_getaffinity(0)
    narrowed = {min(every_cpu)}
    pool = Workers()

    def inside() -> tuple[set[int], set[int]]:
        started: list[set[int]] = []
        child = threading.Thread(target=lambda: started.append(os.sched_getaffinity(0)))
        child.start()
        child.join(WAIT)
        return os.sched_getaffinity(0), started[0]

    await pool.run(inside)  # the pool's thread starts with every CPU
    tasks = [int(t) for t in os.listdir("/proc/self/task")]
    try:
        for tid in tasks:
            os.sched_setaffinity(tid, narrowed)
        for _ in range(5):
            assert await pool.run(inside) == (narrowed, narrowed)
    finally:
        for tid in tasks:
            with contextlib.suppress(ProcessLookupError):  # a thread that ended meanwhile
                os.sched_setaffinity(tid, every_cpu)
        pool.shutdown()


@pytest.mark.skipif(not PINNABLE, reason="needs per-thread CPU affinity (Linux) and two CPUs")
@pytest.mark.asyncio
async def test_without_pinning_threads_may_run_anywhere() -> None:
    pool = Workers(pin=False)
    for _ in range(3):
        assert await pool.run(os.sched_getaffinity, 0) == os.sched_getaffinity(0)
    pool.shutdown()


@pytest.mark.asyncio
async def test_calls_run_side_by_side_up_to_the_limit_then_wait_their_turn() -> None:
    pool = Workers(max_threads=2)
    both = threading.Barrier(2, timeout=WAIT)  # breaks (an error) unless two run at once
    assert await asyncio.gather(pool.run(both.wait), pool.run(both.wait)) in ([0, 1], [1, 0])

    running = 0
    most = 0
    lock = threading.Lock()

    def work(n: int) -> int:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        time.sleep(0.02)
        with lock:
            running -= 1
        return n * n

    assert await asyncio.gather(*(pool.run(work, n) for n in range(7))) == [
        n * n for n in range(7)
    ]
    assert most == 2
    assert pool.threads == 2
    pool.shutdown()


@pytest.mark.asyncio
async def test_cancelling_the_caller_leaves_a_running_call_to_finish_quietly() -> None:
    pool = Workers(max_threads=1)
    release = threading.Event()
    finished = threading.Event()

    def slow() -> str:
        release.wait(WAIT)
        finished.set()
        return "done"

    task = asyncio.ensure_future(pool.run(slow))
    waiting = asyncio.ensure_future(pool.run(finished.set))  # in the backlog: one thread
    await asyncio.sleep(0.05)
    task.cancel()
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    release.set()
    assert await pool.run(lambda: finished.wait(WAIT))  # the running call finished...
    assert pool.threads == 1  # ...and its thread serves the next call
    pool.shutdown()


def test_a_call_whose_loop_closed_does_not_take_its_thread_with_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    pool = Workers(max_threads=1)
    release = threading.Event()

    async def leave_early() -> None:
        task = asyncio.ensure_future(pool.run(release.wait, WAIT))
        await asyncio.sleep(0.05)  # the call is running; asyncio.run cancels it and closes
        assert not task.done()

    caplog.set_level("DEBUG", logger="storage.threads")
    asyncio.run(leave_early())
    release.set()

    async def again() -> int:
        return await pool.run(lambda: 42)

    assert asyncio.run(again()) == 42
    assert pool.threads == 1
    assert any("event loop is closed" in r.getMessage() for r in caplog.records)
    pool.shutdown()


@pytest.mark.asyncio
async def test_stop_iteration_reaches_the_caller_as_a_runtime_error() -> None:
    with pytest.raises(RuntimeError, match="StopIteration"):
        await run_blocking(next, iter(()))


def test_a_bad_limit_is_refused() -> None:
    with pytest.raises(ValueError, match="max_threads must be at least 1, not 0"):
        Workers(max_threads=0)


@pytest.mark.asyncio
async def test_a_shut_down_pool_refuses_calls() -> None:
    pool = Workers(max_threads=1)
    assert await pool.run(lambda: 1) == 1
    pool.shutdown()
    with pytest.raises(RuntimeError, match="shut down"):
        await pool.run(lambda: 2)


def test_the_interpreter_waits_at_exit_for_a_call_in_progress(tmp_path: Path) -> None:
    """A real process whose main coroutine ends while a call still writes: the write is
    whole when the process has exited (as with the default executor)."""
    target = tmp_path / "written"
    script = f"""
import asyncio, sys, time
from pathlib import Path
from storage.threads import run_blocking

def write():
    time.sleep(0.5)
    Path({str(target)!r}).write_text("whole")

async def main():
    task = asyncio.ensure_future(run_blocking(write))
    await asyncio.sleep(0.1)  # then main returns: the call is still sleeping
    assert not task.done()

asyncio.run(main())
"""
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert target.read_text() == "whole"


def test_a_forked_child_starts_its_own_threads(tmp_path: Path) -> None:
    """The parent's worker threads do not exist in a fork: the child makes its own (a call
    handed to one of the parent's would wait forever; the alarm turns that into a failure)."""
    script = """
import asyncio, os, signal, sys
from storage.threads import run_blocking

assert asyncio.run(run_blocking(os.getpid)) == os.getpid()  # the parent has a thread now
pid = os.fork()
if pid == 0:
    signal.alarm(20)
    os._exit(0 if asyncio.run(run_blocking(lambda: 7)) == 7 else 1)
_, status = os.waitpid(pid, 0)
sys.exit(os.waitstatus_to_exitcode(status))
"""
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, (done.returncode, done.stderr)
