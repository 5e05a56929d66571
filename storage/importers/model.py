"""What every format's reader produces, and the import report.

A reader turns one source conversation into a :class:`Conversation`: a session's worth of
messages in parents-first order, each with an explicit ``parent_id`` (except roots), plus the raw
source to keep. The writer stores it idempotently; the report records what happened to each.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from storage.errors import InvalidIdError, StorageError
from storage.ids import MAX_ID_LENGTH, validate_session_id
from storage.importers.tree import TreeResult
from storage.models import Message, utcnow

Status = Literal["imported", "updated", "skipped", "failed"]
STATUSES: tuple[Status, ...] = ("imported", "updated", "skipped", "failed")
_UNSAFE = re.compile(r"[^A-Za-z0-9_.\-]")
# Epoch values above this are milliseconds (10^11 s is the year 5138).
MILLISECONDS_ABOVE = 10**11
# The time of a message whose source gives none and has no neighbour or conversation time.
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


class ConversionError(StorageError):
    """One conversation (or record) of an export that does not have the shape its format
    needs; the conversation is reported as failed and the import goes on."""


@dataclass
class Conversation:
    """One source conversation, converted; ``messages`` are parents-first."""

    format: str
    source_id: str
    session_id: str
    title: str
    created_at: dt.datetime
    updated_at: dt.datetime
    messages: list[Message]
    raw: Any  # the source conversation, kept compressed under the session
    active_leaf_id: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    file: str = ""  # the export file it came from
    session_type: str = "chat"
    context: dict[str, Any] | None = None  # situational context (flat-file archives)
    context_history: list[dict[str, Any]] = field(default_factory=list)  # earlier snapshots
    documents: list[tuple[Any, dict[str, Any]]] = field(default_factory=list)  # (Entry, record)


@dataclass
class PersonaImport:
    """A persona the export defines (Jan assistants)."""

    source_id: str
    record: dict[str, Any]


@dataclass
class ConversationResult:
    source_id: str
    session_id: str | None
    title: str
    messages: int
    status: Status
    reason: str = ""
    added: int = 0  # messages written by this run
    file: str = ""
    problems: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "source_id": self.source_id,
            "session_id": self.session_id,
            "title": self.title,
            "messages": self.messages,
            "status": self.status,
            "reason": self.reason,
            "added": self.added,
            "file": self.file,
            "problems": self.problems,
        }


@dataclass
class ImportReport:
    source: str
    user_id: str
    format: str = ""
    dry_run: bool = False
    started_at: dt.datetime = field(default_factory=utcnow)
    finished_at: dt.datetime | None = None
    conversations: list[ConversationResult] = field(default_factory=list)
    personas: list[dict[str, Any]] = field(default_factory=list)
    ignored_files: list[str] = field(default_factory=list)
    cancelled: bool = False
    error: str | None = None
    report_path: str | None = None  # where the report was stored

    def count(self, status: Status) -> int:
        return sum(1 for c in self.conversations if c.status == status)

    @property
    def imported(self) -> int:
        return self.count("imported")

    @property
    def updated(self) -> int:
        return self.count("updated")

    @property
    def skipped(self) -> int:
        return self.count("skipped")

    @property
    def failed(self) -> int:
        return self.count("failed")

    @property
    def messages_added(self) -> int:
        return sum(c.added for c in self.conversations)

    def add(self, result: ConversationResult) -> None:
        self.conversations.append(result)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "imported": self.imported,
            "updated": self.updated,
            "skipped": self.skipped,
            "failed": self.failed,
            "messages_added": self.messages_added,
            "source": self.source,
            "user_id": self.user_id,
            "dry_run": self.dry_run,
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "cancelled": self.cancelled,
            "error": self.error,
            "report_path": self.report_path,
            "ignored_files": self.ignored_files,
            "personas": self.personas,
            "conversations": [c.to_dict() for c in self.conversations],
        }


def session_id_for(fmt: str, source_id: str) -> str:
    """A stable session id from the source's own id: ``<fmt>_<id>`` when that is a safe id,
    else ``<fmt>_h<hash of the id>`` (never a lossy rewrite that two ids could share)."""
    candidate = f"{fmt}_{source_id}"
    if len(candidate) <= MAX_ID_LENGTH and not _UNSAFE.search(source_id):
        try:
            return validate_session_id(candidate)
        except InvalidIdError:
            pass  # e.g. '..' inside the id: fall through to the hash
    digest = hashlib.sha256(source_id.encode()).hexdigest()[:32]
    return validate_session_id(f"{fmt}_h{digest}")


def content_id(*parts: object) -> str:
    """A stable id for a record the source gave none: a hash of what identifies it."""
    text = "\x1f".join(str(p) for p in parts)
    return "h" + hashlib.sha256(text.encode()).hexdigest()[:24]


def from_epoch(value: object) -> dt.datetime | None:
    """Epoch seconds (or milliseconds above 10^11) as an aware UTC time; None if absent."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    seconds = value / 1000 if value > MILLISECONDS_ABOVE else value
    try:
        return dt.datetime.fromtimestamp(seconds, dt.UTC)
    except (OverflowError, OSError, ValueError):
        return None  # out of range: treated as missing, the neighbour's time is used


def from_iso(value: object) -> dt.datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=dt.UTC)


def as_str(value: object) -> str:
    return value if isinstance(value, str) else ""


def as_dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def as_list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def title_from(text: str, limit: int = 80) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1].rstrip() + "…"


def conversation(
    fmt: str,
    source_id: str,
    *,
    title: str,
    created: dt.datetime,
    updated: dt.datetime | None,
    tree: TreeResult,
    raw: Any,
    metadata: dict[str, Any],
    problems: list[str],
    file: str,
) -> Conversation:
    """A :class:`Conversation` of an id-keyed format (the session id derives from the id)."""
    return Conversation(
        format=fmt,
        source_id=source_id,
        session_id=session_id_for(fmt, source_id),
        title=title,
        created_at=created,
        updated_at=max(updated or created, created),
        messages=tree.messages,
        raw=raw,
        active_leaf_id=tree.active_leaf_id,
        metadata=metadata,
        problems=[*problems, *tree.problems],
        file=file,
    )
