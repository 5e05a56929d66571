"""The first page: open, create, or open the sample archive; recent archives."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QLabel, QListWidget, QPushButton, QVBoxLayout, QWidget


class WelcomePage(QWidget):
    open_requested = Signal()
    create_requested = Signal()
    sample_requested = Signal()
    recent_chosen = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        outer = QVBoxLayout(self)
        outer.addStretch(1)
        column = QWidget(self)
        column.setMaximumWidth(520)
        layout = QVBoxLayout(column)
        title = QLabel("<h1>Flatchat</h1>", column)
        intro = QLabel(
            "Your AI chat history and documents, as plain files on your disk. "
            "Choose a folder to open as an archive.",
            column,
        )
        intro.setWordWrap(True)
        self.open_button = QPushButton("&Open archive folder…", column)
        self.create_button = QPushButton("&Create new archive…", column)
        self.sample_button = QPushButton("Open the &sample archive", column)
        self.open_button.clicked.connect(self.open_requested)
        self.create_button.clicked.connect(self.create_requested)
        self.sample_button.clicked.connect(self.sample_requested)
        self.recent_label = QLabel("Recent archives", column)
        self.recent = QListWidget(column)
        self.recent.itemActivated.connect(lambda item: self.recent_chosen.emit(item.text()))
        self.message = QLabel("", column)
        self.message.setWordWrap(True)
        self.message.setStyleSheet("color:#b91c1c")
        for w in (
            title,
            intro,
            self.open_button,
            self.create_button,
            self.sample_button,
            self.message,
            self.recent_label,
            self.recent,
        ):
            layout.addWidget(w)
        outer.addWidget(column, 0, Qt.AlignmentFlag.AlignHCenter)
        outer.addStretch(2)

    def set_recent(self, paths: list[str]) -> None:
        self.recent.clear()
        self.recent.addItems(paths)
        self.recent_label.setVisible(bool(paths))
        self.recent.setVisible(bool(paths))
