"""The search panel (Ctrl+K): as-you-type (debounced; a new keystroke cancels the running
search), keyword/semantic/hybrid, filters, ranked hits with highlighted snippets."""

from __future__ import annotations

import asyncio
import datetime as dt
import html
import logging
from collections import OrderedDict
from typing import Any

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QSize, Qt, QTimer, Signal
from PySide6.QtGui import (
    QAbstractTextDocumentLayout,
    QFont,
    QFontMetrics,
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

from storage import StorageError
from storage.search.results import Hit, SearchResults
from ui.models.search import HitRoles, SearchResultsModel

log = logging.getLogger(__name__)
DEBOUNCE_MS = 200
SNIPPET_LINES = 3  # of a hit's snippet shown in the result list
LIMIT = 50
HIT_DOC_CACHE = 400  # laid-out hits kept: a few result lists
MODES = ("keyword", "semantic", "hybrid")
Index = QModelIndex | QPersistentModelIndex


def build_query(
    text: str, *, role: str = "", kind: str = "", user: str = "", after: str = "", before: str = ""
) -> str:
    """The query with the panel's filters as ``field:value`` terms of the search language."""
    parts = [text.strip()]
    for name, value in (
        ("role", role),
        ("kind", kind),
        ("user", user),
        ("after", after),
        ("before", before),
    ):
        if value:
            parts.append(f"{name}:{value}")
    return " ".join(p for p in parts if p)


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
        doc = QTextDocument()
        doc.setDefaultFont(option.font)
        doc.setDocumentMargin(4)
        # One line for where it is from (elided, so every row has the same lines), escaped:
        # a session title may hold "<".
        small = _small(option.font)
        line = QFontMetrics(small).elidedText(source, Qt.TextElideMode.ElideRight, width - 12)
        doc.setHtml(
            f"<div style='color:{muted}; font-size:{small.pointSizeF():.2f}pt'>"
            f"{html.escape(line)}</div><div>{snippet}</div>"
        )
        doc.setTextWidth(width)
        self._docs[key] = doc
        if len(self._docs) > HIT_DOC_CACHE:
            self._docs.popitem(last=False)
        return doc

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
    """Set :attr:`search` to the archive's ``search`` coroutine function (None: unavailable)."""

    hit_activated = Signal(object)  # Hit
    search_started = Signal(str)  # the query sent to the archive (filters included)
    results_shown = Signal(int)

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
        self.kind.addItems(["Any kind", "message", "document", "context"])
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
        dates.addWidget(self.after)
        dates.addWidget(self.before)
        layout.addLayout(dates)
        self.status = QLabel("", self)
        self.status.setWordWrap(True)
        layout.addWidget(self.status)
        self.model = SearchResultsModel(self)
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
        self._timer.timeout.connect(self.run_now)
        self._task: asyncio.Task[None] | None = None
        self.query.textChanged.connect(self._on_input_changed)
        self.query.returnPressed.connect(self._activate_first)
        for combo in (self.mode, self.kind, self.role, self.scope):
            combo.currentIndexChanged.connect(self._on_input_changed)
        self.after.editingFinished.connect(self._on_input_changed)
        self.before.editingFinished.connect(self._on_input_changed)
        self.view.activated.connect(self._on_view_activated)
        self.view.clicked.connect(self._on_view_activated)

    def set_search(self, search: Any, user_id: str | None) -> None:
        self.search = search
        self.user_id = user_id
        available = search is not None
        self.query.setEnabled(available)
        self.status.setText("" if available else "Search is not available in this build yet.")

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

    def focus_query(self) -> None:
        self.query.setFocus()
        self.query.selectAll()

    def full_query(self) -> str:
        def pick(combo: QComboBox) -> str:
            return combo.currentText() if combo.currentIndex() > 0 else ""

        user = self.user_id if self.scope.currentIndex() == 1 and self.user_id else ""
        return build_query(
            self.query.text(),
            role=pick(self.role),
            kind=pick(self.kind),
            user=user,
            after=_date(self.after.text()),
            before=_date(self.before.text()),
        )

    def _on_input_changed(self, *_: object) -> None:
        self._timer.start()

    def run_now(self) -> None:
        """Start the search for the current input, cancelling the one still running."""
        self._timer.stop()
        if self._task is not None and not self._task.done():
            self._task.cancel()
        self._task = asyncio.ensure_future(
            self._search(self.full_query(), MODES[self.mode.currentIndex()])
        )

    @property
    def task(self) -> asyncio.Task[None] | None:
        return self._task

    async def _search(self, query: str, mode: str) -> None:
        if self.search is None:
            return
        if not self.query.text().strip():
            self.model.reset([])
            self.status.setText("")
            return
        self.status.setText("Searching…")
        try:
            self.search_started.emit(query)
            results: SearchResults = await self.search(query, mode=mode, limit=LIMIT, offset=0)
        except StorageError as exc:
            self.model.reset([])
            self.status.setText(str(exc))
            return
        self.model.total = results.total
        self.model.reset(results.hits)
        shown = len(results.hits)
        note = f" — {results.degraded}" if results.degraded else ""
        self.status.setText(
            f"{results.total:,} matches, best {shown} shown{note}" if shown else f"No matches{note}"
        )
        self.results_shown.emit(shown)

    def _activate_first(self) -> None:
        if self.model.rowCount():
            self._on_view_activated(self.model.index(0, 0))
        else:
            self.run_now()

    def _on_view_activated(self, index: QModelIndex) -> None:
        hit = index.data(HitRoles.RECORD)
        if isinstance(hit, Hit):
            self.hit_activated.emit(hit)


def _date(text: str) -> str:
    text = text.strip()
    if not text:
        return ""
    try:
        return dt.date.fromisoformat(text).isoformat()
    except ValueError:
        return ""
