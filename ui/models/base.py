"""A list model over immutable records: the begin/end bookkeeping every list model shares."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Sequence
from typing import Any, Generic, TypeVar

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QObject, QPersistentModelIndex, Qt

R = TypeVar("R")
Index = QModelIndex | QPersistentModelIndex


class RecordListModel(QAbstractTableModel, Generic[R]):
    """Rows are immutable records; subclasses map roles to values in :meth:`role_data`.

    One column unless a subclass names its ``columns`` (a table view) and answers
    :meth:`cell` for the columns after the first. Every change is synchronous: callers await
    the data first, then apply it here.
    """

    columns: tuple[str, ...] = ()

    def __init__(self, key: Callable[[R], Hashable], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._rows: list[R] = []
        self._key = key

    # ------------------------------------------------------------ Qt API
    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else max(1, len(self.columns))

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or index.parent().isValid():
            return None
        if not 0 <= index.row() < len(self._rows):
            return None
        if index.column() == 0:
            return self.role_data(self._rows[index.row()], role)
        if index.column() < len(self.columns):
            return self.cell(self._rows[index.row()], index.column(), role)
        return None

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if (
            role == Qt.ItemDataRole.DisplayRole
            and orientation == Qt.Orientation.Horizontal
            and 0 <= section < len(self.columns)
        ):
            return self.columns[section]
        return None

    def role_data(self, record: R, role: int) -> Any:
        raise NotImplementedError

    def cell(self, record: R, column: int, role: int) -> Any:
        """Columns after the first (tables only)."""
        return None

    # ------------------------------------------------------------ ours
    @property
    def rows(self) -> Sequence[R]:
        return self._rows

    def record(self, row: int) -> R | None:
        return self._rows[row] if 0 <= row < len(self._rows) else None

    def row_of(self, key: Hashable) -> int:
        for row, record in enumerate(self._rows):
            if self._key(record) == key:
                return row
        return -1

    def reset(self, records: Iterable[R]) -> None:
        self.beginResetModel()
        self._rows = list(records)
        self.endResetModel()

    def insert(self, row: int, records: Sequence[R]) -> None:
        if not records:
            return
        row = max(0, min(row, len(self._rows)))
        self.beginInsertRows(QModelIndex(), row, row + len(records) - 1)
        self._rows[row:row] = records
        self.endInsertRows()

    def append(self, records: Sequence[R]) -> None:
        self.insert(len(self._rows), records)

    def append_new(self, records: Iterable[R]) -> int:
        """Append the records whose key no row has yet (nor an earlier one of ``records``):
        a next page that overlaps the rows shown. How many were appended."""
        known = {self._key(r) for r in self._rows}
        fresh = []
        for record in records:
            key = self._key(record)
            if key not in known:
                known.add(key)
                fresh.append(record)
        self.append(fresh)
        return len(fresh)

    def remove(self, row: int, count: int = 1) -> None:
        if count <= 0 or not 0 <= row < len(self._rows):
            return
        last = min(len(self._rows), row + count) - 1
        self.beginRemoveRows(QModelIndex(), row, last)
        del self._rows[row : last + 1]
        self.endRemoveRows()

    def replace(self, row: int, record: R) -> None:
        if not 0 <= row < len(self._rows):
            return
        self._rows[row] = record
        self.dataChanged.emit(self.index(row, 0), self.index(row, self.columnCount() - 1))

    def upsert(self, record: R, at: int = 0) -> None:
        """Replace the row with the same key, or insert it at ``at``."""
        row = self.row_of(self._key(record))
        if row >= 0:
            self.replace(row, record)
        else:
            self.insert(at, [record])

    def discard(self, key: Hashable) -> None:
        row = self.row_of(key)
        if row >= 0:
            self.remove(row)

    def refresh_all(self) -> None:
        if self._rows:
            last = self.index(len(self._rows) - 1, self.columnCount() - 1)
            self.dataChanged.emit(self.index(0, 0), last)
