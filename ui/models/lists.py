"""The sidebar's list models: users, sessions (paged), panels, documents, personas."""

from __future__ import annotations

import asyncio
import enum
import logging
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any

from PySide6.QtCore import (
    QModelIndex,
    QObject,
    QSortFilterProxyModel,
    Qt,
    Signal,
)

from storage import Archive, DocumentRecord, Persona, Session, StorageError, UserProfile
from ui.models.base import Index, RecordListModel
from ui.models.format import badge, size, when
from ui.tasks import loop_running

log = logging.getLogger(__name__)
USER_ROLE = int(Qt.ItemDataRole.UserRole)
SESSION_PAGE = 200


# ---------------------------------------------------------------- users
class UserRoles(enum.IntEnum):
    RECORD = USER_ROLE + 1
    USER_ID = enum.auto()


class UserListModel(RecordListModel[UserProfile]):
    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(lambda u: u.user_id, parent)

    def role_data(self, record: UserProfile, role: int) -> Any:
        if role == Qt.ItemDataRole.DisplayRole:
            return record.display_name
        if role == Qt.ItemDataRole.ToolTipRole:
            return f"{record.display_name} ({record.user_id})"
        if role == UserRoles.RECORD:
            return record
        if role == UserRoles.USER_ID:
            return record.user_id
        return None


# ---------------------------------------------------------------- sessions
@dataclass
class ListingDiff:
    """How a fresh session listing differs from the loaded rows."""

    removed: set[str] = field(default_factory=set)
    changed: dict[str, Session] = field(default_factory=dict)  # by session id
    new: list[Session] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.removed or self.changed or self.new)


class SessionRoles(enum.IntEnum):
    RECORD = USER_ROLE + 1
    SESSION_ID = enum.auto()
    TITLE = enum.auto()
    UPDATED_AT = enum.auto()
    MESSAGE_COUNT = enum.auto()
    PINNED = enum.auto()
    TAGS = enum.auto()
    SOURCE = enum.auto()
    SESSION_TYPE = enum.auto()


def is_pinned(session: Session) -> bool:
    return bool(session.metadata.get("pinned"))


def tags_of(session: Session) -> list[str]:
    tags = session.metadata.get("tags") or []
    return [str(t) for t in tags] if isinstance(tags, list) else []


def session_title(session: Session) -> str:
    return session.title or "(untitled)"


class SessionListModel(RecordListModel[Session]):
    """A user's sessions, newest activity first, fetched a page at a time as the view scrolls."""

    load_failed = Signal(object)
    page_loaded = Signal()

    def __init__(
        self,
        parent: QObject | None = None,
        page_size: int = SESSION_PAGE,
        session_type: str | None = None,
    ) -> None:
        super().__init__(lambda s: s.session_id, parent)
        self._type = session_type
        self._archive: Archive | None = None
        self._user: str | None = None
        self._page = page_size
        self._exhausted = True
        self._fetching = False
        self._generation = 0
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def user_id(self) -> str | None:
        return self._user

    def set_source(self, archive: Archive | None, user_id: str | None) -> None:
        self._generation += 1
        self._archive, self._user = archive, user_id
        self._exhausted = archive is None or user_id is None
        self._fetching = False
        self.reset([])

    async def load(self) -> None:
        """The first page (after :meth:`set_source`)."""
        await self.fetch_page()

    def canFetchMore(self, parent: Index = QModelIndex()) -> bool:  # noqa: B008
        return not parent.isValid() and not self._exhausted and not self._fetching

    def fetchMore(self, parent: Index = QModelIndex()) -> None:  # noqa: B008
        if not self.canFetchMore(parent) or not loop_running():  # (a view asks in shutdown)
            return
        task = asyncio.ensure_future(self.fetch_page())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def fetch_page(self) -> None:
        if self._archive is None or self._user is None or self._exhausted or self._fetching:
            return
        generation = self._generation
        self._fetching = True
        try:
            page = await self._archive.list_sessions(
                self._user, self._page, len(self._rows), session_type=self._type
            )
        except StorageError as exc:
            if generation == self._generation:
                self._exhausted = True
                self._fetching = False
                self.load_failed.emit(exc)
            return
        except Exception:  # a bug: to the excepthook, the list stays usable
            self._fetching = False
            sys.excepthook(*sys.exc_info())
            return
        if generation != self._generation:
            return  # the user or archive changed while we waited
        self._fetching = False
        self._exhausted = len(page) < self._page
        known = {s.session_id for s in self._rows}
        self.append([s for s in page if s.session_id not in known])
        self.page_loaded.emit()

    def apply_listing(self, sessions: Iterable[Session]) -> None:
        """Bring the loaded rows in line with a fresh full listing (external changes)."""
        self.apply_diff(self.diff_listing(sessions))

    def diff_listing(self, sessions: Iterable[Session]) -> ListingDiff:
        """What :meth:`apply_diff` must change to match a full listing. Reads a snapshot of
        the rows only, so it may run in a worker thread (comparing 10,000 sessions is too
        slow for the GUI thread); rows changed meanwhile are checked again when applied."""
        rows = tuple(self._rows)  # the list may grow on the GUI thread meanwhile
        exhausted = self._exhausted
        fresh = {
            s.session_id: s for s in sessions if self._type is None or s.session_type == self._type
        }
        shown = {s.session_id: s for s in rows}
        oldest = min((s.updated_at for s in rows), default=None)
        diff = ListingDiff(removed={sid for sid in shown if sid not in fresh})
        for sid, session in fresh.items():
            known = shown.get(sid)
            if known is not None:
                if known is not session and known != session:
                    diff.changed[sid] = session
            elif exhausted or oldest is None or session.updated_at >= oldest:
                diff.new.append(session)
        return diff

    def diff_changed(self, sessions: Iterable[Session]) -> ListingDiff:
        """What :meth:`apply_diff` must change for these sessions (some of the user's, just
        written): known rows are replaced, new ones added where the loaded pages reach."""
        rows = {s.session_id: s for s in self._rows}
        oldest = min((s.updated_at for s in self._rows), default=None)
        diff = ListingDiff()
        for session in sessions:
            if self._type is not None and session.session_type != self._type:
                continue
            known = rows.get(session.session_id)
            if known is not None:
                if known != session:
                    diff.changed[session.session_id] = session
            elif self._exhausted or oldest is None or session.updated_at >= oldest:
                diff.new.append(session)
        return diff

    def apply_diff(self, diff: ListingDiff) -> None:
        """Apply a :meth:`diff_listing` result: only the rows that differ are touched."""
        if not diff:
            return
        if diff.removed:
            for n in reversed(range(len(self._rows))):
                if self._rows[n].session_id in diff.removed:
                    self.remove(n)
        rows = {s.session_id: n for n, s in enumerate(self._rows)}  # O(1) lookups: 10,000 rows
        for sid, session in diff.changed.items():
            row = rows.get(sid)
            if row is not None:
                self.replace(row, session)
        self.insert(0, [s for s in diff.new if s.session_id not in rows])

    def role_data(self, record: Session, role: int) -> Any:
        if role == Qt.ItemDataRole.DisplayRole:
            pin = "📌 " if is_pinned(record) else ""
            bits = [when(record.updated_at), f"{record.message_count} messages"]
            if record.source:
                bits.append(record.source)
            if tags_of(record):
                bits.append(" ".join(f"#{t}" for t in tags_of(record)))
            return f"{pin}{session_title(record)}\n{' · '.join(bits)}"
        if role == Qt.ItemDataRole.ToolTipRole:
            return f"{session_title(record)}\n{record.session_id}"
        if role == Qt.ItemDataRole.DecorationRole:
            return badge(record.source or record.session_type)
        return {
            SessionRoles.RECORD: record,
            SessionRoles.SESSION_ID: record.session_id,
            SessionRoles.TITLE: session_title(record),
            SessionRoles.UPDATED_AT: record.updated_at,
            SessionRoles.MESSAGE_COUNT: record.message_count,
            SessionRoles.PINNED: is_pinned(record),
            SessionRoles.TAGS: tags_of(record),
            SessionRoles.SOURCE: record.source,
            SessionRoles.SESSION_TYPE: record.session_type,
        }.get(role)  # type: ignore[call-overload]


class SessionFilterProxy(QSortFilterProxyModel):
    """Pinned first, then newest activity; a filter over title, tags and source; panels are
    listed on their own tab."""

    def __init__(self, parent: QObject | None = None, *, panels: bool = False) -> None:
        super().__init__(parent)
        self._panels = panels
        self._needle = ""
        self.setDynamicSortFilter(True)
        self.sort(0, Qt.SortOrder.AscendingOrder)

    def set_filter_text(self, text: str) -> None:
        self.beginFilterChange()
        self._needle = text.strip().casefold()
        self.endFilterChange(QSortFilterProxyModel.Direction.Rows)

    def filterAcceptsRow(self, source_row: int, source_parent: Index) -> bool:
        model = self.sourceModel()
        session = model.data(model.index(source_row, 0, source_parent), SessionRoles.RECORD)
        if not isinstance(session, Session) or session.is_panel != self._panels:
            return False
        if not self._needle:
            return True
        haystack = " ".join([session.title, session.session_id, session.source, *tags_of(session)])
        return all(word in haystack.casefold() for word in self._needle.split())

    def lessThan(self, left: Index, right: Index) -> bool:
        a = left.data(SessionRoles.RECORD)
        b = right.data(SessionRoles.RECORD)
        if not isinstance(a, Session) or not isinstance(b, Session):
            return False
        return (not is_pinned(a), _neg(a), a.session_id) < (not is_pinned(b), _neg(b), b.session_id)


def _neg(session: Session) -> float:
    return -session.updated_at.timestamp()


# ---------------------------------------------------------------- documents
class DocumentRoles(enum.IntEnum):
    RECORD = USER_ROLE + 1
    DOC_ID = enum.auto()
    NAME = enum.auto()
    MIME_TYPE = enum.auto()
    SIZE = enum.auto()
    PAGES = enum.auto()
    UPLOADED_AT = enum.auto()


def document_name(record: DocumentRecord) -> str:
    return record.original_name or record.filename or record.doc_id


class DocumentListModel(RecordListModel[DocumentRecord]):
    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(lambda d: d.doc_id, parent)

    def role_data(self, record: DocumentRecord, role: int) -> Any:
        pages = record.analysis.get("pages")
        if role == Qt.ItemDataRole.DisplayRole:
            bits = [document_kind(record), size(record.size)]
            if pages:
                bits.append(f"{pages} pages")
            bits.append(f"added {when(record.uploaded_at)}")
            return f"{document_name(record)}\n{' · '.join(bits)}"
        if role == Qt.ItemDataRole.ToolTipRole:
            return f"{document_name(record)}\n{record.doc_id}\n{record.mime_type}"
        if role == Qt.ItemDataRole.DecorationRole:
            return badge(document_kind(record) or "doc", "#64748b")
        return {
            DocumentRoles.RECORD: record,
            DocumentRoles.DOC_ID: record.doc_id,
            DocumentRoles.NAME: document_name(record),
            DocumentRoles.MIME_TYPE: record.mime_type,
            DocumentRoles.SIZE: record.size,
            DocumentRoles.PAGES: pages,
            DocumentRoles.UPLOADED_AT: record.uploaded_at,
        }.get(role)  # type: ignore[call-overload]


def document_kind(record: DocumentRecord) -> str:
    """A short type a person knows (PDF, DOCX, CSV), not a MIME subtype such as
    ``vnd.openxmlformats-officedocument.wordprocessingml.document``."""
    suffix = PurePath(document_name(record)).suffix.lstrip(".")
    if 0 < len(suffix) <= 5 and suffix.isalnum():
        return suffix.upper()
    subtype = record.mime_type.rpartition("/")[2]
    return subtype if len(subtype) <= 12 else "file"


class DocumentTableModel(DocumentListModel):
    """The Documents tab: name, type, size, pages, added (the roles as in the list)."""

    columns = ("Name", "Type", "Size", "Pages", "Added")

    def role_data(self, record: DocumentRecord, role: int) -> Any:
        if role == Qt.ItemDataRole.DisplayRole:
            return document_name(record)
        return super().role_data(record, role)

    def cell(self, record: DocumentRecord, column: int, role: int) -> Any:
        if role == Qt.ItemDataRole.TextAlignmentRole and column in (2, 3):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.ToolTipRole:
            return super().role_data(record, role)
        if role != Qt.ItemDataRole.DisplayRole:
            return None
        pages = record.analysis.get("pages")
        return (
            None,
            document_kind(record),
            size(record.size),
            str(pages) if pages else "",
            when(record.uploaded_at),
        )[column]


# ---------------------------------------------------------------- personas
class PersonaRoles(enum.IntEnum):
    RECORD = USER_ROLE + 1
    PERSONA_ID = enum.auto()
    NAME = enum.auto()
    IS_GLOBAL = enum.auto()


def persona_name(persona: Persona) -> str:
    return persona.name or persona.id


class PersonaListModel(RecordListModel[Persona]):
    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(lambda p: p.id, parent)

    def names(self) -> dict[str, str]:
        return {p.id: persona_name(p) for p in self._rows}

    def role_data(self, record: Persona, role: int) -> Any:
        if role == Qt.ItemDataRole.DisplayRole:
            scope = "global" if record.is_global else "yours"
            summary = record.description.splitlines()[0] if record.description else ""
            if len(summary) > 70:
                summary = summary[:69] + "…"
            return f"{persona_name(record)}  ({scope})\n{summary}"
        if role == Qt.ItemDataRole.ToolTipRole:
            return record.description or persona_name(record)
        if role == Qt.ItemDataRole.DecorationRole:
            return badge(persona_name(record))
        return {
            PersonaRoles.RECORD: record,
            PersonaRoles.PERSONA_ID: record.id,
            PersonaRoles.NAME: persona_name(record),
            PersonaRoles.IS_GLOBAL: record.is_global,
        }.get(role)  # type: ignore[call-overload]


__all__ = [
    "DocumentListModel",
    "DocumentRoles",
    "DocumentTableModel",
    "PersonaListModel",
    "PersonaRoles",
    "SessionFilterProxy",
    "SessionListModel",
    "SessionRoles",
    "UserListModel",
    "UserRoles",
]
