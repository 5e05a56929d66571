"""Search results: ranked hits with highlighted snippets and where they come from."""

from __future__ import annotations

import enum
import html
from typing import Any

from PySide6.QtCore import QObject, Qt

from storage.search.results import Hit
from ui.models.base import RecordListModel
from ui.models.format import when


class HitRoles(enum.IntEnum):
    RECORD = int(Qt.ItemDataRole.UserRole) + 1
    KIND = enum.auto()
    SNIPPET_HTML = enum.auto()
    SOURCE = enum.auto()  # where the hit comes from, one line
    SCORE = enum.auto()


def snippet_html(hit: Hit) -> str:
    """The snippet with its highlight ranges in bold on a marker background (escaped)."""
    text, out, pos = hit.snippet, [], 0
    for start, end in sorted(hit.highlights):
        if start < pos or end <= start:
            continue
        out.append(html.escape(text[pos:start]))
        out.append(
            f"<b style='background-color:#fde68a;color:#111'>{html.escape(text[start:end])}</b>"
        )
        pos = end
    out.append(html.escape(text[pos:]))
    return "".join(out).replace("\n", " ")


def hit_source(hit: Hit) -> str:
    if hit.kind == "document":
        where = (
            f"page {hit.page}"
            if hit.page
            else f"chunk {hit.chunk}"
            if hit.chunk is not None
            else ""
        )
        return " · ".join(b for b in ("document", hit.title or hit.doc_id or "", where) if b)
    bits = [hit.kind, hit.title or hit.session_id or "", hit.role or "", when(hit.timestamp)]
    return " · ".join(b for b in bits if b) + f" · {hit.user_id}"


class SearchResultsModel(RecordListModel[Hit]):
    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(lambda h: (h.kind, h.session_id, h.message_id, h.doc_id, h.chunk), parent)
        self.total = 0

    def role_data(self, record: Hit, role: int) -> Any:
        if role == Qt.ItemDataRole.DisplayRole:
            return f"{hit_source(record)}\n{record.snippet}"
        if role == Qt.ItemDataRole.ToolTipRole:  # the whole snippet: rows show its start
            return f"{hit_source(record)}\n\n{record.snippet}\n\nscore {record.score:.3f}"
        return {
            HitRoles.RECORD: record,
            HitRoles.KIND: record.kind,
            HitRoles.SNIPPET_HTML: snippet_html(record),
            HitRoles.SOURCE: hit_source(record),
            HitRoles.SCORE: record.score,
        }.get(role)  # type: ignore[call-overload]
