"""Where every record of an archive lives (ARCHITECTURE §2). Every id is validated here."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from storage.ids import validate_id, validate_session_id

ARCHIVE_JSON = "archive.json"
USERS = "users"
PERSONAS_GLOBAL = "personas_global"
INDEX_DIR = ".index"
LOCKS_DIR = ".locks"
PROFILE = "profile.json"
SESSION_JSON = "session.json"
MESSAGES = "messages.jsonl"
MESSAGES_ZST = "messages.jsonl.zst"
INSIGHTS = "insights.jsonl"
CONTEXT = "situational_context.json"
CONTEXT_HISTORY = "context_history"
DOCUMENTS = "documents"
DOCUMENTS_META = "metadata.json"
PERSONAS = "personas"
IMPORTS = "imports"  # users/<u>/imports/<id>.json: import reports
LEGACY_PERSONA_SUFFIX = "_messages.jsonl"


@dataclass(frozen=True)
class Layout:
    root: Path

    @property
    def archive_json(self) -> Path:
        return self.root / ARCHIVE_JSON

    @property
    def users_dir(self) -> Path:
        return self.root / USERS

    @property
    def global_personas_dir(self) -> Path:
        return self.root / PERSONAS_GLOBAL

    @property
    def index_dir(self) -> Path:
        return self.root / INDEX_DIR

    @property
    def locks_dir(self) -> Path:
        return self.root / LOCKS_DIR

    def user_dir(self, user_id: str) -> Path:
        return self.users_dir / validate_id(user_id, "user")

    def profile(self, user_id: str) -> Path:
        return self.user_dir(user_id) / PROFILE

    def session_dir(self, user_id: str, session_id: str) -> Path:
        return self.user_dir(user_id) / validate_session_id(session_id)

    def session_json(self, user_id: str, session_id: str) -> Path:
        return self.session_dir(user_id, session_id) / SESSION_JSON

    def documents_dir(self, user_id: str, session_id: str | None) -> Path:
        base = (
            self.user_dir(user_id) if session_id is None else self.session_dir(user_id, session_id)
        )
        return base / DOCUMENTS

    def user_personas_dir(self, user_id: str) -> Path:
        return self.user_dir(user_id) / PERSONAS

    def persona_file(self, persona_id: str, user_id: str | None) -> Path:
        folder = self.global_personas_dir if user_id is None else self.user_personas_dir(user_id)
        return folder / f"{validate_id(persona_id, 'persona')}.json"

    def lock_file(self, *parts: str) -> Path:
        """``.locks/archive.lock``, ``.locks/users/<u>.lock``, ``.locks/sessions/<u>/<s>.lock``."""
        if not parts:
            return self.locks_dir / "archive.lock"
        if len(parts) == 1:
            return self.locks_dir / USERS / f"{validate_id(parts[0], 'user')}.lock"
        user_id, session_id = parts
        return (
            self.locks_dir
            / "sessions"
            / validate_id(user_id, "user")
            / f"{validate_session_id(session_id)}.lock"
        )
