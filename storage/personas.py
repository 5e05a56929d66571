"""Personas: global (``personas_global/``) and per user (``users/<u>/personas/``)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from storage.base import ArchiveBase, threaded
from storage.errors import NotFoundError
from storage.events import PersonasChanged
from storage.files import fsync_dir, read_model, write_error, write_model
from storage.ids import validate_id
from storage.models import Persona, utcnow


class PersonasMixin(ArchiveBase):
    @threaded
    def save_persona(
        self, persona: Persona | dict[str, Any], user_id: str | None = None
    ) -> Persona:
        """Create or replace a persona: the user's own when ``user_id`` is given, else global."""
        record = persona if isinstance(persona, Persona) else Persona.model_validate(persona)
        validate_id(record.id, "persona")
        if user_id is not None:
            self._require_user(user_id)
        record = record.model_copy(
            update={"is_global": user_id is None, "owner_id": user_id, "updated_at": utcnow()}
        )
        path = self.layout.persona_file(record.id, user_id)
        lock = self.locks.archive() if user_id is None else self.locks.user(user_id)
        with lock:
            write_model(path, Persona.model_validate(record.to_dict()))
        self._emit(PersonasChanged(user_id))
        return record

    create_persona = save_persona

    @threaded
    def get_persona(self, persona_id: str, user_id: str | None = None) -> Persona:
        """The user's own persona if there is one, else the global one."""
        return self._find_persona(persona_id, user_id)

    def _find_persona(self, persona_id: str, user_id: str | None) -> Persona:
        candidates = []
        if user_id is not None:
            candidates.append(self.layout.persona_file(persona_id, user_id))
        candidates.append(self.layout.persona_file(persona_id, None))
        for path in candidates:
            if path.exists():
                return read_model(path, Persona, id=persona_id)
        raise NotFoundError("persona", persona_id, " or ".join(str(p.parent) for p in candidates))

    @threaded
    def list_personas(
        self, user_id: str | None = None, include_global: bool = True
    ) -> list[Persona]:
        """The user's personas (if ``user_id``) plus global ones; a user's persona hides a
        global one with the same id. Sorted by name."""
        found: dict[str, Persona] = {}
        folders: list[Path] = []
        if include_global:
            folders.append(self.layout.global_personas_dir)
        if user_id is not None:
            self._require_user(user_id)
            folders.append(self.layout.user_personas_dir(user_id))
        for folder in folders:
            if not folder.is_dir():
                continue
            for name in sorted(os.listdir(folder)):
                if name.startswith(".") or not name.endswith(".json"):
                    continue
                persona = read_model(folder / name, Persona, id=name[:-5])
                found[persona.id] = persona
        return sorted(found.values(), key=lambda p: (p.name.casefold(), p.id))

    @threaded
    def delete_persona(self, persona_id: str, user_id: str | None = None) -> None:
        path = self.layout.persona_file(persona_id, user_id)
        lock = self.locks.archive() if user_id is None else self.locks.user(user_id)
        with lock:
            if not path.exists():
                raise NotFoundError("persona", persona_id, path.parent)
            try:
                path.unlink()
                fsync_dir(path.parent)
            except OSError as exc:
                raise write_error(path, exc) from exc
        self._emit(PersonasChanged(user_id))
