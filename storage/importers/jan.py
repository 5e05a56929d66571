"""Jan data folder: ``threads/<id>/thread.json`` + ``threads/<id>/messages.jsonl``, and
``assistants/<id>/assistant.json`` (which become the user's personas).

Message content is a list of blocks (``{"type": "text", "text": {"value": …}}``); times are
epoch seconds or milliseconds (values above 10^11 are milliseconds). Jan has no branches.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from storage.errors import InvalidIdError
from storage.ids import validate_id
from storage.importers.model import (
    EPOCH,
    Conversation,
    ConversationResult,
    PersonaImport,
    as_dict,
    as_list,
    as_str,
    content_id,
    conversation,
    from_epoch,
    title_from,
)
from storage.importers.sources import Entry, read_json_entry, read_jsonl_entry
from storage.importers.tree import build_tree, dedupe, linear_parents
from storage.models import Message

FORMAT = "jan"
_THREAD = re.compile(r"^(?P<root>(?:.*/)?)threads/(?P<tid>[^/]+)/thread\.json$")
_ASSISTANT = re.compile(r"^(?:.*/)?assistants/(?P<aid>[^/]+)/assistant\.json$")
_MESSAGE_KNOWN = frozenset({"id", "role", "content", "created_at", "created", "thread_id"})


@dataclass(frozen=True)
class Thread:
    thread: Entry
    messages: Entry | None

    @property
    def size(self) -> int:
        return self.thread.size + (self.messages.size if self.messages else 0)


def find(entries: list[Entry]) -> tuple[list[Thread], list[Entry]]:
    """The threads and assistants of a Jan data folder, if the entries hold one."""
    by_name = {e.name: e for e in entries}
    threads = []
    for entry in entries:
        m = _THREAD.match(entry.name)
        if m:
            messages = by_name.get(f"{m.group('root')}threads/{m.group('tid')}/messages.jsonl")
            threads.append(Thread(entry, messages))
    assistants = [e for e in entries if _ASSISTANT.match(e.name)] if threads else []
    return threads, assistants


def claimed(threads: list[Thread], assistants: list[Entry]) -> set[str]:
    names = {t.thread.name for t in threads} | {e.name for e in assistants}
    return names | {t.messages.name for t in threads if t.messages}


def convert(thread: Thread) -> Conversation | ConversationResult:
    info = as_dict(read_json_entry(thread.thread))
    tid = as_str(info.get("id")) or thread.thread.name.rsplit("/", 2)[-2]
    title = as_str(info.get("title"))
    problems: list[str] = []
    lines = read_jsonl_entry(thread.messages, problems) if thread.messages else []
    if not lines:
        return ConversationResult(
            tid, None, title, 0, "skipped", "thread has no messages", 0, thread.thread.display
        )
    created = from_epoch(info.get("created"))
    updated = from_epoch(info.get("updated")) or created
    messages: list[Message] = []
    previous_time = created or EPOCH
    for index, raw in enumerate(lines):
        message = _message(tid, index, as_dict(raw), previous_time)
        previous_time = message.timestamp
        messages.append(message)
    messages = dedupe(messages, problems)
    tree = build_tree(messages, linear_parents(messages), None)
    created = created or min(m.timestamp for m in messages)
    if not title:
        title = title_from(next((m.content for m in messages if m.role == "user"), ""))
    assistants = [as_dict(a) for a in as_list(info.get("assistants"))]
    metadata: dict[str, Any] = {"source_fields": {k: v for k, v in info.items()}}
    if assistants:
        metadata["participants"] = [as_str(a.get("assistant_id")) for a in assistants]
        model = as_dict(assistants[0].get("model")).get("id")
        if model:
            metadata["model"] = model
    return conversation(
        FORMAT,
        tid,
        title=title,
        created=created,
        updated=updated,
        tree=tree,
        raw={"thread": info, "messages": lines},
        metadata=metadata,
        problems=problems,
        file=thread.thread.display,
    )


def _message(thread_id: str, index: int, raw: dict[str, Any], fallback: Any) -> Message:
    role = as_str(raw.get("role")) or "unknown"
    texts: list[str] = []
    attachments: list[Any] = []
    blocks = raw.get("content")
    if isinstance(blocks, str):
        texts.append(blocks)
    for block in as_list(blocks):
        b = as_dict(block)
        if b.get("type") == "text":
            text = b.get("text")
            value = as_dict(text).get("value") if isinstance(text, dict) else text
            texts.append(as_str(value))
        else:
            attachments.append(block)  # images, files, blocks we do not know
    meta: dict[str, Any] = {}
    if raw.get("assistant_id"):
        meta["persona_id"] = raw["assistant_id"]
    rest = {k: v for k, v in raw.items() if k not in _MESSAGE_KNOWN}
    if rest:
        meta["source_fields"] = rest
    when = from_epoch(raw.get("created_at")) or from_epoch(raw.get("created")) or fallback
    content = "\n\n".join(t for t in texts if t)
    return Message(
        message_id=as_str(raw.get("id")) or content_id(thread_id, index, role, content),
        role=role,
        content=content,
        timestamp=when,
        attachments=attachments,
        metadata=meta,
    )


def persona(entry: Entry) -> PersonaImport:
    raw = as_dict(read_json_entry(entry))
    aid = as_str(raw.get("id")) or entry.name.rsplit("/", 2)[-2]
    try:
        persona_id = validate_id(aid, "persona")
    except InvalidIdError:
        persona_id = content_id(FORMAT, aid)
    record: dict[str, Any] = {
        "id": persona_id,
        "name": as_str(raw.get("name")) or aid,
        "description": as_str(raw.get("description")),
        "metadata": {
            "source": {"format": FORMAT, "id": aid},
            **{k: v for k, v in raw.items() if k not in ("id", "name", "description")},
        },
    }
    created = from_epoch(raw.get("created_at"))
    if created is not None:
        record["created_at"] = created.isoformat()
        record["updated_at"] = created.isoformat()
    return PersonaImport(aid, record)
