"""Open WebUI export: an array of chat rows (``id``, ``title``, ``chat.history.messages`` keyed
by id with ``parentId``/``childrenIds``, ``history.currentId``, epoch-second times, ``meta.tags``,
``pinned``, ``archived``), or the legacy form: the ``chat`` objects without the row wrapper.

``<details type="reasoning">`` blocks inside a message's content become ``metadata.reasoning``;
other ``<details>`` blocks (tool calls) go to ``metadata.details``; the original content is kept
in ``metadata.raw_content`` whenever it was changed.
"""

from __future__ import annotations

import html
import re
from typing import Any

from storage.importers.model import (
    EPOCH,
    Conversation,
    ConversationResult,
    as_dict,
    as_list,
    as_str,
    content_id,
    conversation,
    from_epoch,
    title_from,
)
from storage.importers.tree import build_tree, dedupe
from storage.models import Message

FORMAT = "openwebui"
_DETAILS = re.compile(r'<details\s+type="([\w-]+)"([^>]*)>(.*?)</details>\s*', re.DOTALL)
_SUMMARY = re.compile(r"<summary>(.*?)</summary>", re.DOTALL)
_ATTR = re.compile(r'([\w-]+)="([^"]*)"')
_MESSAGE_KNOWN = frozenset(
    {"id", "parentId", "childrenIds", "role", "content", "timestamp", "model", "files"}
)


def _chat(item: dict[str, Any]) -> dict[str, Any] | None:
    chat = item.get("chat")
    if isinstance(chat, dict) and ("history" in chat or "messages" in chat):
        return chat
    if isinstance(item.get("history"), dict):
        return item  # legacy: the chat object itself
    return None


def matches(item: Any) -> bool:
    return isinstance(item, dict) and _chat(item) is not None


def convert(item: Any, file: str) -> Conversation | ConversationResult:
    row = as_dict(item)
    chat = _chat(row) or {}
    title = as_str(row.get("title")) or as_str(chat.get("title"))
    source_id = (
        as_str(row.get("id"))
        or as_str(chat.get("id"))
        or content_id(FORMAT, title, row.get("created_at"), chat.get("timestamp"))
    )
    history = as_dict(chat.get("history"))
    raw_messages = history.get("messages")
    listed: list[tuple[str | None, dict[str, Any]]]
    if isinstance(raw_messages, dict):
        listed = [(k, as_dict(v)) for k, v in raw_messages.items()]
    else:
        listed = [(None, as_dict(m)) for m in as_list(chat.get("messages"))]
    if not listed:
        return ConversationResult(
            source_id, None, title, 0, "skipped", "chat has no messages", 0, file
        )
    created = from_epoch(row.get("created_at")) or from_epoch(chat.get("timestamp"))
    updated = from_epoch(row.get("updated_at")) or created
    problems: list[str] = []
    messages: list[Message] = []
    parents: dict[str, str | None] = {}
    previous: str | None = None
    previous_time = created or EPOCH
    for index, (key, raw) in enumerate(listed):
        message = _message(source_id, index, key, raw, previous_time)
        previous_time = message.timestamp
        parent = raw.get("parentId") if "parentId" in raw else previous
        parents.setdefault(message.message_id, parent if isinstance(parent, str) else None)
        previous = message.message_id
        messages.append(message)
    messages = dedupe(messages, problems)
    current = history.get("currentId")
    tree = build_tree(messages, parents, current if isinstance(current, str) else None)
    created = created or min(m.timestamp for m in messages)
    if not title:
        title = title_from(next((m.content for m in tree.messages if m.role == "user"), ""))
    meta = as_dict(row.get("meta"))
    tags = [_tag(t) for t in as_list(meta.get("tags")) or as_list(chat.get("tags"))]
    fields = {k: v for k, v in row.items() if k != "chat"}
    chat_fields = {k: v for k, v in chat.items() if k not in ("history", "messages")}
    metadata: dict[str, Any] = {
        "pinned": bool(row.get("pinned")),
        "archived": bool(row.get("archived")),
        "tags": [t for t in tags if t],
        "source_fields": fields,
        "chat_fields": chat_fields,
    }
    models = as_list(chat.get("models"))
    if models:
        metadata["model"] = models[0]
    return conversation(
        FORMAT,
        source_id,
        title=title,
        created=created,
        updated=updated,
        tree=tree,
        raw=row,
        metadata=metadata,
        problems=problems,
        file=file,
    )


def _tag(value: Any) -> str:
    if isinstance(value, dict):
        return as_str(value.get("name")) or as_str(value.get("id"))
    return as_str(value)


def _message(
    source_id: str, index: int, key: str | None, raw: dict[str, Any], fallback: Any
) -> Message:
    role = as_str(raw.get("role")) or "unknown"
    original = as_str(raw.get("content"))
    content, details = split_details(original)
    meta: dict[str, Any] = {}
    reasoning = [d["content"] for d in details if d["type"] == "reasoning"]
    if reasoning:
        meta["reasoning"] = "\n\n".join(reasoning)
    if details:
        meta["details"] = details
        meta["raw_content"] = original
    if raw.get("model"):
        meta["model"] = raw["model"]
    rest = {k: v for k, v in raw.items() if k not in _MESSAGE_KNOWN}
    if rest:
        meta["source_fields"] = rest
    message_id = as_str(raw.get("id")) or key or content_id(source_id, index, role, original)
    return Message(
        message_id=message_id,
        role=role,
        content=content,
        timestamp=from_epoch(raw.get("timestamp")) or fallback,
        attachments=list(as_list(raw.get("files"))),
        metadata=meta,
    )


def split_details(content: str) -> tuple[str, list[dict[str, Any]]]:
    """Take ``<details type=…>`` blocks out of a message: (the rest, the blocks)."""
    details: list[dict[str, Any]] = []

    def take(match: re.Match[str]) -> str:
        body = match.group(3)
        summary = _SUMMARY.search(body)
        text = _SUMMARY.sub("", body, count=1)
        details.append(
            {
                "type": match.group(1),
                "attributes": dict(_ATTR.findall(match.group(2))),
                "summary": html.unescape(summary.group(1)) if summary else "",
                "content": html.unescape(text).strip(),
            }
        )
        return ""

    rest = _DETAILS.sub(take, content)
    return (rest.strip() if details else content), details
