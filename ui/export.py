"""A session as Markdown (YAML front matter), HTML or JSON, for the Export menu."""

from __future__ import annotations

import html
import json
from collections.abc import Callable, Sequence
from typing import Any

from PySide6.QtGui import QTextDocument

from storage import Message, Session

FORMATS = {".md": "Markdown", ".html": "HTML", ".json": "JSON"}


def _yaml_scalar(value: Any) -> str:
    # JSON strings are valid YAML scalars: quoting stays correct for any title.
    return json.dumps(value, ensure_ascii=False, default=str)


def front_matter(session: Session) -> str:
    lines = [
        "---",
        f"session_id: {_yaml_scalar(session.session_id)}",
        f"user_id: {_yaml_scalar(session.user_id)}",
        f"title: {_yaml_scalar(session.title)}",
        f"session_type: {_yaml_scalar(session.session_type)}",
        f"created_at: {_yaml_scalar(session.created_at.isoformat())}",
        f"updated_at: {_yaml_scalar(session.updated_at.isoformat())}",
        f"message_count: {session.message_count}",
    ]
    tags = session.metadata.get("tags")
    if isinstance(tags, list) and tags:
        lines.append("tags: [" + ", ".join(_yaml_scalar(t) for t in tags) + "]")
    for key in ("source", "model"):
        if session.metadata.get(key):
            lines.append(f"{key}: {_yaml_scalar(session.metadata[key])}")
    lines.append("---")
    return "\n".join(lines) + "\n"


def to_markdown(
    session: Session, messages: Sequence[Message], author: Callable[[Message], str]
) -> str:
    parts = [front_matter(session), f"# {session.title or session.session_id}\n"]
    for m in messages:
        parts.append(f"## {author(m)} — {m.timestamp.isoformat()}\n")
        parts.append(m.content.rstrip("\n") + "\n")
        for a in m.attachments:
            name = a.get("name") or a.get("doc_id") if isinstance(a, dict) else a
            parts.append(f"- attachment: {name}\n")
    return "\n".join(parts)


def to_html(session: Session, messages: Sequence[Message], author: Callable[[Message], str]) -> str:
    body = []
    for m in messages:
        doc = QTextDocument()
        doc.setMarkdown(m.content)
        rendered = doc.toHtml()
        inner = rendered.split("<body", 1)[-1].split(">", 1)[-1].rsplit("</body>", 1)[0]
        body.append(
            f"<section class='msg {html.escape(m.role)}'><h2>{html.escape(author(m))} "
            f"<small>{html.escape(m.timestamp.isoformat())}</small></h2>{inner}</section>"
        )
    title = html.escape(session.title or session.session_id)
    return (
        "<!DOCTYPE html>\n<html><head><meta charset='utf-8'>"
        f"<title>{title}</title><style>body{{font-family:sans-serif;max-width:50em;margin:auto}}"
        "section{border:1px solid #ddd;border-radius:6px;padding:0 1em;margin:1em 0}"
        "section.user{background:#eaf2ff}pre{background:#f1f3f5;padding:.5em;white-space:pre-wrap}"
        "</style></head><body>"
        f"<h1>{title}</h1>{''.join(body)}</body></html>\n"
    )


def to_json(session: Session, messages: Sequence[Message]) -> str:
    data = {"session": session.to_dict(), "messages": [m.to_dict() for m in messages]}
    return json.dumps(data, ensure_ascii=False, indent=2) + "\n"


def render(
    suffix: str,
    session: Session,
    messages: Sequence[Message],
    author: Callable[[Message], str],
) -> str:
    if suffix == ".md":
        return to_markdown(session, messages, author)
    if suffix in (".html", ".htm"):
        return to_html(session, messages, author)
    if suffix == ".json":
        return to_json(session, messages)
    raise ValueError(f"cannot export to {suffix!r}: choose .md, .html or .json")
