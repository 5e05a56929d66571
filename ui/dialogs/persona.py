"""View, create and edit a persona: name, description, traits, expertise, style."""

from __future__ import annotations

import re

from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLineEdit,
    QPlainTextEdit,
    QWidget,
)

from storage import Persona
from storage.ids import new_id

_SLUG = re.compile(r"[^a-z0-9_]+")


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


class PersonaDialog(QDialog):
    """Open with ``open()``; on ``accepted`` read :meth:`persona`."""

    def __init__(self, persona: Persona | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._original = persona
        self.setWindowTitle("Edit persona" if persona else "New persona")
        self.resize(520, 420)
        form = QFormLayout(self)
        self.name = QLineEdit(persona.name if persona else "", self)
        self.description = QPlainTextEdit(persona.description if persona else "", self)
        self.traits = QLineEdit(", ".join(persona.traits) if persona else "", self)
        self.traits.setPlaceholderText("comma separated, e.g. patient, precise")
        self.expertise = QLineEdit(", ".join(persona.expertise) if persona else "", self)
        self.expertise.setPlaceholderText("comma separated")
        self.style_edit = QLineEdit(persona.communication_style if persona else "", self)
        form.addRow("&Name", self.name)
        form.addRow("&Description", self.description)
        form.addRow("&Traits", self.traits)
        form.addRow("&Expertise", self.expertise)
        form.addRow("Communication &style", self.style_edit)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel, self
        )
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        form.addRow(self.buttons)
        self.name.textChanged.connect(self._on_name_text_changed)
        self._on_name_text_changed(self.name.text())

    def _on_name_text_changed(self, text: str) -> None:
        save = self.buttons.button(QDialogButtonBox.StandardButton.Save)
        save.setEnabled(bool(text.strip()))

    def persona(self) -> Persona:
        name = self.name.text().strip()
        if self._original is not None:
            ident = self._original.id
            base = self._original.to_dict()
        else:
            ident = _SLUG.sub("_", name.casefold()).strip("_")[:60] or new_id("persona")
            base = {}
        return Persona.model_validate(
            {
                **base,
                "id": ident,
                "name": name,
                "description": self.description.toPlainText().strip(),
                "traits": _split(self.traits.text()),
                "expertise": _split(self.expertise.text()),
                "communication_style": self.style_edit.text().strip(),
            }
        )
