"""The search panel (Ctrl+K): as-you-type (debounced; a new keystroke cancels the running
search), keyword/semantic/hybrid, filters, ranked hits with highlighted snippets, fetched a
page at a time as the list scrolls."""

from __future__ import annotations

import asyncio
import datetime as dt
import html
import logging
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import (
    QEvent,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QSize,
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtGui import (
    QAbstractTextDocumentLayout,
    QFont,
    QFontMetrics,
    QKeyEvent,
    QPainter,
    QPalette,
    QTextDocument,
)
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListView,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QVBoxLayout,
    QWidget,
)

from storage.search.query import QuerySyntaxError, parse, parse_date
from storage.search.results import KINDS, Hit, SearchResults, count_text
from ui.errors import headline
from ui.models.search import PAGE_SIZE, HitRoles, SearchResultsModel, hit_key, snippet_html
from ui.tasks import loop_running

log = logging.getLogger(__name__)
DEBOUNCE_MS = 200
SNIPPET_LINES = 3  # of a hit's snippet shown in the result list
# Of a row's snippet lines the text is estimated to fill: lines break between words.
FILL_SHARE = 0.85
HIT_DOC_CACHE = 400  # laid-out hits kept: a few result lists
MODES = ("keyword", "semantic", "hybrid")
NOTE_CHARS = 160  # of a degraded-search note in the status line (its tooltip has it all)
PROBLEM_CHARS = 400  # of an error in the status line (its tooltip has it all)
DATE_FORMS = "use YYYY, YYYY-MM, YYYY-MM-DD or a date-time such as 2025-03-01T09:30"
# The panel's filters that a filter typed in the query can contradict, as the user sees them.
FILTER_BOXES = {"role": "Role", "kind": "Kind", "user": "This user"}
# The archive changed under the hits listed: they are read again after this long without
# another change (an import's or a deletion's changes come in bursts).
RELOAD_MS = 500
Index = QModelIndex | QPersistentModelIndex


class InputError(ValueError):
    """What the panel's boxes hold cannot be searched for (said in the status, not run)."""


@dataclass(frozen=True)
class Request:
    """One search as the panel's boxes ask for it: results shown answer exactly one."""

    text: str  # as typed: an error's position counts the characters the user typed
    mode: str
    filters: tuple[tuple[str, Any], ...] = ()  # passed to the archive as keyword arguments

    @property
    def kwargs(self) -> dict[str, Any]:
        return dict(self.filters)


def box_date(name: str, text: str) -> dt.datetime:
    """The date typed in the after or before box, in the forms the query language accepts;
    :class:`InputError` says why not, as the query language does."""
    try:
        return parse_date(text, name, text, 0)
    except QuerySyntaxError as exc:
        # Its detail reads "after:0001 is too far in the past…", as if typed in the query.
        typed = f"{name}:{text} "
        reason = exc.detail[len(typed) :] if exc.detail.startswith(typed) else exc.detail
        raise InputError(f"{name}: {text!r} {reason}") from None


def filter_conflict(request: Request) -> str | None:
    """A filter typed in the query that a box of the panel (role, kind, this user) rules
    out: the archive makes both hold, so nothing could match; said instead of searching.
    Dates need no such word: both hold (the later after, the earlier before)."""
    try:
        typed = parse(request.text).filters
    except QuerySyntaxError:
        return None  # the search says what is wrong with the query
    for name, value in request.filters:
        if name not in FILTER_BOXES:
            continue
        said: list[str] = getattr(typed, name)
        if said and value not in said:  # as the archive compares them (kind is lowercase)
            shown = " ".join(f"{name}:{v}" for v in said)
            return f"{shown} in the query and {FILTER_BOXES[name]} {value!r} cannot both hold"
    return None


def short_line(text: str, limit: int) -> str:
    """The first line of ``text``, at most ``limit`` characters ("…" when there is more)."""
    text = text.strip()
    first = text.split("\n", 1)[0].rstrip()
    if len(first) > limit:
        return first[: limit - 1].rstrip() + "…"
    return first + ("…" if first != text else "")


def _small(font: QFont) -> QFont:
    """The font of a hit's first line (where it comes from)."""
    small = QFont(font)
    small.setPointSizeF(max(6.0, font.pointSizeF() * 0.85))
    return small


class HitDelegate(QStyledItemDelegate):
    """Each hit in rows of one height: where it comes from (muted), then the snippet with its
    highlights (its first SNIPPET_LINES lines; the tooltip has all of it).

    Laid-out documents are kept (by content and width): Qt asks for sizes and paints many
    times per result list, and laying out HTML each time stalled as-you-type search."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._docs: OrderedDict[tuple[str, str, str, int, str], QTextDocument] = OrderedDict()
        self._heights: dict[str, int] = {}  # row height by font

    def _doc(self, option: QStyleOptionViewItem, index: Index) -> QTextDocument:
        source = str(index.data(HitRoles.SOURCE) or "")
        snippet = str(index.data(HitRoles.SNIPPET_HTML) or "")
        muted = option.palette.color(QPalette.ColorRole.PlaceholderText).name()
        width = max(100, option.rect.width() or 300)
        key = (source, snippet, muted, width, option.font.toString())
        doc = self._docs.get(key)
        if doc is not None:
            self._docs.move_to_end(key)
            return doc
        # One line for where it is from (elided, so every row has the same lines), escaped:
        # a session title may hold "<".
        small = _small(option.font)
        line = QFontMetrics(small).elidedText(source, Qt.TextElideMode.ElideRight, width - 12)
        head = (
            f"<div style='color:{muted}; font-size:{small.pointSizeF():.2f}pt'>"
            f"{html.escape(line)}</div>"
        )
        hit = index.data(HitRoles.RECORD)
        # A highlight near the end of the snippet: the row starts earlier, so that its lines
        # are full (not one line and two empty ones), if the highlight stays in sight.
        filled = (
            snippet_html(hit, fits=self._fits(option.font, width))
            if isinstance(hit, Hit)
            else snippet
        )
        doc = self._layout(option.font, width, head + f"<div>{filled}</div>")
        if filled != snippet and not self._highlight_shown(doc, option.font):
            doc = self._layout(option.font, width, head + f"<div>{snippet}</div>")
        self._docs[key] = doc
        if len(self._docs) > HIT_DOC_CACHE:
            self._docs.popitem(last=False)
        return doc

    @staticmethod
    def _layout(font: QFont, width: int, text: str) -> QTextDocument:
        doc = QTextDocument()
        doc.setDefaultFont(font)
        doc.setDocumentMargin(4)
        doc.setHtml(text)
        doc.setTextWidth(width)
        return doc

    @staticmethod
    def _fits(font: QFont, width: int) -> Callable[[str], bool]:
        """Whether a snippet's text leaves some of a row's SNIPPET_LINES lines empty: an
        estimate (lines break between words and highlights are bold), checked after."""
        metrics = QFontMetrics(font)
        room = SNIPPET_LINES * (width - 8) * FILL_SHARE

        def fits(rest: str) -> bool:
            return metrics.horizontalAdvance("…" + rest.replace("\n", " ")) <= room

        return fits

    def _highlight_shown(self, doc: QTextDocument, font: QFont) -> bool:
        """Whether the snippet's first highlight ends within the lines a row shows."""
        block = doc.begin().next()  # the snippet, after the line saying where it is from
        while block.isValid():
            it = block.begin()
            while not it.atEnd():
                fragment = it.fragment()
                if fragment.charFormat().background().style() != Qt.BrushStyle.NoBrush:
                    end = fragment.position() + fragment.length() - 1 - block.position()
                    top = doc.documentLayout().blockBoundingRect(block).top()  # lays it out
                    line = block.layout().lineForTextPosition(end)
                    if not line.isValid():
                        return False
                    return top + line.y() + line.height() <= self._text_height(font)
                it += 1
            block = block.next()
        return True  # no highlight

    def sizeHint(self, option: QStyleOptionViewItem, index: Index) -> QSize:
        """The same for every hit (the view has uniform item sizes): where it is from, then
        SNIPPET_LINES lines of snippet. Measured once per font, so a new result list is laid
        out without laying out 50 HTML documents (that stalled as-you-type search 30-50 ms)."""
        height = self._text_height(option.font) + 8  # the bottom margin, and a gap
        view = self.parent()
        width = view.viewport().width() if isinstance(view, QListView) else 300
        return QSize(width, height)

    def _text_height(self, font: QFont) -> int:
        """Top margin, the source line and SNIPPET_LINES lines: where a row's text is cut."""
        key = font.toString()
        height = self._heights.get(key)
        if height is None:
            sample = QTextDocument()
            sample.setDefaultFont(font)
            sample.setDocumentMargin(4)
            lines = "<br>".join("Xg" for _ in range(SNIPPET_LINES))
            size = _small(font).pointSizeF()
            sample.setHtml(f"<div style='font-size:{size:.2f}pt'>Xg</div><div>{lines}</div>")
            height = self._heights[key] = int(sample.size().height()) - 4
        return height

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: Index) -> None:
        self.initStyleOption(option, index)
        painter.save()
        # A longer snippet is cut after its last whole line, not through the next one.
        rect = option.rect
        painter.setClipRect(rect.x(), rect.y(), rect.width(), self._text_height(option.font))
        if option.state & QStyle.StateFlag.State_Selected:
            painter.fillRect(option.rect, option.palette.color(QPalette.ColorRole.AlternateBase))
        doc = self._doc(option, index)
        painter.translate(option.rect.topLeft())
        ctx = QAbstractTextDocumentLayout.PaintContext()
        ctx.palette = option.palette
        doc.documentLayout().draw(painter, ctx)
        painter.restore()


class SearchPanel(QWidget):
    """Set the archive's ``search`` coroutine function with :meth:`set_search` (None:
    unavailable); the user whose hits "This user" means with :meth:`set_user`."""

    hit_activated = Signal(object)  # Hit
    # A search sent to the archive: the query as typed (the panel's filters go with it as
    # keyword arguments). Not emitted for the pages that follow.
    search_started = Signal(str)
    results_shown = Signal(int)
    # An error of the archive's (not of the query typed): shown in the status line and
    # logged here; the window reports it as it reports other errors.
    search_failed = Signal(object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.search: Any = None
        self.user_id: str | None = None
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        self.query = QLineEdit(self)
        self.query.setPlaceholderText('Search everything — words, "a phrase", prefix*, -not')
        self.query.setClearButtonEnabled(True)
        layout.addWidget(self.query)
        row = QHBoxLayout()
        self.mode = QComboBox(self)
        self.mode.addItems([m.title() for m in MODES])
        self.mode.setToolTip("Keyword: exact words · Semantic: by meaning · Hybrid: both")
        self.kind = QComboBox(self)
        self.kind.addItems(["Any kind", *KINDS])
        self.role = QComboBox(self)
        self.role.addItems(["Any role", "user", "assistant", "system", "tool"])
        self.scope = QComboBox(self)
        self.scope.addItems(["All users", "This user"])
        for w in (self.mode, self.kind, self.role, self.scope):
            row.addWidget(w)
        layout.addLayout(row)
        dates = QHBoxLayout()
        self.after = QLineEdit(self)
        self.after.setPlaceholderText("after YYYY-MM-DD")
        self.before = QLineEdit(self)
        self.before.setPlaceholderText("before YYYY-MM-DD")
        for box in (self.after, self.before):
            box.setToolTip(f"A date: {DATE_FORMS}")
            dates.addWidget(box)
        layout.addLayout(dates)
        self.status = QLabel("", self)
        self.status.setWordWrap(True)
        layout.addWidget(self.status)
        self.model = SearchResultsModel(self, PAGE_SIZE)
        self.view = QListView(self)
        self.view.setModel(self.model)
        self.view.setItemDelegate(HitDelegate(self.view))
        self.view.setUniformItemSizes(True)
        self.view.setWordWrap(True)
        self.view.setResizeMode(QListView.ResizeMode.Adjust)
        layout.addWidget(self.view, 1)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(DEBOUNCE_MS)
        self._timer.timeout.connect(self._on_timer)
        self._reload_timer = QTimer(self)
        self._reload_timer.setSingleShot(True)
        self._reload_timer.setInterval(RELOAD_MS)
        self._reload_timer.timeout.connect(self._on_reload_timer)
        self._changes = 0  # archive changes seen (a search in flight may predate the last)
        self._stopped = False  # the window closed (until it shows an archive again)
        # Where the user was in the hits (keys from the first row in view on, the current
        # one's) while they are read again.
        self._place: tuple[list[Hashable], Hashable | None] | None = None
        self._task: asyncio.Task[None] | None = None
        self._running: Request | None = None  # what the search in flight is for
        self._shown: Request | None = None  # what the hits listed answer
        self._open_first: Request | None = None  # Enter: open its first hit when it arrives
        self._dates_searched = ("", "")
        self._note = ""  # the last results' degraded note
        self.query.textChanged.connect(self._on_input_changed)
        self.query.returnPressed.connect(self._activate_first)
        for combo in (self.mode, self.kind, self.role, self.scope):
            combo.currentIndexChanged.connect(self._on_input_changed)
        self.after.editingFinished.connect(self._on_date_edited)
        self.before.editingFinished.connect(self._on_date_edited)
        self.view.activated.connect(self._on_view_activated)
        self.view.clicked.connect(self._on_view_activated)
        self.model.page_loaded.connect(self._on_model_page_loaded)
        self.model.page_failed.connect(self._on_model_page_failed)
        self.model.reloading.connect(self._on_model_reloading)
        self.model.reloaded.connect(self._on_model_reloaded)
        self.query.installEventFilter(self)
        self.view.installEventFilter(self)

    # ------------------------------------------------------------ set up by the window
    def set_search(self, search: Any, user_id: str | None) -> None:
        """Another archive (or none): its results and any search of the last one go; the
        query typed is searched in this one."""
        self._stop()
        self._stopped = False
        self.search = search
        self.user_id = user_id
        self._shown = self._open_first = None
        self._note = ""
        self.model.clear()
        available = search is not None
        self.query.setEnabled(available)
        if not available:
            self._set_status("Search is not available in this build yet.")
        elif self.query.text().strip():
            self._set_status("Searching…")
            self._timer.start()  # the user is chosen right after an archive opens
        else:
            self._set_status("")

    def set_user(self, user_id: str | None) -> None:
        """The user shown changed: the hits of "This user" follow; others stay."""
        if user_id == self.user_id:
            return
        self.user_id = user_id
        if self.scope.currentIndex() == 1 and self.search is not None:
            self._on_input_changed()

    def set_page_size(self, size: int) -> None:
        """Hits a search asks for at a time (the archive's setting search.page_size)."""
        self.model.page_size = max(1, size)

    def set_mode(self, mode: str) -> None:
        """Show ``mode`` (keyword, semantic or hybrid): the archive's default search mode when
        it opens or that setting is saved; the user's pick in the panel holds until then."""
        if mode not in MODES or MODES.index(mode) == self.mode.currentIndex():
            return
        self.mode.blockSignals(True)  # no search for an empty query
        self.mode.setCurrentIndex(MODES.index(mode))
        self.mode.blockSignals(False)
        if self.query.text().strip():
            self._on_input_changed()  # the results shown follow the mode shown

    def refresh(self) -> None:
        """Search again for what is typed (the index changed under the hits listed)."""
        if self.search is not None and self.query.text().strip():
            self.run_now()

    def archive_changed(self, settled: bool = True) -> None:
        """The archive (or its index) changed: hits listed may be gone and others may have
        come, so no page is appended at an offset counted before. The hits are read again
        from the start, keeping the user's place: soon, or, unless ``settled`` (a job is
        still writing: the window calls again when it ends), when the list asks for more."""
        if self._stopped:
            return  # the window closed (its hits go with the next archive it shows)
        self._changes += 1
        self.model.mark_outdated()
        if settled and self.model.outdated:
            self._reload_timer.start()

    def stop(self) -> None:
        """The window closes: the search and page in flight are cancelled, and no timer
        starts another (or reads the hits again) against widgets about to go, not even for
        a change the archive reports after (a job cancelled by the close ends later)."""
        self._stop()
        self._stopped = True
        self._open_first = None

    def focus_query(self) -> None:
        self.query.setFocus()
        self.query.selectAll()

    # ------------------------------------------------------------ what to search for
    def request(self) -> Request:
        """The search the boxes ask for; :class:`InputError` if a box holds no date."""
        filters: dict[str, Any] = {}
        for name, combo in (("role", self.role), ("kind", self.kind)):
            if combo.currentIndex() > 0:
                filters[name] = combo.currentText()
        if self.scope.currentIndex() == 1 and self.user_id:
            filters["user"] = self.user_id
        for name, box in (("after", self.after), ("before", self.before)):
            if box.text().strip():
                filters[name] = box_date(name, box.text().strip())
        return Request(self.query.text(), MODES[self.mode.currentIndex()], tuple(filters.items()))

    def _request_or_none(self) -> Request | None:
        try:
            return self.request()
        except InputError:
            return None

    def _on_input_changed(self, *_: object) -> None:
        self._open_first = None  # Enter was for what the boxes held then
        self.model.stop_fetching()  # no more pages of a query no longer typed
        self._timer.start()

    def _on_date_edited(self) -> None:
        """A date box lost focus or got Enter: a search if its text changed."""
        if (self.after.text(), self.before.text()) != self._dates_searched:
            self._on_input_changed()

    # ------------------------------------------------------------ searching
    def _on_timer(self) -> None:
        if loop_running():  # not while events are processed outside the loop (shutdown)
            self.run_now()

    def _on_reload_timer(self) -> None:
        if loop_running():
            self.model.reload()

    def run_now(self) -> None:
        """Start the search for the current input, cancelling the one still running."""
        self._stop()
        self._dates_searched = (self.after.text(), self.before.text())
        try:
            request: Request | None = self.request()
            problem = ""
        except InputError as exc:
            request, problem = None, str(exc)
        if self._open_first != request:
            self._open_first = None  # Enter was for another search: this one supersedes it
        self._running = request
        self._task = asyncio.ensure_future(self._search(request, problem))

    def _stop(self) -> None:
        """Cancel the search in flight and the page being fetched."""
        self._timer.stop()
        self._reload_timer.stop()
        self.model.stop_fetching()
        if self._task is not None and not self._task.done():
            self._task.cancel()
        self._running = None

    @property
    def task(self) -> asyncio.Task[None] | None:
        return self._task

    async def _search(self, request: Request | None, problem: str) -> None:
        search = self.search
        if search is None:
            return
        limit, changes = self.model.page_size, self._changes  # either may change meanwhile
        # Cancelled, this search was superseded: by one for the same request (which Enter
        # stays with) or by another (run_now forgets Enter).
        results = await self._first_page(search, request, problem, limit)
        if results is None or search is not self.search:
            if self._open_first == request:
                self._open_first = None  # failed: no hit of it to open, not even later
            return  # said why (or another archive now: its search cancelled this one)
        assert request is not None

        def fetch(offset: int, size: int) -> Any:
            return search(
                request.text, mode=request.mode, limit=size, offset=offset, **request.kwargs
            )

        self._note = results.degraded or ""
        self._shown = request
        self.model.show_results(results, fetch, limit)
        if self._changes != changes:
            self.archive_changed()  # during the search: it may not have seen the change
        self._show_count()
        self.results_shown.emit(len(results.hits))
        if self._open_first == request:
            self._open_first = None
            if self.model.rowCount() and self._request_or_none() == request:
                self._on_view_activated(self.model.index(0, 0))

    async def _first_page(
        self, search: Any, request: Request | None, problem: str, limit: int
    ) -> SearchResults | None:
        """The first page of ``request``'s hits; None: not searched or failed (said)."""
        if request is not None and not request.text.strip():
            self._show_problem("")  # nothing typed: nothing listed
            return None
        if request is not None:
            problem = filter_conflict(request) or ""
        if request is None or problem:
            log.info("not searching: %s", problem)
            self._show_problem(problem)
            return None
        self._set_status("Searching…")
        self.search_started.emit(request.text)
        try:
            results: SearchResults = await search(
                request.text,
                mode=request.mode,
                limit=limit,
                offset=0,
                **request.kwargs,
            )
        except asyncio.CancelledError:
            raise
        except QuerySyntaxError as exc:  # what was typed: said where it is wrong
            log.info("search: %s", exc)
            self._show_problem(str(exc))
            return None
        except Exception as exc:  # the one UI boundary: said, logged, reported
            log.exception("search for %r failed", request.text)
            self._show_problem(f"Search failed — {headline(exc)}: {exc}")
            self.search_failed.emit(exc)
            return None
        finally:
            if self._running is request:
                self._running = None
        return results

    def _show_problem(self, text: str) -> None:
        """No hits listed, and why (or nothing: an empty query)."""
        self._shown = None
        self._note = ""
        self.model.clear()
        self._set_status(short_line(text, PROBLEM_CHARS) if text else "", text)

    def _show_count(self, extra: str = "") -> None:
        total, shown = self.model.total, self.model.rowCount()
        matched = self.model.matched
        if shown > total:  # a page read before the archive shrank: what is listed, counted
            matched = None if matched is None else matched + shown - total
        text = count_text(max(total, shown), matched)
        if shown < total:
            text += f", {shown:,} shown"
        if extra:
            text += f" — {extra}"
        if self._note:
            text += f" — {short_line(self._note, NOTE_CHARS)}"
        self._set_status(text, "\n\n".join(t for t in (extra, self._note) if t))

    def _set_status(self, text: str, detail: str = "") -> None:
        self.status.setText(text)
        self.status.setToolTip(detail if detail != text else "")

    def _on_model_page_loaded(self, _added: int) -> None:
        self._show_count()

    def _on_model_reloading(self) -> None:
        """The hits are read again: remember where the user is in them."""
        top = self.view.indexAt(self.view.viewport().rect().topLeft())
        first = top.row() if top.isValid() else 0
        current = self.model.record(self.view.currentIndex().row())
        self._place = (
            [hit_key(h) for h in self.model.rows[first:]],
            hit_key(current) if current is not None else None,
        )

    def _on_model_reloaded(self) -> None:
        """The hits read again: the current one stays current, and the first row in view
        stays first in view (or the next of those rows still listed)."""
        place, self._place = self._place, None
        if place is not None:
            keys, current = place
            rows = {hit_key(h): row for row, h in enumerate(self.model.rows)}
            if current in rows:
                self.view.setCurrentIndex(self.model.index(rows[current], 0))
            top = next((rows[k] for k in keys if k in rows), None)
            if top is not None:
                self.view.scrollTo(self.model.index(top, 0), QListView.ScrollHint.PositionAtTop)
        self._show_count()

    def _on_model_page_failed(self, exc: BaseException) -> None:
        log.error("loading more hits failed", exc_info=exc)
        self._show_count(f"more could not be loaded: {headline(exc)}: {exc}")
        self.search_failed.emit(exc)

    # ------------------------------------------------------------ opening hits
    def _activate_first(self) -> None:
        """Enter in the query box: open the first hit of what is typed now: at once if its
        hits are listed, else when they arrive (unless the query changes meanwhile)."""
        request = self._request_or_none()
        settled = not self._timer.isActive() and (self._task is None or self._task.done())
        if settled and request is not None and request == self._shown and self.model.rowCount():
            self._on_view_activated(self.model.index(0, 0))
            return
        self._open_first = request
        if request is not None and request == self._running and not self._timer.isActive():
            return  # its search is running: the first hit opens when it arrives
        self.run_now()

    def _on_view_activated(self, index: QModelIndex) -> None:
        hit = index.data(HitRoles.RECORD)
        if isinstance(hit, Hit):
            self.hit_activated.emit(hit)

    # ------------------------------------------------------------ keyboard
    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        """Down/PageDown in the query box: to the hits (the first selected); Esc there
        clears what is typed. Esc in the hits: back to the query box."""
        if event.type() == QEvent.Type.KeyPress and isinstance(event, QKeyEvent):
            key = event.key()
            plain = event.modifiers() == Qt.KeyboardModifier.NoModifier
            if watched is self.query and plain:
                if key in (Qt.Key.Key_Down, Qt.Key.Key_PageDown) and self.model.rowCount():
                    self.view.setFocus()
                    self.view.setCurrentIndex(self.model.index(0, 0))
                    return True
                if key == Qt.Key.Key_Escape and self.query.text():
                    self.query.clear()
                    return True
            elif watched is self.view and key == Qt.Key.Key_Escape and plain:
                self.focus_query()
                return True
        return super().eventFilter(watched, event)
