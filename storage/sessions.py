"""Sessions (``users/<u>/<session_id>/session.json``) and their messages (``messages.jsonl``)."""

from __future__ import annotations

import datetime as dt
import errno
import heapq
import logging
import os
import shutil
import threading
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

import orjson

from storage.base import ArchiveBase, threaded
from storage.errors import AlreadyExistsError, CorruptRecordError, InvalidIdError, NotFoundError
from storage.events import MessagesAppended, MessagesRewritten, SessionChanged
from storage.files import fsync_dir, remove_tree, temp_path_for, write_error, write_model
from storage.ids import new_id, validate_session_id
from storage.jsonl import JsonlLog
from storage.layout import LEGACY_PERSONA_SUFFIX, MESSAGES, SESSION_JSON
from storage.models import Message, PanelMessage, Session, SessionType, utcnow
from storage.threads import run_blocking

log = logging.getLogger(__name__)

# A session.json field of ours: the byte size of messages.jsonl that message_count describes.
MESSAGES_BYTES = "messages_bytes"
SortKey = Literal["updated_at", "created_at", "title", "message_count"]
ITER_BATCH = 256


def _line_message_id(data: bytes) -> str | None:
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None  # not a record: it cannot be the message looked for
    found = value.get("message_id", value.get("id")) if isinstance(value, dict) else None
    return found if isinstance(found, str) else None


def _size(path: Path) -> int | None:
    try:
        return os.stat(path).st_size
    except FileNotFoundError:
        return None


def _session_type(value: str | SessionType) -> str:
    try:
        return SessionType(value).value
    except ValueError:
        known = ", ".join(t.value for t in SessionType)
        raise InvalidIdError("session type", value, f"must be one of {known}") from None


class SessionsMixin(ArchiveBase):
    # ------------------------------------------------------------ sessions
    @threaded
    def create_session(
        self,
        user_id: str,
        title: str = "",
        session_type: str | SessionType = SessionType.CHAT,
        *,
        metadata: dict[str, Any] | None = None,
        session_id: str | None = None,
        created_at: dt.datetime | None = None,
        updated_at: dt.datetime | None = None,
    ) -> Session:
        """Create a session with a time-sortable id unique across processes.

        ``created_at``/``updated_at`` default to now; importers pass the source's own times.
        """
        kind = _session_type(session_type)
        self._require_user(user_id)
        return self._create_session(
            user_id, title, kind, metadata or {}, session_id, created_at, updated_at
        )

    def _create_session(
        self,
        user_id: str,
        title: str,
        kind: str,
        metadata: dict[str, Any],
        session_id: str | None,
        created_at: dt.datetime | None = None,
        updated_at: dt.datetime | None = None,
    ) -> Session:
        if session_id is not None:
            validate_session_id(session_id)
        for _attempt in range(5):
            sid = session_id or new_id(f"{kind}_session")
            folder = self.layout.session_dir(user_id, sid)
            now = utcnow()
            session = Session(
                session_id=sid,
                user_id=user_id,
                title=title,
                session_type=kind,
                created_at=created_at or now,
                updated_at=updated_at or created_at or now,
                metadata=metadata,
            )
            with self.locks.session(user_id, sid):
                created = self._publish_session_folder(folder, session)
            if not created:
                if session_id is not None:
                    raise AlreadyExistsError("session", sid, folder.parent)
                continue  # two processes drew the same id: draw again
            self._emit(SessionChanged(user_id, sid))
            return session
        raise AlreadyExistsError("session", sid, folder.parent)

    def _publish_session_folder(self, folder: Path, session: Session) -> bool:
        """Create the session folder with its session.json in one atomic rename, so no
        reader (or a re-run after a crash) ever meets a session folder without session.json.
        An empty folder left by an older, interrupted create is taken over. False when a
        session with that id exists."""
        if (folder / SESSION_JSON).exists():
            return False
        staging = temp_path_for(folder)
        try:
            staging.mkdir()
            write_model(staging / SESSION_JSON, session)
            try:
                os.rename(staging, folder)  # replaces only an empty folder
            except OSError as exc:
                if exc.errno in (errno.EEXIST, errno.ENOTEMPTY):
                    return False
                raise
            fsync_dir(folder.parent)
        except OSError as exc:
            raise write_error(folder, exc) from exc
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
        self._session_cache.pop(str(folder / SESSION_JSON), None)
        return True

    @threaded
    def get_session(self, user_id: str, session_id: str) -> Session:
        return self._read_session(user_id, session_id)

    @threaded
    def get_sessions(self, user_id: str, session_ids: Sequence[str]) -> list[Session]:
        """Several sessions in one trip off the event loop (a job's change batch names
        hundreds), in the order asked; ids with no session (deleted meanwhile) are left out.
        Invalid ids raise InvalidIdError; a damaged session.json raises as in get_session."""
        found = []
        for session_id in session_ids:
            try:
                found.append(self._read_session(user_id, session_id))
            except NotFoundError:
                continue  # deleted after the change was announced: nothing to show
        return found

    @threaded
    def session_exists(self, user_id: str, session_id: str) -> bool:
        return self.layout.session_json(user_id, session_id).exists()

    @threaded
    def update_session(
        self,
        /,
        user_id: str,
        session_id: str,
        *,
        title: str | None = None,
        metadata: dict[str, Any] | None = None,
        touch: bool = True,
        **fields: Any,
    ) -> Session:
        """Change a session's title and fields; ``metadata`` is merged key by key.

        ``updated_at`` becomes now, unless ``touch`` is false (an importer keeping the source's
        times): then it is kept, or set from ``fields``.
        """
        for name in ("session_id", "user_id", "message_count"):
            if name in fields:
                raise ValueError(f"{name} cannot be changed with update_session")
        with self.locks.session(user_id, session_id):
            current = self._read_session(user_id, session_id)
            data = current.to_dict()
            if title is not None:
                data["title"] = title
            if metadata:
                data["metadata"] = {**current.metadata, **metadata}
            if "session_type" in fields:
                fields["session_type"] = _session_type(fields["session_type"])
            data.update(fields)
            if touch:
                data["updated_at"] = utcnow().isoformat()
            session = self._write_session(Session.model_validate(data))
        self._emit(SessionChanged(user_id, session_id))
        return session

    @threaded
    def list_sessions(
        self,
        user_id: str,
        limit: int | None = None,
        offset: int = 0,
        *,
        sort_by: SortKey = "updated_at",
        descending: bool = True,
        session_type: str | None = None,
    ) -> list[Session]:
        """Sessions of a user, newest activity first by default, paged."""
        sessions = self._all_sessions(user_id)
        if session_type is not None:
            sessions = [s for s in sessions if s.session_type == session_type]

        def key(s: Session) -> Any:
            value = getattr(s, sort_by)
            return (value.casefold() if isinstance(value, str) else value, s.session_id)

        if limit is not None and offset + limit < len(sessions) // 4:
            # A page from the top: a heap beats sorting 10,000 sessions for 50 of them.
            pick = heapq.nlargest if descending else heapq.nsmallest
            return pick(offset + limit, sessions, key=key)[offset:]
        sessions.sort(key=key, reverse=descending)
        return sessions[offset : None if limit is None else offset + limit]

    def _all_sessions(self, user_id: str) -> list[Session]:
        """Every readable session of the user. A corrupt session.json does not hide the
        others: it is logged and kept in :attr:`listing_problems` (``verify`` reports it).

        One listing of a user at a time: a window asks for sessions and panels at once, and
        two threads reading the same 10,000 files cold took twice as long as one reading them
        while the other waits, then finds them in the session cache (one stat each)."""
        with self._listing_lock(user_id):
            return self._all_sessions_locked(user_id)

    def _listing_lock(self, user_id: str) -> threading.Lock:
        locks: dict[str, threading.Lock] = self.__dict__.setdefault("_listing_locks", {})
        return locks.setdefault(user_id, threading.Lock())

    def _all_sessions_locked(self, user_id: str) -> list[Session]:
        folder = self._require_user(user_id)
        found = []
        problems: list[CorruptRecordError] = []
        with os.scandir(folder) as scan:
            entries = list(scan)
        for entry in entries:
            if entry.name.startswith(".") or not entry.is_dir(follow_symlinks=False):
                continue
            path = os.path.join(entry.path, SESSION_JSON)
            try:
                found.append(self._load_session_file(path, user_id, entry.name))
            except FileNotFoundError:
                continue  # documents/, personas/, or a folder being created or deleted
            except CorruptRecordError as exc:
                log.warning("skipping a session in the listing: %s", exc)
                problems.append(exc)
        self.listing_problems[user_id] = problems
        return found

    @threaded
    def find_message(self, user_id: str, session_id: str, message_id: str) -> int:
        """The position of a message in the session (what ``get_messages(offset=...)`` takes),
        found by scanning for its id and parsing only candidate lines."""
        session = self._read_session(user_id, session_id)
        log_ = self._log(session)
        merged = log_.legacy_merged()
        if merged is not None:  # the original system's per-persona copies: in time order
            for position, message in enumerate(merged):
                if message.message_id == message_id:
                    return position
        else:
            needle = orjson.dumps(message_id)
            position = 0
            for raw in log_.raw_forward():
                if not raw.data.strip():
                    continue
                if needle in raw.data and _line_message_id(raw.data) == message_id:
                    return position
                position += 1  # a bad line holds a position too, as in get_messages
        raise NotFoundError("message", message_id, f"session {session_id}")

    @threaded
    def delete_session(self, user_id: str, session_id: str) -> None:
        with self.locks.session(user_id, session_id):
            folder = self._session_path(user_id, session_id).parent
            remove_tree(folder)
            self._session_cache.pop(str(folder / SESSION_JSON), None)
        self._emit(SessionChanged(user_id, session_id, deleted=True))

    # ------------------------------------------------------------ messages
    def _log(self, session: Session) -> JsonlLog[Message]:
        folder = self.layout.session_dir(session.user_id, session.session_id)
        model: type[Message] = PanelMessage if session.is_panel else Message

        def legacy() -> list[Path]:
            return sorted(
                folder / name for name in os.listdir(folder) if name.endswith(LEGACY_PERSONA_SUFFIX)
            )

        return JsonlLog(folder / MESSAGES, model, legacy_paths=legacy)

    def _coerce(self, session: Session, message: Message | dict[str, Any]) -> Message:
        model = PanelMessage if session.is_panel else Message
        if isinstance(message, dict):
            return model.model_validate(message)
        if session.is_panel and not isinstance(message, PanelMessage):
            return PanelMessage.model_validate(message.to_dict())
        return message

    def _append(
        self,
        user_id: str,
        session_id: str,
        messages: Sequence[Message | dict[str, Any]],
        touch: bool = True,
    ) -> list[Message]:
        with self.locks.session(user_id, session_id):
            session = self._read_session(user_id, session_id)
            records = [self._coerce(session, m) for m in messages]
            if not records:
                return []
            log = self._log(session)
            base = self._trusted_count(session, log)
            log.append(records, self.settings.storage.max_message_bytes)
            # An importer (touch=False) keeps the source's times: the newest message's.
            newest = utcnow() if touch else max(r.timestamp for r in records)
            update = {
                "message_count": base + len(records),
                "updated_at": max(newest, session.updated_at),
                MESSAGES_BYTES: _size(log.path),
            }
            self._write_session(session.model_copy(update=update))
        self._emit(MessagesAppended(user_id, session_id, len(records)))
        return records

    @staticmethod
    def _trusted_count(session: Session, log: JsonlLog[Message]) -> int:
        """session.json's message_count if it describes the log as it is now, else a recount.

        session.json records the log's byte size with the count; another size means the count
        is stale: an append interrupted between its two writes, another tool's edit, or an
        archive of the original system (whose counts were often 0).
        """
        recorded = (session.model_extra or {}).get(MESSAGES_BYTES)
        if isinstance(recorded, int) and recorded == _size(log.path):
            return session.message_count
        return log.count()

    @threaded
    def add_message(
        self, user_id: str, session_id: str, message: Message | dict[str, Any]
    ) -> Message:
        """Append one message (one write + fsync under the session lock)."""
        return self._append(user_id, session_id, [message])[0]

    @threaded
    def add_messages(
        self,
        user_id: str,
        session_id: str,
        messages: Sequence[Message | dict[str, Any]],
        *,
        touch: bool = True,
    ) -> list[Message]:
        """Append many messages with one lock, one write and one fsync.

        The session's ``updated_at`` becomes now; with ``touch=False`` (importers) it becomes
        the newest message's time instead, if that is later than the current value.
        """
        return self._append(user_id, session_id, list(messages), touch)

    @threaded
    def get_messages(
        self,
        user_id: str,
        session_id: str,
        limit: int | None = 50,
        offset: int = 0,
        *,
        from_end: bool = False,
    ) -> list[Message]:
        """A page of messages in conversation order; ``from_end`` counts ``offset`` back from
        the newest. Only the lines of the page are parsed."""
        session = self._read_session(user_id, session_id)
        return self._log(session).page(offset, limit, from_end)

    @threaded
    def get_all_messages(self, user_id: str, session_id: str) -> list[Message]:
        """Every message of the session (no cap)."""
        session = self._read_session(user_id, session_id)
        return self._log(session).page(0, None)

    @threaded
    def count_messages(self, user_id: str, session_id: str) -> int:
        """Messages actually in the log (session.json's message_count can be stale in archives
        written by the original system)."""
        session = self._read_session(user_id, session_id)
        return self._log(session).count()

    async def iter_messages(
        self, user_id: str, session_id: str, *, reverse: bool = False, batch_size: int = ITER_BATCH
    ) -> AsyncIterator[Message]:
        """Stream a session's messages forward (or newest first) in constant memory."""
        session = await run_blocking(self._read_session, user_id, session_id)
        records: Iterator[Message] = self._log(session).iter(reverse)

        def take() -> list[Message]:
            return [m for _, m in zip(range(batch_size), records, strict=False)]

        try:
            while batch := await run_blocking(take):
                for message in batch:
                    yield message
        finally:
            close = getattr(records, "close", None)
            if close is not None:
                await run_blocking(close)

    @threaded
    def get_message(self, user_id: str, session_id: str, message_id: str) -> Message:
        session = self._read_session(user_id, session_id)
        for message in self._log(session).iter():
            if message.message_id == message_id:
                return message
        raise NotFoundError("message", message_id, f"session {session_id}")

    @threaded
    def edit_message(
        self,
        /,
        user_id: str,
        session_id: str,
        message_id: str,
        *,
        content: str | None = None,
        metadata: dict[str, Any] | None = None,
        **fields: Any,
    ) -> Message:
        """Change one message in place (the log is rewritten atomically under the lock)."""
        if "message_id" in fields:
            raise ValueError("message_id cannot be changed")
        edited: list[Message] = []

        def change(message: Message) -> Message:
            if message.message_id != message_id:
                return message
            data = message.to_dict()
            if content is not None:
                data["content"] = content
            data["metadata"] = {
                **message.metadata,
                **(metadata or {}),
                "edited_at": utcnow().isoformat(),
            }
            data.update(fields)
            new = type(message).model_validate(data)
            edited.append(new)
            return new

        self._rewrite(user_id, session_id, message_id, change)
        return edited[0]

    @threaded
    def delete_message(self, user_id: str, session_id: str, message_id: str) -> None:
        def drop(message: Message) -> Message | None:
            return None if message.message_id == message_id else message

        self._rewrite(user_id, session_id, message_id, drop)

    def _rewrite(self, user_id: str, session_id: str, message_id: str, transform: Any) -> None:
        with self.locks.session(user_id, session_id):
            session = self._read_session(user_id, session_id)
            log = self._log(session)
            if not any(m.message_id == message_id for m in log.iter()):
                raise NotFoundError("message", message_id, f"session {session_id}")
            kept = log.rewrite(transform)
            update = {
                "message_count": kept,
                "updated_at": max(utcnow(), session.updated_at),
                MESSAGES_BYTES: _size(log.path),
            }
            self._write_session(session.model_copy(update=update))
        self._emit(MessagesRewritten(user_id, session_id))

    # ------------------------------------------------------------ branches
    @threaded
    def get_branch(
        self, user_id: str, session_id: str, leaf_id: str | None = None
    ) -> list[Message]:
        """The conversation path from the root to ``leaf_id`` (default: the session's
        ``metadata.active_leaf_id``, else the last message). A message without ``parent_id``
        follows the line before it."""
        session = self._read_session(user_id, session_id)
        by_id: dict[str, Message] = {}
        parent: dict[str, str | None] = {}
        previous: str | None = None
        for message in self._log(session).iter():
            by_id[message.message_id] = message
            parent[message.message_id] = message.parent_id if message.parent_id else previous
            previous = message.message_id
        leaf = leaf_id or session.metadata.get("active_leaf_id") or previous
        if leaf is None:
            return []
        if leaf not in by_id:
            raise NotFoundError("message", str(leaf), f"session {session_id}")
        path: list[Message] = []
        seen: set[str] = set()
        node: str | None = leaf
        while node is not None and node in by_id and node not in seen:
            seen.add(node)
            path.append(by_id[node])
            node = parent[node]
        path.reverse()
        return path

    @threaded
    def list_leaves(self, user_id: str, session_id: str) -> list[str]:
        """Ids of the last message of every branch, in file order."""
        session = self._read_session(user_id, session_id)
        order: list[str] = []
        has_child: set[str] = set()
        previous: str | None = None
        for message in self._log(session).iter():
            order.append(message.message_id)
            parent = message.parent_id if message.parent_id else previous
            if parent is not None:
                has_child.add(parent)
            previous = message.message_id
        return [m for m in order if m not in has_child]

    async def set_active_leaf(self, user_id: str, session_id: str, leaf_id: str) -> Session:
        await self.get_message(user_id, session_id, leaf_id)
        return await self.update_session(user_id, session_id, metadata={"active_leaf_id": leaf_id})
