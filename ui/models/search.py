"""Search results: ranked hits with highlighted snippets and where they come from, fetched a
page at a time as the view scrolls (``canFetchMore``/``fetchMore``)."""

from __future__ import annotations

import asyncio
import enum
import html
import logging
import re
from collections.abc import Awaitable, Callable, Hashable, Iterable
from typing import Any

from PySide6.QtCore import QModelIndex, QObject, QPersistentModelIndex, Qt, Signal

from storage.search.results import Hit, SearchResults
from ui.models.base import RecordListModel
from ui.models.format import when
from ui.tasks import loop_running

log = logging.getLogger(__name__)
PAGE_SIZE = 50  # hits a page, until the panel passes the archive's search.page_size
# A row shows about three lines of its snippet (~180 characters at the default width) and the
# engine may centre a snippet's highlight anywhere in its 240: the row starts this many
# characters before the first highlight (at a word boundary), so that highlight is in sight.
LEAD_CHARS = 40
_SPACE = re.compile(r"\s+")
# The hits listed are read again from the start when the archive changed under them (see
# SearchResultsModel.reload): at most this many, deeper ones are paged in again.
RELOAD_LIMIT = 500
Index = QModelIndex | QPersistentModelIndex
PageFetch = Callable[[int, int], Awaitable[SearchResults]]  # (offset, limit) -> the page


class HitRoles(enum.IntEnum):
    RECORD = int(Qt.ItemDataRole.UserRole) + 1
    KIND = enum.auto()
    SNIPPET_HTML = enum.auto()
    SOURCE = enum.auto()  # where the hit comes from, one line
    SCORE = enum.auto()


def hit_key(hit: Hit) -> Hashable:
    """What a hit points at: the same target on two pages is listed once. The index's key
    where the hit has one (two lines of a log may share a message id: both are listed)."""
    if hit.key:
        return hit.key
    return (hit.kind, hit.user_id, hit.session_id, hit.message_id, hit.doc_id, hit.chunk)


def lead_cut(
    text: str, first: int, lead: int = LEAD_CHARS, fits: Callable[[str], bool] | None = None
) -> int:
    """Where a row starts showing ``text`` so that position ``first`` (its first highlight) is
    near the top: 0 when it is near the start already, otherwise at the first word boundary
    at most ``lead`` characters before it (at ``first`` itself in one long word).

    ``fits(rest)``: whether ``rest`` leaves lines of the row empty. When what follows that
    cut does, the row starts earlier, at the first word boundary from which the rest still
    fits (so the row is full), never later than that cut."""
    if first <= lead:
        return 0
    space = _SPACE.search(text, first - lead, first)
    cut = space.end() if space else first
    if fits is None or not fits(text[cut:]):
        return cut
    starts = [0] + [m.end() for m in _SPACE.finditer(text, 0, cut)]
    low, high = 0, len(starts)  # fits(text[starts[i]:]) holds from some i on (or at cut)
    while low < high:
        middle = (low + high) // 2
        if fits(text[starts[middle] :]):
            high = middle
        else:
            low = middle + 1
    return starts[low] if low < len(starts) else cut


def snippet_html(
    hit: Hit, lead: int | None = LEAD_CHARS, fits: Callable[[str], bool] | None = None
) -> str:
    """The snippet with its highlight ranges in bold on a marker background (escaped). With
    ``lead``, it starts (after "…") shortly before its first highlight: see LEAD_CHARS
    (and :func:`lead_cut` for ``fits``)."""
    text = hit.snippet
    ranges = sorted((s, e) for s, e in hit.highlights if 0 <= s < e <= len(text))
    pos = lead_cut(text, ranges[0][0], lead, fits) if ranges and lead is not None else 0
    out = ["…"] if pos else []
    for start, end in ranges:
        if start < pos:
            continue
        out.append(html.escape(text[pos:start]))
        out.append(
            f"<b style='background-color:#fde68a;color:#111'>{html.escape(text[start:end])}</b>"
        )
        pos = end
    out.append(html.escape(text[pos:]))
    return "".join(out).replace("\n", " ")


def hit_source(hit: Hit) -> str:
    if hit.kind == "document":
        where = (
            f"page {hit.page}"
            if hit.page
            else f"chunk {hit.chunk}"
            if hit.chunk is not None
            else ""
        )
        return " · ".join(b for b in ("document", hit.title or hit.doc_id or "", where) if b)
    bits = [hit.kind, hit.title or hit.session_id or "", hit.role or "", when(hit.timestamp)]
    return " · ".join(b for b in bits if b) + f" · {hit.user_id}"


class SearchResultsModel(RecordListModel[Hit]):
    """The hits of one search. :meth:`show_results` shows its first page and keeps the
    coroutine function that fetches the next ones; the view asks for them (``fetchMore``)
    when it scrolls to the end. One page request at a time; a new search (or
    :meth:`stop_fetching`) drops the one in flight.

    When the archive changed under the hits (:meth:`mark_outdated`) the next page's offset
    no longer matches the rows shown (hits gone shift the rest up, new ones push them down):
    instead of a page, the list is read again from the start (:meth:`reload`)."""

    page_loaded = Signal(int)  # hits appended
    page_failed = Signal(object)  # the exception; the hits shown stay
    reloading = Signal()  # the rows are about to be replaced by the same search read again
    reloaded = Signal()  # ... and have been

    def __init__(self, parent: QObject | None = None, page_size: int = PAGE_SIZE) -> None:
        super().__init__(hit_key, parent)
        self.total = 0
        self.matched: int | None = 0  # SearchResults.matched of the hits listed
        self.page_size = page_size
        self._fetch: PageFetch | None = None
        self._exhausted = True
        self._fetching = False
        self._outdated = False
        self._task: asyncio.Task[None] | None = None
        self._generation = 0

    def role_data(self, record: Hit, role: int) -> Any:
        if role == Qt.ItemDataRole.DisplayRole:
            return f"{hit_source(record)}\n{record.snippet}"
        if role == Qt.ItemDataRole.ToolTipRole:  # the whole snippet: rows show a part
            return f"{hit_source(record)}\n\n{record.snippet}\n\nscore {record.score:.3f}"
        # Each role made only when asked: the delegate asks for three at every paint.
        if role == HitRoles.RECORD:
            return record
        if role == HitRoles.SNIPPET_HTML:
            return snippet_html(record)
        if role == HitRoles.SOURCE:
            return hit_source(record)
        if role == HitRoles.KIND:
            return record.kind
        if role == HitRoles.SCORE:
            return record.score
        return None

    # ------------------------------------------------------------ results and paging
    @property
    def fetching(self) -> bool:
        return self._fetching

    @property
    def outdated(self) -> bool:
        """The archive changed since these hits were read (and they were not read again)."""
        return self._outdated

    def show_results(
        self, results: SearchResults, fetch: PageFetch | None = None, limit: int | None = None
    ) -> None:
        """A search's first page, asked for with ``limit`` hits (default: page_size, which
        may have changed since); ``fetch(offset, limit)`` gets the next (None: none)."""
        self.stop_fetching()
        self.total, self.matched = results.total, results.matched
        self._fetch = fetch
        # Set before the reset: a view (or the model tester) may ask for more during it.
        self._exhausted = fetch is None or _last_page(results, 0, limit or self.page_size)
        self.reset(_unique(results.hits))

    def clear(self) -> None:
        self.stop_fetching()
        self.total, self.matched = 0, 0
        self.reset([])

    def stop_fetching(self) -> None:
        """No more pages of these hits (the query changed): the request in flight is
        cancelled and its page, should it still arrive, dropped."""
        self._drop_request()
        self._fetch = None
        self._exhausted = True
        self._outdated = False

    def mark_outdated(self) -> None:
        """The archive (or its index) changed since these hits were read: the page in
        flight, read at an offset that no longer matches the rows, is dropped, and the next
        one asked for reads the list again from the start instead (so until then there is
        always more to fetch: see :meth:`canFetchMore`)."""
        if self._fetch is None:
            return  # no hits of a search listed
        self._drop_request()
        self._outdated = True

    def _drop_request(self) -> None:
        """Cancel the page request in flight; its page, should it still arrive, is dropped
        (it carries an older generation)."""
        self._generation += 1
        if self._task is not None and not self._task.done():
            self._task.cancel()
        self._task = None
        self._fetching = False

    def reload(self) -> None:
        """Read the hits listed (a page at least) again from the start, if the archive
        changed under them; ``reloading`` and ``reloaded`` say when the rows are replaced."""
        if self._outdated and self._fetch is not None and not self._fetching:
            self._fetching = True
            self._task = asyncio.ensure_future(self._reload(max(len(self._rows), self.page_size)))

    def canFetchMore(self, parent: Index = QModelIndex()) -> bool:  # noqa: B008
        return (
            not parent.isValid()
            and (self._outdated or not self._exhausted)
            and not self._fetching
            and self._fetch is not None
        )

    def fetchMore(self, parent: Index = QModelIndex()) -> None:  # noqa: B008
        if self.canFetchMore(parent) and loop_running():  # (a view asks in shutdown)
            self._fetching = True
            if self._outdated:  # not a page at a stale offset: the list and a page, afresh
                self._task = asyncio.ensure_future(self._reload(len(self._rows) + self.page_size))
            else:
                self._task = asyncio.ensure_future(self._fetch_page())

    async def _read(
        self, fetch: PageFetch, offset: int, limit: int, generation: int, what: str
    ) -> SearchResults | None:
        """``fetch(offset, limit)``; None when it failed. A failure of the search shown is
        said by page_failed (the panel shows it; the hits shown stay) and ends fetching."""
        try:
            page = await fetch(offset, limit)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if generation != self._generation:
                log.warning("%s of a search no longer shown failed: %r", what, exc)
                return None
            self._exhausted = True
            self._fetching = False
            self.page_failed.emit(exc)
            return None
        return page

    async def _fetch_page(self) -> None:
        fetch, generation = self._fetch, self._generation
        offset, limit = len(self._rows), self.page_size
        assert fetch is not None
        page = await self._read(fetch, offset, limit, generation, "a page")
        if page is None or generation != self._generation:
            return  # failed, or another search (or none) is shown now
        self.total, self.matched = page.total, page.matched
        self._exhausted = _last_page(page, offset, limit)
        try:
            added = self.append_new(page.hits)  # not fetching more while rows go in
        finally:
            self._fetching = False
        if not added:
            self._exhausted = True  # the page held only hits listed already: stop here
        self.page_loaded.emit(added)

    async def _reload(self, limit: int) -> None:
        fetch, generation = self._fetch, self._generation
        assert fetch is not None
        limit = min(limit, max(RELOAD_LIMIT, self.page_size))
        self._outdated = False  # a change from now on marks the list again
        # On failure no more is fetched, not again and again: the next change tries again.
        page = await self._read(fetch, 0, limit, generation, "reading again")
        if page is None or generation != self._generation:
            return  # failed, or another search (or none) is shown, or the archive changed
        self.total, self.matched = page.total, page.matched
        self._exhausted = _last_page(page, 0, limit)
        self.reloading.emit()
        try:
            self.reset(_unique(page.hits))
        finally:
            self._fetching = False
        self.reloaded.emit()


def _last_page(page: SearchResults, offset: int, limit: int) -> bool:
    """Whether ``page``, asked for at ``offset`` with ``limit``, holds the last hits."""
    return len(page.hits) < limit or offset + len(page.hits) >= page.total


def _unique(hits: Iterable[Hit]) -> list[Hit]:
    """``hits`` without a repeated target (the first of each kept)."""
    first: dict[Hashable, Hit] = {}
    for hit in hits:
        first.setdefault(hit_key(hit), hit)
    return list(first.values())
