"""Non-modal reports: an error with details, the per-file ingest summary, the import report."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QLabel,
    QMessageBox,
    QPlainTextEdit,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ui.errors import advice, headline


def show_error(parent: QWidget | None, exc: BaseException, what: str = "") -> QMessageBox:
    """A non-modal message box: headline, what failed and why, details on demand."""
    box = QMessageBox(parent)
    box.setIcon(QMessageBox.Icon.Warning)
    box.setWindowTitle("Flatchat")
    box.setText(headline(exc))
    text = f"{what} failed: {exc}" if what else str(exc)
    hint = advice(exc)
    box.setInformativeText(f"{text}\n\n{hint}" if hint else text)
    box.setWindowModality(Qt.WindowModality.NonModal)
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    box.show()
    return box


def _field(item: Any, *names: str) -> str:
    for name in names:
        value = item.get(name) if isinstance(item, dict) else getattr(item, name, None)
        if value is not None and value != "":
            return str(value)
    return ""


def _items(result: Any) -> list[Any]:
    for name in ("files", "results", "items"):
        value = result.get(name) if isinstance(result, dict) else getattr(result, name, None)
        if isinstance(value, Iterable) and not isinstance(value, str | bytes):
            return list(value)
    if isinstance(result, Iterable) and not isinstance(result, str | bytes | dict):
        return list(result)
    return []


def _as_text(result: Any) -> str:
    if hasattr(result, "to_dict"):
        result = result.to_dict()
    elif dataclasses.is_dataclass(result) and not isinstance(result, type):
        result = dataclasses.asdict(result)
    if isinstance(result, dict):
        return "\n".join(f"{k}: {v}" for k, v in result.items() if not isinstance(v, list))
    return str(result)


class ResultDialog(QDialog):
    """One row per file (or item): name, outcome, why. Works on any result that lists its
    items as ``files``/``results``/``items`` with ``path``/``name`` and ``status``/``error``."""

    def __init__(self, title: str, result: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(title)
        self.resize(760, 420)
        layout = QVBoxLayout(self)
        summary = _as_text(result)
        items = _items(result)
        counts: dict[str, int] = {}
        for item in items:
            status = _field(item, "status", "outcome", "state") or "done"
            counts[status] = counts.get(status, 0) + 1
        head = ", ".join(f"{n} {status}" for status, n in counts.items()) or "nothing to report"
        self.summary = QLabel(head, self)
        layout.addWidget(self.summary)
        if summary and not items:
            text = QPlainTextEdit(summary, self)
            text.setReadOnly(True)
            layout.addWidget(text)
        self.table = QTableWidget(len(items), 3, self)
        self.table.setHorizontalHeaderLabels(["File", "Result", "Details"])
        self.table.horizontalHeader().setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        self.table.verticalHeader().hide()
        for row, item in enumerate(items):
            cells = (
                _field(item, "name", "path", "original_name", "source", "title"),
                _field(item, "status", "outcome", "state") or "done",
                _field(item, "error", "reason", "message", "detail", "doc_id", "session_id"),
            )
            for col, value in enumerate(cells):
                self.table.setItem(row, col, QTableWidgetItem(value))
        self.table.resizeColumnToContents(0)
        self.table.setVisible(bool(items))
        layout.addWidget(self.table, 1)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.close)
        layout.addWidget(buttons)
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
