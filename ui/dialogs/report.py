"""Non-modal reports: an error with details, the per-file ingest summary, the import report."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QLabel,
    QMessageBox,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from ui.errors import advice, headline
from ui.models.report import ReportRow, ReportTableModel


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


def _items(result: Any, *names: str) -> list[Any]:
    for name in names:
        value = result.get(name) if isinstance(result, dict) else getattr(result, name, None)
        if isinstance(value, Iterable) and not isinstance(value, str | bytes):
            return list(value)
    return []


def ingest_rows(report: Any) -> list[ReportRow]:
    """An ingest report (:class:`storage.ingest.job.IngestReport`): one row per file, then
    what the folder walk skipped (hidden, symlink loops, links outside the folder)."""
    rows = []
    for item in _items(report, "files"):
        detail = _field(item, "reason")
        warnings = item.get("warnings") if isinstance(item, dict) else getattr(item, "warnings", [])
        if warnings:
            detail = "; ".join([detail, *map(str, warnings)] if detail else map(str, warnings))
        if not detail and _field(item, "status") == "ingested":
            detail = _field(item, "doc_id")
        rows.append(ReportRow(_field(item, "path"), _field(item, "status") or "done", detail))
    for item in _items(report, "skipped"):
        rows.append(ReportRow(_field(item, "path"), "skipped", _field(item, "reason")))
    return rows


def import_rows(report: Any) -> list[ReportRow]:
    """An import report (:class:`storage.importers.model.ImportReport`): one row per
    conversation, then the export's files that were ignored."""
    rows = []
    for c in _items(report, "conversations"):
        detail = _field(c, "reason")
        added = getattr(c, "added", 0)
        if not detail:
            detail = f"{added} messages added" if added else f"{getattr(c, 'messages', 0)} messages"
        problems = getattr(c, "problems", [])
        if problems:
            detail += f" ({len(problems)} problems: {problems[0]})"
        name = _field(c, "title", "source_id", "session_id") or "(untitled)"
        rows.append(ReportRow(name, _field(c, "status"), detail))
    for name in _items(report, "ignored_files"):
        rows.append(ReportRow(str(name), "ignored", "not part of a conversation"))
    return rows


def count_line(rows: list[ReportRow]) -> str:
    counts: dict[str, int] = {}
    for row in rows:
        counts[row.status] = counts.get(row.status, 0) + 1
    return ", ".join(f"{n:,} {status}" for status, n in counts.items()) or "nothing to report"


def _rows_of(result: Any) -> tuple[list[ReportRow], str]:
    """Rows and a summary line for any job result."""
    if _items(result, "conversations") or hasattr(result, "messages_added"):
        rows = import_rows(result)
        summary = ", ".join(
            f"{getattr(result, s, 0):,} {s}" for s in ("imported", "updated", "skipped", "failed")
        )
        fmt = getattr(result, "format", "")
        added = getattr(result, "messages_added", 0)
        head = f"{fmt} export: " if fmt else ""
        return rows, f"{head}{summary}; {added:,} messages added"
    if isinstance(result, dict) or hasattr(result, "files"):
        rows = ingest_rows(result)
        return rows, count_line(rows)
    return [], str(result) if result is not None else "nothing to report"


def report_counts(result: Any) -> str:
    """The summary line of a job's report, for the status bar."""
    return _rows_of(result)[1]


class ResultDialog(QDialog):
    """A job's report, non-modal: a summary line (counts per outcome) and one row per file or
    conversation with its outcome and why. Ingest and import reports (or the same fields in a
    dict) are understood; ``note`` says what else happened (cancelled, an error)."""

    def __init__(
        self, title: str, result: Any, parent: QWidget | None = None, note: str = ""
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle(title)
        self.resize(760, 420)
        layout = QVBoxLayout(self)
        rows, head = _rows_of(result)
        self.summary = QLabel(f"{note}\n{head}" if note else head, self)
        self.summary.setWordWrap(True)
        layout.addWidget(self.summary)
        self.model = ReportTableModel(rows, self)
        self.table = QTableView(self)
        self.table.setModel(self.model)
        self.table.horizontalHeader().setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        self.table.horizontalHeader().resizeSection(0, 300)
        self.table.verticalHeader().hide()
        self.table.setWordWrap(False)
        self.table.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.table.setVisible(bool(rows))
        layout.addWidget(self.table, 1)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.close)
        layout.addWidget(buttons)
        self.setWindowModality(Qt.WindowModality.NonModal)
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
