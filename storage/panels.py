"""Multi-persona panels: sessions of type "panel" with persona messages and insights."""

from __future__ import annotations

from typing import Any

from storage.base import ArchiveBase, threaded
from storage.errors import InvalidIdError, NotFoundError
from storage.events import SessionChanged
from storage.ids import validate_id
from storage.jsonl import JsonlLog
from storage.layout import INSIGHTS
from storage.models import PanelInsight, PanelMessage, PanelType, Session, SessionType


class PanelsMixin(ArchiveBase):
    @threaded
    def create_panel(
        self,
        user_id: str,
        participants: list[str],
        panel_type: str | PanelType = PanelType.MULTI_PERSONA,
        title: str = "",
        *,
        metadata: dict[str, Any] | None = None,
        session_id: str | None = None,
    ) -> Session:
        """A panel session; every participant must be a persona of the user or a global one."""
        try:
            kind = PanelType(panel_type).value
        except ValueError:
            known = ", ".join(t.value for t in PanelType)
            raise InvalidIdError("panel type", panel_type, f"must be one of {known}") from None
        self._require_user(user_id)
        if not participants:
            raise ValueError("a panel needs at least one participant persona")
        for persona_id in participants:
            validate_id(persona_id, "persona")
            self._find_persona(persona_id, user_id)  # type: ignore[attr-defined]
        meta = {**(metadata or {}), "participants": list(participants), "panel_type": kind}
        return self._create_session(  # type: ignore[attr-defined,no-any-return]
            user_id, title or "Panel", SessionType.PANEL.value, meta, session_id
        )

    def _panel(self, user_id: str, panel_id: str) -> Session:
        session = self._read_session(user_id, panel_id)
        if not session.is_panel:
            raise NotFoundError(
                "panel", panel_id, f"session {panel_id} is a {session.session_type} session"
            )
        return session

    @threaded
    def add_panel_message(
        self, user_id: str, panel_id: str, message: PanelMessage | dict[str, Any]
    ) -> PanelMessage:
        self._panel(user_id, panel_id)
        return self._append(user_id, panel_id, [message])[0]  # type: ignore[attr-defined,no-any-return]

    @threaded
    def get_panel_messages(
        self, user_id: str, panel_id: str, limit: int | None = None, offset: int = 0
    ) -> list[PanelMessage]:
        session = self._panel(user_id, panel_id)
        return self._log(session).page(offset, limit)  # type: ignore[attr-defined,no-any-return]

    @threaded
    def save_panel_insight(
        self, user_id: str, panel_id: str, insight: PanelInsight | dict[str, Any]
    ) -> PanelInsight:
        session = self._panel(user_id, panel_id)
        if isinstance(insight, dict):
            insight = PanelInsight.model_validate({"panel_id": panel_id, **insight})
        if insight.panel_id != panel_id:
            raise ValueError(f"insight is for panel {insight.panel_id!r}, not {panel_id!r}")
        with self.locks.session(user_id, panel_id):
            self._insights(session).append([insight], self.settings.storage.max_message_bytes)
        self._emit(SessionChanged(user_id, panel_id))
        return insight

    @threaded
    def get_panel_insights(self, user_id: str, panel_id: str) -> list[PanelInsight]:
        return list(self._insights(self._panel(user_id, panel_id)).iter())

    def _insights(self, session: Session) -> JsonlLog[PanelInsight]:
        folder = self.layout.session_dir(session.user_id, session.session_id)
        return JsonlLog(folder / INSIGHTS, PanelInsight)

    @threaded
    def list_panels(self, user_id: str) -> list[Session]:
        sessions = [s for s in self._all_sessions(user_id) if s.is_panel]  # type: ignore[attr-defined]
        sessions.sort(key=lambda s: (s.updated_at, s.session_id), reverse=True)
        return sessions
