"""The archive's search methods: ``search``, ``refresh_index``, ``reindex``."""

from __future__ import annotations

import dataclasses
import functools
import logging
import threading
from collections.abc import Callable
from typing import Any

import filelock

from storage.base import ArchiveBase, threaded
from storage.errors import IndexUnavailableError, LockTimeoutError, StorageError
from storage.events import Change, UserChanged
from storage.jobs import JobControl
from storage.search.embedder import Embedder, load_embedder
from storage.search.engine import SearchEngine
from storage.search.fulltext import IndexCorruptError
from storage.search.indexer import Indexer, RefreshReport
from storage.search.results import SearchMode, SearchResults

log = logging.getLogger(__name__)

# What this process writes is indexed by the next search (only the sessions written to). What
# other processes write moves the change stamp: the next search rescans the archive. Edits by
# other tools (which do not touch the stamp) are found within SCAN_INTERVAL seconds.
SCAN_INTERVAL = 30.0
# A search that found the index unreadable while another process holds it (rebuilding it,
# or writing to it).
BUSY_ELSEWHERE = (
    "the search index is being rebuilt or updated by another process: results are incomplete "
    "until it is done"
)
# A search that had changes to index while another process held the index.
LAGGING = "the search index may be incomplete: another process is updating it"
EVERYTHING = "\x00all"  # in the dirty set: rescan everything (not a valid user id)


@functools.lru_cache(maxsize=4)
def shared_embedder(kind: str, batch_size: int) -> Embedder:
    """One embedder per process: the model is immutable and 15 MB."""
    return load_embedder(kind, batch_size)


class SearchMixin(ArchiveBase):
    _indexer: Indexer | None = None
    _engine: SearchEngine | None = None
    embedder_factory: Callable[[], Embedder] | None = None  # tests and the registry swap it
    # Whether a search first rescans the archive when another process wrote (or every
    # SCAN_INTERVAL): right for the CLI and scripts. The window turns it off: it refreshes the
    # index in a worker process instead, since scanning 10,000 sessions in its own process
    # holds the GIL for ~0.1 s and stalls the event loop.
    rescan_on_search: bool = True

    def _search_lock(self) -> threading.RLock:
        lock = self.__dict__.get("_search_rlock")
        if lock is None:
            lock = self.__dict__.setdefault("_search_rlock", threading.RLock())
        return lock  # type: ignore[no-any-return]

    def _search_engine(self) -> SearchEngine:
        if self._engine is None:
            vector = self.settings.vector
            factory = self.embedder_factory
            if factory is None and vector.enabled:

                def factory() -> Embedder:
                    return shared_embedder(vector.embedder, vector.batch_size)

            indexer = Indexer(
                self.root,
                factory if vector.enabled else None,
                self.settings.search.stemming,
                self._read_session,
            )
            lock = indexer.lock(0)
            try:
                try:
                    lock.acquire()
                except filelock.Timeout:
                    try:
                        indexer.open(repair=False)  # another process is writing it: never wipe
                    except IndexCorruptError:  # caught mid-commit: wait for it, then check
                        with self._index_lock(indexer):
                            indexer.open()
                else:
                    try:
                        indexer.open()
                    finally:
                        lock.release()
            except OSError as exc:  # .index/ is a file, or it (or its lock) cannot be written
                where = exc.filename if isinstance(exc, PermissionError) else None
                raise IndexUnavailableError(where or indexer.folder, exc) from exc
            self._indexer = indexer
            if "_dirty" not in self.__dict__:  # once: what was written survives close_search
                self._dirty: set[tuple[str, str | None]] = set()
                self._dirty_lock = threading.Lock()
                self.changes.subscribe(self._on_change)
            self._engine = SearchEngine(indexer, self._title_of)
        return self._engine

    def close_search(self) -> None:
        """Let go of the indexes: the keyword index's folder watch (an inotify instance, of
        which a user has 128) and the vector files' descriptors close now, not when garbage
        collection finds the archive. What this archive wrote stays to be indexed: the next
        search opens the indexes again and indexes it. Never waits: while a search or an
        index update holds the indexes, they are left to close with them."""
        lock = self._search_lock()
        if not lock.acquire(blocking=False):
            log.debug("search busy at close: the index watch closes when it is collected")
            return
        try:
            indexer = self._indexer
            if indexer is not None and indexer.fulltext is not None:
                indexer.fulltext.close()
            self._indexer = None
            self._engine = None
        finally:
            lock.release()

    def _title_of(self, user_id: str, session_id: str) -> str:
        """A hit's session title, remembered until the session changes (our own writes say
        so through the change bus; other processes' through a full rescan)."""
        titles: dict[tuple[str, str], str] = self.__dict__.setdefault("_titles", {})
        title = titles.get((user_id, session_id))
        if title is None:
            try:
                title = self._read_session(user_id, session_id).title
            except (StorageError, OSError):
                return ""
            titles[user_id, session_id] = title
        return title

    def _on_change(self, change: Change) -> None:
        """Remember what this process wrote, so the next search indexes just that."""
        user = getattr(change, "user_id", None)
        if not isinstance(user, str):
            return
        self.__dict__.get("_titles", {}).clear()
        if isinstance(change, UserChanged):
            user = EVERYTHING  # a user deleted takes all their sessions with them
        session = getattr(change, "session_id", None)
        with self._dirty_lock:
            self._dirty.add((user, session if isinstance(session, str) else None))

    def _take_dirty(self) -> set[tuple[str, str | None]]:
        with self._dirty_lock:
            dirty, self._dirty = self._dirty, set()
        return dirty

    def _index_lock(self, indexer: Indexer) -> filelock.FileLock:
        """The index lock, acquired (waiting up to storage.lock_timeout)."""
        timeout = self.settings.storage.lock_timeout
        lock = indexer.lock(timeout)
        try:
            lock.acquire()
        except filelock.Timeout as exc:
            raise LockTimeoutError(lock.lock_file, timeout) from exc
        return lock

    def _refresh(
        self,
        control: JobControl | None,
        wait: bool,
        only: set[tuple[str, str | None]] | None = None,
    ) -> RefreshReport | None:
        engine = self._search_engine()
        lock = engine.indexer.lock(self.settings.storage.lock_timeout if wait else 0)
        try:
            lock.acquire()
        except filelock.Timeout as exc:
            if wait:
                raise LockTimeoutError(lock.lock_file, self.settings.storage.lock_timeout) from exc
            return None  # another process is indexing: search what is there (readers never wait)
        try:
            return engine.indexer.refresh(control, only)
        finally:
            lock.release()

    @threaded
    def search(
        self,
        /,
        query: str,
        mode: SearchMode | None = None,
        limit: int = 20,
        offset: int = 0,
        **filters: Any,
    ) -> SearchResults:
        """Search messages, document chunks, situational contexts and session titles.

        ``mode``: keyword, semantic or hybrid (default: setting search.default_mode).
        ``filters``: user, session, role, kind, source (a value or a list) and after/before
        (dates); filters typed in the query (``role:user``...) must hold as well."""
        mode = mode or self.settings.search.default_mode
        with self._search_lock():
            engine = self._search_engine()
            dirty = self._take_dirty()
            everything = any(user == EVERYTHING for user, _ in dirty)
            report: RefreshReport | None = None
            # Another process's commit (one stat when there is none); also finds an index
            # folder deleted under us, which the refresh below rebuilds.
            seen = engine.indexer.state_sig
            engine.indexer.sync()
            if engine.indexer.state_sig != seen and seen is not None:
                self.__dict__.get("_titles", {}).clear()  # it may have indexed a rename
            rescan = self.rescan_on_search and engine.indexer.needs_full_scan(
                self.others_wrote, SCAN_INTERVAL
            )
            indexer = engine.indexer
            full = bool(everything or rescan or indexer.lost or indexer.unchecked)
            try:
                try:
                    if full:
                        self.__dict__.get("_titles", {}).clear()  # another process may rename
                        report = self._refresh(None, wait=False)
                    elif dirty:
                        report = self._refresh(None, wait=False, only=dirty)
                except IndexUnavailableError:
                    with self._dirty_lock:  # not indexed (a full disk): the next search tries
                        self._dirty |= dirty
                    raise
                if report is None and dirty:
                    # Another process holds the index: remember what we wrote for the next one.
                    with self._dirty_lock:
                        self._dirty |= dirty
                results = engine.search(query, mode, limit, offset, **filters)
                noted = indexer.rebuilt_reason or indexer.lost or indexer.unchecked
                if report is None and (full or dirty) and not noted:
                    # Changes to index, and another process holds the index (readers never
                    # wait): what it has not committed yet is not in these results.
                    results = _with_note(results, LAGGING)
                return results
            except IndexCorruptError as exc:
                if report is None and dirty:  # a refresh of what we wrote failed: kept
                    with self._dirty_lock:
                        self._dirty |= dirty
                return self._search_after_damage(engine, exc, query, mode, limit, offset, filters)

    def _search_after_damage(
        self,
        engine: SearchEngine,
        exc: IndexCorruptError,
        query: str,
        mode: SearchMode,
        limit: int,
        offset: int,
        filters: dict[str, Any],
    ) -> SearchResults:
        """A search that found the index unreadable. That is what another process's rebuild
        looks like to a reader too (``flatchat reindex`` deletes the files first): while
        another process holds the index, this search waits for nothing and says the results
        are incomplete; the next one reads what it made. Otherwise, under the index lock,
        the index is opened and checked again (another process may just have rebuilt it),
        brought up to date, and rebuilt only if the search still cannot read it."""
        lock = engine.indexer.lock(0)
        try:
            lock.acquire()
        except filelock.Timeout:
            # Its commit may have just settled (what we read was half of it): read that.
            engine.indexer.sync()
            try:
                return engine.search(query, mode, limit, offset, **filters)
            except IndexCorruptError as again:
                log.info("search index unreadable while another process writes it: %s", again)
            return SearchResults(query, mode, 0, [], degraded=BUSY_ELSEWHERE)
        try:
            engine.indexer.open()  # starts afresh if damaged in a way opening can tell
            report = engine.indexer.refresh(None)
            damage = exc if report.rebuilt else None
            try:
                results = engine.search(query, mode, limit, offset, **filters)
            except IndexCorruptError as again:
                log.warning("search index damaged, rebuilding: %s", again)
                engine.indexer.rebuild(None)
                damage = again
                results = engine.search(query, mode, limit, offset, **filters)
        finally:
            lock.release()
        if damage is None:
            return results
        # Complete again (rebuilt before this search), but say why it took longer.
        return _with_note(results, f"the search index was damaged and has been rebuilt: {damage}")

    @threaded
    def refresh_index(self, control: JobControl | None = None) -> RefreshReport:
        """Index what changed since the last refresh (a job: progress and cancel)."""
        with self._search_lock():
            try:
                report = self._refresh(control, wait=True)
            except IndexCorruptError as exc:
                log.warning("search index damaged, rebuilding: %s", exc)
                return self._rebuild(control)
            assert report is not None
            return report

    @threaded
    def reindex(self, control: JobControl | None = None) -> RefreshReport:
        """Throw the index away and build it again from the files (a job)."""
        with self._search_lock():
            return self._rebuild(control)

    def _rebuild(self, control: JobControl | None) -> RefreshReport:
        engine = self._search_engine()
        lock = self._index_lock(engine.indexer)
        try:
            return engine.indexer.rebuild(control)
        finally:
            lock.release()

    @threaded
    def prepare_search(self) -> None:
        """Open the indexes and load the embedder now (in a worker thread), so the first
        search a user types does not wait for them (~0.3 s for the model)."""
        with self._search_lock():
            self._search_engine().indexer.embedder  # noqa: B018 - loads the model

    @threaded
    def index_status(self) -> dict[str, Any]:
        """For a settings or status view: the embedder, whether semantic search is degraded,
        how much is indexed, and what is wrong with the index (if anything; ``checked``:
        False while another process writes it, which is not waited for)."""
        with self._search_lock():
            indexer = self._search_engine().indexer
            embedder = indexer.embedder
            try:
                problems, checked = self.index_problems(timeout=0), True
            except LockTimeoutError:
                problems, checked = [], False
            return {
                "embedder": embedder.name if embedder else None,
                "degraded": (
                    embedder.degraded
                    if embedder
                    else "semantic search is switched off (setting vector.enabled)"
                ),
                "sources": len(indexer.state.get("sources", {})),
                "documents": indexer.expected_docs(),
                "vectors": indexer.vectors.count if indexer.vectors else 0,
                "problems": problems,
                "checked": checked,
            }

    def index_problems(self, timeout: float | None = None) -> list[str]:
        """What is wrong with the index on disk, without changing it (for verify). Waits up
        to ``timeout`` seconds (setting storage.lock_timeout) for a process writing the
        index, then raises LockTimeoutError: it was not checked."""
        from storage.search.indexer import check_index

        if timeout is None:
            timeout = self.settings.storage.lock_timeout
        vector = self.settings.vector
        embedder = None
        if vector.enabled:
            embedder = (
                self.embedder_factory
                or (lambda: shared_embedder(vector.embedder, vector.batch_size))
            )()
        return check_index(self.root, embedder, self.settings.search.stemming, timeout)


def _with_note(results: SearchResults, note: str) -> SearchResults:
    """``results`` with ``note`` added to what they say is degraded."""
    said = results.degraded
    return dataclasses.replace(results, degraded=f"{said}; {note}" if said else note)
