"""The left sidebar: user selector and the Sessions / Panels / Documents / Personas tabs."""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListView,
    QPushButton,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from ui.models.lists import (
    DocumentListModel,
    PersonaListModel,
    SessionFilterProxy,
    SessionListModel,
    UserListModel,
)


def make_list(parent: QWidget) -> QListView:
    view = QListView(parent)
    view.setWordWrap(True)
    view.setUniformItemSizes(False)
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
        self.tabs.addTab(self.panel_view, "&Panels")

        # documents
        self.documents = DocumentListModel(self)
        self.document_view = make_list(self)
        self.document_view.setModel(self.documents)
        self.document_view.setAcceptDrops(True)
        self.document_view.setToolTip("Drop files here to add them to your library")
        self.tabs.addTab(self.document_view, "&Documents")

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

    def show_problem(self, text: str) -> None:
        self.problem.setText(text)
        self.problem.setVisible(bool(text))
