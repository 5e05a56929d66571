"""Claude.ai export: ``conversations.json`` (or ``.jsonl``) of ``{uuid, name, chat_messages}``.

Text comes from the ``content`` blocks (``text`` as a fallback); ``thinking`` becomes
``metadata.reasoning``; ``tool_use``/``tool_result`` and unknown blocks are kept in
``metadata.content_blocks``; images and ``attachments`` (with their ``extracted_content``, which
search indexes) and ``files`` become message attachments. Branches come from
``parent_message_uuid`` and ``current_leaf_message_uuid``.
"""

from __future__ import annotations

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
    from_iso,
    title_from,
)
from storage.importers.tree import build_tree, dedupe, linear_parents
from storage.models import Message

FORMAT = "claude"
ROOT_SENTINEL = "00000000-0000-4000-8000-000000000000"
ROLES = {"human": "user", "assistant": "assistant"}
_MESSAGE_KNOWN = frozenset(
    {"uuid", "text", "content", "sender", "created_at", "attachments", "files",
     "parent_message_uuid"}
)  # fmt: skip


def matches(item: Any) -> bool:
    return isinstance(item, dict) and isinstance(item.get("chat_messages"), list)


def convert(item: Any, file: str) -> Conversation | ConversationResult:
    conv = as_dict(item)
    name = as_str(conv.get("name"))
    source_id = as_str(conv.get("uuid")) or content_id(FORMAT, name, conv.get("created_at"))
    created = from_iso(conv.get("created_at"))
    updated = from_iso(conv.get("updated_at")) or created
    raw_messages = [as_dict(m) for m in as_list(conv.get("chat_messages"))]
    if not raw_messages:
        return ConversationResult(
            source_id, None, name, 0, "skipped", "conversation has no messages", 0, file
        )
    problems: list[str] = []
    messages: list[Message] = []
    parents: dict[str, str | None] = {}
    branched = any("parent_message_uuid" in m for m in raw_messages)
    previous_time = created
    for index, raw in enumerate(raw_messages):
        message = _message(source_id, index, raw, previous_time or EPOCH)
        previous_time = message.timestamp
        messages.append(message)
        parent = raw.get("parent_message_uuid")
        parents.setdefault(message.message_id, parent if isinstance(parent, str) else None)
    messages = dedupe(messages, problems)
    if not branched:
        parents = linear_parents(messages)
    current = conv.get("current_leaf_message_uuid")
    tree = build_tree(
        messages,
        parents,
        current if isinstance(current, str) else None,
        root_sentinels=frozenset({ROOT_SENTINEL}),
    )
    first_human = next((m.content for m in tree.messages if m.role == "user" and m.content), "")
    title = name or title_from(first_human)
    created = created or min(m.timestamp for m in messages)
    fields = {k: v for k, v in conv.items() if k != "chat_messages"}
    metadata: dict[str, Any] = {"source_fields": fields}
    if conv.get("is_starred") is not None:
        metadata["pinned"] = bool(conv.get("is_starred"))
    if conv.get("model"):
        metadata["model"] = conv["model"]
    return conversation(
        FORMAT,
        source_id,
        title=title,
        created=created,
        updated=updated,
        tree=tree,
        raw=conv,
        metadata=metadata,
        problems=problems,
        file=file,
    )


def _message(source_id: str, index: int, raw: dict[str, Any], fallback: Any) -> Message:
    sender = as_str(raw.get("sender"))
    texts: list[str] = []
    reasoning: list[str] = []
    blocks: list[Any] = []
    attachments: list[Any] = [a for a in as_list(raw.get("attachments"))]
    citations: list[Any] = []
    for block in as_list(raw.get("content")):
        kind = as_str(as_dict(block).get("type"))
        if kind == "text":
            texts.append(as_str(block.get("text")))
            citations.extend(as_list(block.get("citations")))
        elif kind == "thinking":
            reasoning.append(as_str(block.get("thinking")))
            blocks.append(block)
        elif kind == "image":
            attachments.append(block)
        else:
            blocks.append(block)  # tool_use, tool_result, and blocks we do not know yet
    attachments.extend(as_list(raw.get("files")))
    text = "\n\n".join(t for t in texts if t) or as_str(raw.get("text"))
    meta: dict[str, Any] = {}
    if reasoning:
        meta["reasoning"] = "\n\n".join(r for r in reasoning if r)
    if blocks:
        meta["content_blocks"] = blocks
    if citations:
        meta["citations"] = citations
    rest = {k: v for k, v in raw.items() if k not in _MESSAGE_KNOWN}
    if rest:
        meta["source_fields"] = rest
    message_id = as_str(raw.get("uuid")) or content_id(source_id, index, sender, text)
    return Message(
        message_id=message_id,
        role=ROLES.get(sender, sender or "unknown"),
        content=text,
        timestamp=from_iso(raw.get("created_at")) or fallback,
        attachments=attachments,
        metadata=meta,
    )
