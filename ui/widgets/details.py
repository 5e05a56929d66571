"""The details pane: session metadata, situational context (and its history), documents,
panel participants and insights."""

from __future__ import annotations

import html
from collections.abc import Sequence

from PySide6.QtWidgets import QLabel, QListView, QTextBrowser, QVBoxLayout, QWidget

from storage import DocumentRecord, PanelInsight, Session, SituationalContext
from ui.models.format import when
from ui.models.lists import DocumentListModel, tags_of
from ui.widgets.sidebar import Span, TextPreview, show_extracted

_HIDDEN_META = {
    "tags",
    "source",
    "pinned",
    "archived",
    "participants",
    "panel_type",
    "active_leaf_id",
}


def _row(label: str, value: object) -> str:
    cell = "<td style='padding-right:8px'><b>{}</b></td><td>{}</td>"
    return "<tr>" + cell.format(html.escape(label), html.escape(str(value))) + "</tr>"


def session_html(session: Session, message_count: int | None = None) -> str:
    rows = [
        _row("Type", session.session_type),
        _row("Messages", message_count if message_count is not None else session.message_count),
        _row("Created", when(session.created_at)),
        _row("Last activity", when(session.updated_at)),
    ]
    if session.source:
        rows.append(_row("Source", session.source))
    if tags_of(session):
        rows.append(_row("Tags", ", ".join(tags_of(session))))
    for flag in ("pinned", "archived"):  # as the list reads them (is_pinned): set or not
        if session.metadata.get(flag):
            rows.append(_row(flag.capitalize(), "yes"))
    for key, value in session.metadata.items():
        if key not in _HIDDEN_META and isinstance(value, str | int | float | bool):
            rows.append(_row(key, value))
    rows.append(_row("Id", session.session_id))
    return f"<h3>Session</h3><table>{''.join(rows)}</table>"


def context_html(context: SituationalContext | None, history: Sequence[SituationalContext]) -> str:
    if context is None and not history:
        return ""
    out = ["<h3>Situational context</h3>"]
    if context is not None:
        out.append(f"<p>{html.escape(context.summary)}</p>")
        if context.key_points:
            items = "".join(f"<li>{html.escape(p)}</li>" for p in context.key_points)
            out.append(f"<p><b>Key points</b></p><ul>{items}</ul>")
        if context.entities:
            items = "".join(
                f"<li><b>{html.escape(kind)}</b>: {html.escape(', '.join(values))}</li>"
                for kind, values in context.entities.items()
            )
            out.append(f"<p><b>Entities</b></p><ul>{items}</ul>")
        out.append(
            f"<p><small>confidence {context.confidence:.0%} · {when(context.timestamp)}</small></p>"
        )
    if history:
        items = "".join(
            f"<li>{when(c.timestamp)}: {html.escape(c.summary[:160])}</li>" for c in history
        )
        out.append(f"<p><b>History</b> ({len(history)})</p><ul>{items}</ul>")
    return "".join(out)


def panel_html(participants: Sequence[str], insights: Sequence[PanelInsight]) -> str:
    out = []
    if participants:
        out.append(f"<h3>Participants</h3><p>{html.escape(', '.join(participants))}</p>")
    if insights:
        out.append("<h3>Insights</h3>")
        for insight in insights:
            level = (
                f" · consensus {insight.consensus_level:.0%}"
                if insight.consensus_level is not None
                else ""
            )
            out.append(
                f"<p><b>{html.escape(insight.type.title())}</b>{level}<br>"
                f"{html.escape(insight.content)}</p>"
            )
    return "".join(out)


class DetailsPane(QWidget):
    """Read-only; filled by the main window after it awaited the data."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = self._layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        self.text = QTextBrowser(self)
        self.text.setOpenLinks(False)
        layout.addWidget(self.text, 3)
        self.documents_label = QLabel("Attached documents", self)
        layout.addWidget(self.documents_label)
        self.documents = DocumentListModel(self)
        self.documents_view = QListView(self)
        self.documents_view.setModel(self.documents)
        self.documents_view.setWordWrap(True)
        self.documents_view.setAcceptDrops(True)
        layout.addWidget(self.documents_view, 1)
        # The text of the attached document chosen above (a search hit's passage selected).
        self.document_label = QLabel("", self)
        self.document_label.setWordWrap(True)
        self.document_preview = TextPreview(self)
        layout.addWidget(self.document_label)
        layout.addWidget(self.document_preview, 2)
        self.clear()

    def clear(self) -> None:
        self.text.setHtml("<p style='color:gray'>No conversation selected.</p>")
        self.documents.reset([])
        self._update_documents_label()
        self.show_document(None)

    def show_document(
        self,
        name: str | None,
        text: str | None = None,
        span: Span | None = None,
        page: int | None = None,
        terms: Sequence[str] = (),
    ) -> None:
        """The text of attached document ``name`` (None: none chosen; ``text`` None: stored,
        no text extracted), with ``span`` (a search hit's passage, on ``page``; ``terms``
        its matched words) marked and in view."""
        shown = name is not None
        self.document_label.setVisible(shown)
        self.document_preview.setVisible(shown)
        if name is None:
            self.document_label.setText("")
            self.document_preview.setPlainText("")
            return
        show_extracted(
            self.document_preview,
            self.document_label,
            self._layout,
            name,
            text,
            span,
            page,
            terms,
            "No text could be extracted from this file.",
        )

    def show_session(
        self,
        session: Session,
        *,
        message_count: int | None = None,
        context: SituationalContext | None = None,
        history: Sequence[SituationalContext] = (),
        documents: Sequence[DocumentRecord] = (),
        participants: Sequence[str] = (),
        insights: Sequence[PanelInsight] = (),
        problem: str = "",
    ) -> None:
        parts = []
        if problem:
            parts.append(f"<p style='color:#b91c1c'><b>Problem:</b> {html.escape(problem)}</p>")
        parts.append(session_html(session, message_count))
        parts.append(panel_html(participants, insights))
        parts.append(context_html(context, history))
        self.text.setHtml("".join(parts))
        self.documents.reset(documents)
        self._update_documents_label()
        self.show_document(None)

    def _update_documents_label(self) -> None:
        n = self.documents.rowCount()
        self.documents_label.setText(f"Attached documents ({n})" if n else "No attached documents")
        self.documents_view.setVisible(n > 0)
