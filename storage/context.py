"""Situational context: the current one and dated snapshots in ``context_history/``."""

from __future__ import annotations

import datetime as dt
import os
from typing import Any

from storage.base import ArchiveBase, threaded
from storage.errors import NotFoundError
from storage.events import SessionChanged
from storage.files import read_model, write_model
from storage.layout import CONTEXT, CONTEXT_HISTORY
from storage.models import SituationalContext


class ContextMixin(ArchiveBase):
    @threaded
    def update_context(
        self, user_id: str, session_id: str, context: SituationalContext | dict[str, Any]
    ) -> SituationalContext:
        """Replace the session's current situational context (atomically)."""
        record = _coerce(context)
        with self.locks.session(user_id, session_id):
            folder = self._session_path(user_id, session_id).parent
            write_model(folder / CONTEXT, record)
        self._emit(SessionChanged(user_id, session_id))
        return record

    @threaded
    def get_context(self, user_id: str, session_id: str) -> SituationalContext | None:
        path = self._session_path(user_id, session_id).parent / CONTEXT
        if not path.exists():
            return None
        return read_model(path, SituationalContext)

    @threaded
    def save_context_snapshot(
        self,
        user_id: str,
        session_id: str,
        context: SituationalContext | dict[str, Any] | None = None,
    ) -> SituationalContext:
        """Keep a dated copy of ``context`` (default: the current one) in the history."""
        with self.locks.session(user_id, session_id):
            folder = self._session_path(user_id, session_id).parent
            if context is None:
                current = folder / CONTEXT
                if not current.exists():
                    raise NotFoundError("situational context", session_id, current)
                record = read_model(current, SituationalContext)
            else:
                record = _coerce(context)
            history = folder / CONTEXT_HISTORY
            stamp = record.timestamp.astimezone(dt.UTC).strftime("%Y%m%d_%H%M%S_%f")
            path = history / f"context_{stamp}.json"
            suffix = 1
            while path.exists():
                path = history / f"context_{stamp}_{suffix}.json"
                suffix += 1
            write_model(path, record)
        return record

    snapshot_context = save_context_snapshot

    @threaded
    def get_context_history(
        self, user_id: str, session_id: str, limit: int | None = None
    ) -> list[SituationalContext]:
        """Snapshots, newest first."""
        history = self._session_path(user_id, session_id).parent / CONTEXT_HISTORY
        if not history.is_dir():
            return []
        names = sorted(
            (n for n in os.listdir(history) if n.startswith("context_") and n.endswith(".json")),
            reverse=True,
        )
        records = [read_model(history / n, SituationalContext) for n in names]
        records.sort(key=lambda c: c.timestamp, reverse=True)
        return records[:limit] if limit is not None else records


def _coerce(context: SituationalContext | dict[str, Any]) -> SituationalContext:
    if isinstance(context, SituationalContext):
        return context
    return SituationalContext.model_validate(context)
