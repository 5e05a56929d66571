"""A job's per-item outcomes (one row per file or conversation) as a table: name, result, why.

A table model rather than a widget per cell: a drop of 5,000 files reports 5,000 rows."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QObject, Qt

from ui.models.base import RecordListModel

_TEXT_ROLES = (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole)


@dataclass(frozen=True)
class ReportRow:
    name: str
    status: str
    detail: str = ""


class ReportTableModel(RecordListModel[ReportRow]):
    columns = ("File", "Result", "Details")

    def __init__(self, rows: list[ReportRow], parent: QObject | None = None) -> None:
        super().__init__(lambda r: r.name, parent)
        self._rows = list(rows)

    def role_data(self, record: ReportRow, role: int) -> Any:
        return record.name if role in _TEXT_ROLES else None

    def cell(self, record: ReportRow, column: int, role: int) -> Any:
        if role not in _TEXT_ROLES:
            return None
        return record.status if column == 1 else record.detail
