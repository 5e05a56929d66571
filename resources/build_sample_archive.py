"""Build the sample archive shipped in ``resources/sample_archive/``, through the storage API.

    python -m resources.build_sample_archive [--out DIR]

Two users, five chats (one branched), a panel with three personas and two insights, situational
context, documents: small, but it exercises every record of the format, for first runs, demos
and tests. Everything here is fixed (ids, timestamps, text), so a rebuild is byte-identical to
the committed copy (``tests/app/test_sample_archive.py`` checks it). The API stamps some fields
with the current time (created_at, updated_at, uploaded_at); once the archive is built, those are
set to fixed values by reading each record and writing it back. To change the sample, edit this
file, rebuild and commit both.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import itertools
import re
import shutil
import sys
import tempfile
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from storage import Archive, Persona, Session
from storage.files import read_json, read_model, write_model
from storage.layout import DOCUMENTS_META, LOCKS_DIR
from storage.models import ArchiveInfo, DocumentRecord, Message, PanelType, Record, SessionType

DEFAULT_OUT = Path(__file__).resolve().parent / "sample_archive"


def _at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)


ARCHIVE_CREATED = _at("2025-03-01T09:00:00")
PERSONAS_CREATED = _at("2025-03-01T09:05:00")

# --------------------------------------------------------------------------- text helpers

# A line that starts a Markdown block of its own instead of continuing a paragraph.
_BLOCK_START = re.compile(r"\s*(?:[-*+]\s|>|#|\||\d+\.\s|```)")


def _md(text: str) -> str:
    """Dedent ``text`` and join the hard-wrapped lines of each paragraph and list item.

    Source lines stay under the line-length limit, while the stored messages look like real
    chat exports: one line per paragraph. Fenced code is kept exactly as written.
    """
    out: list[str] = []
    fenced = False
    joinable = False
    for line in textwrap.dedent(text).strip("\n").splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
            out.append(line)
            joinable = False
        elif fenced or not line.strip():
            out.append(line)
            joinable = False
        elif joinable and not _BLOCK_START.match(line):
            out[-1] += " " + line.strip()
        else:
            out.append(line)
            joinable = not line.lstrip().startswith(("#", "|"))
    return "\n".join(out)


# --------------------------------------------------------------------------- content model


@dataclass(frozen=True)
class Turn:
    role: str
    text: str
    parent: int | None = None  # number (1-based) of the message this one follows: a branch
    attach: str | None = None  # original name of a document of the chat attached to it


def user(text: str, *, attach: str | None = None) -> Turn:
    return Turn("user", _md(text), attach=attach)


def bot(text: str, *, parent: int | None = None) -> Turn:
    return Turn("assistant", _md(text), parent=parent)


@dataclass(frozen=True)
class Doc:
    name: str
    mime_type: str
    data: bytes
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Context:
    upto: int  # the context covers messages 1..upto
    summary: str
    key_points: list[str]
    entities: dict[str, list[str]]
    confidence: float


@dataclass(frozen=True)
class Chat:
    user_id: str
    session_id: str
    key: str  # message ids are msg_<key>_<nn>
    title: str
    start: dt.datetime
    model: str
    metadata: dict[str, Any]
    turns: list[Turn]
    documents: list[Doc] = field(default_factory=list)
    snapshots: list[Context] = field(default_factory=list)
    context: Context | None = None
    active_leaf: int | None = None  # number of the message the session shows (branches)


def _timeline(start: dt.datetime, texts: Sequence[tuple[str, str]]) -> list[dt.datetime]:
    """Believable times: a person reads the reply and types; an assistant answers fast."""
    times = [start]
    for (_, previous), (role, text) in itertools.pairwise(texts):
        reading_and_typing = 40 + len(previous) // 25 + len(text) // 5
        generating = 6 + len(text) // 90
        pause = reading_and_typing if role == "user" else generating
        times.append(times[-1] + dt.timedelta(seconds=pause))
    return times


def _analysis(data: bytes) -> dict[str, Any]:
    text = data.decode()
    return {"words": len(text.split()), "lines": text.count("\n"), "language": "en"}


# --------------------------------------------------------------------------- users

USERS: list[dict[str, Any]] = [
    {
        "user_id": "ada",
        "username": "Ada Lovelace",
        "preferences": {
            "theme": "dark",
            "language": "en-GB",
            "font_size": 13,
            "default_model": "claude-3-5-sonnet",
            "show_timestamps": True,
        },
        "metadata": {"timezone": "Europe/London", "avatar_color": "#7b4fd6"},
    },
    {
        "user_id": "grace",
        "username": "Grace Hopper",
        "preferences": {
            "theme": "light",
            "language": "en-US",
            "font_size": 14,
            "default_model": "gpt-4o",
            "code_font": "JetBrains Mono",
            "show_timestamps": False,
        },
        "metadata": {"timezone": "America/New_York", "avatar_color": "#1f7a5c"},
    },
]

# --------------------------------------------------------------------------- personas

GLOBAL_PERSONAS: list[dict[str, Any]] = [
    {
        "id": "pragmatic_engineer",
        "name": "Pragmatic Engineer",
        "description": "Ships working software. Weighs cost, risk and who will maintain it "
        "before elegance, and asks for measurements before opinions.",
        "traits": ["practical", "direct", "cost-aware", "calm"],
        "expertise": ["software architecture", "Python", "databases", "operations"],
        "communication_style": "Short paragraphs, concrete trade-offs, ends with a "
        "recommendation and what it would take to change it.",
    },
    {
        "id": "skeptical_reviewer",
        "name": "Skeptical Reviewer",
        "description": "Looks for the failure modes: missing evidence, untested edge cases, "
        "migrations that cannot be rolled back.",
        "traits": ["rigorous", "evidence-driven", "blunt but fair"],
        "expertise": ["code review", "testing", "data correctness", "security"],
        "communication_style": "Asks one pointed question at a time; agrees explicitly "
        "when the evidence is in.",
    },
    {
        "id": "product_strategist",
        "name": "Product Strategist",
        "description": "Starts from who feels the problem and what it costs them; turns "
        "technical debates into decisions with owners and dates.",
        "traits": ["user-focused", "decisive", "synthesising"],
        "expertise": ["product management", "user research", "roadmapping"],
        "communication_style": "Frames the decision, lists options with their cost, and "
        "closes with a summary everyone can agree to.",
    },
    {
        "id": "patient_teacher",
        "name": "Patient Teacher",
        "description": "Explains from first principles with small examples and everyday "
        "analogies, checking understanding along the way.",
        "traits": ["patient", "encouraging", "clear"],
        "expertise": ["computer science fundamentals", "mathematics", "teaching"],
        "communication_style": "Builds up step by step, one new idea at a time, and ends "
        "with a question to try.",
    },
]

USER_PERSONAS: dict[str, list[dict[str, Any]]] = {
    "ada": [
        {
            "id": "numerical_analyst",
            "name": "Numerical Analyst",
            "description": "Ada's own reviewer for anything with numbers in it: exact "
            "arithmetic first, floating point only with an error bound.",
            "traits": ["precise", "sceptical of floats", "fond of worked examples"],
            "expertise": ["numerical methods", "floating point", "number theory", "statistics"],
            "communication_style": "States the bound or the exact value, then the code; "
            "flags every place precision can be lost.",
        }
    ]
}

# --------------------------------------------------------------------------- documents

SENSOR_CSV = b"""\
timestamp,sensor_id,temperature_c,humidity_pct
2025-02-14T09:00:00Z,S-007,19.8,43
2025-02-14T09:00:00Z,S-014,21.2,40
2025-02-14T09:00:00Z,S-022,17.9,49
2025-02-14T09:15:00Z,S-007,19.9,45
2025-02-14T09:15:00Z,S-014,21.3,42
2025-02-14T09:15:00Z,S-022,17.8,51
2025-02-14T09:30:00Z,S-007,20.1,42
2025-02-14T09:30:00Z,S-014,21.5,39
2025-02-14T09:30:00Z,S-022,18.0,48
2025-02-14T09:45:00Z,S-007,20.2,44
2025-02-14T09:45:00Z,S-014,21.6,41
2025-02-14T09:45:00Z,S-022,18.1,50
2025-02-14T10:00:00Z,S-007,20.4,41
2025-02-14T10:00:00Z,S-014,21.8,38
2025-02-14T10:00:00Z,S-022,18.3,47
2025-02-14T10:15:00Z,S-007,20.6,43
2025-02-14T10:15:00Z,S-014,,40
2025-02-14T10:15:00Z,S-022,18.2,49
2025-02-14T10:30:00Z,S-007,20.5,45
2025-02-14T10:30:00Z,S-014,22.0,42
2025-02-14T10:30:00Z,S-022,18.4,51
2025-02-14T10:45:00Z,S-007,20.7,42
2025-02-14T10:45:00Z,S-014,22.1,39
2025-02-14T10:45:00Z,S-022,18.6,48
"""

PAYROLL_SPEC = b"""\
# Weekly payroll report (PAYRPT07): porting notes

Owner: Grace Hopper. Status: port verified against the February run (412 of 412 records match).

## Input

Fixed-width EBCDIC file (code page 037) from the mainframe, 40 bytes per record, no
newlines. Layout from copybook `PAYREC.cpy`:

| Field        | Offset | Bytes | Picture           | Python            |
|--------------|-------:|------:|-------------------|-------------------|
| EMP-ID       |      0 |     6 | X(6)              | str (cp037)       |
| EMP-NAME     |      6 |    20 | X(20)             | str, right-strip  |
| DEPT-CODE    |     26 |     3 | X(3)              | str               |
| HOURS-WORKED |     29 |     3 | S9(3)V9 COMP-3    | Decimal, scale 1  |
| HOURLY-RATE  |     32 |     3 | S9(3)V99 COMP-3   | Decimal, scale 2  |
| YTD-GROSS    |     35 |     5 | S9(7)V99 COMP-3   | Decimal, scale 2  |

Sign nibble of packed fields: `D` is negative; `C` and `F` are positive.

## Rules

1. Regular pay: up to 40 hours at the hourly rate.
2. Overtime: hours over 40 at `OT-RATE`, where `OT-RATE PIC 9(3)V99` holds 1.5 x rate
   **truncated** to cents before it is multiplied (the old program stores it first).
3. Gross pay is `ROUNDED` (half away from zero): `ROUND_HALF_UP` on a `Decimal`.
4. Deductions (tax 18%, pension 5%) are computed without `ROUNDED`, so they are
   truncated: `ROUND_DOWN`.
5. Never use `float` anywhere in the pipeline.

## Verification

- Golden test: last month's input and printed report live in `tests/golden/`; the port
  must reproduce the report line for line.
- Edge cases covered: exactly 40.0 hours, zero hours, a negative adjustment record,
  the largest value each field can hold.
"""

READING_LIST = b"""\
Compilers and interpreters: reading list for the class (and for me)

For the students
- Crafting Interpreters, Robert Nystrom. Free online; builds two interpreters for
  one small language, one chapter at a time. Start here.
- The "How does a computer run my code?" worksheet from the talk: tokens, trees,
  stack machine.

For me, to keep a step ahead
- Compilers: Principles, Techniques, and Tools (Aho, Lam, Sethi, Ullman). The
  "dragon book"; read the chapters on lexing and syntax-directed translation.
- Engineering a Compiler (Cooper, Torczon). Better on code generation and
  optimisation than the dragon book.
- Writing An Interpreter In Go (Thorsten Ball). Short and hands-on.

Ideas to try in class
- Let students "be" the stack machine: one holds the stack (sticky notes), one
  reads instructions aloud, one is memory.
- Show `python -m dis` on a line they wrote and ask where the arithmetic went
  (constant folding).
"""

LIBRARY: list[tuple[str, Doc, dt.datetime]] = [
    (
        "grace",
        Doc(
            "compiler_reading_list.txt",
            "text/plain",
            READING_LIST,
            {"tags": ["teaching", "compilers"]},
        ),
        _at("2025-03-20T19:40:00"),
    ),
]

# --------------------------------------------------------------------------- chats

CSV_CHAT = Chat(
    user_id="ada",
    session_id="chat_session_20250303_091500_000000_a001",
    key="a001",
    title="Streaming a 4 GB sensor CSV without running out of memory",
    start=_at("2025-03-03T09:15:00"),
    model="gpt-4o",
    metadata={"tags": ["python", "performance", "csv"], "source": "chatgpt", "model": "gpt-4o"},
    documents=[
        Doc(
            "sensor_readings_sample.csv",
            "text/csv",
            SENSOR_CSV,
            {"tags": ["sample data"], "description": "Two hours of readings from three sensors"},
        )
    ],
    turns=[
        user("""
            I have a 4 GB CSV of sensor readings with columns timestamp, sensor_id,
            temperature_c and humidity_pct. `pandas.read_csv` runs out of memory on my
            8 GB laptop. All I need is the mean temperature per sensor per hour. What are
            my options?
            """),
        bot("""
            You never need the whole file in memory for this: an hourly mean only needs a
            running **sum** and **count** per (sensor, hour). A few ways to get there:

            1. **pandas in chunks**: `read_csv(..., chunksize=...)`, aggregate each chunk,
               combine at the end.
            2. **Plain `csv` module and a generator**: no dependencies, constant memory per
               row.
            3. **Load only what you need**: `usecols` and explicit `dtype`s cut pandas'
               memory a lot on their own.
            4. **A query engine** such as DuckDB or Polars, which stream the file for you.

            Option 1 is the smallest change to what you have:

            ```python
            import pandas as pd

            sums = None
            for chunk in pd.read_csv(
                "readings.csv",
                usecols=["timestamp", "sensor_id", "temperature_c"],
                dtype={"sensor_id": "category", "temperature_c": "float32"},
                chunksize=1_000_000,
            ):
                chunk["hour"] = chunk["timestamp"].str.slice(0, 13)
                part = chunk.groupby(["sensor_id", "hour"], observed=True)["temperature_c"]
                part = part.agg(["sum", "count"])
                sums = part if sums is None else sums.add(part, fill_value=0)

            hourly = sums["sum"] / sums["count"]
            ```

            Summing sums and counts (instead of averaging averages) keeps the result exact
            even when an hour is split across two chunks.
            """),
        user("""
            I'd rather not use pandas at all: this ends up as a nightly job on a small box
            where installing pandas is a fight. Can you show the standard-library version?
            """),
        bot("""
            Sure. A generator pipeline reads one row at a time, so memory depends on the
            number of (sensor, hour) groups, not on the file size:

            ```python
            import csv
            from collections import defaultdict
            from datetime import datetime


            def read_rows(path):
                with open(path, newline="") as f:
                    yield from csv.DictReader(f)


            def hourly_means(path):
                sums = defaultdict(float)
                counts = defaultdict(int)
                for row in read_rows(path):
                    ts = datetime.fromisoformat(row["timestamp"])
                    key = (row["sensor_id"], ts.replace(minute=0, second=0))
                    sums[key] += float(row["temperature_c"])
                    counts[key] += 1
                return {key: sums[key] / counts[key] for key in sums}
            ```

            `newline=""` matters: the csv module does its own newline handling, and without
            it quoted fields containing line breaks are read wrongly.
            """),
        user("""
            It works, but it takes 11 minutes on the full file. Is DictReader the slow part?
            """),
        bot("""
            It's one of two. Per row, `DictReader` builds a dictionary and
            `datetime.fromisoformat` parses a full timestamp, and you have tens of millions
            of rows. Both can go:

            - Use `csv.reader` and index the columns by position.
            - If every timestamp has the same shape (`2025-02-14T09:15:00Z`), the hour is
              simply the first 13 characters: `row[0][:13]` gives `2025-02-14T09`. No
              parsing at all.

            ```python
            def hourly_means(path):
                sums = defaultdict(float)
                counts = defaultdict(int)
                with open(path, newline="") as f:
                    reader = csv.reader(f)
                    next(reader)  # header
                    for row in reader:
                        key = (row[1], row[0][:13])
                        sums[key] += float(row[2])
                        counts[key] += 1
                return {key: sums[key] / counts[key] for key in sums}
            ```

            Expect somewhere around two to three times faster. Slicing is only safe if the
            format really is fixed, so check that first.
            """),
        user("""
            Down to 4 minutes. All timestamps are UTC with a Z suffix, so slicing is fine.
            New problem though: some rows have an empty temperature and the job dies with
            `ValueError: could not convert string to float: ''`.
            """),
        bot("""
            Missing readings are normal for sensors, so treat them as data, not as an
            error: skip them, count them, and log the first few so you can tell a flaky
            sensor from a broken export.

            ```python
            import logging

            log = logging.getLogger("ingest")


            def hourly_means(path, max_logged=5):
                sums = defaultdict(float)
                counts = defaultdict(int)
                skipped = 0
                with open(path, newline="") as f:
                    reader = csv.reader(f)
                    next(reader)
                    for row in reader:
                        if not row[2]:
                            skipped += 1
                            if skipped <= max_logged:
                                log.warning(
                                    "line %d: no temperature for %s", reader.line_num, row[1]
                                )
                            continue
                        key = (row[1], row[0][:13])
                        sums[key] += float(row[2])
                        counts[key] += 1
                log.info("skipped %d rows without a temperature", skipped)
                return {key: sums[key] / counts[key] for key in sums}
            ```

            I'd avoid wrapping the whole loop in `try/except ValueError`: it would also
            hide rows that are malformed in ways you *do* want to hear about.
            `reader.line_num` counts physical lines, so it points at the right place in the
            file even if some fields contain line breaks.
            """),
        user("How much memory does this use now?"),
        bot("""
            Roughly proportional to the number of (sensor, hour) keys, independent of the
            file size. A back-of-the-envelope estimate for 200 sensors over 90 days:

            | | |
            |---|---|
            | keys | 200 x 24 x 90 = 432,000 |
            | per key (tuple, two strings, dict entries in two dicts, float, int) | ~200-250 bytes |
            | total | ~90-110 MB |

            That's fine on your laptop, but it grows with the time span. If the file is
            sorted by time you can do better: finish each hour, write it out and forget it.
            """),
        user("It is sorted by timestamp. So I could flush each hour as soon as it's done?"),
        bot("""
            Exactly. `itertools.groupby` hands you the rows one hour at a time, and only the
            current hour's sums are in memory:

            ```python
            from itertools import groupby


            def hourly_means(path):
                last_hour = ""
                with open(path, newline="") as f:
                    reader = csv.reader(f)
                    next(reader)
                    for hour, rows in groupby(reader, key=lambda row: row[0][:13]):
                        if hour <= last_hour:
                            raise ValueError(f"input not sorted: {hour} after {last_hour}")
                        last_hour = hour
                        sums, counts = {}, {}
                        for row in rows:
                            if not row[2]:
                                continue
                            sums[row[1]] = sums.get(row[1], 0.0) + float(row[2])
                            counts[row[1]] = counts.get(row[1], 0) + 1
                        for sensor in sorted(sums):
                            yield hour, sensor, sums[sensor] / counts[sensor], counts[sensor]
            ```

            The sortedness check is important: `groupby` only groups *consecutive* rows, so
            an unsorted file would silently produce the same hour twice. Failing loudly is
            better than a subtly wrong report.
            """),
        user("Nice. Last thing: can I write the result as CSV and gzip it on the fly?"),
        bot("""
            Yes, `gzip.open` in text mode behaves like a normal file:

            ```python
            import gzip

            with gzip.open("hourly_means.csv.gz", "wt", newline="") as out:
                writer = csv.writer(out)
                writer.writerow(["hour", "sensor_id", "mean_temperature_c", "readings"])
                for hour, sensor, mean, n in hourly_means("readings.csv"):
                    writer.writerow([hour, sensor, f"{mean:.2f}", n])
            ```

            Again `newline=""`, for the writer this time, or you'll get `\\r\\r\\n` line
            endings on Windows.
            """),
        user(
            """
            Final numbers: 3 min 40 s and about 25 MB of memory, down from "crashes". I've
            attached two hours of the real data so I can keep it as a test fixture.
            """,
            attach="sensor_readings_sample.csv",
        ),
        bot("""
            That's a great result. For the record, what changed:

            - [x] stream rows instead of loading the file
            - [x] `csv.reader` with positional columns instead of `DictReader`
            - [x] hour from a string slice instead of parsing timestamps
            - [x] skip and count empty readings
            - [x] one hour in memory at a time (`groupby`, input must be sorted)
            - [x] gzip the output while writing

            Your sample makes a good fixture. For it, the job should produce:

            | hour | sensor | mean | readings |
            |---|---|---|---|
            | 2025-02-14T09 | S-007 | 20.00 | 4 |
            | 2025-02-14T09 | S-014 | 21.40 | 4 |
            | 2025-02-14T09 | S-022 | 17.95 | 4 |
            | 2025-02-14T10 | S-007 | 20.55 | 4 |
            | 2025-02-14T10 | S-014 | 21.97 | 3 |
            | 2025-02-14T10 | S-022 | 18.38 | 4 |

            S-014 has only three readings at 10:00 because the 10:15 row is empty, which
            also exercises the skipping.
            """),
    ],
    snapshots=[
        Context(
            upto=6,
            summary="Ada needs hourly mean temperatures per sensor from a 4 GB CSV that "
            "pandas cannot load; she moved to a standard-library generator and then to "
            "csv.reader with a string slice for the hour.",
            key_points=[
                "the full file does not fit in 8 GB with pandas",
                "pandas is unwelcome on the target machine",
                "running sums and counts per (sensor, hour) are enough",
            ],
            entities={"language": ["Python"], "library": ["pandas", "csv"]},
            confidence=0.8,
        ),
        Context(
            upto=12,
            summary="The stdlib job runs in 4 minutes; empty temperatures are skipped and "
            "counted, and since the input is sorted by time it aggregates one hour at a "
            "time with itertools.groupby.",
            key_points=[
                "empty readings are skipped and logged, not fatal",
                "memory is proportional to (sensor, hour) keys",
                "groupby needs sorted input, so sortedness is checked",
            ],
            entities={"language": ["Python"], "library": ["csv", "itertools"]},
            confidence=0.85,
        ),
    ],
    context=Context(
        upto=16,
        summary="Nightly hourly-mean job for sensor CSVs in pure Python: streams rows with "
        "csv.reader, groups by hour with groupby, skips empty readings and writes gzipped "
        "CSV. 3 min 40 s and ~25 MB on the full 4 GB file.",
        key_points=[
            "no pandas: standard library only",
            "hour = first 13 characters of the UTC timestamp",
            "input must be sorted by time (checked)",
            "a two-hour sample is attached as a test fixture",
        ],
        entities={
            "language": ["Python"],
            "library": ["csv", "itertools", "gzip"],
            "file": ["sensor_readings_sample.csv"],
            "sensor": ["S-007", "S-014", "S-022"],
        },
        confidence=0.9,
    ),
)

BERNOULLI_CHAT = Chat(
    user_id="ada",
    session_id="chat_session_20250310_201000_000000_a002",
    key="a002",
    title="Bernoulli numbers for a talk on Note G",
    start=_at("2025-03-10T20:10:00"),
    model="claude-3-5-sonnet",
    metadata={
        "tags": ["math", "python", "history"],
        "source": "claude",
        "model": "claude-3-5-sonnet",
    },
    active_leaf=13,
    turns=[
        user("""
            I'm giving a short talk about Note G, the Bernoulli number program in the notes
            on the Analytical Engine. I want to compute the same numbers live in Python.
            What's a clean definition I can code directly?
            """),
        bot("""
            The recurrence that is easiest to code is

            $$\\sum_{k=0}^{m} \\binom{m+1}{k} B_k = 0 \\quad (m \\ge 1), \\qquad B_0 = 1$$

            Solve it for the last term and you get each $B_m$ from the ones before it. With
            exact fractions it translates almost word for word:

            ```python
            from fractions import Fraction
            from math import comb


            def B(m):
                if m == 0:
                    return Fraction(1)
                return -sum(comb(m + 1, k) * B(k) for k in range(m)) / (m + 1)


            print([B(m) for m in range(9)])
            ```

            `Fraction` matters: Bernoulli numbers are rationals, and the whole point of
            the demo is that the program gets them *exactly* right.
            """),
        user("""
            Nice, it prints 1, -1/2, 1/6, 0, -1/30, 0, 1/42, 0, -1/30. But Note G calls the
            number it computes B7, and that doesn't match these indices. Is the numbering
            different?
            """),
        bot("""
            Yes. The notes leave out the values that are zero and label the others with odd
            indices, so the labels are shifted compared to today's convention:

            | Note G | modern | value |
            |---|---|---|
            | B1 | B_2 | 1/6 |
            | B3 | B_4 | -1/30 |
            | B5 | B_6 | 1/42 |
            | B7 | B_8 | -1/30 |

            So the "B7" the program computes is the modern $B_8 = -1/30$. Texts also differ
            on the sign of $B_1$ (-1/2 or +1/2), so when you show the table, say which
            convention you're using; someone in the audience will check.
            """),
        user("""
            Great. I'd like to go further in the demo, up to B_500, but the recursive version
            is hopeless: B(18) already takes a second, and each step is about 50% slower than
            the one before. How do I make it fast?
            """),
        bot("""
            The bottleneck is big-number fraction arithmetic, so the quickest win is to
            switch to floating point, which is hardware-accelerated:

            ```python
            def bernoulli_float(n):
                b = [1.0]
                for m in range(1, n + 1):
                    b.append(-sum(comb(m + 1, k) * b[k] for k in range(m)) / (m + 1))
                return b
            ```

            This computes all 500 values in a fraction of a second.
            """),
        user("""
            Hmm. It's fast, but B_51 comes out as -676622540169.85 when it should be exactly
            0, and from B_258 on every value is `nan`. That's not something I can put on a
            slide about a program that was exact.
            """),
        bot("""
            You're right, and I should have seen it. The terms of the sum are enormous
            compared to the result, so rounding errors that are tiny relative to the terms
            are huge relative to the answer: that's where the non-zero odd values come
            from. And the values themselves outgrow the largest double (about 1.8e308)
            around B_258, after which the sums become `inf - inf = nan`. Floats are the
            wrong tool here.
            """),
        bot(
            """
            The slow part isn't the fractions, it's the recursion: `B(m)` calls `B(k)` for
            every smaller `k`, and each of those does the same, so the same values are
            recomputed an exponential number of times. Compute the numbers in order
            instead and keep them in a list; every value is then computed once:

            ```python
            from fractions import Fraction
            from math import comb


            def bernoulli(n):
                \"\"\"B_0 .. B_n, exactly (convention B_1 = -1/2).\"\"\"
                b = [Fraction(1)]
                for m in range(1, n + 1):
                    b.append(-sum(comb(m + 1, k) * b[k] for k in range(m)) / (m + 1))
                return b
            ```

            That's $O(n^2)$ fraction operations in total, and the answers stay exact. On a
            laptop `bernoulli(500)` takes well under a second. Don't be tempted by floats
            for speed: the terms of the sum are far larger than the result, so rounding
            errors swamp it (the odd-indexed values stop being zero), and past B_257 the
            numbers no longer fit in a double at all.
            """,
            parent=5,
        ),
        user("""
            That's it: 0.6 seconds for all 500. Is there a quick way to convince the audience
            the values are right, beyond "trust me"?
            """),
        bot("""
            Two checks that fit on a slide:

            - **A famous value.** $B_{12} = -691/2730$. The 691 is famous among number
              theorists: it's the first irregular prime to show up in a numerator.
            - **The von Staudt-Clausen theorem.** The denominator of $B_{2k}$ is the product
              of all primes $p$ with $(p-1) \\mid 2k$. That checks every even-indexed value:

            ```python
            def primes_up_to(n):
                sieve = [True] * (n + 1)
                sieve[0:2] = [False, False]
                for p in range(2, int(n**0.5) + 1):
                    if sieve[p]:
                        sieve[p * p :: p] = [False] * len(sieve[p * p :: p])
                return [p for p, is_prime in enumerate(sieve) if is_prime]


            b = bernoulli(500)
            primes = primes_up_to(501)
            for n in range(2, 501, 2):
                expected = 1
                for p in primes:
                    if n % (p - 1) == 0:
                        expected *= p
                assert b[n].denominator == expected, n
            assert b[12] == Fraction(-691, 2730)
            assert all(b[k] == 0 for k in range(3, 501, 2))
            ```

            The last line checks that every odd-indexed value after $B_1$ is exactly zero,
            which is precisely what floating point would get wrong.
            """),
        user("All three checks pass up to 500. Thank you, this is going straight into the talk."),
        bot("""
            Glad it works. One idea for the talk: put the Note G table next to the output of
            `bernoulli(8)` and let the audience match the labels themselves. It makes the
            renumbering memorable, and it shows how much of the idea of a program was
            already there in 1843, a century before anyone could run it.
            """),
    ],
)

EDINBURGH_CHAT = Chat(
    user_id="ada",
    session_id="chat_session_20250402_183000_000000_a003",
    key="a003",
    title="A slow weekend in Edinburgh",
    start=_at("2025-04-02T18:30:00"),
    model="llama3.1:8b",
    metadata={"tags": ["travel", "personal"], "source": "flatchat", "model": "llama3.1:8b"},
    turns=[
        user("""
            I'm going to Edinburgh for a weekend in mid-April: arriving Friday evening by
            train from London, leaving Sunday at about 6 pm. I like museums and long walks,
            I'm not into pub crawls, and I don't want to rush. Can you suggest a plan?
            """),
        bot("""
            Here's a relaxed plan that keeps walking distances sensible and leaves room to
            linger. Edinburgh is compact: almost everything below is walkable from
            Waverley station, where your train arrives.

            ## Friday evening

            - Drop your bags, then walk through **Princes Street Gardens**, which sit right
              below the castle rock. In mid-April it's light until around 8 pm.
            - Dinner in the **Old Town**; the streets around the Grassmarket have plenty of
              restaurants and are lovely in the evening.
            - Early night: Saturday starts early.

            ## Saturday

            - **Edinburgh Castle** when it opens. Book a timed ticket online; queues build
              quickly from mid-morning.
            - Walk down the **Royal Mile** from the castle towards Holyrood. Duck into the
              closes (the narrow side alleys) as you go; several open onto courtyards with
              views to the north.
            - Lunch, then the **National Museum of Scotland** on Chambers Street. It's free
              and you can easily spend three hours there; don't miss the rooftop terrace.
            - **Greyfriars Kirkyard** is just around the corner, if you like old graveyards.
            - Finish on **Calton Hill** for the sunset view over the city and the Firth of
              Forth. It's a short climb from the east end of Princes Street.

            ## Sunday

            - Morning walk up **Arthur's Seat** in Holyrood Park. Allow two hours there and
              back from the bottom at an easy pace; the path is steep and rocky near the top.
            - Back into town for lunch, then the **Water of Leith** walkway to **Dean
              Village**, a quiet, very photogenic corner of the New Town.
            - Afternoon at the **Scottish National Gallery** on the Mound, which is two
              minutes from Waverley, so you can stay until it's time for your train.

            If the weather turns, swap Arthur's Seat and the gallery: the hill is far
            nicer on a dry morning.
            """),
        user("What's the weather usually like in April? What should I pack?"),
        bot("""
            Cool and changeable. Daytime temperatures are typically somewhere between 5 and
            12 °C, there's often a stiff wind, and sunshine and showers can follow each
            other within the hour. Pack for layers:

            - a warm mid-layer (fleece or jumper) and a windproof, waterproof jacket
            - shoes with good grip: the Old Town is all cobbles and slopes, and the top of
              Arthur's Seat is slippery when wet
            - a hat and light gloves for the hills, especially in the evening
            - a small umbrella is less useful than you'd think in the wind; a hood is better

            Check the forecast on Friday and move the outdoor parts around it.
            """),
        user("Is the castle worth the ticket price, or is it enough to see it from outside?"),
        bot("""
            It depends on how much you enjoy history. Inside you get the **Honours of
            Scotland** (the crown jewels), St Margaret's Chapel, which is the oldest
            surviving building in the city, the military museums, and views from the
            battlements. Most people spend two to three hours.

            Two things to know:

            - The **One O'Clock Gun** is fired from the castle every day except Sundays,
              Good Friday and Christmas Day. You'll be there on a Saturday, so stay for it.
            - If you decide against going in, the best free views of the castle are from
              Princes Street Gardens and from the Vennel, a stepped lane off the
              Grassmarket.

            Given that you like museums, I'd go in. Book a morning slot.
            """),
        user("A friend says I have to try haggis. I'm vegetarian, is that hopeless?"),
        bot("""
            Not at all: vegetarian haggis, made with oats, pulses, vegetables and spices,
            is on many menus in Edinburgh, and plenty of cafés and pubs serve it as
            "haggis, neeps and tatties" (with mashed swede and potatoes). Ask, and check
            whether it's cooked separately if that matters to you.

            For dessert, try **cranachan**: whipped cream, toasted oats, raspberries, honey
            and usually a splash of whisky.
            """),
        user("Can you put the final plan into a short checklist I can keep on my phone?"),
        bot("""
            ### Edinburgh, mid-April

            **Before you go**
            - [ ] Book a morning castle ticket for Saturday
            - [ ] Check the weekend forecast on Friday
            - [ ] Pack layers, waterproof, grippy shoes, hat

            **Friday**
            - [ ] Princes Street Gardens walk
            - [ ] Dinner near the Grassmarket

            **Saturday**
            - [ ] Castle at opening, stay for the One O'Clock Gun
            - [ ] Royal Mile and its closes
            - [ ] National Museum of Scotland (rooftop terrace!)
            - [ ] Greyfriars Kirkyard
            - [ ] Sunset on Calton Hill

            **Sunday**
            - [ ] Arthur's Seat in the morning (about 2 h)
            - [ ] Water of Leith to Dean Village
            - [ ] Scottish National Gallery, then the 6 pm train
            - [ ] Vegetarian haggis at least once

            Have a lovely trip!
            """),
    ],
)

COBOL_CHAT = Chat(
    user_id="grace",
    session_id="chat_session_20250305_133000_000000_g001",
    key="g001",
    title="Porting a COBOL payroll report to Python",
    start=_at("2025-03-05T13:30:00"),
    model="gpt-4o",
    metadata={
        "tags": ["cobol", "python", "migration"],
        "source": "chatgpt",
        "model": "gpt-4o",
    },
    documents=[
        Doc(
            "payroll_report_spec.md",
            "text/markdown",
            PAYROLL_SPEC,
            {"tags": ["spec"], "description": "Porting notes for PAYRPT07"},
        )
    ],
    turns=[
        user("""
            We're finally moving a weekly payroll report off the mainframe. The COBOL program
            reads a fixed-width file exported from the mainframe, EBCDIC, with packed
            decimal fields, and prints a report. I want to rewrite it in Python. Where should
            I start?
            """),
        bot("""
            Start with the data, not the logic. In order:

            1. **Get the copybook** (the record layout, usually a `.cpy` file). It tells you
               every field's offset, length and type; without it you're guessing.
            2. **Read records as bytes.** The file has no newlines; every record has the
               same length.
            3. **Decode text fields with the right code page.** US mainframes usually use
               EBCDIC code page 037, which Python knows as `cp037`.
            4. **Decode packed decimal (COMP-3) fields yourself**: they are binary, so they
               must be sliced out *before* any text decoding.
            5. **Use `Decimal` for every amount.** Never `float` for money.

            If you paste the copybook, I'll turn it into a field table and a reader.
            """),
        user("""
            Here it is:

            ```cobol
                   01  PAY-REC.
                       05  EMP-ID          PIC X(6).
                       05  EMP-NAME        PIC X(20).
                       05  DEPT-CODE       PIC X(3).
                       05  HOURS-WORKED    PIC S9(3)V9   COMP-3.
                       05  HOURLY-RATE     PIC S9(3)V99  COMP-3.
                       05  YTD-GROSS       PIC S9(7)V99  COMP-3.
            ```
            """),
        bot("""
            A packed field stores two digits per byte plus a sign nibble, so it takes
            `digits // 2 + 1` bytes. `V` is an implied decimal point: it takes no space, it
            only tells you the scale.

            | Field | Offset | Bytes | Scale |
            |---|---:|---:|---:|
            | EMP-ID | 0 | 6 | |
            | EMP-NAME | 6 | 20 | |
            | DEPT-CODE | 26 | 3 | |
            | HOURS-WORKED (4 digits) | 29 | 3 | 1 |
            | HOURLY-RATE (5 digits) | 32 | 3 | 2 |
            | YTD-GROSS (9 digits) | 35 | 5 | 2 |

            That's 40 bytes per record.

            ```python
            from decimal import Decimal

            RECORD_LENGTH = 40
            FIELDS = [
                # name, offset, length, kind, scale
                ("emp_id", 0, 6, "text", 0),
                ("emp_name", 6, 20, "text", 0),
                ("dept_code", 26, 3, "text", 0),
                ("hours_worked", 29, 3, "comp3", 1),
                ("hourly_rate", 32, 3, "comp3", 2),
                ("ytd_gross", 35, 5, "comp3", 2),
            ]


            def unpack_comp3(raw, scale):
                digits = []
                for byte in raw[:-1]:
                    digits += [byte >> 4, byte & 0x0F]
                digits.append(raw[-1] >> 4)
                value = int("".join(map(str, digits)))
                if raw[-1] & 0x0F != 0x0C:
                    value = -value
                return Decimal(value).scaleb(-scale)


            def parse_record(raw):
                record = {}
                for name, offset, length, kind, scale in FIELDS:
                    chunk = raw[offset : offset + length]
                    if kind == "text":
                        record[name] = chunk.decode("cp037").rstrip()
                    else:
                        record[name] = unpack_comp3(chunk, scale)
                return record


            def read_records(path):
                with open(path, "rb") as f:
                    while raw := f.read(RECORD_LENGTH):
                        if len(raw) != RECORD_LENGTH:
                            raise ValueError(f"short record at byte {f.tell() - len(raw)}")
                        yield parse_record(raw)
            ```
            """),
        user("""
            First record: hours 45.5 and rate 27.55 look right, but YTD-GROSS comes out as
            -41280.50. It should be positive, the employee definitely got paid.
            """),
        bot("""
            That's my bug, in the sign handling. The last nibble of a packed field is the
            sign, and there are three common values:

            - `C`: positive
            - `D`: negative
            - `F`: unsigned, i.e. positive

            Your YTD field was written with an `F` sign, and my code treated everything that
            isn't `C` as negative. Test for negative explicitly instead:

            ```python
            if raw[-1] & 0x0F == 0x0D:
                value = -value
            ```

            Also worth adding: reject any digit nibble above 9 with a clear error, so a
            wrong offset fails loudly instead of producing plausible-looking nonsense.
            """),
        user("""
            Fixed. Next, the logic. Overtime is paid at 1.5 times the rate for hours over 40,
            and the COBOL uses `COMPUTE GROSS-PAY ROUNDED = ...`. I used `round(x, 2)` but a
            test value of 0.125 gives 0.12 and the old report says 0.13.
            """),
        bot("""
            Python's `round()` uses *banker's rounding* (round half to even), also on
            `Decimal`. COBOL's `ROUNDED` by default rounds half away from zero. Use
            `quantize` with an explicit rounding mode:

            ```python
            from decimal import ROUND_HALF_UP, Decimal

            CENT = Decimal("0.01")

            round(Decimal("0.125"), 2)                               # Decimal('0.12')
            Decimal("0.125").quantize(CENT, rounding=ROUND_HALF_UP)  # Decimal('0.13')
            ```

            Despite the name, `ROUND_HALF_UP` in the `decimal` module rounds ties *away from
            zero*, so negative amounts behave like COBOL too.
            """),
        user("""
            The spec also says tax and pension deductions are "not rounded". In the COBOL
            those COMPUTE statements simply have no ROUNDED.
            """),
        bot("""
            Then they are **truncated**: without `ROUNDED`, COBOL drops the digits that don't
            fit the receiving field. The matching mode is `ROUND_DOWN`, which truncates
            toward zero:

            ```python
            from decimal import ROUND_DOWN

            TAX_RATE = Decimal("0.18")
            PENSION_RATE = Decimal("0.05")


            def pay(hours, rate):
                regular = min(hours, Decimal(40)) * rate
                overtime = max(hours - 40, Decimal(0)) * rate * Decimal("1.5")
                gross = (regular + overtime).quantize(CENT, rounding=ROUND_HALF_UP)
                tax = (gross * TAX_RATE).quantize(CENT, rounding=ROUND_DOWN)
                pension = (gross * PENSION_RATE).quantize(CENT, rounding=ROUND_DOWN)
                return gross, tax, pension, gross - tax - pension
            ```
            """),
        user("""
            How do I prove the port matches the old program? We have last month's input
            file and the printed report.
            """),
        bot("""
            That's exactly what you need for a **golden test**: run the new code on the old
            input and require the same output, line for line.

            ```python
            from pathlib import Path

            import pytest

            from payroll import render_report

            GOLDEN = Path(__file__).parent / "golden"


            def test_report_matches_mainframe_output():
                expected = (GOLDEN / "february_report.txt").read_text().splitlines()
                actual = render_report(GOLDEN / "february_input.dat").splitlines()
                assert len(actual) == len(expected)
                for number, (want, got) in enumerate(zip(expected, actual), start=1):
                    assert got == want, f"line {number}"
            ```

            Then add small hand-made records for the edge cases the month may not contain:
            exactly 40.0 hours, zero hours, a negative adjustment, and the largest value
            each field can hold.
            """),
        user("""
            Ran it: 409 of 412 employees match. Three differ by one to three cents in gross
            pay, all of them with overtime.
            """),
        bot("""
            Overtime-only cent differences almost always mean an **intermediate result** is
            stored in a field with fewer decimals. Look in the COBOL for something like:

            ```cobol
                   05  OT-RATE         PIC 9(3)V99.
                   ...
                   COMPUTE OT-RATE = HOURLY-RATE * 1.5.
                   COMPUTE OT-PAY  = OT-HOURS * OT-RATE.
            ```

            With a rate of 27.55, 1.5 x 27.55 = 41.325, but `OT-RATE` can only hold 41.32
            (truncated, no `ROUNDED`). The old program multiplies the hours by 41.32; your
            code uses 41.325. For 2 overtime hours that's exactly one cent. Mirror the
            intermediate field:

            ```python
            ot_rate = (rate * Decimal("1.5")).quantize(CENT, rounding=ROUND_DOWN)
            overtime = max(hours - 40, Decimal(0)) * ot_rate
            ```
            """),
        user(
            "That was it: OT-RATE is PIC 9(3)V99. All 412 match now. I've attached my notes.",
            attach="payroll_report_spec.md",
        ),
        bot("""
            Excellent. Your notes capture the two things that would bite the next person:
            the sign nibbles and the truncated `OT-RATE`. Two suggestions to finish:

            - Keep the golden test in CI, and add one synthetic record per rule in the
              spec, so a future refactor can't drift by a cent unnoticed.
            - Write down every intermediate COBOL field that the Python code mirrors, with
              its PIC clause. They look redundant in Python, and someone will "simplify"
              them away otherwise.
            """),
    ],
    context=Context(
        upto=16,
        summary="Grace ported the PAYRPT07 payroll report from COBOL to Python: EBCDIC "
        "cp037 records of 40 bytes, COMP-3 fields decoded to Decimal, COBOL rounding "
        "mirrored, and a golden test against last month's report now matches all 412 "
        "employees.",
        key_points=[
            "COMP-3 sign nibble: D negative, C and F positive",
            "ROUNDED = ROUND_HALF_UP; no ROUNDED = truncation (ROUND_DOWN)",
            "intermediate OT-RATE PIC 9(3)V99 truncates 1.5 x rate to cents",
            "golden test against the mainframe report, line for line",
        ],
        entities={
            "language": ["COBOL", "Python"],
            "format": ["EBCDIC cp037", "COMP-3"],
            "program": ["PAYRPT07"],
            "file": ["payroll_report_spec.md"],
        },
        confidence=0.9,
    ),
)

COMPILER_CHAT = Chat(
    user_id="grace",
    session_id="chat_session_20250321_081500_000000_g002",
    key="g002",
    title="Explaining compilers to a high-school class",
    start=_at("2025-03-21T08:15:00"),
    model="claude-3-5-sonnet",
    metadata={
        "tags": ["teaching", "compilers"],
        "source": "claude",
        "model": "claude-3-5-sonnet",
        "pinned": True,
    },
    turns=[
        user("""
            I've been asked to give a 45-minute talk to a class of 16-year-olds about what a
            compiler does. They know a little Python, some only Scratch. How would you
            structure it?
            """),
        bot("""
            I'd build the talk around one idea: **a compiler is a translator that works in
            stages**, and each stage is something the students already do when they read.
            Here's a structure with rough timings.

            ## 1. Why translate at all? (5 min)

            Start with the gap: the processor only understands very simple instructions
            ("add these two numbers", "store this here"), while people write `total =
            price * quantity`. Ask the class how they would explain a recipe to someone who
            only understands single, tiny steps. That's the compiler's job.

            ## 2. Reading words: tokens (8 min)

            Before you understand a sentence, you split it into words. Show
            `x = 2 + 3 * 4` split into tokens: `x`, `=`, `2`, `+`, `3`, `*`, `4`. Point out
            that spaces don't matter but `3*4` and `34` are very different: the lexer has
            rules for where one word ends.

            ## 3. Understanding structure: trees (10 min)

            Why is `2 + 3 * 4` fourteen, not twenty? Because multiplication binds tighter.
            Draw the **parse tree**: `+` at the top, `2` on the left, and a `*` node with
            `3` and `4` on the right. The tree *is* the meaning; brackets just let you
            write a different tree. This is the part students find most surprising.

            ## 4. Producing instructions: a stack machine (12 min)

            Walk the tree from the bottom up and emit one tiny instruction per node:
            push numbers, then combine. Let the class run the result by hand (see below).
            This is where they see the whole pipeline end to end.

            ## 5. Wrap-up: compilers talk back (5 min)

            Error messages are the compiler telling you which stage failed: a bad token,
            a tree that doesn't fit the grammar, a name it doesn't know. Show a Python
            `SyntaxError` and ask which stage produced it.

            Leave the remaining five minutes for questions; there will be some.
            """),
        user("""
            I love the stack machine part. Can you give me a tiny language they could
            compile by hand, on paper?
            """),
        bot("""
            Keep it to numbers, variable names, `+`, `*`, brackets, assignment and `print`.
            The machine has a stack and a memory, and six instructions:

            | Instruction | Does |
            |---|---|
            | `PUSH n` | put the number n on the stack |
            | `LOAD x` | put the value of variable x on the stack |
            | `STORE x` | take the top value off the stack and save it as x |
            | `ADD` | take two values off, put their sum on |
            | `MUL` | take two values off, put their product on |
            | `PRINT` | take the top value off and say it out loud |

            The rule for compiling an expression: **compile the left side, compile the
            right side, then emit the operator**. So `x = 2 + 3 * 4` becomes:

            ```text
            PUSH 2
            PUSH 3
            PUSH 4
            MUL
            ADD
            STORE x
            ```

            Worksheet idea: give them `y = (x + 1) * 2` and `print y`, let them compile it,
            then swap sheets and "run" each other's code. Bugs show up immediately, which
            is a great discussion starter.
            """),
        user("""
            Can you write a small Python compiler for that language? I'd like to show it
            live after they've done it by hand. Ideally 30 lines.
            """),
        bot(
            r"""
            Thirty lines is too tight to stay readable, but here's one in about seventy,
            with one method per grammar rule so it mirrors the parse tree you drew:

            ```python
            import re

            TOKEN = re.compile(r"\s*(?:(\d+)|([a-z]+)|(.))")


            def tokenize(source):
                for number, name, symbol in TOKEN.findall(source):
                    if number:
                        yield ("NUM", int(number))
                    elif name:
                        yield ("NAME", name)
                    elif symbol.strip():
                        yield ("SYM", symbol)


            class Compiler:
                def __init__(self, source):
                    self.tokens = list(tokenize(source)) + [("END", None)]
                    self.pos = 0
                    self.code = []

                def peek(self):
                    return self.tokens[self.pos]

                def take(self):
                    token = self.tokens[self.pos]
                    self.pos += 1
                    return token

                def statement(self):  # name = expr  |  print expr
                    kind, value = self.take()
                    if value == "print":
                        self.expr()
                        self.code.append(("PRINT",))
                    else:
                        assert self.take() == ("SYM", "="), "expected ="
                        self.expr()
                        self.code.append(("STORE", value))

                def expr(self):  # term (+ term)*
                    self.term()
                    while self.peek() == ("SYM", "+"):
                        self.take()
                        self.term()
                        self.code.append(("ADD",))

                def term(self):  # factor (* factor)*
                    self.factor()
                    while self.peek() == ("SYM", "*"):
                        self.take()
                        self.factor()
                        self.code.append(("MUL",))

                def factor(self):  # number | name | ( expr )
                    kind, value = self.take()
                    if kind == "NUM":
                        self.code.append(("PUSH", value))
                    elif kind == "NAME":
                        self.code.append(("LOAD", value))
                    elif value == "(":
                        self.expr()
                        assert self.take() == ("SYM", ")"), "expected )"
                    else:
                        raise SyntaxError(f"unexpected {value!r}")


            def compile_program(lines):
                code = []
                for line in lines:
                    compiler = Compiler(line)
                    compiler.statement()
                    code += compiler.code
                return code


            def run(code):
                stack, memory = [], {}
                for op, *arg in code:
                    if op == "PUSH":
                        stack.append(arg[0])
                    elif op == "LOAD":
                        stack.append(memory[arg[0]])
                    elif op == "STORE":
                        memory[arg[0]] = stack.pop()
                    elif op == "ADD":
                        stack.append(stack.pop() + stack.pop())
                    elif op == "MUL":
                        stack.append(stack.pop() * stack.pop())
                    elif op == "PRINT":
                        print(stack.pop())


            program = ["x = 2 + 3 * 4", "y = (x + 1) * 2", "print y"]
            code = compile_program(program)
            for instruction in code:
                print(*instruction)
            run(code)
            ```

            It prints the same instructions the students wrote by hand, then `30`. Notice
            that `term` is called from `expr`: that single detail is why `*` binds tighter
            than `+`.
            """
        ),
        user("""
            Someone will definitely ask "why not just run the Python directly?" What's a good
            answer at their level?
            """),
        bot("""
            The honest answer is that Python *does* compile. When you run a script, Python
            first translates it into instructions for its own stack machine, called
            bytecode, and then runs those. You can show it in two lines:

            ```python
            import dis
            dis.dis("x = 2 + 3 * 4")
            ```

            On Python 3.11 the output is:

            ```text
              0           0 RESUME                   0

              1           2 LOAD_CONST               0 (14)
                          4 STORE_NAME               0 (x)
                          6 LOAD_CONST               1 (None)
                          8 RETURN_VALUE
            ```

            And here's the twist: there's no multiplication or addition in it at all.
            Python noticed that `2 + 3 * 4` is always 14 and did the arithmetic *while
            compiling*. That's called **constant folding**, one of the simplest
            optimisations, and a nice way to show that compilers don't just translate,
            they also improve the program.
            """),
        user("""
            Ha, constant folding is the perfect surprise for the end. Do you have an activity
            for the parsing part, something more physical than a worksheet?
            """),
        bot("""
            Try a **human parse tree**:

            1. Write each token of `2 + 3 * 4` on a large card and hand them to five
               students.
            2. Ask the class to arrange them into a tree on the floor, operators standing
               and holding hands with their two operands below them.
            3. The class will usually argue about whether `+` or `*` goes on top. Let them;
               that argument is precedence.
            4. Now evaluate bottom-up: the `*` student "collects" 3 and 4 and becomes 12,
               then `+` collects 2 and 12.
            5. Add brackets, `(2 + 3) * 4`, and have them rebuild the tree. Same cards,
               different shape, different answer.

            It takes about eight minutes and people remember it long after the slides.
            """),
        user("Perfect. Last one: a single summary slide."),
        bot("""
            **What does a compiler do?**

            1. **Reads words**: splits your code into tokens (`x`, `=`, `2`, `+` ...)
            2. **Finds the structure**: builds a tree; the tree is the meaning
            3. **Writes instructions**: walks the tree and emits tiny steps a machine can do
            4. **Improves them**: e.g. computes `2 + 3 * 4` once, while compiling

            *Every error message is one of these stages telling you where it got stuck.*
            """),
    ],
)

CHATS = [CSV_CHAT, BERNOULLI_CHAT, EDINBURGH_CHAT, COBOL_CHAT, COMPILER_CHAT]

# --------------------------------------------------------------------------- panel

PANEL_ID = "panel_session_20250318_140000_000000_a004"
PANEL_USER = "ada"
PANEL_KEY = "a004"
PANEL_TITLE = "Should the sensor ingest be rewritten in Rust?"
PANEL_START = _at("2025-03-18T14:00:00")
PANEL_PARTICIPANTS = ["pragmatic_engineer", "skeptical_reviewer", "product_strategist"]
PANEL_MODEL = "claude-3-5-sonnet"
PANEL_METADATA: dict[str, Any] = {
    "tags": ["architecture", "decision"],
    "source": "flatchat",
    "model": PANEL_MODEL,
}

# (persona or None for the user, number of the message it responds to, consensus, text)
PANEL_TURNS: list[tuple[str | None, int | None, float | None, str]] = [
    (
        None,
        None,
        None,
        """
        Our nightly sensor ingest is a Python service: it parses about 4 GB of CSV,
        aggregates hourly means and loads them into Postgres. It takes 25 minutes and the
        batch window is 60. A colleague proposes rewriting it in Rust. Should we?
        """,
    ),
    (
        "pragmatic_engineer",
        1,
        0.4,
        """
        Not yet. 25 minutes in a 60-minute window isn't a crisis, and a rewrite costs
        weeks plus a second language the whole team has to maintain. Before deciding
        anything: where do the 25 minutes go? My guess is the database load, not the
        parsing. Profile one night's run first.
        """,
    ),
    (
        "skeptical_reviewer",
        2,
        0.5,
        """
        Agree on profiling. I'd add a second question: how fast is the volume growing? If
        the file doubles every year, the window is a real problem within two years
        whatever we do today. And whatever changes, a rewrite must prove it produces the
        same numbers: float parsing, rounding and time zones are where ports silently
        differ.
        """,
    ),
    (
        "product_strategist",
        1,
        0.45,
        """
        Who feels the 25 minutes? The dashboards are read from 7:00, and the data is there
        either way. The only user-visible risk is missing the window. So the goal isn't
        "make it fast", it's "keep the window with margin as volume grows", and the
        cheapest option that buys two years wins.
        """,
    ),
    (
        None,
        None,
        None,
        """
        I profiled last night's run: 4 minutes reading and parsing the CSV, 2 minutes
        aggregating, and 19 minutes inserting into Postgres with `executemany`. Volume grew
        about 30% last year.
        """,
    ),
    (
        "pragmatic_engineer",
        5,
        0.75,
        """
        Then a Rust rewrite would speed up the six minutes we aren't worried about. Load
        with `COPY` instead of `executemany`; with psycopg 3 it's a few lines:

        ```python
        with conn.cursor() as cur:
            with cur.copy(
                "COPY hourly_means (hour, sensor_id, mean_c, readings) FROM STDIN"
            ) as copy:
                for row in rows:
                    copy.write_row(row)
        ```

        I'd expect the load to drop from 19 minutes to one or two.
        """,
    ),
    (
        "skeptical_reviewer",
        6,
        0.8,
        """
        Agreed, with two conditions. Load into a staging table and swap it in within one
        transaction, so a failed night never leaves half a day of data. And add a golden
        test on a day of sample data, so the change can't alter the numbers. We already
        have a two-hour sample with a missing reading in it; that's a good start.
        """,
    ),
    (
        "product_strategist",
        7,
        0.85,
        """
        Then the decision is: no rewrite now. Switch the load to `COPY` via a staging
        table, with the golden test. At 30% growth, parse and aggregate stay well inside
        the window for years; put their duration on the ops dashboard and revisit a
        compiled parser only if it passes 20 minutes. That way this isn't a debate again
        next quarter, it's a threshold.
        """,
    ),
]

PANEL_INSIGHTS: list[dict[str, Any]] = [
    {
        "id": "insight_a004_01",
        "type": "conclusion",
        "content": "Do not rewrite the ingest in Rust now: 19 of its 25 minutes are spent "
        "inserting rows, which a faster language would not change. Load with COPY into a "
        "staging table swapped in within one transaction, guarded by a golden test.",
        "supporting_messages": ["msg_a004_05", "msg_a004_06", "msg_a004_07"],
        "consensus_level": 0.85,
        "created_by": "product_strategist",
    },
    {
        "id": "insight_a004_02",
        "type": "recommendation",
        "content": "Track parse and aggregate time per night on the ops dashboard; revisit "
        "a compiled parser only if it exceeds 20 minutes. Volume grows about 30% a year.",
        "supporting_messages": ["msg_a004_03", "msg_a004_08"],
        "consensus_level": 0.8,
        "created_by": "ada",
    },
]

# --------------------------------------------------------------------------- building


@dataclass
class _Pins:
    """Fixed values for the fields the API stamps with the current time."""

    records: list[tuple[Path, type[Record], dict[str, dt.datetime]]] = field(default_factory=list)
    documents: dict[Path, dict[str, dt.datetime]] = field(default_factory=dict)

    def apply(self) -> None:
        for path, model, values in self.records:
            record = read_model(path, model)
            write_model(path, record.model_copy(update=values))
        for folder, times in self.documents.items():
            path = folder / DOCUMENTS_META
            raw = read_json(path)
            for doc_id, uploaded_at in times.items():
                record = DocumentRecord.model_validate(raw[doc_id])
                raw[doc_id] = record.model_copy(update={"uploaded_at": uploaded_at}).to_dict()
            write_model(path, raw)


async def _add_users(archive: Archive) -> None:
    for spec in USERS:
        await archive.create_user(
            spec["user_id"],
            {"created_at": ARCHIVE_CREATED, "updated_at": ARCHIVE_CREATED},
            username=spec["username"],
            preferences=spec["preferences"],
            metadata=spec["metadata"],
        )


async def _add_personas(archive: Archive, pins: _Pins) -> None:
    owned = [(spec, None) for spec in GLOBAL_PERSONAS] + [
        (spec, user_id) for user_id, specs in USER_PERSONAS.items() for spec in specs
    ]
    for spec, user_id in owned:
        persona = await archive.save_persona(
            {**spec, "created_at": PERSONAS_CREATED, "updated_at": PERSONAS_CREATED}, user_id
        )
        pins.records.append(
            (
                archive.layout.persona_file(persona.id, user_id),
                Persona,
                {"created_at": PERSONAS_CREATED, "updated_at": PERSONAS_CREATED},
            )
        )


async def _add_document(
    archive: Archive,
    pins: _Pins,
    user_id: str,
    session_id: str | None,
    doc: Doc,
    uploaded_at: dt.datetime,
) -> str:
    record = await archive.save_document(
        user_id,
        doc.data,
        doc.name,
        session_id=session_id,
        mime_type=doc.mime_type,  # explicit: mimetypes' guesses differ between systems
        metadata=doc.metadata,
        analysis=_analysis(doc.data),
    )
    folder = archive.layout.documents_dir(user_id, session_id)
    pins.documents.setdefault(folder, {})[record.doc_id] = uploaded_at
    return record.doc_id


def _context_record(chat: Chat, context: Context, times: list[dt.datetime]) -> dict[str, Any]:
    return {
        "summary": context.summary,
        "key_points": context.key_points,
        "entities": context.entities,
        "timestamp": times[context.upto - 1] + dt.timedelta(seconds=30),
        "confidence": context.confidence,
        "message_range": [0, context.upto],
        "metadata": {"generated_by": "flatchat", "model": chat.model},
    }


async def _add_chat(archive: Archive, pins: _Pins, chat: Chat) -> None:
    await archive.create_session(
        chat.user_id,
        chat.title,
        SessionType.CHAT,
        metadata=chat.metadata,
        session_id=chat.session_id,
    )
    times = _timeline(chat.start, [(t.role, t.text) for t in chat.turns])
    ids = [f"msg_{chat.key}_{n:02d}" for n in range(1, len(chat.turns) + 1)]

    attachments: dict[str, dict[str, Any]] = {}
    for doc in chat.documents:
        number = next(n for n, t in enumerate(chat.turns) if t.attach == doc.name)
        doc_id = await _add_document(
            archive, pins, chat.user_id, chat.session_id, doc, times[number]
        )
        attachments[doc.name] = {
            "doc_id": doc_id,
            "name": doc.name,
            "mime_type": doc.mime_type,
            "size": len(doc.data),
        }

    messages: list[Message | dict[str, Any]] = []
    for n, turn in enumerate(chat.turns):
        message: dict[str, Any] = {
            "message_id": ids[n],
            "role": turn.role,
            "content": turn.text,
            "timestamp": times[n],
            "attachments": [attachments[turn.attach]] if turn.attach else [],
            "metadata": {"model": chat.model} if turn.role == "assistant" else {},
        }
        if turn.parent is not None:
            message["parent_id"] = ids[turn.parent - 1]
            message["metadata"] = {**message["metadata"], "regenerated": True}
        messages.append(message)
    await archive.add_messages(chat.user_id, chat.session_id, messages)

    if chat.active_leaf is not None:
        await archive.update_session(
            chat.user_id, chat.session_id, metadata={"active_leaf_id": ids[chat.active_leaf - 1]}
        )
    for snapshot in chat.snapshots:
        await archive.save_context_snapshot(
            chat.user_id, chat.session_id, _context_record(chat, snapshot, times)
        )
    if chat.context is not None:
        await archive.update_context(
            chat.user_id, chat.session_id, _context_record(chat, chat.context, times)
        )
    pins.records.append(
        (
            archive.layout.session_json(chat.user_id, chat.session_id),
            Session,
            {"created_at": times[0], "updated_at": times[-1]},
        )
    )


async def _add_panel(archive: Archive, pins: _Pins) -> None:
    for participant in PANEL_PARTICIPANTS:
        await archive.get_persona(participant, PANEL_USER)  # fail early on a typo
    # create_panel() draws a random session id; the sample needs a fixed one, so the panel
    # is created as a session of type "panel" with the metadata create_panel() would write.
    await archive.create_session(
        PANEL_USER,
        PANEL_TITLE,
        SessionType.PANEL,
        metadata={
            **PANEL_METADATA,
            "participants": PANEL_PARTICIPANTS,
            "panel_type": PanelType.EXPERT_PANEL.value,
        },
        session_id=PANEL_ID,
    )
    texts = [("user" if p is None else "assistant", _md(t)) for p, _, _, t in PANEL_TURNS]
    times = _timeline(PANEL_START, texts)
    for n, (persona_id, responds_to, consensus, _) in enumerate(PANEL_TURNS):
        message: dict[str, Any] = {
            "message_id": f"msg_{PANEL_KEY}_{n + 1:02d}",
            "role": texts[n][0],
            "content": texts[n][1],
            "timestamp": times[n],
            "persona_id": persona_id,
            "metadata": {} if persona_id is None else {"model": PANEL_MODEL},
        }
        if responds_to is not None:
            message["response_to"] = f"msg_{PANEL_KEY}_{responds_to:02d}"
        if consensus is not None:
            message["consensus_level"] = consensus
        await archive.add_panel_message(PANEL_USER, PANEL_ID, message)
    for n, insight in enumerate(PANEL_INSIGHTS, start=1):
        created = times[-1] + dt.timedelta(minutes=2 * n)
        await archive.save_panel_insight(
            PANEL_USER, PANEL_ID, {**insight, "panel_id": PANEL_ID, "created_at": created}
        )
    pins.records.append(
        (
            archive.layout.session_json(PANEL_USER, PANEL_ID),
            Session,
            {"created_at": times[0], "updated_at": times[-1]},
        )
    )


async def build(out: Path) -> None:
    """Build the sample archive into ``out``, which must not exist or be empty."""
    pins = _Pins()
    async with await Archive.open(out, create=True) as archive:
        pins.records.append(
            (archive.layout.archive_json, ArchiveInfo, {"created_at": ARCHIVE_CREATED})
        )
        await _add_users(archive)
        await _add_personas(archive, pins)
        for chat in CHATS:
            await _add_chat(archive, pins, chat)
        await _add_panel(archive, pins)
        for user_id, doc, uploaded_at in LIBRARY:
            await _add_document(archive, pins, user_id, None, doc, uploaded_at)
    pins.apply()
    # Lock files are runtime state of whoever has the archive open; they are not content.
    shutil.rmtree(out / LOCKS_DIR, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m resources.build_sample_archive",
        description="Build Flatchat's sample archive (replacing the folder if it holds one).",
    )
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help=f"target folder (default: {DEFAULT_OUT})"
    )
    args = parser.parse_args(argv)
    out: Path = args.out.expanduser().absolute()
    if out.exists() and any(out.iterdir()) and not (out / "archive.json").exists():
        parser.error(f"{out} is not empty and holds no archive; refusing to replace it")
    out.parent.mkdir(parents=True, exist_ok=True)
    # Build next to the target, then swap: an interrupted build never leaves half a sample.
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        asyncio.run(build(staging / "archive"))
        if out.exists():
            shutil.rmtree(out)
        (staging / "archive").rename(out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    files = [p for p in out.rglob("*") if p.is_file()]
    size = sum(p.stat().st_size for p in files)
    print(f"sample archive written to {out}: {len(files)} files, {size:,} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
