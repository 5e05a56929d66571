"""The left sidebar: user selector and the Sessions / Panels / Documents / Personas tabs."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QColor, QTextCharFormat, QTextCursor
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLayout,
    QLineEdit,
    QListView,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QTableView,
    QTabWidget,
    QTextEdit,
    QVBoxLayout,
    QWidget,
)

from ui.models.lists import (
    DocumentTableModel,
    PersonaListModel,
    SessionFilterProxy,
    SessionListModel,
    UserListModel,
)

PREVIEW_CHARS = 200_000  # a preview, not the whole book: setPlainText of megabytes stalls
DOCUMENTS_TAB = 2
Span = tuple[int, int]  # a range of a document's extracted text (a search hit's chunk)
PASSAGE_COLOR = "#fef3c7"  # behind a search hit's passage (its matched words are selected)


def qt_position(text: str, index: int) -> int:
    """Where character ``index`` of ``text`` is in a QTextDocument holding ``text``: Qt counts
    UTF-16 code units (an emoji is two) and reads "\\r\\n" as one line break."""
    prefix = text[:index]
    return len(prefix.encode("utf-16-le")) // 2 - prefix.count("\r\n")


def show_extracted(
    preview: TextPreview,
    label: QLabel,
    layout: QLayout,
    name: str,
    text: str | None,
    span: Span | None,
    page: int | None,
    terms: Sequence[str],
    no_text: str,
) -> None:
    """Document ``name``'s extracted ``text`` in ``preview`` (None: stored, no text was
    extracted: ``no_text``), with ``span`` (a search hit's passage, on ``page``; ``terms``
    its matched words) marked and in view, and what is shown said by ``label`` (laid out by
    ``layout``)."""
    if text is None:
        label.setText(f"{name}: stored, not searchable")
        preview.setPlainText(no_text)
        return
    part = preview.show_text(text, span, terms)
    more = f" ({part})" if part else ""
    hit = f" — the search hit{f' on page {page}' if page else ''} is selected" if span else ""
    label.setText(f"{name}: extracted text{more}{hit}")
    if span is not None:
        layout.activate()  # the label's lines, now: then the passage in view
        preview.scroll_to_selection()


class TextPreview(QPlainTextEdit):
    """A document's extracted text, read-only: its first PREVIEW_CHARS characters, or as many
    around a span to show (a search hit's passage; from the start of its line to at least the
    span's end). The passage gets a marker background and the first of its matched words is
    selected and scrolled into view (the whole passage is selected when none of them is found
    in it)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setReadOnly(True)

    def show_text(self, text: str, span: Span | None = None, terms: Sequence[str] = ()) -> str:
        """Show ``text`` (around ``span``, ``terms`` found in it); what part is shown, for a
        label ("" if all)."""
        start, end = 0, PREVIEW_CHARS
        if span is not None and len(text) > PREVIEW_CHARS and span[1] > PREVIEW_CHARS:
            start = max(0, min(span[0] - PREVIEW_CHARS // 2, len(text) - PREVIEW_CHARS))
            line = text.rfind("\n", max(0, start - 1000), start)
            start = line + 1 if line >= 0 else start  # from the start of its line
            # Moved back to a line start, the window must still reach the end of the span.
            end = max(start + PREVIEW_CHARS, span[1])
        shown = text[start:end]
        self.setExtraSelections([])
        self.setPlainText(shown)
        if span is not None:
            self.show_passage(shown, span[0] - start, span[1] - start, terms)
        if len(shown) == len(text):
            return ""
        if start == 0:
            return f"first {len(shown):,} of {len(text):,} characters"
        return f"characters {start + 1:,}–{start + len(shown):,} of {len(text):,}"

    def show_passage(self, shown: str, first: int, end: int, terms: Sequence[str]) -> None:
        """Mark ``shown[first:end]`` (the text this preview holds) and select the first of
        ``terms`` in it (or all of it), scrolled into view."""
        first = max(0, min(first, len(shown)))
        end = max(first, min(end, len(shown)))
        passage = QTextEdit.ExtraSelection()
        passage.cursor = self._cursor(shown, first, end)
        passage.format = QTextCharFormat()
        passage.format.setBackground(QColor(PASSAGE_COLOR))
        self.setExtraSelections([passage])
        # A hit's words are composed (NFC), as the index holds text; the document may have
        # its accents as combining marks (NFD: macOS, some PDFs).
        forms = {f for t in terms for f in (t, unicodedata.normalize("NFD", t)) if f}
        words = "|".join(re.escape(t) for t in sorted(forms, key=len, reverse=True))
        found = re.compile(words, re.IGNORECASE).search(shown, first, end) if words else None
        if found is not None:
            first, end = found.span()
        self.setTextCursor(self._cursor(shown, end, first))
        self.scroll_to_selection()

    def scroll_to_selection(self) -> None:
        """The selection in view: its end, then its start (again after a resize: the label
        above may take another line once it says what is shown)."""
        cursor = self.textCursor()
        end = QTextCursor(cursor)
        end.setPosition(cursor.anchor())
        self.setTextCursor(end)
        self.ensureCursorVisible()
        self.setTextCursor(cursor)
        self.ensureCursorVisible()

    def _cursor(self, shown: str, anchor: int, position: int) -> QTextCursor:
        cursor = QTextCursor(self.document())
        cursor.setPosition(qt_position(shown, anchor))
        cursor.setPosition(qt_position(shown, position), QTextCursor.MoveMode.KeepAnchor)
        return cursor


def make_list(parent: QWidget) -> QListView:
    view = QListView(parent)
    # Every row is two lines (name, then details), elided, never wrapped: with uniform sizes
    # Qt lays out 10,000 rows from one size hint instead of asking the model for each row,
    # which stalled the window for ~100 ms whenever a row changed or moved.
    view.setWordWrap(False)
    view.setUniformItemSizes(True)
    view.setIconSize(QSize(20, 20))
    view.setSpacing(2)
    view.setTextElideMode(Qt.TextElideMode.ElideRight)
    view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
    view.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    return view


class Sidebar(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 0, 6)
        user_row = QHBoxLayout()
        user_label = QLabel("&User", self)
        self.users = UserListModel(self)
        self.user_combo = QComboBox(self)
        self.user_combo.setModel(self.users)
        self.user_combo.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon
        )
        user_label.setBuddy(self.user_combo)
        user_row.addWidget(user_label)
        user_row.addWidget(self.user_combo, 1)
        layout.addLayout(user_row)
        self.tabs = QTabWidget(self)
        self.tabs.setDocumentMode(True)
        layout.addWidget(self.tabs, 1)

        # sessions
        self.sessions = SessionListModel(self)
        self.session_proxy = SessionFilterProxy(self)
        self.session_proxy.setSourceModel(self.sessions)
        page = QWidget(self)
        box = QVBoxLayout(page)
        box.setContentsMargins(0, 4, 0, 0)
        self.filter = QLineEdit(page)
        self.filter.setPlaceholderText("Filter sessions (title, tag, source)")
        self.filter.setClearButtonEnabled(True)
        self.filter.textChanged.connect(self.session_proxy.set_filter_text)
        self.problem = QLabel("", page)
        self.problem.setWordWrap(True)
        self.problem.setStyleSheet("color:#b91c1c")
        self.problem.hide()
        self.session_view = make_list(page)
        self.session_view.setModel(self.session_proxy)
        self.session_view.setSelectionMode(QListView.SelectionMode.ExtendedSelection)
        box.addWidget(self.filter)
        box.addWidget(self.problem)
        box.addWidget(self.session_view, 1)
        self.tabs.addTab(page, "&Sessions")

        # panels: the same sessions, panel type only
        self.panels = SessionListModel(self, session_type="panel")
        self.panel_proxy = SessionFilterProxy(self, panels=True)
        self.panel_proxy.setSourceModel(self.panels)
        self.panel_view = make_list(self)
        self.panel_view.setModel(self.panel_proxy)
        self.panel_view.setSelectionMode(QListView.SelectionMode.ExtendedSelection)
        self.tabs.addTab(self.panel_view, "&Panels")

        # documents: a table, the extracted text of the current one, open and delete
        self.documents = DocumentTableModel(self)
        page = QSplitter(Qt.Orientation.Vertical, self)
        self.document_view = QTableView(page)
        self.document_view.setModel(self.documents)
        self.document_view.setSelectionBehavior(QTableView.SelectionBehavior.SelectRows)
        self.document_view.setSelectionMode(QTableView.SelectionMode.SingleSelection)
        self.document_view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.document_view.setWordWrap(False)
        self.document_view.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.document_view.verticalHeader().hide()
        # The name takes what the short columns (type, size, pages, added) leave: all five
        # fit the sidebar without a horizontal scroll bar.
        header = self.document_view.horizontalHeader()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.document_view.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.document_view.setAcceptDrops(True)
        self.document_view.setToolTip("Drop files here to add them to your library")
        preview_box = QWidget(page)
        box = self._preview_layout = QVBoxLayout(preview_box)
        box.setContentsMargins(0, 4, 0, 0)
        self.preview_label = QLabel("Choose a document to preview its text.", preview_box)
        self.preview_label.setWordWrap(True)
        self.preview = TextPreview(preview_box)
        self.preview.setPlaceholderText("The text extracted from the document appears here.")
        buttons = QHBoxLayout()
        self.open_document = QPushButton("&Open original", preview_box)
        self.open_document.setToolTip("Open the stored file with the system's viewer")
        self.delete_document = QPushButton("Delete…", preview_box)
        buttons.addWidget(self.open_document)
        buttons.addWidget(self.delete_document)
        buttons.addStretch(1)
        box.addWidget(self.preview_label)
        box.addWidget(self.preview, 1)
        box.addLayout(buttons)
        page.addWidget(self.document_view)
        page.addWidget(preview_box)
        page.setSizes([260, 340])
        documents_tab = self.tabs.addTab(page, "&Documents")
        assert documents_tab == DOCUMENTS_TAB
        self.show_document(None)

        # personas
        self.personas = PersonaListModel(self)
        page = QWidget(self)
        box = QVBoxLayout(page)
        box.setContentsMargins(0, 4, 0, 0)
        self.persona_view = make_list(page)
        self.persona_view.setModel(self.personas)
        self.new_persona = QPushButton("New persona…", page)
        box.addWidget(self.persona_view, 1)
        box.addWidget(self.new_persona)
        self.tabs.addTab(page, "P&ersonas")

    def clear(self) -> None:
        """No user's lists (an archive without users, or another archive opening)."""
        self.sessions.set_source(None, None)
        self.panels.set_source(None, None)
        self.documents.reset([])
        self.personas.reset([])
        self.show_document(None)
        self.show_problem("")

    def show_document(
        self,
        name: str | None,
        text: str | None = None,
        span: Span | None = None,
        page: int | None = None,
        terms: Sequence[str] = (),
    ) -> None:
        """The preview: ``text`` of document ``name`` (None: stored, no text was extracted),
        with ``span`` (a search hit's passage, on ``page``; ``terms`` its matched words)
        marked and in view."""
        for button in (self.open_document, self.delete_document):
            button.setEnabled(name is not None)
        if name is None:
            self.preview_label.setText("Choose a document to preview its text.")
            self.preview.setPlainText("")
        else:
            show_extracted(
                self.preview,
                self.preview_label,
                self._preview_layout,
                name,
                text,
                span,
                page,
                terms,
                "No text could be extracted from this file. It is kept in the archive; "
                "open the original to see it.",
            )

    def show_problem(self, text: str) -> None:
        self.problem.setText(text)
        self.problem.setVisible(bool(text))
