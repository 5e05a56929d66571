"""Flatchat's search against raw tantivy, SQLite FTS5 and exact numpy, side by side in one run.

Run from the repository root::

    .venv/bin/python benchmarks/bench_search.py                      # 100,000 messages
    .venv/bin/python benchmarks/bench_search.py --messages 1000000   # 1,000,000 messages
    .venv/bin/python benchmarks/bench_search.py --quick --out /tmp/bench_search   # 10,000

Results go to ``benchmarks/results/bench_search.md`` and ``.json``, one section per corpus
size: a run replaces the sections of the sizes it measured and keeps the others (each section
names the revision and date it was measured at), so the 100,000 and 1,000,000 runs can be made
separately.

Corpus (deterministic for a given ``--seed``, size and Python version): the vocabulary is real
text, the words (``[a-z]+``, lower-cased) of the Python standard library's sources, ranked by
frequency in its docstrings (English first: "the", "a", "is", ...) and then, for words that
appear in no docstring, by frequency in the code and comments (the long tail of technical
words). Words are drawn from that ranking with Zipf weights ``1 / rank``; messages have
log-uniformly 5-300 words (mean ~72), with capitals, commas and full stops; sessions hold
10-200 messages (uniform), spread over four users, roles alternating. The archive files are
written directly in the on-disk format (``users/<u>/<session>/session.json`` as
``Session.to_dict()`` plus ``messages_bytes``, ``messages.jsonl`` lines from
``Message(...).to_json()``), not through ``add_messages``: through the API the 1,000,000-message
corpus would cost minutes of locking and fsyncs that measure nothing about search. Users are
created through the API, and the written archive is read back through it as a check.

Keyword search, three engines over the same documents (the messages and each session's title):

- **ours**: ``archive.search(query, mode="keyword", limit=10)``: the whole public path (query
  parsing, tantivy, stored fields, snippets with highlights, session titles, the change check,
  which rescans the archive when ``SCAN_INTERVAL`` seconds have passed since the last scan).
  Built by ``archive.refresh_index()`` on a fresh archive opened
  with ``vector.enabled = False`` (vectors are measured on their own below).
- **raw tantivy**: a plain index of ``key`` + ``text`` with the same analyzer (simple tokenizer,
  remove_long(64), lowercase, ascii_fold), one indexing thread and the same writer memory as
  ours (sized to the files, at most 1 GiB), queried with ``tantivy.Query`` objects built
  directly from the query words; a search is the top 10 with the hit count, plus reading the 10
  stored documents. One searcher is kept. A prefix is the query ours makes of a one-word
  prefix (``storage.search.fulltext.prefix_query``: tantivy's Levenshtein automaton with no
  edit allowed, in prefix mode; ``regex_query("abc.*")`` finds the same but takes ~0.2 ms to
  compile at each search). It finds every word with the prefix, as FTS5 does. No query or
  result is cached by either between the benchmark's repeated passes (ours keeps its searcher
  until a commit, as raw tantivy keeps its one searcher). Raw tantivy keeps tantivy's default
  document store (LZ4 in 16 KiB blocks); ours stores documents in 2 KiB blocks (a hit's stored
  fields cost a third as much to read). So that the comparison shows what that choice buys and
  what the rest of our path costs, a second raw index, **raw tantivy (our blocks)**, is the same
  plain index with the same blocks as ours, queried the same way; its ratio is reported beside
  the target's.
- **SQLite FTS5**: ``fts5(key UNINDEXED, text, tokenize='unicode61 remove_diacritics 2')``,
  ``ORDER BY bm25(...) LIMIT 10`` (no hit count: that would need a second query), no prefix
  index (the default).

Both baselines build from the same ``messages.jsonl`` files (read with orjson, no models), in
one writer commit / one transaction, each in a fresh process (as the app builds: in its worker
process or the ``flatchat`` command). Before each build the page cache's dirty pages are written
back (``os.sync``): otherwise the first build (ours) pays for writing back the archive just
written (at 1,000,000 messages that moved our build between 27 and 43 s). Ours and the two raw
tantivy indexes are built three times, in turn, each from scratch; the median is compared
(single builds of the same index varied by a quarter from run to run). Every search of every
engine runs off the event loop, as the GUI must: raw tantivy's and FTS5's in one
``asyncio.to_thread`` call each, ours in ``await archive.search(...)`` as the GUI calls it (on the
archive's own worker threads, ``storage.threads``). Query classes, 50 queries each
(20 with --quick), drawn from the corpus so that each matches something: a common word (Zipf
rank 1-50), a rare word (the rarest word of a random message), 2-3 words AND, 2-3 words OR, a
2-3 word phrase (adjacent words of a message), a 3-letter prefix, a 5-word natural-language
query (words of one message, all required, as typed into our search box) and the same 5 words
OR'ed (what the keyword leg of a hybrid search runs). Each query is run once to warm up, then 3
timed passes for tantivy and ours and one for FTS5, which stops early (after at least 10
queries) when a class costs it more than its time budget. Within a pass each query runs on raw
tantivy, raw tantivy (our blocks), then ours, so every engine searches after another engine's
search, as an app's search follows other work. Ours then runs the same query once more at once:
"ours, repeated at once" (not a target) shows what our search costs when its code and data are
still in the CPU caches: how much of the difference is the cost of coming in cold. Ours ÷ raw
is also given for each pass on its own, to show how much it moves within one run. Before
timing, our hit count must equal raw tantivy's for every query, and FTS5 must find as many as
raw tantivy for the first five of every class, or the run stops.

Not a target: raw tantivy does less than ours (it makes no snippets). So that a reader can see
what returning what ours returns costs in plain tantivy, each class's passes are run again with
raw tantivy making every hit's snippet and highlight ranges with its own ``SnippetGenerator``
(``SNIPPET_CHARS`` characters) in raw's place, followed by raw tantivy (our blocks) and ours as
before; the table gives both and the share of raw's snippets that highlight nothing (the
generator sees no terms in a prefix query).

Vector search: every message is embedded with the packaged model2vec embedder (throughput is
reported); a :class:`storage.search.vectors.VectorIndex` is written from those vectors the way
``refresh_index`` writes it (batches of ``EMBED_BATCH``, a segment whenever ``SEGMENT_ROWS`` are
queued: eight segments at 1,000,000, as compaction starts above eight), and so is a copy in one
segment (what compaction leaves), searched with the default shortlist too, and the index
searched again with its files taken out of the page cache before every search
(``POSIX_FADV_DONTNEED``: what this machine kind's kernel does to page cache idle for a
minute, so a user's first searches after a pause read from the disk); 100 query texts
(5-word natural-language queries) are embedded and searched by our index (default shortlist,
``exact=True``, and a curve of ``shortlist=`` values) and by exact float32 brute force over the
same vectors (``E @ q``, argpartition): recall@10 is against that. Resident memory is measured
in a fresh process that opens the index and runs the 100 queries: growth of ``RssAnon`` and
``RssFile`` from ``/proc/self/status`` (memory-mapped index pages count as file-backed) and of
the peak RSS; the resident target is judged on anon + file-backed. The probe runs again with
``OPENBLAS_NUM_THREADS=1`` to show what BLAS threading costs on this two-core machine.

Finally (unless ``--no-vector-refresh``) the keyword index is dropped and the archive is indexed
again with vectors on, as a user would get it, and semantic and hybrid searches are timed
through ``archive.search``.
"""

from __future__ import annotations

import argparse
import ast
import asyncio
import collections
import datetime as dt
import gc
import hashlib
import json
import logging
import math
import os
import platform
import re
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
import warnings
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import tantivy

# Run as a plain script from a checkout: make the repository's packages importable.
ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.common import Stats, dir_size, expect, storage_revision  # noqa: E402
from storage import Archive, Message, Session  # noqa: E402
from storage.layout import MESSAGES, SESSION_JSON  # noqa: E402
from storage.search.api import SCAN_INTERVAL  # noqa: E402
from storage.search.embedder import Model2VecEmbedder  # noqa: E402
from storage.search.fulltext import DOCSTORE_BLOCK, prefix_query, writer_heap  # noqa: E402
from storage.search.snippets import SNIPPET_CHARS  # noqa: E402
from storage.search.vectors import EmbedderInfo, VectorIndex  # noqa: E402
from storage.sessions import MESSAGES_BYTES  # noqa: E402

log = logging.getLogger("bench_search")

RESULTS_DIR = Path(__file__).resolve().parent / "results"
BASE_TIME = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)

# Corpus.
USERS = ("alice", "bob", "carol", "dave")
SESSION_MIN, SESSION_MAX = 10, 200
WORDS_MIN, WORDS_MAX = 5, 300
ZIPF_S = 1.0
SENTENCE_END_P = 1 / 12
COMMA_P = 1 / 15
MAX_WORD = 24
GEN_CHUNK = 50_000  # messages turned into text at a time (bounds the token arrays)
_WORD = re.compile(r"[a-z]+")

# Keyword search.
LIMIT = 10
QUERIES, QUICK_QUERIES = 50, 20
PASSES = 3  # timed passes for ours and raw tantivy
# Builds of ours and raw tantivy (one each with --quick; FTS5 once): on this machine one
# 1,000,000-message build of raw tantivy took 20.6 s in one run and 25.6 s in the next.
BUILD_ROUNDS = 3
FTS_BUDGET_S = 25.0  # per class: FTS5 stops after this much (and at least FTS_MIN queries)
FTS_MIN = 10
FTS_CHECKED = 5  # queries per class whose FTS5 hit count is checked against tantivy's
COMMON_RANKS = 50
IDLE_RUNS = 5
STORE_BLOCK = DOCSTORE_BLOCK  # the document store blocks of ours
TOKEN_MAX = 64

# Vector search.
EMBED_BATCH = 2048  # as storage.search.indexer feeds the embedder
VECTOR_QUERIES = 100
EXACT_MODE_QUERIES = 20  # exact=True rescoring of every row is slow at 1M: fewer queries
SHORTLISTS = (250, 500, 1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 64_000, 128_000)
API_QUERIES = 30

# Targets.
KEYWORD_VS_RAW = 1.2
COMMON_VS_FTS = 50.0
BUILD_VS_RAW = 1.5
VECTOR_P50_MS = 20.0
VECTOR_RECALL = 0.95
VECTOR_RESIDENT_MB = 150.0

CLASSES = {
    "common": "single common word (Zipf rank 1-50)",
    "rare": "rare word (rarest word of a message)",
    "and": "2-3 words, AND",
    "or": "2-3 words, OR",
    "phrase": "2-3 word phrase",
    "prefix": "3-letter prefix",
    "nl5": "5-word natural-language query (AND)",
    "nl5_or": "the same 5 words, OR (hybrid's keyword leg)",
}

# --------------------------------------------------------------------------- corpus


def real_vocabulary() -> list[str]:
    """Words of the standard library by rank: docstring frequency first, then code frequency."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    files = sorted(p for p in stdlib.rglob("*.py") if "site-packages" not in p.parts)
    docs: collections.Counter[str] = collections.Counter()
    code: collections.Counter[str] = collections.Counter()
    kinds = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
    for path in files:
        source = path.read_bytes().decode("utf-8", "replace")
        code.update(_WORD.findall(source.lower()))
        if "test" in path.parts or "tests" in path.parts:
            continue  # test docstrings are few and odd; their words still count as code
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # invalid escape sequences in old modules
            try:
                tree = ast.parse(source)
            except (SyntaxError, ValueError):  # lib2to3 fixtures and the like
                continue
        for node in ast.walk(tree):
            if isinstance(node, kinds):
                doc = ast.get_docstring(node, clean=False)
                if doc:
                    docs.update(_WORD.findall(doc.lower()))
    head = sorted(docs, key=lambda w: (-docs[w], w))
    tail = sorted((w for w in code if w not in docs), key=lambda w: (-code[w], w))
    return [w for w in head + tail if len(w) <= MAX_WORD]


@dataclass
class SessionSpec:
    user: str
    session_id: str
    start: int  # first message number
    count: int


@dataclass
class Corpus:
    vocab: list[str]
    texts: list[str]
    ids: np.ndarray  # word ranks of every message, concatenated
    offsets: np.ndarray  # message i's words are ids[offsets[i]:offsets[i + 1]]
    sessions: list[SessionSpec]
    vocab_sha: str

    def words(self, i: int) -> np.ndarray:
        return self.ids[self.offsets[i] : self.offsets[i + 1]]

    @property
    def keys(self) -> list[str]:
        """The index key of every message, as storage.search.indexer makes it."""
        cached = self.__dict__.get("_keys")
        if cached is None:
            cached = [""] * len(self.texts)
            for s in self.sessions:
                for i in range(s.start, s.start + s.count):
                    cached[i] = f"m/{s.user}/{s.session_id}/{message_id(i)}"
            self.__dict__["_keys"] = cached
        return cached

    @property
    def groups(self) -> list[str]:
        out = [""] * len(self.texts)
        for s in self.sessions:
            for i in range(s.start, s.start + s.count):
                out[i] = f"m/{s.user}/{s.session_id}"
        return out


def message_id(i: int) -> str:
    return f"msg_{i:09d}"


def generate(messages: int, seed: int) -> Corpus:
    vocab = real_vocabulary()
    vocab_sha = hashlib.sha256("\n".join(vocab).encode()).hexdigest()[:16]
    rng = np.random.default_rng(seed)
    sizes: list[int] = []
    while sum(sizes) < messages:
        sizes.append(int(rng.integers(SESSION_MIN, SESSION_MAX + 1)))
    sizes[-1] -= sum(sizes) - messages
    sessions, start = [], 0
    for number, size in enumerate(sizes):
        user = USERS[number % len(USERS)]
        sessions.append(SessionSpec(user, f"chat_session_{number:07d}", start, size))
        start += size

    weights = 1.0 / np.arange(1, len(vocab) + 1) ** ZIPF_S
    cumulative = np.cumsum(weights)
    cumulative /= cumulative[-1]
    variants = []  # six spellings of every word: plain/Capital, then nothing / "." / ","
    for w in vocab:
        cap = w[0].upper() + w[1:]
        variants += [w, cap, w + ".", cap + ".", w + ",", cap + ","]
    table = np.array(variants, dtype=object)

    lengths = np.exp(
        rng.uniform(math.log(WORDS_MIN), math.log(WORDS_MAX + 1), size=messages)
    ).astype(np.int64)
    offsets = np.zeros(messages + 1, dtype=np.int64)
    offsets[1:] = np.cumsum(lengths)
    ids = np.searchsorted(cumulative, rng.random(int(offsets[-1]))).astype(np.int32)
    ids = np.minimum(ids, len(vocab) - 1)
    texts: list[str] = []
    for first in range(0, messages, GEN_CHUNK):
        last = min(messages, first + GEN_CHUNK)
        lo, hi = int(offsets[first]), int(offsets[last])
        n = hi - lo
        starts = offsets[first:last] - lo
        ends = offsets[first + 1 : last + 1] - lo
        end = rng.random(n) < SENTENCE_END_P
        end[ends - 1] = True  # every message ends a sentence
        comma = ~end & (rng.random(n) < COMMA_P)
        cap = np.zeros(n, dtype=bool)
        cap[1:] = end[:-1]
        cap[starts] = True
        tokens = table[ids[lo:hi] * 6 + cap + 2 * end + 4 * comma].tolist()
        texts += [" ".join(tokens[a:b]) for a, b in zip(starts, ends, strict=True)]
    return Corpus(vocab, texts, ids, offsets, sessions, vocab_sha)


def message_time(i: int) -> dt.datetime:
    return BASE_TIME + dt.timedelta(seconds=37 * i)


async def write_archive(root: Path, corpus: Corpus) -> Archive:
    """Create the archive and its users through the API, then write the sessions directly."""
    archive = await Archive.open(root, create=True, overrides={"vector": {"enabled": False}})
    for user in USERS:
        await archive.create_user(user)

    def write() -> None:
        for s in corpus.sessions:
            folder = root / "users" / s.user / s.session_id
            folder.mkdir()
            lines = b"".join(
                Message(
                    message_id=message_id(i),
                    role="user" if (i - s.start) % 2 == 0 else "assistant",
                    content=corpus.texts[i],
                    timestamp=message_time(i),
                ).to_json()
                + b"\n"
                for i in range(s.start, s.start + s.count)
            )
            (folder / MESSAGES).write_bytes(lines)
            session = Session(
                session_id=s.session_id,
                user_id=s.user,
                title=" ".join(corpus.texts[s.start].split()[:6]),
                created_at=message_time(s.start),
                updated_at=message_time(s.start + s.count - 1),
                message_count=s.count,
            )
            record = {**session.to_dict(), MESSAGES_BYTES: len(lines)}
            (folder / SESSION_JSON).write_bytes(
                orjson.dumps(record, option=orjson.OPT_INDENT_2) + b"\n"
            )

    await asyncio.to_thread(write)
    # Read a few sessions back through the API: the files must be what the archive expects.
    for s in corpus.sessions[:: max(1, len(corpus.sessions) // 5)]:
        got = await archive.get_messages(s.user, s.session_id, None)
        expect(
            [m.content for m in got] == corpus.texts[s.start : s.start + s.count],
            f"session {s.session_id} reads back differently",
        )
        meta = await archive.get_session(s.user, s.session_id)
        expect(meta.message_count == s.count, f"session {s.session_id} count is off")
    return archive


def iter_messages(root: Path) -> Iterator[tuple[str, str]]:
    """(index key, text) of every message on disk, and of every session's title (which ours
    indexes as a document of its own): what the baselines build from."""
    users = root / "users"
    for user in sorted(p.name for p in users.iterdir() if p.is_dir()):
        for session in sorted(p.name for p in (users / user).iterdir() if p.is_dir()):
            path = users / user / session / MESSAGES
            if not path.exists():
                continue
            with open(path, "rb") as fh:
                for line in fh:
                    record = orjson.loads(line)
                    yield f"m/{user}/{session}/{record['message_id']}", record["content"]
            title = orjson.loads((path.parent / "session.json").read_bytes()).get("title")
            if title and title.strip():
                yield f"t/{user}/{session}", title.strip()


# --------------------------------------------------------------------------- queries


@dataclass(frozen=True)
class Query:
    kind: str  # a key of CLASSES
    words: tuple[str, ...]
    op: str  # and | or | phrase | prefix

    @property
    def ours(self) -> str:
        if self.op == "phrase":
            return '"' + " ".join(self.words) + '"'
        if self.op == "prefix":
            return self.words[0] + "*"
        return (" OR " if self.op == "or" else " ").join(self.words)

    @property
    def fts(self) -> str:
        if self.op == "phrase":
            return '"' + " ".join(self.words) + '"'
        if self.op == "prefix":
            return f'"{self.words[0]}"*'
        quoted = [f'"{w}"' for w in self.words]  # quoted: "or", "not" stay words
        return (" OR " if self.op == "or" else " ").join(quoted)


def make_queries(corpus: Corpus, per_class: int, seed: int) -> dict[str, list[Query]]:
    rng = np.random.default_rng(seed + 1)
    vocab = corpus.vocab
    n = len(corpus.texts)

    def message_words(min_distinct: int) -> np.ndarray:
        while True:
            distinct = np.unique(corpus.words(int(rng.integers(n))))
            if len(distinct) >= min_distinct:
                return distinct

    def pick(count: int) -> tuple[str, ...]:
        distinct = message_words(count)
        chosen = np.sort(rng.choice(distinct, size=count, replace=False))
        return tuple(vocab[int(w)] for w in rng.permutation(chosen))

    out: dict[str, list[Query]] = {k: [] for k in CLASSES}
    commons = rng.permutation(min(COMMON_RANKS, len(vocab)))
    for j in range(per_class):
        out["common"].append(Query("common", (vocab[int(commons[j % len(commons)])],), "and"))
        out["rare"].append(Query("rare", (vocab[int(message_words(1).max())],), "and"))
        size = 2 + j % 2
        out["and"].append(Query("and", pick(size), "and"))
        out["or"].append(Query("or", pick(size), "or"))
        while True:
            words = corpus.words(int(rng.integers(n)))
            if len(words) < size:
                continue
            at = int(rng.integers(len(words) - size + 1))
            phrase = tuple(vocab[int(w)] for w in words[at : at + size])
            if len(set(phrase)) == size:
                break
        out["phrase"].append(Query("phrase", phrase, "phrase"))
        while True:
            long_words = [vocab[int(w)] for w in message_words(1) if len(vocab[int(w)]) >= 4]
            if long_words:
                break
        prefix = long_words[int(rng.integers(len(long_words)))][:3]
        out["prefix"].append(Query("prefix", (prefix,), "prefix"))
        five = pick(5)
        out["nl5"].append(Query("nl5", five, "and"))
        out["nl5_or"].append(Query("nl5_or", five, "or"))
    return out


# --------------------------------------------------------------------------- baselines


def evict(folder: Path) -> None:
    """Take ``folder``'s files out of the page cache (their clean pages), as this machine
    kind's kernel does to page cache left idle for a minute: what a search reads from them
    then comes from the disk."""
    for path in folder.iterdir():
        fd = os.open(path, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def settle() -> None:
    """Before a timed build: dirty pages written back (the archive files just written, the
    last build's index) and garbage collected, so no build pays for the one before it."""
    os.sync()
    gc.collect()


def plain_analyzer() -> Any:
    """The same chain as storage.search.fulltext (without stemming), built independently."""
    return (
        tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple())
        .filter(tantivy.Filter.remove_long(TOKEN_MAX))
        .filter(tantivy.Filter.lowercase())
        .filter(tantivy.Filter.ascii_fold())
        .build()
    )


class RawTantivy:
    def __init__(self, folder: Path, store_block: int | None = None, create: bool = True) -> None:
        """``create=False``: open the index a build made."""
        if create:
            folder.mkdir(parents=True)
        sb = tantivy.SchemaBuilder()
        sb.add_text_field("key", stored=True, tokenizer_name="raw")
        sb.add_text_field("text", stored=True, tokenizer_name="plain")
        self.schema = sb.build()
        self.index = tantivy.Index(self.schema, path=str(folder), reuse=not create)
        if create and store_block is not None:
            # The binding cannot set the block size: it is an index setting in meta.json.
            meta = orjson.loads((folder / "meta.json").read_bytes())
            meta["index_settings"]["docstore_blocksize"] = store_block
            (folder / "meta.json").write_bytes(orjson.dumps(meta))
            self.index = tantivy.Index(self.schema, path=str(folder), reuse=True)
        self.index.register_tokenizer("plain", plain_analyzer())
        self.searcher: Any = None if create else self.index.searcher()

    def build(self, root: Path) -> int:
        # The writer memory ours gives itself for the same files (writer_heap: enough for one
        # segment, at most 1 GiB). With 64 MB, raw's 1,000,000-message build was one segment
        # too, but took 28-33 s instead of 20-22 s (its merges): ours looked 1.15x raw.
        logs = sum(p.stat().st_size for p in (root / "users").glob(f"*/*/{MESSAGES}"))
        writer = self.index.writer(heap_size=writer_heap(logs), num_threads=1)
        count = 0
        for key, text in iter_messages(root):
            writer.add_document(tantivy.Document(key=key, text=text))
            count += 1
        writer.commit()
        writer.wait_merging_threads()
        self.index.reload()
        self.searcher = self.index.searcher()
        return count

    def query(self, q: Query) -> Any:
        Q, schema = tantivy.Query, self.schema
        if q.op == "phrase":
            return Q.phrase_query(schema, "text", list(q.words))
        if q.op == "prefix":
            # Every word with the prefix, as FTS5 and ours do (phrase_prefix_query would
            # expand to at most 50 words), with the query ours makes.
            return prefix_query(schema, "text", q.words[0])
        terms = [Q.term_query(schema, "text", w) for w in q.words]
        if len(terms) == 1:
            return terms[0]
        occur = tantivy.Occur.Should if q.op == "or" else tantivy.Occur.Must
        return Q.boolean_query([(occur, t) for t in terms])

    def search(self, q: Query) -> tuple[int, list[str]]:
        result = self.searcher.search(self.query(q), LIMIT, count=True)
        keys = []
        for _score, address in result.hits:
            doc = self.searcher.doc(address)
            keys.append(doc["key"][0])
            _text = doc["text"][0]
        return int(result.count or 0), keys

    def search_with_snippets(self, q: Query) -> tuple[int, list[tuple[str, str, list[Any]]]]:
        """:meth:`search` plus what ours returns beside each hit, made by tantivy's own
        ``SnippetGenerator``: a fragment of up to ``SNIPPET_CHARS`` and its highlight ranges."""
        query = self.query(q)
        result = self.searcher.search(query, LIMIT, count=True)
        generator = tantivy.SnippetGenerator.create(self.searcher, query, self.schema, "text")
        generator.set_max_num_chars(SNIPPET_CHARS)
        hits = []
        for _score, address in result.hits:
            doc = self.searcher.doc(address)
            snippet = generator.snippet_from_doc(doc)
            ranges = [(h.start, h.end) for h in snippet.highlighted()]
            hits.append((doc["key"][0], snippet.fragment(), ranges))
        return int(result.count or 0), hits


class Fts5:
    def __init__(self, path: Path, create: bool = True) -> None:
        """``create=False``: open the database a build made."""
        self.path = path
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        if create:
            self.db.execute(
                "CREATE VIRTUAL TABLE docs USING fts5("
                "key UNINDEXED, text, tokenize = 'unicode61 remove_diacritics 2')"
            )

    def build(self, root: Path) -> int:
        self.db.execute("BEGIN")
        cursor = self.db.executemany(
            "INSERT INTO docs (key, text) VALUES (?, ?)", iter_messages(root)
        )
        count = cursor.rowcount
        self.db.execute("COMMIT")
        return count

    def search(self, q: Query) -> list[str]:
        rows = self.db.execute(
            "SELECT key, text FROM docs WHERE docs MATCH ? ORDER BY bm25(docs) LIMIT ?",
            (q.fts, LIMIT),
        ).fetchall()
        return [r[0] for r in rows]

    def count(self, q: Query) -> int:
        return int(
            self.db.execute("SELECT count(*) FROM docs WHERE docs MATCH ?", (q.fts,)).fetchone()[0]
        )

    def close(self) -> None:
        self.db.close()


# --------------------------------------------------------------------------- measuring


async def timed(call: Callable[[], Awaitable[Any]]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = await call()
    return time.perf_counter() - start, result


def proc_status() -> dict[str, int]:
    """RssAnon, RssFile, RssShmem, VmRSS and VmHWM of this process in KiB (Linux)."""
    out = {}
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                name, _, value = line.partition(":")
                if name in ("RssAnon", "RssFile", "RssShmem", "VmRSS", "VmHWM"):
                    out[name] = int(value.split()[0])
    except OSError:  # not Linux: the memory columns stay empty
        pass
    return out


def peak_rss_mb() -> float:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024


# --------------------------------------------------------------------------- the benchmark


@dataclass
class KeywordRow:
    kind: str
    example: str
    mean_hits: float
    ours_mean_hits: float
    ours: Stats
    raw: Stats
    raw_blocks: Stats
    fts: Stats
    ours_again: Stats  # the same search repeated at once (warm caches): not a target
    # Not a target: raw tantivy with its own snippets in raw's place, and ours beside it.
    raw_snippets: Stats
    ours_beside_snippets: Stats
    raw_unhighlighted: float  # share of raw's snippets with no highlight
    ours_vs_raw_by_pass: list[float] = field(default_factory=list)  # how much passes differ
    targets: list[tuple[str, bool]] = field(default_factory=list)

    @property
    def ours_vs_raw(self) -> float:
        return self.ours.p50_ms / self.raw.p50_ms

    @property
    def ours_vs_raw_blocks(self) -> float:
        return self.ours.p50_ms / self.raw_blocks.p50_ms

    @property
    def ours_again_vs_raw(self) -> float:
        return self.ours_again.p50_ms / self.raw.p50_ms

    @property
    def ours_vs_raw_snippets(self) -> float:
        return self.ours_beside_snippets.p50_ms / self.raw_snippets.p50_ms

    @property
    def fts_vs_ours(self) -> float:
        return self.fts.p50_ms / self.ours.p50_ms


class Bench:
    def __init__(self, messages: int, args: argparse.Namespace, workdir: Path) -> None:
        self.n = messages
        self.args = args
        self.workdir = workdir
        self.root = workdir / "archive"
        self.per_class = QUICK_QUERIES if args.quick else QUERIES
        self.result: dict[str, Any] = {"messages": messages}
        self.corpus: Corpus | None = None
        self.archive: Archive | None = None

    async def run(self) -> dict[str, Any]:
        started = time.perf_counter()
        await self.make_corpus()
        await self.build_keyword()
        await self.keyword_queries()
        await self.incremental()
        assert self.archive is not None
        await self.archive.close()
        await asyncio.to_thread(self.vectors)
        if not self.args.no_vector_refresh:
            await self.vector_refresh()
        self.result["elapsed_s"] = time.perf_counter() - started
        self.result["load_after"] = os.getloadavg()
        self.result["peak_rss_mb"] = peak_rss_mb()
        return self.result

    # ------------------------------------------------------------------ corpus
    async def make_corpus(self) -> None:
        log.info("[%s] generating the corpus", f"{self.n:,}")
        start = time.perf_counter()
        corpus = await asyncio.to_thread(generate, self.n, self.args.seed)
        gen_s = time.perf_counter() - start
        log.info("   %.1f s; writing the archive files", gen_s)
        start = time.perf_counter()
        self.archive = await write_archive(self.root, corpus)
        write_s = time.perf_counter() - start
        self.corpus = corpus
        chars = sum(len(t) for t in corpus.texts)
        self.result["corpus"] = {
            "sessions": len(corpus.sessions),
            "users": len(USERS),
            "vocabulary": len(corpus.vocab),
            "vocabulary_sha256_16": corpus.vocab_sha,
            "words": int(corpus.offsets[-1]),
            "mean_words": float(corpus.offsets[-1] / self.n),
            "text_mb": chars / 1e6,
            "archive_mb": dir_size(self.root / "users") / 1e6,
            "generate_s": gen_s,
            "write_s": write_s,
        }
        log.info(
            "   %d sessions, %.0f MB of text, archive %.0f MB, written in %.1f s",
            len(corpus.sessions),
            chars / 1e6,
            self.result["corpus"]["archive_mb"],
            write_s,
        )

    # ------------------------------------------------------------------ keyword: builds
    async def build_keyword(self) -> None:
        """Each index is built in a fresh process, as the app builds its index (in its worker
        process, or the ``flatchat`` command): in this process, after it made the corpus
        and wrote 1,000,000 messages, our build ran 20-30% slower than in a fresh one (36-43
        s against 28-31 s) while raw tantivy's did not move."""
        assert self.archive is not None
        builds: dict[str, dict[str, Any]] = {}
        engines = (
            ("ours", "our keyword index (refresh_index, vectors off)", self.root / ".index"),
            ("raw", "raw tantivy", self.workdir / "raw-tantivy"),
            (
                "raw_blocks",
                f"raw tantivy with our {STORE_BLOCK // 1024} KiB store blocks",
                self.workdir / "raw-tantivy-our-blocks",
            ),
            ("fts", "SQLite FTS5", self.workdir / "fts5.db"),
        )
        rounds = 1 if self.args.quick else BUILD_ROUNDS
        times: dict[str, list[float]] = {engine: [] for engine, _n, _t in engines}
        for round_no in range(rounds):
            for engine, name, target in engines:
                if round_no and engine == "fts":
                    continue
                if round_no:  # from scratch again
                    shutil.rmtree(target)
                log.info(
                    "building %s (%d of %d)", name, round_no + 1, 1 if engine == "fts" else rounds
                )
                seconds, count = await asyncio.to_thread(
                    build_in_process, engine, self.root, target
                )
                # Each message, and each session's title (every session here has one).
                assert self.corpus is not None
                docs = self.n + len(self.corpus.sessions)
                expect(count == docs, f"{name} indexed {count} docs, not {docs}")
                times[engine].append(seconds)
                log.info("   %.1f s", seconds)
        for engine, _name, target in engines:
            paths = [target] if engine != "fts" else list(self.workdir.glob("fts5.db*"))
            if engine == "ours":
                paths = [target / "fulltext"]
            builds[engine] = {
                "seconds": statistics.median(times[engine]),
                "runs": times[engine],
                "mb": sum(dir_size(p) for p in paths) / 1e6,
            }
            if engine != "fts":  # tantivy: each segment is one more lookup per term searched
                meta = orjson.loads((paths[0] / "meta.json").read_bytes())
                builds[engine]["segments"] = len(meta["segments"])
        self.raw = RawTantivy(self.workdir / "raw-tantivy", create=False)
        self.raw_blocks = RawTantivy(self.workdir / "raw-tantivy-our-blocks", create=False)
        self.fts = Fts5(self.workdir / "fts5.db", create=False)
        ratio = builds["ours"]["seconds"] / builds["raw"]["seconds"]
        self.result["builds"] = builds
        self.result["build_target"] = {
            "ours_vs_raw": ratio,
            "target": f"ours ≤ {BUILD_VS_RAW:g}× raw tantivy",
            "passed": ratio <= BUILD_VS_RAW,
        }

    # ------------------------------------------------------------------ keyword: queries
    async def ours(self, q: Query) -> tuple[int, list[str]]:
        assert self.archive is not None
        results = await self.archive.search(q.ours, mode="keyword", limit=LIMIT)
        keys = [f"m/{h.user_id}/{h.session_id}/{h.message_id}" for h in results.hits]
        return results.total, keys

    async def keyword_queries(self) -> None:
        assert self.corpus is not None
        queries = make_queries(self.corpus, self.per_class, self.args.seed)
        self.queries = queries
        rows: list[KeywordRow] = []
        for kind, qs in queries.items():
            log.info("keyword class %s: %d queries", kind, len(qs))
            hits, ours_hits = [], []
            # Check, and warm every engine on every query once.
            for j, q in enumerate(qs):
                raw_total, _ = await asyncio.to_thread(self.raw.search, q)
                raw_blocks_total, _ = await asyncio.to_thread(self.raw_blocks.search, q)
                expect(raw_blocks_total == raw_total, f"{q.ours!r}: the two raw indexes differ")
                ours_total, _ = await self.ours(q)
                expect(
                    ours_total == raw_total,
                    f"{q.ours!r}: ours finds {ours_total}, raw tantivy {raw_total}",
                )
                ours_hits.append(ours_total)
                if j < FTS_CHECKED:
                    fts_total = await asyncio.to_thread(self.fts.count, q)
                    expect(
                        fts_total == raw_total,
                        f"{q.ours!r}: FTS5 finds {fts_total}, tantivy {raw_total}",
                    )
                if j < FTS_MIN:
                    await asyncio.to_thread(self.fts.search, q)
                hits.append(raw_total)
            ours_s: list[float] = []
            ours_again_s: list[float] = []
            raw_s: list[float] = []
            raw_blocks_s: list[float] = []
            fts_s: list[float] = []
            for pass_no in range(PASSES):
                for q in qs:
                    seconds, _ = await timed(lambda q=q: asyncio.to_thread(self.raw.search, q))
                    raw_s.append(seconds)
                    seconds, _ = await timed(
                        lambda q=q: asyncio.to_thread(self.raw_blocks.search, q)
                    )
                    raw_blocks_s.append(seconds)
                    seconds, _ = await timed(lambda q=q: self.ours(q))
                    ours_s.append(seconds)
                    seconds, _ = await timed(lambda q=q: self.ours(q))
                    ours_again_s.append(seconds)
                    if pass_no == 0 and (len(fts_s) < FTS_MIN or sum(fts_s) < FTS_BUDGET_S):
                        seconds, _ = await timed(lambda q=q: asyncio.to_thread(self.fts.search, q))
                        fts_s.append(seconds)
            # Not a target: the same order with raw tantivy making snippets in raw's place.
            snip_s: list[float] = []
            beside_s: list[float] = []
            unlit = made_count = 0
            for _pass in range(PASSES):
                for q in qs:
                    seconds, (_, made) = await timed(
                        lambda q=q: asyncio.to_thread(self.raw.search_with_snippets, q)
                    )
                    snip_s.append(seconds)
                    made_count += len(made)
                    unlit += sum(1 for _key, _fragment, ranges in made if not ranges)
                    await asyncio.to_thread(self.raw_blocks.search, q)
                    seconds, _ = await timed(lambda q=q: self.ours(q))
                    beside_s.append(seconds)
            row = KeywordRow(
                kind,
                qs[0].ours,
                statistics.fmean(hits),
                statistics.fmean(ours_hits),
                Stats.of(ours_s),
                Stats.of(raw_s),
                Stats.of(raw_blocks_s),
                Stats.of(fts_s),
                Stats.of(ours_again_s),
                Stats.of(snip_s),
                Stats.of(beside_s),
                unlit / max(1, made_count),
                [
                    statistics.median(ours_s[k : k + len(qs)])
                    / statistics.median(raw_s[k : k + len(qs)])
                    for k in range(0, len(ours_s), len(qs))
                ],
            )
            row.targets.append(
                (f"ours ≤ {KEYWORD_VS_RAW:g}× raw", row.ours_vs_raw <= KEYWORD_VS_RAW)
            )
            if kind == "common":
                row.targets.append(
                    (f"≥ {COMMON_VS_FTS:g}× faster than FTS5", row.fts_vs_ours >= COMMON_VS_FTS)
                )
            log.info(
                "   ours %.2f ms, raw %.2f, raw (our blocks) %.2f, FTS5 %.1f ms (p50); %.0f hits",
                row.ours.p50_ms,
                row.raw.p50_ms,
                row.raw_blocks.p50_ms,
                row.fts.p50_ms,
                row.mean_hits,
            )
            rows.append(row)
        self.keyword_rows = rows
        self.result["keyword"] = [
            {
                "class": r.kind,
                "description": CLASSES[r.kind],
                "example": r.example,
                "mean_hits": r.mean_hits,
                "ours_mean_hits": r.ours_mean_hits,
                "ours": r.ours.__dict__,
                "raw_tantivy": r.raw.__dict__,
                "raw_tantivy_our_blocks": r.raw_blocks.__dict__,
                "fts5": r.fts.__dict__,
                "ours_repeated_at_once": r.ours_again.__dict__,
                "ours_repeated_at_once_vs_raw": r.ours_again_vs_raw,
                "raw_tantivy_with_snippets": r.raw_snippets.__dict__,
                "ours_beside_raw_with_snippets": r.ours_beside_snippets.__dict__,
                "ours_vs_raw_with_snippets": r.ours_vs_raw_snippets,
                "raw_snippets_unhighlighted": r.raw_unhighlighted,
                "ours_vs_raw": r.ours_vs_raw,
                "ours_vs_raw_by_pass": r.ours_vs_raw_by_pass,
                "ours_vs_raw_blocks": r.ours_vs_raw_blocks,
                "fts5_vs_ours": r.fts_vs_ours,
                "targets": [{"target": t, "passed": ok} for t, ok in r.targets],
            }
            for r in rows
        ]

        # A search after the archive sat idle (caches gone cold; no rescan: SCAN_INTERVAL).
        common = queries["common"]
        idle = []
        for j in range(IDLE_RUNS):
            await asyncio.sleep(2.1)
            seconds, _ = await timed(lambda j=j: self.ours(common[j % len(common)]))
            idle.append(seconds)
        self.result["idle_search"] = Stats.of(idle).__dict__
        self.fts.close()

    async def incremental(self) -> None:
        """No-op refresh (the scan) and how soon an added message is found."""
        assert self.archive is not None and self.corpus is not None
        noop = []
        for _ in range(5):
            seconds, report = await timed(self.archive.refresh_index)
            expect(report.sources_indexed == 0, "a no-op refresh indexed something")
            noop.append(seconds)
        visible = []
        session = self.corpus.sessions[len(self.corpus.sessions) // 2]
        for j in range(5):
            word = f"zqxincremental{j}"
            start = time.perf_counter()
            await self.archive.add_messages(
                session.user, session.session_id, [Message(role="user", content=f"new {word}")]
            )
            results = await self.archive.search(word, mode="keyword", limit=LIMIT)
            visible.append(time.perf_counter() - start)
            expect(results.total == 1, f"the added message with {word} is not found")
        self.result["noop_refresh"] = Stats.of(noop).__dict__
        self.result["add_then_found"] = Stats.of(visible).__dict__
        log.info(
            "no-op refresh %.0f ms, add 1 message -> found %.0f ms (p50)",
            self.result["noop_refresh"]["p50_ms"],
            self.result["add_then_found"]["p50_ms"],
        )

    # ------------------------------------------------------------------ vectors
    def vectors(self) -> None:
        assert self.corpus is not None
        corpus = self.corpus
        embedder = Model2VecEmbedder()
        embedder.encode(corpus.texts[:1000])  # load and warm
        log.info("embedding %d messages", self.n)
        start = time.perf_counter()
        parts = [
            embedder.encode(corpus.texts[i : i + EMBED_BATCH])
            for i in range(0, self.n, EMBED_BATCH)
        ]
        embed_s = time.perf_counter() - start
        vectors = np.concatenate(parts)
        del parts
        log.info("   %.1f s: %.0f messages/s", embed_s, self.n / embed_s)

        folder = self.workdir / "vectors"
        info = EmbedderInfo(embedder.name, embedder.model_hash, embedder.dim)
        gc.collect()
        start = time.perf_counter()
        keys, groups = corpus.keys, corpus.groups  # (groups is made anew at each call)
        index = VectorIndex(folder, info)
        for i in range(0, self.n, EMBED_BATCH):  # as refresh_index adds them
            end = i + EMBED_BATCH
            index.add(keys[i:end], groups[i:end], vectors[i:end])
        index.commit()
        build_s = time.perf_counter() - start
        segments = [s.count for s in index.segments]
        log.info("   vector index written in %.1f s: %d segments", build_s, len(segments))
        whole = VectorIndex(self.workdir / "vectors-one-segment", info)
        whole.add(keys, groups, vectors)  # one add: one segment
        whole.commit()

        qrng = np.random.default_rng(self.args.seed + 2)
        texts = []
        while len(texts) < VECTOR_QUERIES:
            distinct = np.unique(corpus.words(int(qrng.integers(self.n))))
            if len(distinct) >= 5:
                words = qrng.choice(distinct, size=5, replace=False)
                texts.append(" ".join(corpus.vocab[int(w)] for w in words))
        encode_s = []
        for t in texts:
            s = time.perf_counter()
            embedder.encode([t])
            encode_s.append(time.perf_counter() - s)
        queries = embedder.encode(texts)
        queries = queries[np.linalg.norm(queries, axis=1) > 0.5]

        exact_s, truth = [], []
        for q in queries:
            s = time.perf_counter()
            scores = vectors @ q
            top = np.argpartition(-scores, LIMIT)[:LIMIT]
            top = top[np.argsort(-scores[top])]
            exact_s.append(time.perf_counter() - s)
            truth.append({keys[int(i)] for i in top})

        def measure(
            shortlist: int | None,
            exact: bool = False,
            count: int | None = None,
            searched: VectorIndex = index,
            cold: bool = False,
        ) -> dict:
            chosen = queries[:count] if count else queries
            searched.search(chosen[0], LIMIT, shortlist=shortlist, exact=exact)  # warm
            times, recalls = [], []
            for q, want in zip(chosen, truth, strict=False):
                if cold:
                    evict(searched.folder)
                s = time.perf_counter()
                got = searched.search(q, LIMIT, shortlist=shortlist, exact=exact)
                times.append(time.perf_counter() - s)
                recalls.append(len({k for k, _ in got} & want) / LIMIT)
            return {**Stats.of(times).__dict__, "recall": statistics.fmean(recalls)}

        log.info("vector queries: default, exact, shortlist curve")
        default = measure(None)
        cold = None  # (a system without posix_fadvise cannot take files out of the cache)
        if hasattr(os, "posix_fadvise"):
            cold = measure(None, cold=True)
            log.info(
                "   default p50 %.2f ms; index files out of the page cache: p50 %.2f ms",
                default["p50_ms"],
                cold["p50_ms"],
            )
        one_segment = measure(None, searched=whole)
        del whole
        shutil.rmtree(self.workdir / "vectors-one-segment")
        exact_mode = measure(None, exact=True, count=EXACT_MODE_QUERIES)
        curve = []
        for shortlist in SHORTLISTS:
            if shortlist >= self.n:
                break
            curve.append({"shortlist": shortlist, **measure(shortlist)})
            log.info("   shortlist %d: recall %.3f", shortlist, curve[-1]["recall"])
        enough = next((c["shortlist"] for c in curve if c["recall"] >= VECTOR_RECALL), None)

        qpath = self.workdir / "queries.npy"
        np.save(qpath, queries)
        memory = {"default": self.probe(folder, qpath, None)}
        if enough is not None:
            memory[f"shortlist={enough}"] = self.probe(folder, qpath, enough)
        # The same with one BLAS thread: on two busy cores, waking OpenBLAS's second thread
        # for a matrix-vector product can cost more than the product.
        memory["default, OPENBLAS_NUM_THREADS=1"] = self.probe(folder, qpath, None, blas=1)
        if enough is not None:
            memory[f"shortlist={enough}, OPENBLAS_NUM_THREADS=1"] = self.probe(
                folder, qpath, enough, blas=1
            )
        self.result["vectors"] = {
            "dim": embedder.dim,
            "embedder": embedder.name,
            "queries": len(queries),
            "embed_s": embed_s,
            "embed_per_s": self.n / embed_s,
            "query_encode": Stats.of(encode_s).__dict__,
            "build_s": build_s,
            "segments": segments,
            "index_mb": dir_size(folder) / 1e6,
            "exact_numpy": Stats.of(exact_s).__dict__,
            "ours_default": default,
            "ours_default_one_segment": one_segment,
            "ours_default_cold": cold,
            "ours_exact_mode": exact_mode,
            "curve": curve,
            "shortlist_for_target_recall": enough,
            "memory": memory,
        }
        del vectors

    def probe(
        self, folder: Path, queries: Path, shortlist: int | None, blas: int | None = None
    ) -> dict[str, Any]:
        """Open the index in a fresh process, run the queries, report its memory growth."""
        command = [sys.executable, __file__, "--probe-vectors", str(folder), str(queries)]
        if shortlist:
            command += ["--probe-shortlist", str(shortlist)]
        env = dict(os.environ)
        if blas:
            env["OPENBLAS_NUM_THREADS"] = str(blas)
        done = subprocess.run(command, capture_output=True, text=True, check=True, env=env)
        report: dict[str, Any] = json.loads(done.stdout)
        report["shortlist"] = shortlist
        report["blas_threads"] = blas
        log.info(
            "   fresh process (shortlist %s, BLAS threads %s): +%.0f MB anon, "
            "+%.0f MB file-backed, p50 %.1f ms",
            shortlist or "default",
            blas or "default",
            report["after_queries"]["anon_mb"],
            report["after_queries"]["file_mb"],
            report["latency"]["p50_ms"],
        )
        return report

    # ------------------------------------------------------------------ full refresh
    async def vector_refresh(self) -> None:
        """Index the archive again with vectors on, then semantic and hybrid through the API."""
        shutil.rmtree(self.root / ".index")
        archive = await Archive.open(self.root)
        log.info("refresh_index with vectors on (what a user waits for)")
        settle()
        seconds, report = await timed(archive.refresh_index)
        log.info("   %.1f s: %s", seconds, report.to_dict())
        texts = [" ".join(q.words) for q in self.queries["nl5"]][:API_QUERIES]
        modes: dict[str, Any] = {}
        for mode in ("semantic", "hybrid"):
            await archive.search(texts[0], mode=mode, limit=LIMIT)  # warm
            times = []
            for t in texts:
                s, _ = await timed(lambda t=t, m=mode: archive.search(t, mode=m, limit=LIMIT))
                times.append(s)
            modes[mode] = Stats.of(times).__dict__
            log.info("   %s p50 %.1f ms", mode, modes[mode]["p50_ms"])
        await archive.close()
        self.result["vector_refresh"] = {
            "seconds": seconds,
            "report": report.to_dict(),
            "index_mb": dir_size(self.root / ".index") / 1e6,
            "api": modes,
        }


def build_in_process(engine: str, root: Path, target: Path) -> tuple[float, int]:
    """Build one engine's index in a fresh interpreter (``--build-probe``): the build's own
    seconds (not the interpreter's start) and how many documents it indexed."""
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
    script = str(Path(__file__).resolve())
    done = subprocess.run(
        [sys.executable, script, "--build-probe", engine, str(root), str(target)],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    )
    data = orjson.loads(done.stdout.strip().splitlines()[-1])
    return float(data["seconds"]), int(data["count"])


def build_probe(engine: str, root: Path, target: Path) -> int:
    """``--build-probe``: build one index here; prints ``{"seconds", "count"}``."""
    count: int
    if engine == "ours":

        async def ours() -> tuple[float, int]:
            archive = await Archive.open(root, overrides={"vector": {"enabled": False}})
            try:
                settle()
                seconds, report = await timed(archive.refresh_index)
                return seconds, report.documents_added
            finally:
                await archive.close()

        seconds, count = asyncio.run(ours())
    elif engine in ("raw", "raw_blocks"):
        raw = RawTantivy(target, STORE_BLOCK if engine == "raw_blocks" else None)
        settle()
        start = time.perf_counter()
        count = raw.build(root)
        seconds = time.perf_counter() - start
    elif engine == "fts":
        fts = Fts5(target)
        settle()
        start = time.perf_counter()
        count = fts.build(root)
        seconds = time.perf_counter() - start
        fts.close()
    else:
        raise SystemExit(f"unknown engine {engine!r}")
    sys.stdout.write(orjson.dumps({"seconds": seconds, "count": count}).decode() + "\n")
    return 0


def probe_main(folder: Path, queries_path: Path, shortlist: int | None) -> int:
    """The fresh process of :meth:`Bench.probe`: prints one JSON object."""
    queries = np.load(queries_path)
    manifest = orjson.loads((folder / "manifest.json").read_bytes())
    info = EmbedderInfo(**manifest["embedder"])
    gc.collect()
    before = proc_status()

    def growth(now: dict[str, int]) -> dict[str, float]:
        return {
            "anon_mb": (now.get("RssAnon", 0) - before.get("RssAnon", 0)) / 1024,
            "file_mb": (now.get("RssFile", 0) - before.get("RssFile", 0)) / 1024,
            "rss_mb": (now.get("VmRSS", 0) - before.get("VmRSS", 0)) / 1024,
            "peak_mb": (now.get("VmHWM", 0) - before.get("VmRSS", 0)) / 1024,
        }

    start = time.perf_counter()
    index = VectorIndex(folder, info)
    open_s = time.perf_counter() - start
    opened = proc_status()
    times = []
    for q in queries:
        start = time.perf_counter()
        index.search(q, LIMIT, shortlist=shortlist)
        times.append(time.perf_counter() - start)
    gc.collect()
    after = proc_status()
    report = {
        "open_s": open_s,
        "after_open": growth(opened),
        "after_queries": growth(after),
        "latency": Stats.of(times).__dict__,
        "first_query_ms": times[0] * 1000,
    }
    sys.stdout.write(json.dumps(report) + "\n")
    return 0


# --------------------------------------------------------------------------- reporting


def _ms(value: float) -> str:
    return f"{value:,.2f}" if value < 100 else f"{value:,.0f}"


def _load(values: Sequence[float]) -> str:
    return ", ".join(f"{v:.1f}" for v in values)


def _segments(v: dict[str, Any]) -> str:
    counts = v.get("segments")
    if not counts:
        return "one segment"
    sizes = ", ".join(f"{c:,}" for c in counts)
    return f"{len(counts)} segment{'s' if len(counts) > 1 else ''} ({sizes} rows)"


def _ok(passed: bool) -> str:
    return "pass" if passed else "**FAIL**"


def section(r: dict[str, Any]) -> list[str]:
    c = r["corpus"]
    lines = [
        f"## {r['messages']:,} messages",
        "",
        f"{c['sessions']:,} sessions of {SESSION_MIN}-{SESSION_MAX} messages, {len(USERS)} users; "
        f"{c['mean_words']:.0f} words a message on average, {c['text_mb']:,.0f} MB of text "
        f"({c['archive_mb']:,.0f} MB of archive files); vocabulary {c['vocabulary']:,} words "
        f"(sha256 {c['vocabulary_sha256_16']}). Measured {r['started_at']} at storage "
        f"{r['revision'] or 'unknown revision'}; run took {r['elapsed_s'] / 60:.1f} min, "
        f"peak RSS {r['peak_rss_mb']:,.0f} MB; load average (1, 5, 15 min) "
        f"{_load(r['load_before'])} before, {_load(r['load_after'])} after.",
        "",
        "### Keyword search (top 10, warm)",
        "",
        "Times in ms, p50 / p95. Ours ÷ raw > 1: ours is slower. FTS5 ÷ ours > 1: ours is "
        "faster (both on p50). Runs: "
        f"{PASSES}× the queries for ours and raw tantivy, FTS5 once (budget {FTS_BUDGET_S:g} s "
        f"a class). Our p95 may include the archive rescan that `search` runs first whenever "
        f"{SCAN_INTERVAL:g} s have passed since the last one (its cost is about that of the "
        "no-op `refresh_index` below the build table).",
        "",
        "| Query class | Example | Mean hits | Ours | Raw tantivy | Raw tantivy (our blocks) "
        "| SQLite FTS5 (runs) | Ours ÷ raw | Ours ÷ raw (our blocks) | FTS5 ÷ ours | Targets |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for k in r["keyword"]:
        o, w, f = k["ours"], k["raw_tantivy"], k["fts5"]
        wb = k.get("raw_tantivy_our_blocks")  # results of runs before it was measured lack it
        wb_cell = f"{_ms(wb['p50_ms'])} / {_ms(wb['p95_ms'])}" if wb else "—"
        wb_ratio = f"{k['ours_vs_raw_blocks']:.2f}" if wb else "—"
        targets = "; ".join(f"{t['target']}: {_ok(t['passed'])}" for t in k["targets"])
        example = k["example"].replace("|", "\\|")
        hits = f"{k['mean_hits']:,.0f}"  # ours finds exactly as many (checked)
        lines.append(
            f"| {k['description']} | `{example}` | {hits} "
            f"| {_ms(o['p50_ms'])} / {_ms(o['p95_ms'])} "
            f"| {_ms(w['p50_ms'])} / {_ms(w['p95_ms'])} | {wb_cell} "
            f"| {_ms(f['p50_ms'])} / {_ms(f['p95_ms'])} ({f['runs']}) "
            f"| {k['ours_vs_raw']:.2f} | {wb_ratio} | {k['fts5_vs_ours']:,.0f} | {targets} |"
        )
    if all("ours_repeated_at_once" in k for k in r["keyword"]):
        lines += [
            "",
            "Ours, repeated at once (not a target): each timed search of ours runs again straight "
            "after itself, with its code and data still in the CPU caches. The difference from "
            "the first run is what coming in cold (after the other engines' searches) costs.",
            "",
            "Ours ÷ raw, each pass: the p50 ratio of each timed pass over the class's queries "
            "on its own, in order (how much it moves within one run).",
            "",
            "| Query class | Ours | Ours, repeated at once | Raw tantivy | Repeated ÷ raw "
            "| Ours ÷ raw, each pass |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for k in r["keyword"]:
            again = k["ours_repeated_at_once"]
            passes = ", ".join(f"{x:.2f}" for x in k.get("ours_vs_raw_by_pass", []))
            lines.append(
                f"| {k['description']} | {_ms(k['ours']['p50_ms'])} | {_ms(again['p50_ms'])} "
                f"| {_ms(k['raw_tantivy']['p50_ms'])} | {k['ours_repeated_at_once_vs_raw']:.2f} "
                f"| {passes or 'not measured'} |"
            )
    if all("raw_tantivy_with_snippets" in k for k in r["keyword"]):
        lines += [
            "",
            "Raw tantivy with its own snippets (not a target): the same passes again with raw "
            "tantivy making each hit's snippet and highlight ranges (`SnippetGenerator`, "
            f"{SNIPPET_CHARS} characters) in raw's place, then raw tantivy (our blocks), then "
            "ours: what a search that returns what ours returns costs in plain tantivy.",
            "",
            "| Query class | Raw tantivy with snippets | Ours, beside it | Ours ÷ it "
            "| Its snippets without a highlight |",
            "|---|---:|---:|---:|---:|",
        ]
        for k in r["keyword"]:
            lines.append(
                f"| {k['description']} | {_ms(k['raw_tantivy_with_snippets']['p50_ms'])} "
                f"| {_ms(k['ours_beside_raw_with_snippets']['p50_ms'])} "
                f"| {k['ours_vs_raw_with_snippets']:.2f} "
                f"| {k['raw_snippets_unhighlighted']:.0%} |"
            )
    b = r["builds"]
    bt = r["build_target"]

    def built(engine: str) -> str:
        """The median build time, and each build's when there were several."""
        runs = b[engine].get("runs", [])
        each = f" ({', '.join(f'{x:.1f}' for x in runs)})" if len(runs) > 1 else ""
        return f"{b[engine]['seconds']:.1f}{each}"

    lines += [
        "",
        "### Keyword index build (from the archive files) and size",
        "",
        "| Engine | Build s: median (each) | Size MB | Segments | ÷ raw tantivy | Target |",
        "|---|---:|---:|---:|---:|---|",
        f"| ours (`refresh_index`, vectors off) | {built('ours')} "
        f"| {b['ours']['mb']:,.0f} | {b['ours'].get('segments', '')} | {bt['ours_vs_raw']:.2f} "
        f"| {bt['target']}: {_ok(bt['passed'])} |",
        f"| raw tantivy | {built('raw')} | {b['raw']['mb']:,.0f} "
        f"| {b['raw'].get('segments', '')} | 1.00 | |",
        *(
            [
                f"| raw tantivy ({STORE_BLOCK // 1024} KiB store blocks, as ours) "
                f"| {built('raw_blocks')} "
                f"| {b['raw_blocks']['mb']:,.0f} | {b['raw_blocks'].get('segments', '')} "
                f"| {b['raw_blocks']['seconds'] / b['raw']['seconds']:.2f} | |"
            ]
            if "raw_blocks" in b
            else []
        ),
        f"| SQLite FTS5 | {b['fts']['seconds']:.1f} | {b['fts']['mb']:,.0f} | "
        f"| {b['fts']['seconds'] / b['raw']['seconds']:.2f} | |",
        "",
        f"Our search after 2 s idle (caches gone cold; the change check rescans only after "
        f"{SCAN_INTERVAL:g} s): p50 "
        f"{_ms(r['idle_search']['p50_ms'])} ms, p95 {_ms(r['idle_search']['p95_ms'])} ms. "
        f"No-op `refresh_index` (scan only): p50 {_ms(r['noop_refresh']['p50_ms'])} ms. "
        f"`add_messages` of one message, then `search` finds it: p50 "
        f"{_ms(r['add_then_found']['p50_ms'])} ms.",
    ]
    v = r["vectors"]
    d, ex = v["ours_default"], v["exact_numpy"]
    mem = v["memory"]["default"]["after_queries"]
    resident = mem["anon_mb"] + mem["file_mb"]
    lines += [
        "",
        f"### Vector search (top 10 of {r['messages']:,} × {v['dim']}, {v['queries']} queries)",
        "",
        f"Embedding: {v['embed_per_s']:,.0f} messages/s ({v['embed_s']:.1f} s, {v['embedder']}, "
        f"batches of {EMBED_BATCH}); one query embedded in {_ms(v['query_encode']['p50_ms'])} ms "
        f"(p50). Vector index written in {v['build_s']:.1f} s as `refresh_index` writes it, "
        f"{v['index_mb']:,.0f} MB on disk, {_segments(v)}.",
        "",
        "| Search | p50 ms | p95 ms | Recall@10 | Resident growth, fresh process "
        "(anon + file-backed) | Targets |",
        "|---|---:|---:|---:|---|---|",
        f"| exact numpy float32 (`E @ q`) | {_ms(ex['p50_ms'])} | {_ms(ex['p95_ms'])} | 1.000 "
        f"| {r['messages'] * v['dim'] * 4 / 2**20:,.0f} MB (the float32 matrix) | |",
    ]
    targets = (
        f"p50 ≤ {VECTOR_P50_MS:g} ms: {_ok(d['p50_ms'] <= VECTOR_P50_MS)}; "
        f"recall ≥ {VECTOR_RECALL:g}: {_ok(d['recall'] >= VECTOR_RECALL)}; "
        f"≤ {VECTOR_RESIDENT_MB:g} MB: {_ok(resident <= VECTOR_RESIDENT_MB)}"
    )
    lines.append(
        f"| ours, default shortlist | {_ms(d['p50_ms'])} | {_ms(d['p95_ms'])} "
        f"| {d['recall']:.3f} | {mem['anon_mb']:,.0f} + {mem['file_mb']:,.0f} = "
        f"{resident:,.0f} MB (peak +{mem['peak_mb']:,.0f}) | {targets} |"
    )
    for label, run in (
        ("the same vectors in one segment (after compaction)", "ours_default_one_segment"),
        (
            "every search with the index files out of the page cache (as after the archive "
            "sat idle)",
            "ours_default_cold",
        ),
    ):
        o = v.get(run)
        if o is not None:
            lines.append(
                f"| ours, default shortlist, {label} | {_ms(o['p50_ms'])} | {_ms(o['p95_ms'])} "
                f"| {o['recall']:.3f} | | p50 ≤ {VECTOR_P50_MS:g} ms: "
                f"{_ok(o['p50_ms'] <= VECTOR_P50_MS)}; "
                f"recall ≥ {VECTOR_RECALL:g}: {_ok(o['recall'] >= VECTOR_RECALL)} |"
            )
    for name, probe in v["memory"].items():
        if name != f"shortlist={v['shortlist_for_target_recall']}":
            continue
        m = probe["after_queries"]
        c = next(x for x in v["curve"] if x["shortlist"] == probe["shortlist"])
        res = m["anon_mb"] + m["file_mb"]
        lines.append(
            f"| ours, `{name}` (first to reach {VECTOR_RECALL:g}) | {_ms(c['p50_ms'])} "
            f"| {_ms(c['p95_ms'])} | {c['recall']:.3f} | {m['anon_mb']:,.0f} + "
            f"{m['file_mb']:,.0f} = {res:,.0f} MB (peak +{m['peak_mb']:,.0f}) "
            f"| p50 ≤ {VECTOR_P50_MS:g} ms: {_ok(c['p50_ms'] <= VECTOR_P50_MS)}; "
            f"≤ {VECTOR_RESIDENT_MB:g} MB: {_ok(res <= VECTOR_RESIDENT_MB)} |"
        )
    e = v["ours_exact_mode"]
    lines += [
        f"| ours, `exact=True` ({e['runs']} queries) | {_ms(e['p50_ms'])} | {_ms(e['p95_ms'])} "
        f"| {e['recall']:.3f} | | |",
        "",
        "Shortlist curve (`VectorIndex.search(q, 10, shortlist=…)`):",
        "",
        "| shortlist | " + " | ".join(f"{c['shortlist']:,}" for c in v["curve"]) + " |",
        "|---|" + "---:|" * len(v["curve"]),
        "| recall@10 | " + " | ".join(f"{c['recall']:.3f}" for c in v["curve"]) + " |",
        "| p50 ms | " + " | ".join(_ms(c["p50_ms"]) for c in v["curve"]) + " |",
        "| p95 ms | " + " | ".join(_ms(c["p95_ms"]) for c in v["curve"]) + " |",
        "",
        "Fresh processes that open the index and run the same queries (growth over the process "
        "before opening, MB; latency of the 100 queries, the first one included):",
        "",
        "| Configuration | p50 ms | p95 ms | first query ms | open ms | anon after open "
        "| anon after queries | file-backed after queries | peak RSS growth |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, probe in v["memory"].items():
        a, o = probe["after_queries"], probe["after_open"]
        lines.append(
            f"| {name} | {_ms(probe['latency']['p50_ms'])} | {_ms(probe['latency']['p95_ms'])} "
            f"| {_ms(probe['first_query_ms'])} | {_ms(probe['open_s'] * 1000)} "
            f"| {o['anon_mb']:,.1f} | {a['anon_mb']:,.1f} | {a['file_mb']:,.1f} "
            f"| {a['peak_mb']:,.1f} |"
        )
    if "vector_refresh" in r:
        vr = r["vector_refresh"]
        rep = vr["report"]
        lines += [
            "",
            f"Full `refresh_index` with vectors on (fresh `.index/`): {vr['seconds']:.1f} s for "
            f"{rep['documents_added']:,} documents and {rep['vectors_added']:,} vectors; "
            f"`.index/` {vr['index_mb']:,.0f} MB. Through `archive.search` ({API_QUERIES} "
            f"5-word queries): semantic p50 {_ms(vr['api']['semantic']['p50_ms'])} ms / p95 "
            f"{_ms(vr['api']['semantic']['p95_ms'])} ms, hybrid p50 "
            f"{_ms(vr['api']['hybrid']['p50_ms'])} ms / p95 "
            f"{_ms(vr['api']['hybrid']['p95_ms'])} ms.",
        ]
    lines.append("")
    return lines


def markdown(report: dict[str, Any]) -> str:
    meta = report["meta"]
    lines = [
        "# Flatchat search vs raw tantivy, SQLite FTS5 and exact numpy",
        "",
        f"Python {meta['python']}, tantivy {meta['tantivy']}, SQLite {meta['sqlite']}, numpy "
        f"{meta['numpy']}, {meta['platform']}, {meta['cpus']} CPUs. Corpus, method and fairness "
        "rules: the docstring of `benchmarks/bench_search.py`.",
        "",
    ]
    for key in sorted(report["runs"], key=int):
        lines += section(report["runs"][key])
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: 10,000 messages")
    parser.add_argument(
        "--messages", type=int, nargs="+", help="corpus sizes, one run each (100,000)"
    )
    parser.add_argument(
        "--no-vector-refresh",
        action="store_true",
        help="skip the final refresh_index with vectors on and the semantic/hybrid API timings",
    )
    parser.add_argument(
        "--dir",
        type=Path,
        help="folder in which to make the run's scratch folder (default: the system temp dir)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder")
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="only write the Markdown again from the JSON results (no measuring)",
    )
    parser.add_argument("--seed", type=int, default=20260126)
    parser.add_argument(
        "--out",
        type=Path,
        default=RESULTS_DIR / "bench_search",
        help="results path without extension (.md and .json are written)",
    )
    parser.add_argument("--probe-vectors", nargs=2, type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--probe-shortlist", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--build-probe", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.messages = args.messages or [10_000 if args.quick else 100_000]
    if min(args.messages) < 1_000:
        parser.error("--messages must be at least 1,000")
    return args


async def amain(args: argparse.Namespace) -> int:
    json_path = args.out.with_name(args.out.name + ".json")
    md_path = args.out.with_name(args.out.name + ".md")
    report: dict[str, Any] = {"runs": {}}
    if json_path.exists():
        report = json.loads(json_path.read_text(encoding="utf-8"))
    if args.report_only:
        md_path.write_text(markdown(report), encoding="utf-8")
        sys.stdout.write(markdown(report))
        return 0
    report["meta"] = {
        "python": platform.python_version(),
        "tantivy": _version("tantivy"),
        "numpy": np.__version__,
        "sqlite": sqlite3.sqlite_version,
        "platform": platform.platform(terse=True),
        "cpus": os.cpu_count(),
    }
    for messages in args.messages:
        if args.dir is not None:
            args.dir.mkdir(parents=True, exist_ok=True)
        workdir = Path(tempfile.mkdtemp(prefix="flatchat-bench-search-", dir=args.dir))
        log.info("scratch folder %s", workdir)
        bench = Bench(messages, args, workdir)
        bench.result["started_at"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        bench.result["revision"] = storage_revision()
        bench.result["seed"] = args.seed
        bench.result["workdir_parent"] = str(workdir.parent)
        bench.result["load_before"] = os.getloadavg()
        try:
            result = await bench.run()
        finally:
            if bench.archive is not None:
                await bench.archive.close()
            if not args.keep:
                shutil.rmtree(workdir, ignore_errors=True)
        report["runs"][str(messages)] = result
        args.out.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        md_path.write_text(markdown(report), encoding="utf-8")
        log.info("wrote %s and %s", md_path, json_path)
    sys.stdout.write(markdown(report))
    return 0


def _version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "unknown"


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.probe_vectors:
        return probe_main(*args.probe_vectors, args.probe_shortlist)
    if args.build_probe:
        engine, root, target = args.build_probe
        return build_probe(engine, Path(root), Path(target))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    return asyncio.run(amain(args))


if __name__ == "__main__":
    sys.exit(main())
