"""Whole-archive work: statistics, ``verify`` (with ``repair``) and compaction."""

from __future__ import annotations

import datetime as dt
import logging
import os
import shutil
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from storage.base import ArchiveBase, threaded
from storage.errors import StorageError
from storage.events import MessagesRewritten
from storage.files import is_stale_temp, parse_temp_owner, read_json, read_model
from storage.ids import validate_id
from storage.jsonl import JsonlLog, LineProblem
from storage.layout import (
    ARCHIVE_JSON,
    CONTEXT,
    CONTEXT_HISTORY,
    DOCUMENTS,
    DOCUMENTS_META,
    IMPORTS,
    INSIGHTS,
    LEGACY_PERSONA_SUFFIX,
    MESSAGES,
    MESSAGES_ZST,
    PERSONAS,
    PROFILE,
    SESSION_JSON,
)
from storage.models import (
    ArchiveInfo,
    Message,
    PanelInsight,
    Persona,
    Session,
    SituationalContext,
    UserProfile,
    utcnow,
)
from storage.sessions import MESSAGES_BYTES, _size

log = logging.getLogger(__name__)

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class Problem:
    path: str
    problem: str
    line: int | None = None
    severity: Severity = "error"
    repaired: bool = False


@dataclass
class VerifyReport:
    problems: list[Problem] = field(default_factory=list)
    checked_files: int = 0

    @property
    def ok(self) -> bool:
        return not any(p.severity == "error" and not p.repaired for p in self.problems)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "checked_files": self.checked_files,
            "problems": [asdict(p) for p in self.problems],
        }


@dataclass(frozen=True)
class ArchiveStats:
    users: int
    sessions: int
    messages: int
    documents: int
    personas: int
    panels: int
    bytes: int

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


class MaintenanceMixin(ArchiveBase):
    @threaded
    def stats(self) -> ArchiveStats:
        """Counts over the whole archive (messages are counted in the logs, not trusted from
        session.json, which archives of the original system left stale)."""
        users = sessions = messages = documents = panels = size = 0
        # Global personas plus every user's own (list_personas() alone lists the global ones).
        personas = len(self.list_personas.sync(self))  # type: ignore[attr-defined]
        for user in self.list_users.sync(self):  # type: ignore[attr-defined]
            users += 1
            user_dir = self.layout.user_dir(user.user_id)
            documents += _count_docs(user_dir / DOCUMENTS)
            if (user_dir / PERSONAS).is_dir():
                personas += sum(1 for p in (user_dir / PERSONAS).glob("*.json"))
            for session in self._all_sessions(user.user_id):  # type: ignore[attr-defined]
                sessions += 1
                panels += session.is_panel
                messages += self._log(session).count()  # type: ignore[attr-defined]
                documents += _count_docs(
                    self.layout.session_dir(user.user_id, session.session_id) / DOCUMENTS
                )
        for folder, _dirs, files in os.walk(self.root):
            for name in files:
                try:
                    size += os.lstat(os.path.join(folder, name)).st_size
                except FileNotFoundError:
                    continue  # removed while we walked
        return ArchiveStats(users, sessions, messages, documents, personas, panels, size)

    # ---------------------------------------------------------------- verify
    @threaded
    def verify(self, repair: bool = False) -> VerifyReport:
        """Check every file against the format. With ``repair``: fix stale message counts,
        cut torn tails, remove leftover temp files and orphan document files."""
        report = VerifyReport()
        checker = _Checker(self, report, repair)
        checker.run()
        return report

    # ------------------------------------------------------------- compaction
    @threaded
    def compact_session(self, user_id: str, session_id: str) -> bool:
        """Compress the session's messages into ``messages.jsonl.zst``. False if already."""
        with self.locks.session(user_id, session_id):
            session = self._read_session(user_id, session_id)
            log_ = self._log(session)  # type: ignore[attr-defined]
            if log_.is_compacted or not log_.exists():
                return False
            log_.compact()
        self._emit(MessagesRewritten(user_id, session_id))
        return True

    @threaded
    def compact_idle(
        self, idle_days: float | None = None, now: dt.datetime | None = None
    ) -> list[tuple[str, str]]:
        """Compact every session idle for ``idle_days`` (default: storage.compact_after_days;
        0 means never). Returns the (user, session) pairs compacted."""
        days = self.settings.storage.compact_after_days if idle_days is None else idle_days
        if days <= 0:
            return []
        cutoff = (now or utcnow()) - dt.timedelta(days=days)
        done = []
        for user in self.list_users.sync(self):  # type: ignore[attr-defined]
            for session in self._all_sessions(user.user_id):  # type: ignore[attr-defined]
                if session.updated_at <= cutoff and self.compact_session.sync(  # type: ignore[attr-defined]
                    self, user.user_id, session.session_id
                ):
                    done.append((user.user_id, session.session_id))
        return done


def _mend_tail(path: Path, problem: LineProblem) -> None:
    """Cut an unparsable torn tail off, or give a complete last line its newline."""
    with open(path, "r+b") as fh:
        if problem.problem.startswith("torn"):
            fh.truncate(problem.offset)
        else:
            fh.seek(0, os.SEEK_END)
            fh.write(b"\n")
        os.fsync(fh.fileno())


def _owner(name: str, records: dict[str, Any]) -> str | None:
    """The document a file in documents/ belongs to: ``<doc_id>`` or ``<doc_id>.<suffix>``."""
    if name in records:
        return name
    return next((d for d in records if name.startswith(d + ".")), None)


def _count_docs(folder: Path) -> int:
    meta = folder / DOCUMENTS_META
    if not meta.exists():
        return 0
    try:
        data = read_json(meta)
    except StorageError:
        return 0  # counted as a problem by verify, not here
    return len(data) if isinstance(data, dict) else 0


class _Checker:
    def __init__(self, archive: MaintenanceMixin, report: VerifyReport, repair: bool) -> None:
        self.archive = archive
        self.report = report
        self.repair = repair
        self.root = archive.root

    def add(
        self,
        path: Path | str,
        problem: str,
        line: int | None = None,
        severity: Severity = "error",
        repaired: bool = False,
    ) -> None:
        self.report.problems.append(Problem(str(path), problem, line, severity, repaired))

    def model(self, path: Path, model: type[Any], **defaults: Any) -> Any:
        self.report.checked_files += 1
        try:
            return read_model(path, model, **defaults)
        except StorageError as exc:
            self.add(path, str(exc))
        except OSError as exc:
            self.add(path, f"cannot read: {exc.strerror or exc}")
        return None

    def run(self) -> None:
        info = self.root / ARCHIVE_JSON
        if info.exists():
            self.model(info, ArchiveInfo)
        self.temp_files(self.root)
        personas = self.root / "personas_global"
        if personas.is_dir():
            self.personas(personas)
        users = self.root / "users"
        if not users.is_dir():
            return
        self.temp_files(users)
        for entry in sorted(os.scandir(users), key=lambda e: e.name):
            if entry.name.startswith(".") or not entry.is_dir():
                continue
            try:
                validate_id(entry.name, "user")
            except StorageError as exc:
                self.add(entry.path, f"folder is not a valid user id: {exc}", severity="warning")
                continue
            self.user(Path(entry.path), entry.name)

    def temp_files(self, folder: Path) -> None:
        with os.scandir(folder) as scan:
            entries = list(scan)
        for entry in entries:
            if parse_temp_owner(entry.name) is None:
                continue
            path = Path(entry.path)
            if not is_stale_temp(path):
                continue  # a live writer's, or another host's: not ours to judge
            folder_kind = entry.is_dir(follow_symlinks=False)  # a session being created
            removed = False
            if self.repair:
                if folder_kind:
                    shutil.rmtree(path)
                else:
                    path.unlink(missing_ok=True)
                removed = True
            self.add(
                path,
                f"leftover temp {'folder' if folder_kind else 'file'} of an interrupted write "
                "(verify --repair removes it)",
                severity="warning",
                repaired=removed,
            )

    def personas(self, folder: Path) -> None:
        self.temp_files(folder)
        for name in sorted(os.listdir(folder)):
            if name.endswith(".json") and not name.startswith("."):
                self.model(folder / name, Persona, id=name[:-5])

    def user(self, folder: Path, user_id: str) -> None:
        self.temp_files(folder)
        if (folder / PROFILE).exists():
            self.model(folder / PROFILE, UserProfile, user_id=user_id)
        if (folder / PERSONAS).is_dir():
            self.personas(folder / PERSONAS)
        if (folder / DOCUMENTS).is_dir():
            self.documents(folder / DOCUMENTS, lambda: self.archive.locks.user(user_id))
        for entry in sorted(os.scandir(folder), key=lambda e: e.name):
            if (
                entry.name.startswith(".")
                or not entry.is_dir()
                or entry.name in (DOCUMENTS, PERSONAS, IMPORTS)
            ):
                continue
            path = Path(entry.path)
            if not (path / SESSION_JSON).exists():
                self.add(
                    path, "folder without session.json (not a session; ignored)", severity="warning"
                )
                continue
            self.session(path, user_id, entry.name)

    def session(self, folder: Path, user_id: str, session_id: str) -> None:
        self.temp_files(folder)
        session = self.model(folder / SESSION_JSON, Session, session_id=session_id, user_id=user_id)
        messages = JsonlLog(folder / MESSAGES, Message)
        if (folder / MESSAGES).exists() and (folder / MESSAGES_ZST).exists():
            self.add(
                folder / MESSAGES_ZST,
                "both messages.jsonl and its .zst exist (an "
                "interrupted compaction); the plain file is used",
                severity="warning",
            )
        self.log(messages, (user_id, session_id))
        if (folder / INSIGHTS).exists():
            self.log(JsonlLog(folder / INSIGHTS, PanelInsight), (user_id, session_id))
        for name in sorted(os.listdir(folder)):
            if name.endswith(LEGACY_PERSONA_SUFFIX):
                self.log(JsonlLog(folder / name, Message))
        if (folder / CONTEXT).exists():
            self.model(folder / CONTEXT, SituationalContext)
        history = folder / CONTEXT_HISTORY
        if history.is_dir():
            self.temp_files(history)
            for name in sorted(os.listdir(history)):
                if name.endswith(".json") and not name.startswith("."):
                    self.model(history / name, SituationalContext)
        if (folder / DOCUMENTS).is_dir():
            self.documents(
                folder / DOCUMENTS, lambda: self.archive.locks.session(user_id, session_id)
            )
        if session is not None:
            self.message_count(session)

    def log(self, jsonl: JsonlLog[Any], owner: tuple[str, str] | None = None) -> None:
        self.report.checked_files += 1
        try:
            problems = jsonl.problems()
        except OSError as exc:
            self.add(jsonl.path, f"cannot read: {exc}")
            return
        except StorageError as exc:
            self.add(jsonl.path, str(exc))
            return
        for p in problems:
            repaired = False
            if p.torn and self.repair and owner is not None and not jsonl.is_compacted:
                with self.archive.locks.session(*owner):
                    # Re-read under the lock: a writer may have appended since.
                    for fresh in jsonl.problems():
                        if fresh.torn:
                            _mend_tail(jsonl.path, fresh)
                repaired = True
            self.add(p.path, p.problem, p.line, "warning" if p.torn else "error", repaired)

    def message_count(self, session: Session) -> None:
        log_ = self.archive._log(session)  # type: ignore[attr-defined]
        actual = log_.count()
        if actual == session.message_count:
            return
        path = self.archive.layout.session_json(session.user_id, session.session_id)
        repaired = False
        if self.repair:
            with self.archive.locks.session(session.user_id, session.session_id):
                fresh = self.archive._read_session(session.user_id, session.session_id)
                update = {"message_count": log_.count(), MESSAGES_BYTES: _size(log_.path)}
                self.archive._write_session(fresh.model_copy(update=update))
            repaired = True
        self.add(
            path,
            f"message_count is {session.message_count} but the log holds {actual} messages "
            "(an interrupted append or an edit outside Flatchat; the next write or "
            "verify --repair corrects it)",
            severity="warning",
            repaired=repaired,
        )

    def documents(self, folder: Path, lock: Callable[[], AbstractContextManager[None]]) -> None:
        self.temp_files(folder)
        meta = folder / DOCUMENTS_META
        records: dict[str, Any] = {}
        if meta.exists():
            self.report.checked_files += 1
            try:
                records = self.archive._read_records(folder)  # type: ignore[attr-defined]
            except StorageError as exc:
                self.add(meta, str(exc))
                return
        for doc_id, record in records.items():
            if not (folder / doc_id).exists():
                self.add(folder / doc_id, f"document record {doc_id!r} has no stored file")
            elif (
                record.sha256 is None
                and record.size
                and (folder / doc_id).stat().st_size != record.size
            ):
                self.add(
                    folder / doc_id,
                    f"size {record.size} in metadata.json differs from "
                    f"{(folder / doc_id).stat().st_size} on disk",
                    severity="warning",
                )
            if record.analysis.get("searchable") and not any(
                (folder / f"{doc_id}{suffix}").exists() for suffix in (".txt", ".txt.zst")
            ):
                self.add(
                    folder / doc_id,
                    f"document {doc_id!r} is marked searchable but its extracted text "
                    f"{doc_id}.txt is missing (ingest it again)",
                    severity="warning",
                )
        orphans = [
            name
            for name in sorted(os.listdir(folder))
            if name != DOCUMENTS_META and not name.startswith(".") and _owner(name, records) is None
        ]
        if orphans and self.repair:
            # Under the folder's lock, against a fresh read: an ingest running now writes its
            # files before its record, and they must not be taken for leftovers.
            with lock():
                fresh = self.archive._read_records(folder)  # type: ignore[attr-defined]
                orphans = [name for name in orphans if _owner(name, fresh) is None]
                for name in orphans:
                    (folder / name).unlink(missing_ok=True)
        for name in orphans:
            self.add(
                folder / name,
                "orphan file: no record in metadata.json (an interrupted save or ingest; "
                "verify --repair removes it)",
                severity="warning",
                repaired=self.repair,
            )
