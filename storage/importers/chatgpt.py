"""ChatGPT data export: ``conversations.json`` (or split ``conversations-000.json`` …).

Each conversation's ``mapping`` is a tree of nodes (``parent``, ``children``, ``message``); the
active path runs from ``current_node`` up to the root. Every branch is kept (``parent_id`` on
messages, ``active_leaf_id`` on the session). Nodes without a message (the root) are not stored;
their children hang from the nearest ancestor that has one. Hidden nodes (weight 0, visually
hidden, editable context) are stored with ``metadata.hidden`` so views can leave them out.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
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
)
from storage.importers.tree import build_tree
from storage.models import Message

FORMAT = "chatgpt"
HIDDEN_CONTENT = frozenset({"user_editable_context", "model_editable_context"})
_ASSET_ID = re.compile(r"^(file[-_][A-Za-z0-9]+)")
# Message fields turned into Message fields or metadata of their own.
_MESSAGE_KNOWN = frozenset(
    {"id", "author", "create_time", "content", "status", "weight", "metadata", "recipient"}
)


@dataclass
class Context:
    file: str = ""
    assets: dict[str, str] = field(default_factory=dict)  # "file-abc" → member name


def matches(item: Any) -> bool:
    return isinstance(item, dict) and isinstance(item.get("mapping"), dict)


def asset_index(names: list[str]) -> dict[str, str]:
    """Files of a ChatGPT ZIP by their asset id (``file-abc…-name.png`` → ``file-abc…``)."""
    found: dict[str, str] = {}
    for name in names:
        base = name.rsplit("/", 1)[-1]
        m = _ASSET_ID.match(base)
        if m:
            found.setdefault(m.group(1), name)
    return found


def convert(item: Any, ctx: Context) -> Conversation | ConversationResult:
    conv = as_dict(item)
    title = as_str(conv.get("title"))
    source_id = as_str(conv.get("conversation_id")) or as_str(conv.get("id"))
    if not source_id:
        source_id = content_id(FORMAT, title, conv.get("create_time"))
    mapping = conv.get("mapping")
    if not isinstance(mapping, dict):
        reason = "entry has no 'mapping' (no messages)"
        return ConversationResult(source_id, None, title, 0, "skipped", reason, 0, ctx.file)
    created = from_epoch(conv.get("create_time"))
    updated = from_epoch(conv.get("update_time")) or created
    problems: list[str] = []
    structural: dict[str, str | None] = {}  # nodes without a message → their parent
    raw_parents: dict[str, str | None] = {}
    messages: list[Message] = []
    times: dict[str, dt.datetime | None] = {}
    session_meta: dict[str, Any] = {}
    for node_id, node_value in mapping.items():
        node = as_dict(node_value)
        parent = node.get("parent") if isinstance(node.get("parent"), str) else None
        message = node.get("message")
        if not isinstance(message, dict):
            structural[node_id] = parent
            continue
        raw_parents[node_id] = parent
        times[node_id] = from_epoch(message.get("create_time"))
        converted, context = _message(node_id, message, ctx)
        if context is not None:
            session_meta.setdefault("user_context", {}).update(context)
        messages.append(converted)
    if not messages:
        reason = "conversation has no messages"
        return ConversationResult(source_id, None, title, 0, "skipped", reason, 0, ctx.file)
    parents = {mid: _lift(p, structural) for mid, p in raw_parents.items()}
    fallback = created or updated or _earliest(times) or EPOCH
    resolved = _fill_times(times, parents, fallback)
    messages = [m.model_copy(update={"timestamp": resolved[m.message_id]}) for m in messages]
    current = conv.get("current_node") if isinstance(conv.get("current_node"), str) else None
    current = _lift(current, structural) if current in structural else current
    tree = build_tree(messages, parents, current)
    created = created or (min(resolved.values()) if resolved else fallback)
    fields = {k: v for k, v in conv.items() if k != "mapping"}
    metadata = {
        "pinned": bool(conv.get("is_starred")),
        "archived": bool(conv.get("is_archived")),
        **({"model": conv["default_model_slug"]} if conv.get("default_model_slug") else {}),
        **session_meta,
        "source_fields": fields,
    }
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
        file=ctx.file,
    )


def _lift(parent: str | None, structural: dict[str, str | None]) -> str | None:
    """Skip up over nodes without a message."""
    seen: set[str] = set()
    while parent is not None and parent in structural and parent not in seen:
        seen.add(parent)
        parent = structural[parent]
    return None if parent in seen else parent


def _earliest(times: dict[str, dt.datetime | None]) -> dt.datetime | None:
    known = [t for t in times.values() if t is not None]
    return min(known) if known else None


def _fill_times(
    times: dict[str, dt.datetime | None], parents: dict[str, str | None], fallback: dt.datetime
) -> dict[str, dt.datetime]:
    """A message without a time takes its nearest timed ancestor's, else the conversation's."""
    resolved: dict[str, dt.datetime] = {}
    for mid in times:
        chain: list[str] = []
        node: str | None = mid
        found: dt.datetime | None = None
        seen: set[str] = set()
        while node is not None and node in times and node not in seen:
            if node in resolved:
                found = resolved[node]
                break
            seen.add(node)
            if times[node] is not None:
                found = times[node]
                break
            chain.append(node)
            node = parents.get(node)
        value = found or fallback
        for link in chain:
            resolved[link] = value
        if mid not in resolved:
            resolved[mid] = times[mid] or value
    return resolved


def _message(
    node_id: str, message: dict[str, Any], ctx: Context
) -> tuple[Message, dict[str, Any] | None]:
    author = as_dict(message.get("author"))
    content = as_dict(message.get("content"))
    content_type = as_str(content.get("content_type")) or "text"
    text, attachments, extra = _content(content_type, content, ctx)
    source_meta = as_dict(message.get("metadata"))
    weight = message.get("weight")
    hidden = (
        weight == 0
        or bool(source_meta.get("is_visually_hidden_from_conversation"))
        or content_type in HIDDEN_CONTENT
    )
    meta: dict[str, Any] = {"content_type": content_type}
    if hidden:
        meta["hidden"] = True
    if source_meta.get("model_slug"):
        meta["model"] = source_meta["model_slug"]
    for key in ("status", "recipient"):
        if message.get(key) is not None and message.get(key) != "all":
            meta[key] = message[key]
    if weight is not None:
        meta["weight"] = weight
    if author.get("name"):
        meta["author_name"] = author["name"]
    meta.update(extra)
    if source_meta:
        meta["source_metadata"] = source_meta
    rest = {k: v for k, v in message.items() if k not in _MESSAGE_KNOWN and v is not None}
    if rest:
        meta["source_fields"] = rest
    role = as_str(author.get("role")) or "unknown"
    context = extra.get("context") if content_type in HIDDEN_CONTENT else None
    record = Message(
        message_id=node_id,
        role=role,
        content=text,
        timestamp=EPOCH,  # filled in once every node's time is known
        attachments=attachments,
        metadata=meta,
    )
    return record, context


def _content(
    content_type: str, content: dict[str, Any], ctx: Context
) -> tuple[str, list[Any], dict[str, Any]]:
    """(text, attachments, metadata) of one message's content; fields we do not turn into
    text are kept in metadata."""
    attachments: list[Any] = []
    extra: dict[str, Any] = {}
    used = {"content_type"}
    if content_type in ("text", "multimodal_text"):
        used.add("parts")
        texts = []
        for part in as_list(content.get("parts")):
            if isinstance(part, str):
                texts.append(part)
            elif isinstance(part, dict):
                if part.get("content_type") == "audio_transcription" and part.get("text"):
                    texts.append(as_str(part.get("text")))
                attachments.append(_attachment(part, ctx))
        text = "\n".join(texts)
    elif content_type in ("code", "execution_output", "system_error"):
        used.add("text")
        text = as_str(content.get("text"))
    elif content_type == "tether_browsing_display":
        used.add("result")
        text = as_str(content.get("result"))
    elif content_type == "tether_quote":
        used.add("text")
        text = as_str(content.get("text"))
    elif content_type == "thoughts":
        used.add("thoughts")
        thoughts = [as_dict(t) for t in as_list(content.get("thoughts"))]
        text = "\n\n".join(
            "\n".join(x for x in (as_str(t.get("summary")), as_str(t.get("content"))) if x)
            for t in thoughts
        )
        extra["reasoning"] = True
        extra["thoughts"] = thoughts
    elif content_type == "reasoning_recap":
        used.add("content")
        text = as_str(content.get("content"))
        extra["reasoning"] = True
    elif content_type in HIDDEN_CONTENT:
        text = ""
        extra["context"] = {k: v for k, v in content.items() if k != "content_type"}
        used.update(extra["context"])
    else:
        # An unknown type: its string parts (if any) are the text; everything is kept.
        used.add("parts")
        text = "\n".join(p for p in as_list(content.get("parts")) if isinstance(p, str))
        text = text or as_str(content.get("text"))
        used.add("text")
    rest = {k: v for k, v in content.items() if k not in used}
    if rest:
        extra["content_fields"] = rest
    return text, attachments, extra


def _attachment(part: dict[str, Any], ctx: Context) -> dict[str, Any]:
    kind = as_str(part.get("content_type"))
    record = dict(part)
    if kind.endswith("asset_pointer"):
        record["type"] = "image" if kind.startswith("image") else kind.removesuffix("_pointer")
        pointer = as_str(part.get("asset_pointer"))
        asset = pointer.rsplit("/", 1)[-1]
        m = _ASSET_ID.match(asset)
        if m and m.group(1) in ctx.assets:
            record["export_file"] = ctx.assets[m.group(1)]
    return record
