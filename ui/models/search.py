"""Search results: ranked hits with highlighted snippets and where they come from, fetched a
page at a time as the view scrolls (``canFetchMore``/``fetchMore``)."""

from __future__ import annotations

import asyncio
import enum
import html
import logging
import re
from collections.abc import Awaitable, Callable, Hashable
from typing import Any

from PySide6.QtCore import QModelIndex, QObject, QPersistentModelIndex, Qt, Signal

from storage.search.results import Hit, SearchResults
from ui.models.base import RecordListModel
from ui.models.format import when

log = logging.getLogger(__name__)
PAGE_SIZE = 50  # hits a page, until the panel passes the archive's search.page_size
# A row shows about three lines of its snippet (~180 characters at the default width) and the
# engine may centre a snippet's highlight anywhere in its 240: the row starts this many
# characters before the first highlight (at a word boundary), so that highlight is in sight.
LEAD_CHARS = 40
_SPACE = re.compile(r"\s+")
Index = QModelIndex | QPersistentModelIndex
PageFetch = Callable[[int, int], Awaitable[SearchResults]]  # (offset, limit) -> the page


class HitRoles(enum.IntEnum):
    RECORD = int(Qt.ItemDataRole.UserRole) + 1
    KIND = enum.auto()
    SNIPPET_HTML = enum.auto()
    SOURCE = enum.auto()  # where the hit comes from, one line
    SCORE = enum.auto()


def hit_key(hit: Hit) -> Hashable:
    """What a hit points at: the same target on two pages is listed once."""
    return (hit.kind, hit.user_id, hit.session_id, hit.message_id, hit.doc_id, hit.chunk)


def lead_cut(text: str, first: int, lead: int = LEAD_CHARS) -> int:
    """Where a row starts showing ``text`` so that position ``first`` (its first highlight) is
    near the top: 0 when it is near the start already, otherwise at the first word boundary
    at most ``lead`` characters before it (at ``first`` itself in one long word)."""
    if first <= lead:
        return 0
    space = _SPACE.search(text, first - lead, first)
    return space.end() if space else first


def snippet_html(hit: Hit, lead: int | None = LEAD_CHARS) -> str:
    """The snippet with its highlight ranges in bold on a marker background (escaped). With
    ``lead``, it starts (after "…") shortly before its first highlight: see LEAD_CHARS."""
    text = hit.snippet
    ranges = sorted((s, e) for s, e in hit.highlights if 0 <= s < e <= len(text))
    pos = lead_cut(text, ranges[0][0], lead) if ranges and lead is not None else 0
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
    :meth:`stop_fetching`) drops the one in flight."""

    page_loaded = Signal(int)  # hits appended
    page_failed = Signal(object)  # the exception; the hits shown stay

    def __init__(self, parent: QObject | None = None, page_size: int = PAGE_SIZE) -> None:
        super().__init__(hit_key, parent)
        self.total = 0
        self.page_size = page_size
        self._fetch: PageFetch | None = None
        self._exhausted = True
        self._fetching = False
        self._task: asyncio.Task[None] | None = None
        self._generation = 0

    def role_data(self, record: Hit, role: int) -> Any:
        if role == Qt.ItemDataRole.DisplayRole:
            return f"{hit_source(record)}\n{record.snippet}"
        if role == Qt.ItemDataRole.ToolTipRole:  # the whole snippet: rows show a part
            return f"{hit_source(record)}\n\n{record.snippet}\n\nscore {record.score:.3f}"
        return {
            HitRoles.RECORD: record,
            HitRoles.KIND: record.kind,
            HitRoles.SNIPPET_HTML: snippet_html(record),
            HitRoles.SOURCE: hit_source(record),
            HitRoles.SCORE: record.score,
        }.get(role)  # type: ignore[call-overload]

    # ------------------------------------------------------------ results and paging
    @property
    def fetching(self) -> bool:
        return self._fetching

    def show_results(self, results: SearchResults, fetch: PageFetch | None = None) -> None:
        """A search's first page; ``fetch(offset, limit)`` gets the next (None: none)."""
        self.stop_fetching()
        self.total = results.total
        self._fetch = fetch
        # Set before the reset: a view (or the model tester) may ask for more during it.
        self._exhausted = (
            fetch is None
            or len(results.hits) < self.page_size
            or len(results.hits) >= results.total
        )
        first: dict[Hashable, Hit] = {}
        for hit in results.hits:
            first.setdefault(hit_key(hit), hit)
        self.reset(first.values())

    def clear(self) -> None:
        self.stop_fetching()
        self.total = 0
        self.reset([])

    def stop_fetching(self) -> None:
        """No more pages of these hits (the query changed): the request in flight is
        cancelled and its page, should it still arrive, dropped."""
        self._generation += 1
        if self._task is not None and not self._task.done():
            self._task.cancel()
        self._task = None
        self._fetch = None
        self._exhausted = True
        self._fetching = False

    def canFetchMore(self, parent: Index = QModelIndex()) -> bool:  # noqa: B008
        return (
            not parent.isValid()
            and not self._exhausted
            and not self._fetching
            and self._fetch is not None
        )

    def fetchMore(self, parent: Index = QModelIndex()) -> None:  # noqa: B008
        if self.canFetchMore(parent):
            self._fetching = True
            self._task = asyncio.ensure_future(self._fetch_page())

    async def _fetch_page(self) -> None:
        fetch, generation = self._fetch, self._generation
        offset, limit = len(self._rows), self.page_size
        assert fetch is not None
        try:
            page = await fetch(offset, limit)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # shown by the panel (page_failed): the hits shown stay
            if generation != self._generation:
                log.warning("a page of a search no longer shown failed: %r", exc)
                return
            self._exhausted = True
            self._fetching = False
            self.page_failed.emit(exc)
            return
        if generation != self._generation:
            return  # another search (or none) is shown now
        self.total = page.total
        self._exhausted = len(page.hits) < limit or offset + len(page.hits) >= page.total
        try:
            added = self.append_new(page.hits)  # not fetching more while rows go in
        finally:
            self._fetching = False
        if not added:
            self._exhausted = True  # the page held only hits listed already: stop here
        self.page_loaded.emit(added)
