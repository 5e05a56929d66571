"""The settings dialog (non-modal): every setting of the archive's settings model by group,
edited with a widget that fits its type and range; the search index and embedder state; the
maintenance actions (rebuild the index, compact idle sessions)."""

from __future__ import annotations

import typing
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from storage.settings import GROUPS, Settings

INT_MAX = 2**31 - 1  # QSpinBox holds a C int
WHOLE_MAX = float(2**53)  # whole numbers a double holds exactly
WHOLE = "whole"  # the property of a QDoubleSpinBox that edits a whole number
TITLES = {
    "storage": "Storage",
    "search": "Search",
    "vector": "Semantic search",
    "document": "Documents",
    "runtime": "Runtime",
}


def _bound(info: FieldInfo, *names: str) -> float | None:
    for item in info.metadata:
        for name in names:
            value = getattr(item, name, None)
            if value is not None:
                return float(value)
    return None


def _unit(info: FieldInfo) -> str:
    """What the setting counts ("s", "days", "bytes"), as its model says; "" if nothing."""
    extra = info.json_schema_extra
    unit = extra.get("unit") if isinstance(extra, dict) else None
    return f" {unit}" if isinstance(unit, str) else ""


def editor_for(info: FieldInfo, value: Any, parent: QWidget) -> QWidget:
    """A widget for one setting, limited to what the model accepts, with its unit."""
    kind = info.annotation
    if kind is bool:
        box = QCheckBox(parent)
        box.setChecked(bool(value))
        return box
    if typing.get_origin(kind) is typing.Literal:
        combo = QComboBox(parent)
        combo.addItems([str(v) for v in typing.get_args(kind)])
        combo.setCurrentText(str(value))
        return combo
    low = _bound(info, "ge", "gt")
    high = _bound(info, "le", "lt")
    if kind is int and (high is None or high > INT_MAX):
        # Past what a QSpinBox holds (a C int: a 3 GiB file limit would be cut to 2 GiB, and
        # saved so): whole numbers in a double, exact up to 2**53.
        whole = QDoubleSpinBox(parent)
        whole.setProperty(WHOLE, True)
        whole.setDecimals(0)
        whole.setRange(low if low is not None else 0.0, min(high or WHOLE_MAX, WHOLE_MAX))
        whole.setValue(float(value))
        whole.setGroupSeparatorShown(True)
        whole.setSuffix(_unit(info))
        return whole
    if kind is int:
        spin = QSpinBox(parent)
        spin.setRange(
            int(low if low is not None else 0), int(high if high is not None else INT_MAX)
        )
        spin.setValue(int(value))
        spin.setGroupSeparatorShown(True)
        spin.setSuffix(_unit(info))
        return spin
    if kind is float:
        dspin = QDoubleSpinBox(parent)
        dspin.setDecimals(_decimals(float(value)))
        dspin.setRange(low if low is not None else 0.0, high if high is not None else 1e9)
        if _bound(info, "gt") is not None:
            dspin.setMinimum(dspin.minimum() + 10.0 ** -dspin.decimals())  # strictly greater
        dspin.setValue(float(value))
        dspin.setSuffix(_unit(info))
        return dspin
    edit = QLineEdit(str(value), parent)
    return edit


def _decimals(value: float) -> int:
    """Decimals to show ``value`` as it is: two at least, six at most."""
    digits = f"{value:.6f}".rstrip("0").partition(".")[2]
    return max(2, len(digits))


def editor_value(widget: QWidget) -> Any:
    if isinstance(widget, QCheckBox):
        return widget.isChecked()
    if isinstance(widget, QComboBox):
        return widget.currentText()
    if isinstance(widget, QDoubleSpinBox) and widget.property(WHOLE):
        return round(widget.value())
    if isinstance(widget, QSpinBox | QDoubleSpinBox):
        return widget.value()
    if isinstance(widget, QLineEdit):
        return widget.text().strip()
    return None


class SettingsDialog(QDialog):
    """Shows ``settings``; Save emits only what changed as ``{group: {key: value}}``. The main
    window stores it (``archive.update_settings``) and reports back with :meth:`saved` or
    :meth:`show_error` (a bad value names its key)."""

    save_requested = Signal(object)  # {group: {key: value}}
    reindex_requested = Signal()
    compact_requested = Signal()

    def __init__(self, settings: Settings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Settings")
        self.setWindowModality(Qt.WindowModality.NonModal)
        self.resize(560, 520)
        layout = QVBoxLayout(self)
        self.tabs = QTabWidget(self)
        layout.addWidget(self.tabs, 1)
        self.editors: dict[tuple[str, str], QWidget] = {}
        self.settings = settings
        for group in GROUPS:
            page = QWidget(self.tabs)
            form = QFormLayout(page)
            model: BaseModel = getattr(settings, group)
            for key, info in type(model).model_fields.items():
                editor = editor_for(info, getattr(model, key), page)
                editor.setToolTip(info.description or f"{group}.{key}")
                editor.setObjectName(f"{group}.{key}")
                label = info.title or key.replace("_", " ").capitalize()
                form.addRow(label, editor)
                self.editors[(group, key)] = editor
            self.tabs.addTab(page, TITLES.get(group, group))

        status = QGroupBox("Search index", self)
        grid = QFormLayout(status)
        self.embedder_state = QLabel("checking…", status)
        self.embedder_state.setWordWrap(True)
        self.index_state = QLabel("checking…", status)
        self.index_state.setWordWrap(True)
        grid.addRow("Semantic search", self.embedder_state)
        grid.addRow("Index", self.index_state)
        actions = QHBoxLayout()
        self.reindex_button = QPushButton("&Rebuild search index", status)
        self.reindex_button.setToolTip("Throw the index away and build it again from the files")
        self.compact_button = QPushButton("&Compact idle sessions now", status)
        self.compact_button.setToolTip(
            "Compress the message files of sessions idle longer than storage.compact_after_days"
        )
        actions.addWidget(self.reindex_button)
        actions.addWidget(self.compact_button)
        actions.addStretch(1)
        grid.addRow(actions)
        layout.addWidget(status)
        self.reindex_button.clicked.connect(self.reindex_requested)
        self.compact_button.clicked.connect(self.compact_requested)

        self.message = QLabel("", self)
        self.message.setWordWrap(True)
        layout.addWidget(self.message)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Close, self
        )
        self.save_button = buttons.button(QDialogButtonBox.StandardButton.Save)
        buttons.accepted.connect(self._on_save)
        buttons.rejected.connect(self.close)
        layout.addWidget(buttons)

    def changes(self) -> dict[str, dict[str, Any]]:
        """What differs from the settings shown, by group."""
        out: dict[str, dict[str, Any]] = {}
        for (group, key), editor in self.editors.items():
            value = editor_value(editor)
            if value != getattr(getattr(self.settings, group), key):
                out.setdefault(group, {})[key] = value
        return out

    def _on_save(self) -> None:
        changes = self.changes()
        if not changes:
            self.message.setText("Nothing changed.")
            return
        self.save_button.setEnabled(False)
        self.message.setText("Saving…")
        self.save_requested.emit(changes)

    def saved(self, settings: Settings) -> None:
        self.settings = settings
        self.save_button.setEnabled(True)
        self.message.setStyleSheet("")
        self.message.setText(
            "Saved in the archive. Lock timeout, search and semantic settings apply "
            "fully when the archive is opened again."
        )

    def show_error(self, text: str) -> None:
        self.save_button.setEnabled(True)
        self.message.setStyleSheet("color:#b91c1c")
        self.message.setText(text)

    def set_state(self, embedder: str, index: str) -> None:
        self.embedder_state.setText(embedder)
        self.index_state.setText(index)
