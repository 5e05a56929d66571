"""Flatchat's storage core against SQLite, side by side on the same data in one run.

Run from the repository root::

    .venv/bin/python benchmarks/bench_storage.py            # 100,000 messages, 10,000 sessions
    .venv/bin/python benchmarks/bench_storage.py --quick    # 10,000 messages, 1,000 sessions

It prints a Markdown table and writes it to ``benchmarks/results/bench_storage.md``, with every
number (and the peak RSS) in ``bench_storage.json`` next to it. The ratio column is
``sqlite_time / flatchat_time``: above 1 means Flatchat is faster.

Operations:

1. append one message, durably, 200 times into an existing session (p50 and p95 per append);
2. append 10,000 messages in one ``add_messages`` call vs one SQLite transaction of 10,000
   inserts (each round into a fresh session);
3. read the last 200 and the first 200 messages of a 100,000-message session (warm, p50);
4. iterate a whole 100,000-message session into ``Message`` models;
5. list the 50 most recently updated of 10,000 sessions, cold (first call on a new ``Archive``
   object / a new SQLite connection) and warm (later calls).

Fairness:

- Both sides start from the same pydantic ``Message``/``Session`` objects and give back models:
  SQLite rows are turned into ``Message``/``Session`` models just as Flatchat parses lines into
  them, and writing to SQLite includes turning models into rows.
- Every SQLite operation runs in one ``asyncio.to_thread`` call, as it would have to in the GUI;
  Flatchat's API does the same internally.
- SQLite runs in WAL mode with ``synchronous=FULL`` (one fsync of the WAL per commit); a batch is
  one transaction. Message pages use an index on ``(session_id, seq)``, the session list an index
  on ``(user_id, updated_at)``.
- Before each timed batch, iteration and cold listing the garbage collector is run, so neither
  side pays for collecting the garbage left by generating the test data; batch rounds take turns
  at going first.
- "Cold" means cold for the application (empty session cache, fresh connection); the operating
  system's page cache stays warm for both, since dropping it needs root.

The 10,000 sessions are created through the public API (``create_session``, about 2 ms each
here), not written directly to disk.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import gc
import itertools
import json
import logging
import os
import platform
import random
import resource
import shutil
import sqlite3
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any

import orjson

# Run as a plain script from a checkout: make the repository's packages importable.
ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.common import Stats, dir_size, expect, storage_revision  # noqa: E402
from storage import Archive, Message, Session  # noqa: E402

log = logging.getLogger("bench_storage")

RESULTS_DIR = Path(__file__).resolve().parent / "results"
USER = "bench"
LIST_USER = "lister"
BATCH = 10_000
SINGLE_APPENDS = 200
SINGLE_WARMUP = 5
BATCH_ROUNDS = 7
PAGE = 200
PAGE_RUNS = 50
PAGE_WARMUP = 5
ITER_RUNS = 3
LIST_LIMIT = 50
LIST_COLD_RUNS = 3
LIST_WARM_RUNS = 20
CREATE_CONCURRENCY = 16
MIN_CHARS, MAX_CHARS = 50, 2000
BASE_TIME = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)

# Targets stated in the table.
PAGE_TARGET_MS = 20.0
LIST_TARGET_MS = 100.0

# --------------------------------------------------------------------------- data

# Common English words with rough Zipf weights, and a few accented ones so some lines carry
# non-ASCII text.
_VOCABULARY = (
    "the of and to a in is it you that he was for on are with as I his they be at one have this "
    "from or had by word but what some we can out other were all there when up use your how said "
    "an each she which do their time if will way about many then them write would like so these "
    "her long make thing see him two has look more day could go come did number sound no most "
    "people my over know water than call first who may down side been now find any new work part "
    "take get place made live where after back little only round man year came show every good "
    "me give our under name very through just form sentence great think say help low line differ "
    "turn cause much mean before move right boy old too same tell does set three want air well "
    "also play small end put home read hand port large spell add even land here must big high "
    "such follow act why ask men change went light kind off need house picture try us again "
    "animal point mother world near build self earth father function variable database archive "
    "session message index query latency café naïve résumé façade"
)
_WORDS = _VOCABULARY.split()
_CUM_WEIGHTS = list(itertools.accumulate(1.0 / (rank + 10) for rank in range(len(_WORDS))))
_PUNCT = (".", ".", ".", "?", "!", ",")


def english_text(rng: random.Random, length: int) -> str:
    """About ``length`` characters of English-like sentences, with paragraph breaks."""
    words = rng.choices(_WORDS, cum_weights=_CUM_WEIGHTS, k=length // 4 + 8)
    out: list[str] = []
    size = 0
    index = 0
    while size < length:
        count = rng.randint(4, 18)
        sentence = words[index : index + count] or words[:count]
        index = (index + count) % len(words)
        text = " ".join(sentence)
        text = text[0].upper() + text[1:] + rng.choice(_PUNCT)
        sep = "\n\n" if out and rng.random() < 0.08 else " "
        out.append(sep + text if out else text)
        size += len(out[-1])
    return "".join(out)[:length].rstrip() or "Hello."


def make_messages(rng: random.Random, start: int, count: int) -> list[Message]:
    """``count`` messages numbered from ``start``: alternating roles, 50–2000 characters."""
    messages = []
    for i in range(start, start + count):
        assistant = i % 2 == 1
        content = english_text(rng, rng.randint(MIN_CHARS, MAX_CHARS))
        metadata: dict[str, Any] = (
            {"model": "gpt-4o-2024-08-06", "tokens": len(content) // 4} if assistant else {}
        )
        messages.append(
            Message(
                message_id=f"msg_{i:09d}_{rng.getrandbits(32):08x}",
                role="assistant" if assistant else "user",
                content=content,
                timestamp=BASE_TIME + dt.timedelta(seconds=7 * i),
                metadata=metadata,
            )
        )
    return messages


# --------------------------------------------------------------------------- SQLite baseline

_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    seq INTEGER PRIMARY KEY,
    session_id TEXT NOT NULL,
    message_id TEXT NOT NULL,
    role TEXT NOT NULL,
    content TEXT NOT NULL,
    timestamp TEXT NOT NULL,
    attachments TEXT NOT NULL,
    metadata TEXT NOT NULL,
    parent_id TEXT
);
CREATE INDEX IF NOT EXISTS messages_session_seq ON messages (session_id, seq);
CREATE TABLE IF NOT EXISTS sessions (
    session_id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    title TEXT NOT NULL,
    session_type TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    message_count INTEGER NOT NULL,
    metadata TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS sessions_user_updated ON sessions (user_id, updated_at);
"""
_MESSAGE_COLUMNS = "message_id, role, content, timestamp, attachments, metadata, parent_id"
_INSERT_MESSAGE = (
    f"INSERT INTO messages (session_id, {_MESSAGE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
_SESSION_COLUMNS = (
    "session_id, user_id, title, session_type, created_at, updated_at, message_count, metadata"
)
_SESSION_NAMES = tuple(_SESSION_COLUMNS.split(", "))


def _message_row(session_id: str, m: Message) -> tuple[Any, ...]:
    return (
        session_id,
        m.message_id,
        m.role,
        m.content,
        m.timestamp.isoformat(),
        orjson.dumps(m.attachments).decode(),
        orjson.dumps(m.metadata).decode(),
        m.parent_id,
    )


def _row_message(row: tuple[Any, ...]) -> Message:
    message_id, role, content, timestamp, attachments, metadata, parent_id = row
    data: dict[str, Any] = {
        "message_id": message_id,
        "role": role,
        "content": content,
        "timestamp": timestamp,
        "attachments": orjson.loads(attachments),
        "metadata": orjson.loads(metadata),
    }
    if parent_id is not None:
        data["parent_id"] = parent_id
    return Message.model_validate(data)


def _row_session(row: tuple[Any, ...]) -> Session:
    data = dict(zip(_SESSION_NAMES, row, strict=True))
    data["metadata"] = orjson.loads(data["metadata"])
    return Session.model_validate(data)


class SqliteStore:
    """The same operations on one SQLite file; every method is blocking (run it in a thread)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.db = self._connect()
        self.db.executescript(_SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        # Autocommit off by hand (isolation_level=None) so transactions are explicit; the
        # connection is used from worker threads, one operation at a time.
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        return db

    def reconnect(self) -> None:
        self.db.close()
        self.db = self._connect()

    def close(self) -> None:
        self.db.close()

    def append_one(self, session_id: str, message: Message) -> None:
        self.db.execute("BEGIN IMMEDIATE")
        self.db.execute(_INSERT_MESSAGE, _message_row(session_id, message))
        self.db.execute("COMMIT")

    def append_many(self, session_id: str, messages: Sequence[Message]) -> None:
        self.db.execute("BEGIN IMMEDIATE")
        self.db.executemany(_INSERT_MESSAGE, (_message_row(session_id, m) for m in messages))
        self.db.execute("COMMIT")

    def last_page(self, session_id: str, limit: int) -> list[Message]:
        rows = self.db.execute(
            f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE session_id = ? "
            "ORDER BY seq DESC LIMIT ?",
            (session_id, limit),
        ).fetchall()
        return [_row_message(r) for r in reversed(rows)]

    def first_page(self, session_id: str, limit: int) -> list[Message]:
        rows = self.db.execute(
            f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE session_id = ? ORDER BY seq LIMIT ?",
            (session_id, limit),
        ).fetchall()
        return [_row_message(r) for r in rows]

    def iterate(self, session_id: str) -> int:
        cursor = self.db.execute(
            f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE session_id = ? ORDER BY seq",
            (session_id,),
        )
        count = 0
        for row in cursor:
            _row_message(row)
            count += 1
        return count

    def add_sessions(self, sessions: Sequence[Session]) -> None:
        self.db.execute("BEGIN IMMEDIATE")
        self.db.executemany(
            f"INSERT INTO sessions ({_SESSION_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                (
                    s.session_id,
                    s.user_id,
                    s.title,
                    s.session_type,
                    s.created_at.isoformat(),
                    s.updated_at.isoformat(),
                    s.message_count,
                    orjson.dumps(s.metadata).decode(),
                )
                for s in sessions
            ),
        )
        self.db.execute("COMMIT")

    def list_sessions(self, user_id: str, limit: int) -> list[Session]:
        # updated_at is ISO 8601 in UTC with a fixed offset, so text order is time order.
        rows = self.db.execute(
            f"SELECT {_SESSION_COLUMNS} FROM sessions WHERE user_id = ? "
            "ORDER BY updated_at DESC, session_id DESC LIMIT ?",
            (user_id, limit),
        ).fetchall()
        return [_row_session(r) for r in rows]


# --------------------------------------------------------------------------- measuring


@dataclass
class Row:
    key: str
    operation: str
    flatchat: Stats
    sqlite: Stats
    target: str = ""
    passed: bool | None = None

    @property
    def ratio(self) -> float:
        return self.sqlite.p50_ms / self.flatchat.p50_ms


async def timed(call: Callable[[], Awaitable[Any]], *, collect: bool = False) -> tuple[float, Any]:
    """Seconds ``call`` takes, and its result. ``collect`` first clears the garbage left by
    earlier steps (data generation), so that one side does not pay for collecting it."""
    if collect:
        gc.collect()
    start = time.perf_counter()
    result = await call()
    return time.perf_counter() - start, result


async def repeat(call: Callable[[], Awaitable[Any]], runs: int, warmup: int = 0) -> list[float]:
    for _ in range(warmup):
        await call()
    samples = []
    for _ in range(runs):
        seconds, _result = await timed(call)
        samples.append(seconds)
    return samples


# --------------------------------------------------------------------------- the benchmark


@dataclass
class Config:
    messages: int
    sessions: int
    seed: int
    workdir: Path


class Bench:
    def __init__(self, config: Config, archive: Archive, sql: SqliteStore) -> None:
        self.config = config
        self.archive = archive
        self.sql = sql
        self.rng = random.Random(config.seed)
        self.rows: list[Row] = []
        self.setup: dict[str, float] = {}
        self._next = 0  # message number for generated messages, unique across the run

    def messages(self, count: int) -> list[Message]:
        batch = make_messages(self.rng, self._next, count)
        self._next += count
        return batch

    async def sql_call(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.to_thread(fn, *args)

    # ------------------------------------------------------------------ 1. single appends
    async def single_appends(self) -> None:
        session = await self.archive.create_session(USER, "single appends")
        sid = session.session_id
        seed = self.messages(10)
        await self.archive.add_messages(USER, sid, seed)
        await self.sql_call(self.sql.append_many, sid, seed)
        pending = self.messages(SINGLE_APPENDS + SINGLE_WARMUP)
        log.info("1. appending %d single messages on each side", len(pending))
        flat, sql = [], []
        for i, message in enumerate(pending):
            seconds, _ = await timed(lambda m=message: self.archive.add_message(USER, sid, m))
            if i >= SINGLE_WARMUP:
                flat.append(seconds)
        for i, message in enumerate(pending):
            seconds, _ = await timed(lambda m=message: self.sql_call(self.sql.append_one, sid, m))
            if i >= SINGLE_WARMUP:
                sql.append(seconds)
        self.rows.append(
            Row(
                "append_one",
                f"append 1 message, fsync'd ({SINGLE_APPENDS}×, per append)",
                Stats.of(flat),
                Stats.of(sql),
            )
        )

    # ------------------------------------------------------------------ 2. batch appends
    async def batch_appends(self) -> None:
        size = min(BATCH, self.config.messages)
        flat: list[float] = []
        sql: list[float] = []
        for round_no in range(BATCH_ROUNDS):
            batch = self.messages(size)
            session = await self.archive.create_session(USER, f"batch {round_no}")
            sid = session.session_id
            log.info("2. batch append round %d/%d (%d messages)", round_no + 1, BATCH_ROUNDS, size)
            sides = [
                (flat, partial(self.archive.add_messages, USER, sid, batch)),
                (sql, partial(self.sql_call, self.sql.append_many, sid, batch)),
            ]
            if round_no % 2:
                sides.reverse()  # take turns going first: the second writer finds a busier disk
            for samples, call in sides:
                seconds, _ = await timed(call, collect=True)
                samples.append(seconds)
        row = Row(
            "append_batch",
            f"append {size:,} messages in one batch (fresh session, {BATCH_ROUNDS} rounds)",
            Stats.of(flat),
            Stats.of(sql),
            target="Flatchat at least as fast as SQLite (ratio ≥ 1)",
        )
        row.passed = row.ratio >= 1.0
        self.rows.append(row)

    # ------------------------------------------------------------------ build the big session
    async def build_big_session(self) -> str:
        total = self.config.messages
        session = await self.archive.create_session(USER, "big session")
        sid = session.session_id
        flat_s = sql_s = 0.0
        for start in range(0, total, BATCH):
            batch = self.messages(min(BATCH, total - start))
            seconds, _ = await timed(
                partial(self.archive.add_messages, USER, sid, batch), collect=True
            )
            flat_s += seconds
            seconds, _ = await timed(
                partial(self.sql_call, self.sql.append_many, sid, batch), collect=True
            )
            sql_s += seconds
            log.info("   built %d/%d messages of the big session", start + len(batch), total)
        self.setup["build_big_session_flatchat_s"] = flat_s
        self.setup["build_big_session_sqlite_s"] = sql_s
        return sid

    # ------------------------------------------------------------------ 3. pages
    async def pages(self, sid: str) -> None:
        n = self.config.messages
        log.info("3. reading the first and last %d of %d messages", PAGE, n)
        # Both sides must return the same page before we time them.
        for from_end in (True, False):
            flat_page = await self.archive.get_messages(USER, sid, PAGE, 0, from_end=from_end)
            read = self.sql.last_page if from_end else self.sql.first_page
            sql_page = await self.sql_call(read, sid, PAGE)
            expect(
                [m.message_id for m in flat_page] == [m.message_id for m in sql_page]
                and len(flat_page) == min(PAGE, n),
                f"{'last' if from_end else 'first'} pages differ",
            )

        for from_end, key, label in (
            (True, "last_page", "last"),
            (False, "first_page", "first"),
        ):
            read = self.sql.last_page if from_end else self.sql.first_page
            flat = await repeat(
                lambda fe=from_end: self.archive.get_messages(USER, sid, PAGE, 0, from_end=fe),
                PAGE_RUNS,
                PAGE_WARMUP,
            )
            sql = await repeat(lambda r=read: self.sql_call(r, sid, PAGE), PAGE_RUNS, PAGE_WARMUP)
            row = Row(
                key,
                f"read the {label} {PAGE} of {n:,} messages (warm, {PAGE_RUNS} runs)",
                Stats.of(flat),
                Stats.of(sql),
                target=f"Flatchat p50 < {PAGE_TARGET_MS:g} ms",
            )
            row.passed = row.flatchat.p50_ms < PAGE_TARGET_MS
            self.rows.append(row)

    # ------------------------------------------------------------------ 4. full iteration
    async def iterate(self, sid: str) -> None:
        n = self.config.messages
        log.info("4. iterating all %d messages into models, %d runs each", n, ITER_RUNS)

        async def flat_iter() -> int:
            count = 0
            async for _message in self.archive.iter_messages(USER, sid):
                count += 1
            return count

        flat, sql = [], []
        for _ in range(ITER_RUNS):
            seconds, count = await timed(flat_iter, collect=True)
            expect(count == n, f"Flatchat iterated {count} of {n} messages")
            flat.append(seconds)
            seconds, count = await timed(
                partial(self.sql_call, self.sql.iterate, sid), collect=True
            )
            expect(count == n, f"SQLite iterated {count} of {n} messages")
            sql.append(seconds)
        self.rows.append(
            Row(
                "iterate",
                f"iterate {n:,} messages into Message models ({ITER_RUNS} runs)",
                Stats.of(flat),
                Stats.of(sql),
            )
        )

    # ------------------------------------------------------------------ 5. session listing
    async def build_sessions(self) -> None:
        total = self.config.sessions
        log.info("5. creating %d sessions through the API", total)
        await self.archive.create_user(LIST_USER)
        created: list[Session] = []
        start = time.perf_counter()
        for first in range(0, total, CREATE_CONCURRENCY):
            titles = [
                english_text(self.rng, self.rng.randint(10, 60))
                for _ in range(min(CREATE_CONCURRENCY, total - first))
            ]
            created += await asyncio.gather(
                *(self.archive.create_session(LIST_USER, t) for t in titles)
            )
            if (first // CREATE_CONCURRENCY) % 100 == 0:
                log.info("   %d/%d sessions", len(created), total)
        self.setup["create_sessions_flatchat_s"] = time.perf_counter() - start
        seconds, _ = await timed(lambda: self.sql_call(self.sql.add_sessions, created))
        self.setup["create_sessions_sqlite_s"] = seconds

    async def list_sessions(self) -> None:
        total = self.config.sessions
        root = self.archive.root

        async def flat_cold() -> tuple[float, Archive]:
            fresh = await Archive.open(root)
            seconds, listed = await timed(lambda: fresh.list_sessions(LIST_USER, limit=LIST_LIMIT))
            expect(len(listed) == min(LIST_LIMIT, total), "Flatchat listed too few sessions")
            return seconds, fresh

        async def sql_cold() -> float:
            await self.sql_call(self.sql.reconnect)
            seconds, listed = await timed(
                lambda: self.sql_call(self.sql.list_sessions, LIST_USER, LIST_LIMIT)
            )
            expect(len(listed) == min(LIST_LIMIT, total), "SQLite listed too few sessions")
            return seconds

        flat_cold_s, sql_cold_s = [], []
        fresh = self.archive
        for _ in range(LIST_COLD_RUNS):
            seconds, fresh = await flat_cold()
            flat_cold_s.append(seconds)
            sql_cold_s.append(await sql_cold())

        flat_top = await fresh.list_sessions(LIST_USER, limit=LIST_LIMIT)
        sql_top = await self.sql_call(self.sql.list_sessions, LIST_USER, LIST_LIMIT)
        expect(
            [s.session_id for s in flat_top] == [s.session_id for s in sql_top],
            "the two session lists differ",
        )

        flat_warm = await repeat(
            lambda: fresh.list_sessions(LIST_USER, limit=LIST_LIMIT), LIST_WARM_RUNS
        )
        sql_warm = await repeat(
            lambda: self.sql_call(self.sql.list_sessions, LIST_USER, LIST_LIMIT), LIST_WARM_RUNS
        )
        await fresh.close()
        self.rows.append(
            Row(
                "list_cold",
                f"list {LIST_LIMIT} newest of {total:,} sessions, cold ({LIST_COLD_RUNS} runs)",
                Stats.of(flat_cold_s),
                Stats.of(sql_cold_s),
            )
        )
        row = Row(
            "list_warm",
            f"list {LIST_LIMIT} newest of {total:,} sessions, warm ({LIST_WARM_RUNS} runs)",
            Stats.of(flat_warm),
            Stats.of(sql_warm),
            target=f"Flatchat p50 < {LIST_TARGET_MS:g} ms",
        )
        row.passed = row.flatchat.p50_ms < LIST_TARGET_MS
        self.rows.append(row)

    async def run(self) -> None:
        await self.archive.create_user(USER)
        await self.single_appends()
        await self.batch_appends()
        big = await self.build_big_session()
        await self.pages(big)
        await self.iterate(big)
        await self.build_sessions()
        await self.list_sessions()


# --------------------------------------------------------------------------- reporting


def _ms(value: float) -> str:
    return f"{value:,.2f}" if value < 100 else f"{value:,.0f}"


def markdown(rows: Sequence[Row], meta: dict[str, Any]) -> str:
    lines = [
        "# Flatchat storage vs SQLite",
        "",
        f"{meta['messages']:,} messages in the big session, {meta['sessions']:,} sessions; "
        f"{meta['started_at']}; storage at {meta['revision'] or 'unknown revision'}; "
        f"Python {meta['python']}, SQLite {meta['sqlite']}, "
        f"{meta['platform']}, {meta['cpus']} CPUs; scratch data under `{meta['workdir_parent']}`.",
        "",
        "Times in ms. Ratio = SQLite p50 / Flatchat p50 (> 1: Flatchat is faster).",
        "",
        "| Operation | Flatchat p50 | Flatchat p95 | SQLite p50 | SQLite p95 | Ratio "
        "| Target | Result |",
        "|---|---:|---:|---:|---:|---:|---|---|",
    ]
    for r in rows:
        result = "" if r.passed is None else ("pass" if r.passed else "**FAIL**")
        lines.append(
            f"| {r.operation} | {_ms(r.flatchat.p50_ms)} | {_ms(r.flatchat.p95_ms)} "
            f"| {_ms(r.sqlite.p50_ms)} | {_ms(r.sqlite.p95_ms)} | {r.ratio:.2f} "
            f"| {r.target} | {result} |"
        )
    setup = meta["setup"]
    lines += [
        "",
        f"Setup: big session built in {setup['build_big_session_flatchat_s']:.1f} s (Flatchat) / "
        f"{setup['build_big_session_sqlite_s']:.1f} s (SQLite); "
        f"{meta['sessions']:,} sessions created in {setup['create_sessions_flatchat_s']:.1f} s "
        f"(Flatchat, API, {CREATE_CONCURRENCY} concurrent) / "
        f"{setup['create_sessions_sqlite_s']:.2f} s (SQLite, one transaction).",
        f"On disk: Flatchat {meta['flatchat_bytes'] / 1e6:,.0f} MB, "
        f"SQLite {meta['sqlite_bytes'] / 1e6:,.0f} MB. "
        f"Peak RSS {meta['peak_rss_mb']:,.0f} MB; total run {meta['elapsed_s']:.0f} s.",
        "",
    ]
    return "\n".join(lines)


def peak_rss_mb() -> float:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports KiB, macOS bytes.
    return rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: 10,000 messages, 1,000 sessions"
    )
    parser.add_argument("--messages", type=int, help="messages in the big session (100,000)")
    parser.add_argument("--sessions", type=int, help="sessions to list from (10,000)")
    parser.add_argument(
        "--dir",
        type=Path,
        help="folder in which to make the run's scratch folder (default: the system temp dir)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder")
    parser.add_argument("--seed", type=int, default=20260126)
    parser.add_argument(
        "--out",
        type=Path,
        default=RESULTS_DIR / "bench_storage",
        help="results path without extension (.md and .json are written)",
    )
    args = parser.parse_args(argv)
    default_messages, default_sessions = (10_000, 1_000) if args.quick else (100_000, 10_000)
    args.messages = args.messages or default_messages
    args.sessions = args.sessions or default_sessions
    if args.messages < 1 or args.sessions < 1:
        parser.error("--messages and --sessions must be at least 1")
    return args


async def amain(args: argparse.Namespace) -> int:
    if args.dir is not None:
        args.dir.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="flatchat-bench-", dir=args.dir))
    config = Config(args.messages, args.sessions, args.seed, workdir)
    log.info("scratch folder %s", workdir)
    started = time.perf_counter()
    started_at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    revision = storage_revision()
    archive = await Archive.open(workdir / "flatchat", create=True)
    sql = SqliteStore(workdir / "sqlite.db")
    try:
        bench = Bench(config, archive, sql)
        await bench.run()
        meta: dict[str, Any] = {
            "messages": config.messages,
            "sessions": config.sessions,
            "seed": config.seed,
            "workdir": str(workdir),
            "workdir_parent": str(workdir.parent),
            "started_at": started_at,
            "revision": revision,
            "python": platform.python_version(),
            "sqlite": sqlite3.sqlite_version,
            "platform": platform.platform(terse=True),
            "cpus": os.cpu_count(),
            "setup": bench.setup,
            "flatchat_bytes": dir_size(workdir / "flatchat"),
            "sqlite_bytes": sum(
                dir_size(p) for p in workdir.iterdir() if p.name.startswith("sqlite.db")
            ),
            "peak_rss_mb": peak_rss_mb(),
            "elapsed_s": time.perf_counter() - started,
        }
    finally:
        await archive.close()
        sql.close()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)

    table = markdown(bench.rows, meta)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    md_path = args.out.with_name(args.out.name + ".md")
    json_path = args.out.with_name(args.out.name + ".json")
    md_path.write_text(table, encoding="utf-8")
    report = {
        **meta,
        "rows": [{**asdict(r), "ratio": r.ratio} for r in bench.rows],
    }
    json_path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    sys.stdout.write(table)
    log.info("wrote %s and %s", md_path, json_path)
    missed = [r.key for r in bench.rows if r.passed is False]
    if missed:
        log.warning("targets missed: %s", ", ".join(missed))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    return asyncio.run(amain(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
