"""The threads that run the archive's blocking calls for the event loop.

``await run_blocking(fn, *args)`` is ``asyncio.to_thread`` with a cheaper hop. Measured on
this machine kind (2 cores), a round trip to a thread and back for a call that does nothing
takes 102 µs p50 through ``asyncio.to_thread`` and 76 µs here; a keyword search at
1,000,000 messages (250-500 µs in all) gains 20-60 µs. Two things make the difference:

- The thread that ran the last call runs the next one. The default executor wakes whichever
  idle thread has waited longest, so consecutive calls go round its threads, each one with
  cold caches (a one-thread executor alone takes the round trip from 102 µs to 82).
- A call is handed to its thread and its result back to the loop directly, without the
  ``concurrent.futures.Future`` that ``to_thread`` chains to an asyncio future.
- On Linux, an idle thread handed a call is first pinned to the CPU the caller (the event
  loop) runs on, so that it wakes there, and unpins itself as soon as the call starts. Waking
  a thread on another CPU, and the loop again when the result is back, each cost 30-40 µs on a
  virtual machine (an interrupt to a CPU that sleeps: the host must wake it); on the loop's
  own CPU the thread runs as soon as the loop waits. Measured on this machine kind, a round
  trip for a call that does nothing: 123 µs without this, 51 µs with it
  (``asyncio.to_thread``: 127 µs in the same run). The thread is pinned only from the hand-over
  to the start of the call: the call itself may run on any CPU the process may use, and
  threads it starts (tantivy's indexing threads) are not pinned.

Calls still run side by side: when every thread is busy, another is started (up to
``MAX_THREADS``; beyond that, calls wait their turn). As with the default executor, the
interpreter waits at exit for calls in progress, so no write is cut off halfway.
"""

from __future__ import annotations

import asyncio
import collections
import contextvars
import ctypes
import functools
import logging
import os
import queue
import threading
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

log = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")

MAX_THREADS = 32  # as many as the default executor allows on a big machine


def _current_cpu() -> Callable[[], int] | None:
    """The C library's ``sched_getcpu`` (the CPU the calling thread runs on, -1 on failure),
    where threads can be pinned to CPUs (Linux); None elsewhere."""
    if not hasattr(os, "sched_setaffinity"):
        return None
    try:
        getcpu = ctypes.CDLL(None).sched_getcpu
    except (OSError, AttributeError):  # no C library to load, or one without the call
        return None
    getcpu.argtypes = []
    getcpu.restype = ctypes.c_int
    return getcpu


class _Call:
    __slots__ = ("fn", "future", "loop")

    def __init__(
        self, loop: asyncio.AbstractEventLoop, future: asyncio.Future[Any], fn: Callable[[], Any]
    ) -> None:
        self.loop = loop
        self.future = future
        self.fn = fn

    def run(self) -> tuple[Callable[[asyncio.Future[Any], Any], None], Any] | None:
        """Call ``fn``; what to hand to the awaiting task (None: no one awaits it now)."""
        if self.future.cancelled():  # cancelled while it waited for a thread
            return None
        try:
            return _succeed, self.fn()
        except BaseException as exc:  # handed to the awaiting task, as to_thread does
            return _fail, exc

    def deliver(self, outcome: tuple[Callable[[asyncio.Future[Any], Any], None], Any]) -> None:
        try:
            self.loop.call_soon_threadsafe(outcome[0], self.future, outcome[1])
        except RuntimeError:  # the loop was closed while the call ran: no one is waiting
            log.debug("the result of %r is dropped: its event loop is closed", self.fn)


def _succeed(future: asyncio.Future[Any], result: Any) -> None:
    if not future.cancelled():
        future.set_result(result)


def _fail(future: asyncio.Future[Any], exc: BaseException) -> None:
    if future.cancelled():
        return
    if isinstance(exc, StopIteration):  # a future cannot hold one (asyncio's own rule)
        exc = RuntimeError(f"StopIteration raised in a worker thread: {exc!r}")
    future.set_exception(exc)


class _Thread:
    """One worker thread and its inbox."""

    __slots__ = ("allowed", "cpu", "inbox", "thread")

    def __init__(self, pool: Workers, number: int) -> None:
        self.inbox: queue.SimpleQueue[_Call | None] = queue.SimpleQueue()
        self.cpu: int | None = None  # the CPU it is pinned to until its call starts
        self.allowed: set[int] = set()  # the CPUs it may run on, given back when it unpins
        self.thread = threading.Thread(
            target=pool._work,
            args=(self,),
            name=f"flatchat-worker-{number}",
            daemon=True,  # an idle worker must not keep the process alive: see Workers.shutdown
        )


class Workers:
    """A pool of threads that gives a call to the most recently idle one (see the module)."""

    def __init__(self, max_threads: int = MAX_THREADS, pin: bool = True) -> None:
        """``pin``: a thread handed a call wakes on the caller's CPU (see the module), where
        the system allows it."""
        if max_threads < 1:
            raise ValueError(f"max_threads must be at least 1, not {max_threads}")
        self.max_threads = max_threads
        self._getcpu = _current_cpu() if pin else None
        self._lock = threading.Lock()
        self._idle: list[_Thread] = []  # a stack: the last to finish is the first to work
        self._backlog: collections.deque[_Call] = collections.deque()  # all threads busy
        self._threads: list[_Thread] = []
        self._closed = False

    @property
    def threads(self) -> int:
        """How many threads were started (they stay, idle, for later calls)."""
        return len(self._threads)

    def submit(self, call: _Call) -> None:
        with self._lock:
            if self._closed:
                raise RuntimeError("the archive's worker threads have shut down (at exit)")
            if self._idle:
                worker = self._idle.pop()
                getcpu = self._getcpu  # read once: a worker may switch pinning off meanwhile
                if getcpu is not None:
                    self._pin(worker, getcpu())
                worker.inbox.put(call)
                return
            if len(self._threads) >= self.max_threads:
                self._backlog.append(call)
                return
            worker = _Thread(self, len(self._threads) + 1)
            self._threads.append(worker)
            worker.inbox.put(call)
        worker.thread.start()

    def _pin(self, worker: _Thread, cpu: int) -> None:
        """Pin the idle ``worker`` to ``cpu`` (the caller's) before waking it: it wakes there."""
        tid = worker.thread.native_id  # set: an idle thread has started
        if tid is None or cpu < 0 or cpu == worker.cpu:
            return
        try:
            # What it may run on now (the process's CPUs may have changed since it started):
            # given back when its call starts.
            allowed = os.sched_getaffinity(tid)
            if cpu not in allowed:
                return
            os.sched_setaffinity(tid, {cpu})
        except OSError as exc:  # e.g. a container that forbids it: calls still run, unpinned
            log.info("worker threads are not pinned to the event loop's CPU: %s", exc)
            self._getcpu = None
            return
        worker.cpu, worker.allowed = cpu, allowed

    def _unpin(self, worker: _Thread) -> None:
        """Give ``worker`` (the calling thread) back the CPUs it had before it was pinned."""
        try:
            os.sched_setaffinity(0, worker.allowed)
        except OSError as exc:  # the process's CPUs changed under us: pin no more threads
            log.warning("a worker thread stays on CPU %s: %s", worker.cpu, exc)
            self._getcpu = None
        worker.cpu = None

    def _work(self, worker: _Thread) -> None:
        call = worker.inbox.get()
        while call is not None:
            if worker.cpu is not None:
                self._unpin(worker)
            outcome = call.run()
            # Back in the pool before the caller hears of the result: a caller that makes its
            # next call straight away finds this thread (warm) on top of the idle stack.
            with self._lock:
                following = self._backlog.popleft() if self._backlog else None
                closed = self._closed
                if following is None and not closed:
                    self._idle.append(worker)
            if outcome is not None:
                call.deliver(outcome)
            if following is not None:
                call = following
            elif closed:
                return
            else:
                call = worker.inbox.get()

    async def run(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``fn(*args, **kwargs)`` in a worker thread and return (or raise) what it does.
        Like ``asyncio.to_thread``, the call sees the caller's context variables, and
        cancelling the awaiting task does not stop a call already running (one still waiting
        for a thread is dropped)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        context = contextvars.copy_context()
        self.submit(_Call(loop, future, functools.partial(context.run, fn, *args, **kwargs)))
        return await future

    def _forget_threads(self) -> None:
        """In a forked child process: the parent's threads do not exist here (a call given to
        one would never run), and its lock may have been held at the fork."""
        self._lock = threading.Lock()
        self._idle = []
        self._backlog = collections.deque()
        self._threads = []
        self._closed = False

    def shutdown(self) -> None:
        """Let idle threads end, and wait for the calls in progress and those waiting."""
        with self._lock:
            self._closed = True
            for worker in self._idle:
                worker.inbox.put(None)
            self._idle.clear()
            threads = [w.thread for w in self._threads]
        for thread in threads:
            if thread is not threading.current_thread() and thread.is_alive():
                thread.join()


_workers = Workers()
# Run before the interpreter's non-daemon threads are joined, as concurrent.futures does for
# the default executor: calls in progress finish (their writes are whole) before exit.
threading._register_atexit(_workers.shutdown)  # type: ignore[attr-defined]
os.register_at_fork(after_in_child=_workers._forget_threads)


async def run_blocking(fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
    """Run ``fn(*args, **kwargs)`` in one of the process's worker threads: see
    :meth:`Workers.run`."""
    return await _workers.run(fn, *args, **kwargs)
