"""A session's messages: a window over the log that grows in both directions as the view
scrolls, or one branch of a branched conversation; plus in-conversation find."""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QModelIndex, QObject, Qt, Signal

from storage import Archive, Message, Session
from storage.errors import NotFoundError
from ui.models.base import Index, RecordListModel
from ui.models.format import when
from ui.tasks import loop_running

log = logging.getLogger(__name__)
PAGE = 100
# Message metadata keys whose text is shown collapsed (a model's reasoning, tool calls).
HIDDEN_KEYS = ("reasoning", "thinking", "reasoning_content", "tool_calls", "tool_call")
COLLAPSED_ROLES = frozenset({"tool", "function"})
ROLE_NAMES = {"user": "You", "assistant": "Assistant", "system": "System", "tool": "Tool"}


class MessageRoles(enum.IntEnum):
    RECORD = int(Qt.ItemDataRole.UserRole) + 1
    MESSAGE_ID = enum.auto()
    ROLE = enum.auto()
    AUTHOR = enum.auto()
    TIME = enum.auto()
    CONTENT = enum.auto()
    HIDDEN = enum.auto()  # collapsed text (reasoning, tool output), "" if none
    EXPANDED = enum.auto()
    ATTACHMENTS = enum.auto()  # list of display names
    FIND_TERM = enum.auto()  # the find term if this row matches it, else ""
    CURRENT_MATCH = enum.auto()  # which occurrence in this row is the current one, or -1
    TARGET = enum.auto()  # the message a search hit pointed at


@dataclass(frozen=True)
class Match:
    message_id: str
    occurrence: int


def hidden_text(message: Message) -> str:
    """The part of a message shown collapsed by default."""
    if message.role in COLLAPSED_ROLES:
        return message.content
    parts = []
    for key in HIDDEN_KEYS:
        value = message.metadata.get(key)
        if value:
            parts.append(value if isinstance(value, str) else repr(value))
    return "\n\n".join(parts)


def visible_text(message: Message) -> str:
    return "" if message.role in COLLAPSED_ROLES else message.content


def attachment_names(message: Message) -> list[str]:
    names = []
    for item in message.attachments:
        if isinstance(item, dict):
            name = item.get("name") or item.get("filename") or item.get("doc_id") or "attachment"
            names.append(str(name))
        else:
            names.append(str(item))
    return names


class MessageListModel(RecordListModel[Message]):
    """Rows are a contiguous slice ``[start, start + len(rows))`` of the session's messages (or
    the whole active branch). ``fetchMore`` loads newer messages, :meth:`fetch_older` older."""

    find_changed = Signal()

    def __init__(self, parent: QObject | None = None, page_size: int = PAGE) -> None:
        super().__init__(lambda m: m.message_id, parent)
        self._archive: Archive | None = None
        self.session: Session | None = None
        self._page = page_size
        self.total = 0
        self.start = 0
        self.branch_leaf: str | None = None  # set when showing one branch
        self._names: dict[str, str] = {}
        self._expanded: set[str] = set()
        self._fetching = False
        self._tasks: set[asyncio.Task[None]] = set()
        self.target_id: str | None = None
        self._term = ""
        self._matches: list[Match] = []
        self._current = -1

    # ------------------------------------------------------------ loading
    def clear(self) -> None:
        self._archive = self.session = None
        self.total = self.start = 0
        self.branch_leaf = self.target_id = None
        self._expanded.clear()
        self.reset([])
        self._recompute_matches()

    def set_names(self, names: dict[str, str]) -> None:
        self._names = dict(names)
        self.refresh_all()

    async def open(self, archive: Archive, session: Session, *, around: str | None = None) -> None:
        """Show ``session``: its newest page, or the page around message ``around``."""
        total = await archive.count_messages(session.user_id, session.session_id)
        start = max(0, total - self._page)
        if around is not None:
            position = await self._position_of(archive, session, around)
            if position is not None:
                start = max(0, min(position - self._page // 2, total - self._page))
        rows = await archive.get_messages(session.user_id, session.session_id, self._page, start)
        self._archive, self.session = archive, session
        self.total, self.start, self.branch_leaf = total, start, None
        self.target_id = around
        self._expanded.clear()
        self.reset(rows)
        self._recompute_matches()

    async def show_branch(self, leaf_id: str | None) -> None:
        """Show the path from the root to ``leaf_id`` (None: the session's active branch)."""
        if self._archive is None or self.session is None:
            return
        session = self.session
        rows = await self._archive.get_branch(session.user_id, session.session_id, leaf_id)
        if self.session is not session:
            return
        self.branch_leaf = rows[-1].message_id if rows else leaf_id
        self.total, self.start = len(rows), 0
        self.reset(rows)
        self._recompute_matches()

    @staticmethod
    async def _position_of(archive: Archive, session: Session, message_id: str) -> int | None:
        """Where the message is, without streaming the session (a hit in a huge session)."""
        try:
            return await archive.find_message(session.user_id, session.session_id, message_id)
        except NotFoundError:
            return None  # gone since it was indexed: show the newest page instead

    @property
    def has_older(self) -> bool:
        return self.branch_leaf is None and self.start > 0

    @property
    def has_newer(self) -> bool:
        return self.branch_leaf is None and self.start + len(self._rows) < self.total

    def canFetchMore(self, parent: Index = QModelIndex()) -> bool:  # noqa: B008
        return not parent.isValid() and self.has_newer and not self._fetching

    def fetchMore(self, parent: Index = QModelIndex()) -> None:  # noqa: B008
        if self.canFetchMore(parent) and loop_running():  # (a view asks in shutdown)
            task = asyncio.ensure_future(self.fetch_newer())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def fetch_newer(self) -> None:
        if self._archive is None or self.session is None or self._fetching or not self.has_newer:
            return
        session, end = self.session, self.start + len(self._rows)
        self._fetching = True
        try:
            rows = await self._archive.get_messages(
                session.user_id, session.session_id, self._page, end
            )
        finally:
            self._fetching = False
        if self.session is session and end == self.start + len(self._rows):
            self._add(len(self._rows), rows)

    async def fetch_older(self) -> int:
        """Load the page before the first row; returns how many rows were added."""
        if self._archive is None or self.session is None or self._fetching or not self.has_older:
            return 0
        session, start = self.session, self.start
        count = min(self._page, start)
        self._fetching = True
        try:
            rows = await self._archive.get_messages(
                session.user_id, session.session_id, count, self.total - start, from_end=True
            )
        finally:
            self._fetching = False
        if self.session is not session or start != self.start:
            return 0
        self.start = max(0, start - len(rows))
        return self._add(0, rows)

    async def sync_tail(self) -> None:
        """Messages were appended (by us or another process): count again, show new ones if
        the newest were on screen."""
        if self._archive is None or self.session is None:
            return
        session = self.session
        if self.branch_leaf is not None:
            leaves = await self._archive.list_leaves(session.user_id, session.session_id)
            if self.session is session:
                await self.show_branch(leaves[-1] if leaves else None)
            return
        at_end = not self.has_newer
        total = await self._archive.count_messages(session.user_id, session.session_id)
        if self.session is not session or total == self.total:
            return
        grew = total - self.total
        self.total = total
        if at_end and grew > 0:
            rows = await self._archive.get_messages(
                session.user_id, session.session_id, grew, 0, from_end=True
            )
            if self.session is session:
                self._add(len(self._rows), rows)
        elif grew < 0:  # rewritten shorter: start over at the end
            await self.open(self._archive, session)

    def _add(self, at: int, rows: Sequence[Message]) -> int:
        known = {m.message_id for m in self._rows}
        fresh = [m for m in rows if m.message_id not in known]
        self.insert(at, fresh)
        if self._term:
            self._recompute_matches()
        return len(fresh)

    # ------------------------------------------------------------ display
    def author(self, message: Message) -> str:
        persona = getattr(message, "persona_id", None)
        if persona:
            return self._names.get(str(persona), str(persona))
        if message.role in self._names:
            return self._names[message.role]
        name = ROLE_NAMES.get(message.role, message.role)
        model = message.metadata.get("model")
        return f"{name} · {model}" if model and message.role == "assistant" else name

    def role_data(self, record: Message, role: int) -> Any:
        if role == Qt.ItemDataRole.DisplayRole:
            return f"{self.author(record)}: {visible_text(record)}"
        if role == Qt.ItemDataRole.ToolTipRole:
            return record.timestamp.astimezone().strftime("%Y-%m-%d %H:%M:%S")
        if role == MessageRoles.FIND_TERM:
            return self._term if self._term and self._count_in(record) else ""
        if role == MessageRoles.CURRENT_MATCH:
            current = self.current_match
            return current.occurrence if current and current.message_id == record.message_id else -1
        return {
            MessageRoles.RECORD: record,
            MessageRoles.MESSAGE_ID: record.message_id,
            MessageRoles.ROLE: record.role,
            MessageRoles.AUTHOR: self.author(record),
            MessageRoles.TIME: when(record.timestamp),
            MessageRoles.CONTENT: visible_text(record),
            MessageRoles.HIDDEN: hidden_text(record),
            MessageRoles.EXPANDED: record.message_id in self._expanded,
            MessageRoles.ATTACHMENTS: attachment_names(record),
            MessageRoles.TARGET: record.message_id == self.target_id,
        }.get(role)  # type: ignore[call-overload]

    def toggle_expanded(self, row: int) -> None:
        record = self.record(row)
        if record is None or not hidden_text(record):
            return
        self._expanded ^= {record.message_id}
        self.replace(row, record)
        if self._term:
            self._recompute_matches()

    # ------------------------------------------------------------ find
    @property
    def find_term(self) -> str:
        return self._term

    @property
    def matches(self) -> list[Match]:
        return list(self._matches)

    @property
    def current_index(self) -> int:
        return self._current

    @property
    def current_match(self) -> Match | None:
        return self._matches[self._current] if 0 <= self._current < len(self._matches) else None

    def searchable_text(self, message: Message) -> str:
        text = visible_text(message)
        if message.message_id in self._expanded:
            text = hidden_text(message) + "\n" + text
        return text

    def _count_in(self, message: Message) -> int:
        return self.searchable_text(message).casefold().count(self._term.casefold())

    def set_find_term(self, term: str) -> None:
        self._term = term
        self._current = -1
        self._recompute_matches()
        if self._matches:
            self._current = len(self._matches) - 1  # the newest match first, like the view
        self.refresh_all()
        self.find_changed.emit()

    def step_match(self, forward: bool) -> int:
        """Move to the next (or previous) match; returns its row, or -1."""
        if not self._matches:
            return -1
        step = 1 if forward else -1
        self._current = (self._current + step) % len(self._matches)
        self.refresh_all()
        self.find_changed.emit()
        current = self._matches[self._current]
        return self.row_of(current.message_id)

    def _recompute_matches(self) -> None:
        current = self.current_match
        self._matches = []
        if self._term:
            for message in self._rows:
                for n in range(self._count_in(message)):
                    self._matches.append(Match(message.message_id, n))
        self._current = self._matches.index(current) if current in self._matches else -1
        self.find_changed.emit()
