"""Keeping ``.index/`` in step with the archive's files, incrementally.

``state.json`` records, for every source (a session's message log, a situational context, a
document's chunks), the file signature it was indexed at and, for an append-only message log,
how many bytes are indexed. A refresh stats every source and indexes only what changed: the new
tail of a log that grew; the whole source when a file was rewritten, compacted or replaced.

Commit protocol, so a crash never leaves the index disagreeing with its state: write new vector
segments (unreferenced), write ``state.pending``, commit tantivy, write the vector manifest and
``state.json``, remove ``state.pending``. A ``state.pending`` found on open means the last
commit was interrupted: the index is rebuilt from the files.
"""

from __future__ import annotations

import datetime as dt
import errno
import functools
import hashlib
import logging
import os
import shutil
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import filelock
import orjson
from pydantic import ValidationError

from storage.errors import IndexUnavailableError, LockTimeoutError, StorageError
from storage.files import atomic_write, read_json, stamp_path
from storage.jobs import JobControl
from storage.jsonl import JsonlLog
from storage.layout import (
    CONTEXT,
    DOCUMENTS,
    DOCUMENTS_META,
    LEGACY_PERSONA_SUFFIX,
    MESSAGES,
    MESSAGES_ZST,
    SESSION_JSON,
)
from storage.models import Message, Session, SituationalContext
from storage.search.embedder import Embedder
from storage.search.fulltext import (
    DocKind,
    FullTextIndex,
    IndexCorruptError,
    IndexDoc,
    analyzer_name,
    doc_json,
    index_doc_json,
    micros,
    missing_files,
)
from storage.search.vectors import EmbedderInfo, VectorIndex
from storage.search.watch import footer_problems, segment_files

log = logging.getLogger(__name__)

# 2: the keyword index stores a packed hit field, not fifteen fields; 3: the hit field is
# text and the timestamp an integer fast field (documents made three times faster)
STATE_VERSION = 9  # 4: the cjk field; 5: its long-vowel and sound marks; 6: Hangul;
# 7: vectors as 2-bit codes in memory, no int8 copy; 8: text composed (NFC), a message's key
# is its line's place in the log (message ids can repeat); 9: an imported session's source is
# its format ("chatgpt", was the dict an import records), entries record the source indexed
EMBED_BATCH = 2048


def _sig(path: str | Path) -> list[int] | None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return [st.st_ino, st.st_size, st.st_mtime_ns]


def _as_read(source: Source, end: int) -> dict[str, Any]:
    """What to record of a log just read to ``end``, from its stat now (its signature is the
    scan's, from before): ``read``, the log as read ([inode, size, mtime]), where the read
    reached its end and only growth moved its time; or an empty digest where it was written
    to in place meanwhile (same size, its time moved): what was read may hold the write or
    not, so the next refresh reads it whole."""
    now = _sig(source.path)
    if now is None or len(source.sig) != 1 or now[0] != source.sig[0][1]:
        return {}  # gone or replaced since the scan: its signature moved, it is read again
    _name, _inode, size, mtime = source.sig[0]
    if now[1] == size and now[2] != mtime:
        return {"digest": ""}
    return {"read": now} if now[1] == end else {}


def _text_bytes(source: Source) -> int:
    """At most about how many bytes of text indexing ``source`` reads, to size the writer's
    memory: its files' sizes (a refresh of a log's new tail reads less), a compressed log's
    four times over."""
    if source.kind == "title":
        return 256  # a title
    if source.kind != "messages":
        return int(source.sig[1])
    return sum(int(size) * (4 if name.endswith(".zst") else 1) for name, _i, size, _m in source.sig)


DIGEST_HEAD = 4 << 20  # a log's first bytes hashed to tell an append from an edit,
DIGEST_TAIL = 4 << 20  # and the last bytes before the offset indexed


def _digest(path: Path, end: int) -> str:
    """The digest of a log up to the offset indexed, ``end``: it tells whether the log was
    only appended to since (a log edited in place, same file, is indexed whole). A log of up
    to 8 MiB (some 16,000 messages) is hashed whole, so an edit anywhere in it is seen;
    a longer one by its first and last 4 MiB before ``end`` (SHA-1: ~5 ms from the page
    cache, some 30 ms from disk), where hashing it whole would cost every refresh after an
    append a read of all of it (0.3 s for a 111 MB log out of the cache). A longer log written
    to without growing since it was read is indexed whole whatever its digest
    (:meth:`Indexer._tail_offset`): what goes unseen is an edit in its middle made together
    with an append, or within the file system's clock tick of the last write."""
    digest = hashlib.sha1(str(end).encode(), usedforsecurity=False)
    with open(path, "rb") as fh:
        for start, stop in ((0, min(end, DIGEST_HEAD)), (max(DIGEST_HEAD, end - DIGEST_TAIL), end)):
            fh.seek(start)
            left = stop - start
            while left > 0:
                block = fh.read(min(left, 1 << 20))
                if not block:
                    return ""  # shorter than ``end``: matches no digest recorded
                digest.update(block)
                left -= len(block)
    return digest.hexdigest()


@dataclass
class Source:
    key: str  # also the index group: m/<u>/<s>, c/<u>/<s>, t/<u>/<s>,
    # d/<u>/<s or _>/<doc_id>
    kind: str  # messages | context | title | document
    user: str
    session: str
    sig: list[Any]
    # The log, context file, session.json or chunks file. A plain string: a scan makes two
    # or three sources a session, and pathlib took two thirds of a scan's time (10,000
    # sessions: 0.32 s of 0.56 under the profiler).
    where: str
    doc_id: str = ""
    record: dict[str, Any] = field(default_factory=dict)
    # A session's messages, context and title: its session.json's signature. What their
    # documents take from the session (its source, for the source: filter; the title and
    # its start) is read from there (:meth:`Indexer._session_said`).
    meta: list[int] | None = None

    @functools.cached_property
    def path(self) -> Path:
        return Path(self.where)


@dataclass
class RefreshReport:
    sources_indexed: int = 0
    sources_removed: int = 0
    documents_added: int = 0
    vectors_added: int = 0
    rebuilt: bool = False
    seconds: float = 0.0
    embed_seconds: float = 0.0  # of ``seconds``, spent computing embeddings

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class Indexer:
    """Owns ``.index/``: the keyword index, the vector index and their shared state."""

    def __init__(
        self,
        root: Path,
        embedder_factory: Callable[[], Embedder] | None,
        stemming: bool,
        session_reader: Callable[[str, str], Session],
    ) -> None:
        self.root = root
        self.folder = root / ".index"
        self.stemming = stemming
        self._embedder_factory = embedder_factory
        self._embedder: Embedder | None = None
        self._read_session = session_reader
        self.fulltext: FullTextIndex | None = None
        self.vectors: VectorIndex | None = None
        self.state: dict[str, Any] = {}
        self.last_scan = 0.0
        self.last_stamp: list[Any] | None = None
        self.rebuilt_reason: str | None = None
        self._state_sig: list[int] | None = None  # of the state.json our view was read from
        # Why the index on disk may not be one this process can use as it is (opened without
        # repairing, or rebuilt by another process with other settings); the next refresh,
        # under the lock, repairs or rebuilds it.
        self._unchecked: str | None = None
        self.lost = False  # state.json vanished under an open index (.index/ deleted)
        self._state_moved = False  # a refresh noted what a scan found, nothing to index
        self._sessions_read: dict[tuple[str, str], Session | None] = {}  # by this refresh
        # Checked before every search: plain strings, pathlib costs more than the stat itself.
        self._stamp_file = os.fspath(stamp_path(root))
        self._state_file = os.fspath(self.folder / "state.json")
        # documents/metadata.json parsed once per signature: scans repeat every few seconds.
        self._doc_records: dict[str, tuple[list[Any], dict[str, Any]]] = {}

    # ------------------------------------------------------------------ opening
    @property
    def embedder(self) -> Embedder | None:
        if self._embedder is None and self._embedder_factory is not None:
            self._embedder = self._embedder_factory()
        return self._embedder

    def _embedder_info(self) -> EmbedderInfo | None:
        embedder = self.embedder
        if embedder is None:
            return None
        return EmbedderInfo(embedder.name, embedder.model_hash, embedder.dim)

    def _expected_header(self) -> dict[str, Any]:
        info = self._embedder_info()
        return {
            "version": STATE_VERSION,
            "analyzer": analyzer_name(self.stemming),
            "embedder": info.to_dict() if info else None,
        }

    def sync(self) -> None:
        """Take in what another process committed since we last read or wrote the index (its
        ``state.json`` replaced ours): one ``stat`` when nothing changed. Called before every
        search and, under the index lock, before every refresh, so two processes that both
        index (the window and a ``flatchat`` command, or the window's worker) never work from
        a stale view, which would index sources twice or drop the other's vector segments."""
        if self.fulltext is None:
            return  # not open yet: open() reads the state
        sig = _sig(self._state_file)
        # Gone: being rebuilt by another process right now, or .index/ deleted (a refresh,
        # under the lock, tells which and rebuilds it if need be).
        self.lost = sig is None and self._state_sig is not None
        if sig is None or sig == self._state_sig:
            return
        state_path = self.folder / "state.json"
        try:
            state = orjson.loads(state_path.read_bytes())
        except (orjson.JSONDecodeError, OSError) as exc:
            log.warning("cannot read %s written by another process: %s", state_path, exc)
            return
        wrong = _state_problem(state)
        if wrong is not None:
            log.warning("%s written by another process %s", state_path, wrong)
            return
        assert isinstance(state, dict)
        if {k: state.get(k) for k in ("version", "analyzer", "embedder")} != (
            self._expected_header()
        ):
            # Built with other settings by another process (a different embedder, stemming
            # or version). Searches here keep this process's view; the next refresh (under
            # the lock) rebuilds the index with this process's settings. Adding to the other
            # index would mix vector spaces.
            log.warning("%s was built with other settings; keeping this process's view", state_path)
            self._unchecked = f"{state_path} was rebuilt with other settings by another process"
            return
        if self.vectors is not None:
            try:
                vectors = VectorIndex(self.folder / "vectors", self.vectors.embedder)
            except IndexCorruptError as exc:
                # The other process may have replaced a segment while we read its manifest;
                # keep our view, the next sync reads the settled state.
                log.info("vector index changing under us, keeping the previous view: %s", exc)
                return
            problem = _vector_problem(vectors, state)
            if problem is not None:
                log.info("vector index changing under us, keeping the previous view: %s", problem)
                return
            self.vectors = vectors
        self.state = state
        self._state_sig = sig

    @property
    def state_sig(self) -> list[int] | None:
        """The signature of the state.json this view was read from (it moves with every
        commit, ours or another process's)."""
        return self._state_sig

    @property
    def unchecked(self) -> str | None:
        """Why the next refresh must first check (and maybe rebuild) the index, if it must."""
        return self._unchecked

    def open(self, *, repair: bool = True) -> None:
        """Open the indexes, or start them afresh when missing, interrupted, built with other
        settings or damaged (the reason is kept in ``rebuilt_reason``).

        Starting afresh deletes files, so it needs the index lock. ``repair=False`` is for a
        reader that found the lock taken by another process, whose half-made commit looks
        like an interrupted one: it opens what is there, and the next refresh (under the
        lock) checks again."""
        reason = self._problem()
        if reason is None:
            try:
                self._open_indexes()
                problem = _vector_problem(self.vectors, self.state) or self._keyword_problem()
                if problem is not None:
                    raise IndexCorruptError(problem)
                self._unchecked = None
                self.lost = False
                return
            except IndexCorruptError as exc:
                reason = str(exc)
        if not repair:
            self._open_indexes()
            self._unchecked = reason
            return
        self._check_writable()  # before anything is deleted: a rebuild could not finish
        if (self.folder / "state.json").exists() or (self.folder / "state.pending").exists():
            log.warning("rebuilding the search index: %s", reason)
            self.rebuilt_reason = reason
        self._wipe()
        self._open_indexes()
        self._unchecked = None
        self.lost = False

    def _problem(self) -> str | None:
        state_path = self.folder / "state.json"
        if (self.folder / "state.pending").exists():
            return "the last index commit was interrupted"
        if not state_path.exists():
            return "no index yet"
        sig = _sig(state_path)
        try:
            state = orjson.loads(state_path.read_bytes())
        except (orjson.JSONDecodeError, OSError) as exc:
            return f"{state_path} is unreadable: {exc}"
        wrong = _state_problem(state)
        if wrong is not None:
            return f"{state_path} {wrong}"
        assert isinstance(state, dict)
        if not (self.folder / "fulltext" / "meta.json").exists() and any(
            isinstance(e, dict) and e.get("docs") for e in state.get("sources", {}).values()
        ):
            return f"the keyword index in {self.folder / 'fulltext'} is missing (no meta.json)"
        header = {k: state.get(k) for k in ("version", "analyzer", "embedder")}
        if header["version"] != STATE_VERSION:
            return (
                f"the index on disk has format version {header['version']}, "
                f"this version of Flatchat writes {STATE_VERSION}"
            )
        if header != self._expected_header():
            return (
                f"the index was built with {header}, settings now ask for {self._expected_header()}"
            )
        self.state = state
        self._state_sig = sig
        return None

    def _check_writable(self) -> None:
        """Raise :class:`IndexUnavailableError` when the index's folders exist but cannot be
        written (made by another user, as after ``sudo flatchat``)."""
        for folder in (self.folder, self.folder / "fulltext", self.folder / "vectors"):
            if folder.is_dir() and not os.access(folder, os.W_OK | os.X_OK):
                raise IndexUnavailableError(
                    folder, PermissionError(errno.EACCES, os.strerror(errno.EACCES))
                )

    def _keyword_problem(self) -> str | None:
        """What is wrong when the keyword index does not hold the documents the state says
        its last commit left (None: it does)."""
        assert self.fulltext is not None
        expected, actual = self.expected_docs(), self.fulltext.num_docs()
        if expected != actual:
            return f"the keyword index holds {actual} documents, its state expects {expected}"
        return None

    def _open_indexes(self) -> None:
        self.fulltext = FullTextIndex(self.folder / "fulltext", self.stemming)
        info = self._embedder_info()
        self.vectors = VectorIndex(self.folder / "vectors", info) if info else None
        if not self.state:
            self.state = {**self._expected_header(), "sources": {}}

    def _wipe(self) -> None:
        self.fulltext = None
        self.vectors = None
        self.state = {}
        self._state_sig = None
        for name in ("fulltext", "vectors"):
            shutil.rmtree(self.folder / name, ignore_errors=True)
        for name in ("state.json", "state.pending"):
            (self.folder / name).unlink(missing_ok=True)

    def lock(self, timeout: float) -> filelock.FileLock:
        path = self.root / ".locks" / "index.lock"
        path.parent.mkdir(parents=True, exist_ok=True)
        return filelock.FileLock(str(path), timeout=timeout, thread_local=False)

    # ------------------------------------------------------------------ scanning
    def needs_full_scan(self, others_wrote: Callable[[Any, Any], bool], interval: float) -> bool:
        """True when another process wrote since the last full scan (the change stamp moved,
        and ``others_wrote(then, now)`` says not only by this process's writes, which are
        indexed from their events), or when ``interval`` seconds passed (edits made by other
        tools, which do not touch the stamp)."""
        if time.monotonic() - self.last_scan > interval:
            return True
        stamp = _sig(self._stamp_file)
        return stamp != self.last_stamp and others_wrote(self.last_stamp, stamp)

    def scan(self, only: set[tuple[str, str | None]] | None = None) -> dict[str, Source]:
        """Every indexable source on disk now, with its signature: one directory listing per
        session folder and one stat per file that matters (no per-file pathlib work), so a
        10,000-session archive scans in about a tenth of a second. ``only``: just these
        (user, session) pairs (session None: the user's library documents)."""
        found: dict[str, Source] = {}
        if only is not None:
            for user, session in only:
                user_dir = os.path.join(self.root, "users", user)
                if session is None:
                    self._scan_documents(found, user, "", os.path.join(user_dir, DOCUMENTS))
                elif os.path.isdir(os.path.join(user_dir, session)):
                    self._scan_session(found, user, session, os.path.join(user_dir, session))
            return found
        self.last_stamp = _sig(stamp_path(self.root))
        self.last_scan = time.monotonic()
        users = os.path.join(self.root, "users")
        try:
            with os.scandir(users) as scan:
                user_entries = sorted(
                    (e for e in scan if not e.name.startswith(".") and e.is_dir()),
                    key=lambda e: e.name,
                )
        except FileNotFoundError:
            return found
        for user_entry in user_entries:
            with os.scandir(user_entry.path) as scan:
                entries = [e for e in scan if not e.name.startswith(".") and e.is_dir()]
            for entry in entries:
                if entry.name == DOCUMENTS:
                    self._scan_documents(found, user_entry.name, "", entry.path)
                else:
                    self._scan_session(found, user_entry.name, entry.name, entry.path)
        return found

    def _scan_session(self, found: dict[str, Source], user: str, session: str, folder: str) -> None:
        with os.scandir(folder) as scan:
            names = {e.name: e for e in scan}
        session_json = names.get(SESSION_JSON)
        if session_json is None:
            return
        st = session_json.stat()
        meta = [st.st_ino, st.st_size, st.st_mtime_ns]
        sig: list[Any] = []
        logs = [MESSAGES, MESSAGES_ZST]
        logs += sorted(n for n in names if n.endswith(LEGACY_PERSONA_SUFFIX))
        for name in logs:
            entry = names.get(name)
            if entry is not None:
                st = entry.stat()
                sig.append([name, st.st_ino, st.st_size, st.st_mtime_ns])
        if sig:
            key = f"m/{user}/{session}"
            log_name = MESSAGES if MESSAGES in names else MESSAGES_ZST
            found[key] = Source(
                key, "messages", user, session, sig, os.path.join(folder, log_name), meta=meta
            )
        context = names.get(CONTEXT)
        if context is not None:
            st = context.stat()
            key = f"c/{user}/{session}"
            found[key] = Source(
                key,
                "context",
                user,
                session,
                [st.st_ino, st.st_size, st.st_mtime_ns],
                os.path.join(folder, CONTEXT),
                meta=meta,
            )
        # The session's title, searchable as a document of its own (kind "session"). Its
        # session.json changes with every append (its times, its count): the title is read
        # again then (from the archive's cache of sessions), and indexed only if it changed.
        key = f"t/{user}/{session}"
        found[key] = Source(
            key, "title", user, session, [], os.path.join(folder, SESSION_JSON), meta=meta
        )
        if DOCUMENTS in names:
            self._scan_documents(found, user, session, os.path.join(folder, DOCUMENTS))

    def _scan_documents(
        self, found: dict[str, Source], user: str, session: str, folder: str
    ) -> None:
        meta = os.path.join(folder, DOCUMENTS_META)
        meta_sig = _sig(Path(meta))
        if meta_sig is None:
            return
        cached = self._doc_records.get(meta)
        if cached is not None and cached[0] == meta_sig:
            records = cached[1]
        else:
            try:
                records = read_json(Path(meta))
            except (OSError, ValueError) as exc:
                log.warning("not indexing documents in %s: %s", folder, exc)
                return
            if not isinstance(records, dict):
                return
            self._doc_records[meta] = (meta_sig, records)
        for doc_id, record in records.items():
            chunks = os.path.join(folder, f"{doc_id}.chunks.jsonl")
            sig = _sig(chunks)
            if sig is None or not isinstance(record, dict):
                continue  # stored but not searchable (no text), or half-ingested
            key = f"d/{user}/{session or '_'}/{doc_id}"
            found[key] = Source(key, "document", user, session, sig, chunks, doc_id, record)

    # ------------------------------------------------------------------ refreshing
    def refresh(
        self,
        control: JobControl | None = None,
        only: set[tuple[str, str | None]] | None = None,
    ) -> RefreshReport:
        """Bring the index in step with the files (or just the sessions in ``only``, which
        this process wrote to). The caller holds :meth:`lock`.

        Cancelling (or any failure) commits the sources finished so far; the one in progress
        is dropped from both indexes and from the state, so the next refresh redoes it whole
        and nothing is ever indexed twice."""
        started = time.monotonic()
        report = RefreshReport(rebuilt=self.rebuilt_reason is not None)
        self.sync()
        if self.lost:  # state.json gone, and not another process's rebuild (we hold the lock)
            self.rebuilt_reason = "the index folder was deleted"
            report.rebuilt = True
            self._wipe()
        if self.fulltext is None or self._unchecked is not None:
            self.open()
        if not self.state.get("sources"):
            only = None  # started afresh (or nothing indexed yet): the whole archive
        current = self.scan(only)
        known: dict[str, Any] = self.state.setdefault("sources", {})
        removed = [k for k in known if k not in current and _within(k, only)]
        self._state_moved = False
        self._sessions_read.clear()  # read after this scan: for this refresh only
        work = [s for k, s in current.items() if self._changed(s, known.get(k))]
        if not removed and not work:
            if self._state_moved:
                self._save_state()
            report.seconds = time.monotonic() - started
            return report
        control = control or JobControl("indexing")
        control.set_total(len(work))
        assert self.fulltext is not None
        done: dict[str, Any] = {}
        dropped: list[str] = list(removed)
        pending = _Batch()
        try:
            with self.fulltext.writer(sum(map(_text_bytes, work))) as writer:
                for key in removed:
                    self._drop(writer, key)
                    report.sources_removed += 1
                in_progress: str | None = None
                try:
                    for source in work:
                        in_progress = source.key
                        entry = self._index_source(
                            writer, source, known.get(source.key), pending, control
                        )
                        in_progress = None
                        done[source.key] = entry
                        report.sources_indexed += 1
                        report.documents_added += entry.get("docs_added", 0)
                        if len(pending.texts) >= EMBED_BATCH:
                            report.vectors_added += self._flush_vectors(pending, report)
                        control.step(source.key)
                finally:
                    if in_progress is not None:
                        log.info(
                            "indexing stopped in %s; it will be indexed whole next time",
                            in_progress,
                        )
                        self._drop(writer, in_progress)
                        dropped.append(in_progress)
                    report.vectors_added += self._flush_vectors(pending, report)
                    self._commit(writer, dropped, done)
        finally:
            report.seconds = time.monotonic() - started
        return report

    def _changed(self, source: Source, entry: dict[str, Any] | None) -> bool:
        """Whether ``source`` must be indexed (again): new, its files changed, or what its
        documents take from their session changed since (its session.json moved: read it,
        from the archive's cache of sessions, only then)."""
        if entry is None or entry.get("sig") != source.sig:
            return True
        if source.meta is None or entry.get("meta") == source.meta:
            return False
        said = self._session_said(source)
        if any(entry.get(k) != v for k, v in said.items()):
            return True
        # The same as indexed (session.json changed for other reasons: times, tags): noted,
        # so that it is not read again at every scan; saved with the state.
        entry["meta"] = source.meta
        self._state_moved = True
        return False

    def _drop(self, writer: Any, group: str) -> None:
        """Remove a source's documents from both indexes (effective at the next commit)."""
        assert self.fulltext is not None
        self.fulltext.delete_group(writer, group)
        if self.vectors is not None:
            self.vectors.delete_groups([group])

    def _index_source(
        self,
        writer: Any,
        source: Source,
        previous: dict[str, Any] | None,
        pending: _Batch,
        control: JobControl,
    ) -> dict[str, Any]:
        assert self.fulltext is not None
        entry: dict[str, Any] = {"sig": source.sig}
        kept = 0  # documents already indexed from an earlier part of an append-only log
        said: dict[str, str] = {}
        if source.meta is not None:
            # Read after the scan took the signature recorded: a change meanwhile leaves
            # that signature behind, so the next refresh looks again.
            said = self._session_said(source)
            entry.update(said, meta=source.meta)
        origin = said.get("origin", "")
        if source.kind == "messages":
            # Every document of the log names the session's source: a new one, read it whole.
            same = (previous or {}).get("origin") == origin
            tail = self._tail_offset(source, previous) if same else None
            if tail is None:
                if previous is not None:
                    self._drop(writer, source.key)
                docs, end = self._message_docs(source, 0, origin)
                entry["digest"] = _digest(source.path, end) if end else ""
            else:
                docs, end = self._message_docs(source, tail, origin)
                entry["digest"] = _digest(source.path, end)
                if _digest(source.path, tail) != (previous or {}).get("digest"):
                    # What was indexed before the tail changed while the tail was read (an
                    # edit in place, maybe with an append): the next refresh reads it whole.
                    entry["digest"] = ""
                kept = int((previous or {}).get("docs", 0))
            entry["offset"] = end
            entry.update(_as_read(source, end))
        else:
            if previous is not None:
                self._drop(writer, source.key)
            if source.kind == "context":
                made = self._context_docs(source, origin)
            elif source.kind == "title":
                made = self._title_docs(source, said)
            else:
                made = self._document_docs(source)
            docs = _Docs.of(made)
        for start in range(0, len(docs.jsons), 5000):
            self.fulltext.add_json(writer, docs.jsons[start : start + 5000])
            control.check()
        if self.vectors is not None:
            pending.extend(docs, source.key)
        entry["docs_added"] = len(docs.jsons)
        entry["docs"] = kept + len(docs.jsons)
        return entry

    def _tail_offset(self, source: Source, previous: dict[str, Any] | None) -> int | None:
        """Where to resume indexing an append-only log, or None to index it whole."""
        if previous is None or source.path.name != MESSAGES or len(source.sig) != 1:
            return None
        old_sig, new_sig = previous.get("sig") or [], source.sig
        if len(old_sig) != 1 or old_sig[0][0] != MESSAGES:
            return None
        offset = int(previous.get("offset", 0))
        _name, inode, size, mtime = new_sig[0]
        if old_sig[0][1] != inode or size < offset or offset == 0:
            return None
        if offset > DIGEST_HEAD + DIGEST_TAIL:
            # Past what the digest hashes, a log written to without growing since it was
            # read (its time moved) was edited in place. What it was when read is recorded
            # where the read reached its end (the scan's signature may be from before an
            # append that raced the read).
            read = previous.get("read")
            was = read[1:] if read is not None and read[0] == inode else old_sig[0][2:]
            if size == was[0] and mtime != was[1]:
                return None
        if _digest(source.path, offset) != previous.get("digest"):
            return None
        return offset

    def _session_said(self, source: Source) -> dict[str, str]:
        """What ``source``'s documents take from their session: its source ("origin"), and
        for a title its title; empty strings if its session.json cannot be read."""
        place = (source.user, source.session)
        if place in self._sessions_read:  # its log, context and title: read once a refresh
            session = self._sessions_read[place]
        else:
            try:
                session = self._read_session(*place)
            except (OSError, ValueError, StorageError) as exc:  # corrupt, or deleted meanwhile
                log.debug("no session metadata for %s/%s: %s", *place, exc)
                session = None
            self._sessions_read[place] = session
        said = {"origin": (session.source or "flatchat") if session else ""}
        if source.kind == "title":  # its text and its time
            said["title"] = session.title.strip() if session else ""
            said["started"] = session.created_at.isoformat() if session else ""
        return said

    def _message_docs(self, source: Source, offset: int, origin: str) -> tuple[_Docs, int]:
        """The documents of the log from ``offset`` and the byte offset reached (whole
        lines). ``origin``: the session's source."""
        folder = source.path.parent
        group, user, session = source.key, source.user, source.session
        docs = _Docs()
        keys, texts, jsons = docs.keys, docs.texts, docs.jsons

        def add(place: object, fields: _Fields) -> None:
            message_id, role, text, stamp = fields
            key = f"{group}/{place}"
            keys.append(key)
            texts.append(text)
            jsons.append(
                doc_json(
                    key, group, "message", user, session, text, stamp, role, origin, message_id
                )
            )

        if len(source.sig) != 1 or source.path.name != MESSAGES:
            # Compacted, or merged with the original system's per-persona copies: whole.
            log_ = JsonlLog(
                folder / MESSAGES,
                Message,
                legacy_paths=lambda: sorted(
                    folder / n for n in os.listdir(folder) if n.endswith(LEGACY_PERSONA_SUFFIX)
                ),
            )
            # Keyed by their place in the merged log ("n3"): it is read whole every time.
            for i, m in enumerate(log_.iter()):
                add(
                    f"n{i}", _fields_of(m.message_id, m.role, m.content, m.attachments, m.timestamp)
                )
            return docs, 0
        # Read whole lines only (and a whole last message), so the offset recorded is exactly
        # what was indexed. Keyed by the line's byte offset: a message id can repeat in a log
        # (storage does not forbid it), and each line must stay its own hit.
        end = offset
        for raw in JsonlLog(folder / MESSAGES, Message).raw_from(offset):
            fields = _indexed_fields(raw.data) if raw.data.strip() else None
            if not raw.terminated:
                # The last line, without its newline: a message all the same if it reads as
                # one (storage shows it, and puts the newline before its next append, which
                # is read from here on); else a torn or unfinished append, read once done.
                if fields is not None:
                    add(raw.offset, fields)
                    end = raw.offset + len(raw.data)
                break
            end = raw.offset + len(raw.data) + 1
            if fields is not None:
                add(raw.offset, fields)
        return docs, end

    def _context_docs(self, source: Source, origin: str) -> list[IndexDoc]:
        try:
            context = SituationalContext.model_validate(orjson.loads(source.path.read_bytes()))
        except (ValidationError, orjson.JSONDecodeError, OSError) as exc:
            log.warning("not indexing %s: %s", source.path, exc)
            return []
        parts = [context.summary, *context.key_points]
        for values in context.entities.values():
            parts.extend(values)
        return [
            _session_doc(
                source, "context", "\n".join(p for p in parts if p), context.timestamp, origin
            )
        ]

    def _title_docs(self, source: Source, said: dict[str, str]) -> list[IndexDoc]:
        """A session's title as a document (none for an untitled session): a search for the
        words of a title finds the session itself, not every message under it, and a rename
        indexes one document again. Its time is the session's start. ``said``: what
        :meth:`_session_said` read of them (read once: what is indexed is what is recorded)."""
        if not said.get("title") or not said.get("started"):
            return []
        started = dt.datetime.fromisoformat(said["started"])
        return [_session_doc(source, "session", said["title"], started, said["origin"])]

    def _document_docs(self, source: Source) -> list[IndexDoc]:
        from storage.models import DocumentRecord

        try:
            record = DocumentRecord.model_validate({"doc_id": source.doc_id, **source.record})
        except ValidationError as exc:
            log.warning("not indexing document %s: %s", source.doc_id, exc)
            return []
        docs: list[IndexDoc] = []
        for raw in JsonlLog(source.path, Message).raw_forward():
            if not raw.terminated:
                continue
            try:
                chunk = orjson.loads(raw.data)
            except orjson.JSONDecodeError:
                continue
            if not isinstance(chunk, dict) or not isinstance(chunk.get("text"), str):
                continue
            number = _opt_int(chunk.get("chunk"))
            docs.append(
                IndexDoc(
                    key=f"{source.key}/{len(docs)}",  # unique, whatever the chunk numbers say
                    group=source.key,
                    kind="document",
                    user=source.user,
                    session=source.session,
                    text=_composed(chunk["text"]),
                    timestamp=record.uploaded_at,
                    doc_id=source.doc_id,
                    chunk=len(docs) if number is None else number,
                    page=_opt_int(chunk.get("page")),
                    char_start=_opt_int(chunk.get("start")),
                    char_end=_opt_int(chunk.get("end")),
                    source=record.original_name or source.doc_id,
                )
            )
        return docs

    # ------------------------------------------------------------------ vectors + commit
    def _flush_vectors(self, pending: _Batch, report: RefreshReport) -> int:
        if self.vectors is None or not pending.texts or self.embedder is None:
            pending.clear()
            return 0
        started = time.monotonic()
        vectors = self.embedder.encode(pending.texts)
        report.embed_seconds += time.monotonic() - started
        added = int((abs(vectors).sum(axis=1) > 0).sum())
        self.vectors.add(pending.keys, pending.groups, vectors)
        pending.clear()
        return added

    def _commit(self, writer: Any, removed: list[str], done: dict[str, Any]) -> None:
        sources = self.state.setdefault("sources", {})
        atomic_write(self.folder / "state.pending", b"{}")
        assert self.fulltext is not None
        self.fulltext.commit(writer)
        if self.vectors is not None:
            self.vectors.compact_if_needed()
            self.vectors.commit()
        for key in removed:
            sources.pop(key, None)
        for key, entry in done.items():
            entry.pop("docs_added", None)
            sources[key] = entry
        # What the vector manifest holds: a manifest or segment lost later is found on open.
        self.state["vectors"] = self.vectors.count if self.vectors is not None else None
        self._save_state()
        (self.folder / "state.pending").unlink(missing_ok=True)
        self.rebuilt_reason = None

    def _save_state(self) -> None:
        atomic_write(self.folder / "state.json", orjson.dumps(self.state))
        self._state_sig = _sig(self.folder / "state.json")

    def rebuild(self, control: JobControl | None = None) -> RefreshReport:
        """Drop the index and build it again from the files. The caller holds the lock."""
        self._wipe()
        self.open()
        report = self.refresh(control)
        report.rebuilt = True
        return report

    def expected_docs(self) -> int:
        return sum(int(e.get("docs", 0)) for e in self.state.get("sources", {}).values())


@dataclass(slots=True)
class _Docs:
    """A source's documents as the keyword index's writer takes them (:func:`doc_json`),
    with the key and text of each (for the vector index)."""

    keys: list[str] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    jsons: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, docs: list[IndexDoc]) -> _Docs:
        return cls([d.key for d in docs], [d.text for d in docs], list(map(index_doc_json, docs)))


@dataclass
class _Batch:
    keys: list[str] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)

    def extend(self, docs: _Docs, group: str) -> None:
        self.keys.extend(docs.keys)
        self.groups.extend([group] * len(docs.keys))
        self.texts.extend(docs.texts)

    def clear(self) -> None:
        self.keys.clear()
        self.groups.clear()
        self.texts.clear()


def _session_doc(
    source: Source, kind: DocKind, text: str, when: dt.datetime, origin: str
) -> IndexDoc:
    """The one document of a session's context or title: keyed and deleted as ``source``."""
    return IndexDoc(
        key=source.key,
        group=source.key,
        kind=kind,
        user=source.user,
        session=source.session,
        text=_composed(text),
        timestamp=when,
        source=origin,
    )


def _within(key: str, only: set[tuple[str, str | None]] | None) -> bool:
    """Whether a source key (m/, c/ or t/<u>/<s>; d/<u>/<s or _>/<doc>) is in ``only``."""
    if only is None:
        return True
    parts = key.split("/", 3)
    session = None if parts[0] == "d" and parts[2] == "_" else parts[2]
    return (parts[1], session) in only


def _state_problem(state: Any) -> str | None:
    """What is wrong with a state.json's content (None: nothing)."""
    if not isinstance(state, dict) or not isinstance(state.get("sources", {}), dict):
        return "is not an index state (a JSON object with its sources)"
    for key, entry in state.get("sources", {}).items():
        wrong = _entry_problem(entry)
        if wrong is not None:
            return f"has source {key!r}, which {wrong}"
    return None


def _entry_problem(entry: Any) -> str | None:
    """What is wrong with a source's entry in state.json (None: nothing): the signature it
    was indexed at, its document count, and for a log the offset indexed and its digest."""
    if not isinstance(entry, dict):
        return f"is {type(entry).__name__}, not an object"
    sig = entry.get("sig")
    if not isinstance(sig, list) or not all(_sig_part(part) for part in sig):
        return "has no signature list"
    for name in ("docs", "offset"):
        value = entry.get(name, 0)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            return f"has {name} {value!r}, not a count"
    if not isinstance(entry.get("digest", ""), str | None):
        return "has a digest that is not text"
    read = entry.get("read")
    if read is not None and not (
        isinstance(read, list)
        and len(read) == 3
        and all(isinstance(n, int) and not isinstance(n, bool) for n in read)
    ):
        return "has a read signature that is not [inode, size, mtime]"
    return None


def _sig_part(part: Any) -> bool:
    """A source signature's part: a log's [name, inode, size, mtime], or a number."""
    if isinstance(part, list):
        return (
            len(part) == 4
            and isinstance(part[0], str)
            and all(isinstance(n, int) and not isinstance(n, bool) for n in part[1:])
        )
    return isinstance(part, int) and not isinstance(part, bool)


def _opt_int(value: Any) -> int | None:
    return int(value) if isinstance(value, int | float) and value >= 0 else None


_Fields = tuple[str, str, str, int]  # a message's id, role, text and micros(timestamp)


def _indexed_fields(data: bytes) -> _Fields | None:
    """A log line's indexed fields (see :func:`_fields_of`): read straight from the JSON (3x
    faster than validating a Message), through the model only for lines that need its
    defaults; None if unreadable (verify reports those)."""
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(obj, dict):
        return None
    mid, role = obj.get("message_id", obj.get("id")), obj.get("role")
    content, stamp = obj.get("content", ""), obj.get("timestamp")
    attachments = obj.get("attachments") or []
    if (
        isinstance(mid, str)
        and mid
        and isinstance(role, str)
        and role
        and isinstance(content, str)
        and isinstance(stamp, str)
        and isinstance(attachments, list)
    ):
        try:
            when = dt.datetime.fromisoformat(stamp)
        except ValueError:
            when = None
        if when is not None:
            return _fields_of(mid, role, content, attachments, when)
    try:
        m = Message.model_validate(obj)
    except ValidationError:
        return None
    return _fields_of(m.message_id, m.role, m.content, m.attachments, m.timestamp)


def _fields_of(
    message_id: str, role: str, content: str, attachments: list[Any], when: dt.datetime
) -> _Fields:
    """What the index holds of a message: its id, role, text (the content plus text carried
    by attachments, e.g. Claude's extracted_content; composed, see :func:`_composed`) and
    time (:func:`micros`; a naive time is local)."""
    text = content
    if attachments:
        parts = [content]
        for attachment in attachments:
            if isinstance(attachment, dict):
                for name in ("extracted_content", "text", "file_name", "name"):
                    value = attachment.get(name)
                    if isinstance(value, str) and value:
                        parts.append(value)
        text = "\n".join(p for p in parts if p)
    return message_id, role, _composed(text), micros(when)


def _composed(text: str) -> str:
    """``text`` in composed form (NFC), as queries are: accents written as separate combining
    marks (macOS file names, some PDFs) would otherwise split words ("e" + U+0301 + "cole")."""
    return text if text.isascii() else unicodedata.normalize("NFC", text)


def _vector_problem(vectors: VectorIndex | None, state: dict[str, Any]) -> str | None:
    """What is wrong when the vector index does not hold the vectors the state says its last
    commit left (a manifest, segment or the whole folder deleted); None if it does, or when
    the state does not say (an index written before it recorded this)."""
    expected = state.get("vectors")
    if vectors is None or not isinstance(expected, int) or vectors.count == expected:
        return None
    return (
        f"the vector index holds {vectors.count:,} vectors, its last commit left {expected:,} "
        "(files missing or replaced)"
    )


def check_index(
    root: Path, embedder: Embedder | None, stemming: bool, timeout: float = 0
) -> list[str]:
    """Problems of the index in ``root/.index`` (empty if fine or absent); changes nothing.
    Waits up to ``timeout`` seconds for a process writing the index, then raises
    LockTimeoutError (it was not checked)."""
    folder = root / ".index"
    if not folder.exists():
        return []
    probe = Indexer(
        root,
        (lambda: embedder) if embedder else None,
        stemming,
        lambda u, s: Session(session_id=s, user_id=u),
    )
    # Only while no writer runs: the state, the indexes' counts and their files are then of
    # one commit (a commit between reading one and the other looked like damage, and a
    # repair rebuilt a sound index), and no merge replaces files as they are read.
    lock = probe.lock(timeout)
    try:
        lock.acquire()
    except filelock.Timeout as exc:
        raise LockTimeoutError(lock.lock_file, timeout) from exc
    try:
        problem = probe._problem()
        if problem == "no index yet":
            return []
        if problem is not None:
            return [problem]
        try:
            probe._open_indexes()
        except IndexCorruptError as exc:
            return [str(exc)]
        problem = _vector_problem(probe.vectors, probe.state)
        if problem is not None:
            return [problem]
        problem = probe._keyword_problem()
        if problem is not None:
            return [problem]
        folder = probe.folder / "fulltext"
        problems = [
            f"keyword index file {name} is missing"
            for name in missing_files(folder, segment_files(folder) or {})
        ]
        problems += footer_problems(folder)
        if probe.vectors is not None:
            problems += probe.vectors.checksum_problems()
        return problems
    finally:
        lock.release()
