"""The left sidebar: user selector and the Sessions / Panels / Documents / Personas tabs."""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListView,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QTableView,
    QTabWidget,
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
        box = QVBoxLayout(preview_box)
        box.setContentsMargins(0, 4, 0, 0)
        self.preview_label = QLabel("Choose a document to preview its text.", preview_box)
        self.preview_label.setWordWrap(True)
        self.preview = QPlainTextEdit(preview_box)
        self.preview.setReadOnly(True)
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
        self.tabs.addTab(page, "&Documents")
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

    def show_document(self, name: str | None, text: str | None = None) -> None:
        """The preview: ``text`` of document ``name`` (None: stored, no text was extracted)."""
        for button in (self.open_document, self.delete_document):
            button.setEnabled(name is not None)
        if name is None:
            self.preview_label.setText("Choose a document to preview its text.")
            self.preview.setPlainText("")
        elif text is None:
            self.preview_label.setText(f"{name}: stored, not searchable")
            self.preview.setPlainText(
                "No text could be extracted from this file. It is kept in the archive; "
                "open the original to see it."
            )
        else:
            cut = len(text) > PREVIEW_CHARS
            more = f" (first {PREVIEW_CHARS:,} of {len(text):,} characters)" if cut else ""
            self.preview_label.setText(f"{name}: extracted text{more}")
            self.preview.setPlainText(text[:PREVIEW_CHARS])

    def show_problem(self, text: str) -> None:
        self.problem.setText(text)
        self.problem.setVisible(bool(text))
