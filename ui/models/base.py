"""A list model over immutable records: the begin/end bookkeeping every list model shares."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Sequence
from typing import Any, Generic, TypeVar

from PySide6.QtCore import QAbstractListModel, QModelIndex, QObject, QPersistentModelIndex, Qt

R = TypeVar("R")
Index = QModelIndex | QPersistentModelIndex


class RecordListModel(QAbstractListModel, Generic[R]):
    """Rows are immutable records; subclasses map roles to values in :meth:`role_data`.

    Every change is synchronous: callers await the data first, then apply it here.
    """

    def __init__(self, key: Callable[[R], Hashable], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._rows: list[R] = []
        self._key = key

    # ------------------------------------------------------------ Qt API
    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._rows)

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or index.parent().isValid() or index.column() != 0:
            return None
        if not 0 <= index.row() < len(self._rows):
            return None
        return self.role_data(self._rows[index.row()], role)

    def role_data(self, record: R, role: int) -> Any:
        raise NotImplementedError

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
        index = self.index(row, 0)
        self.dataChanged.emit(index, index)

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
            self.dataChanged.emit(self.index(0, 0), self.index(len(self._rows) - 1, 0))
