"""The import job: detect the export's format by its shape, convert and store every
conversation, report what happened to each.

Streaming keeps memory bounded: JSON exports are read one conversation at a time (ijson), so a
2 GB ``conversations.json`` never sits in memory. Each conversation is stored completely before
the next is read, and storing is idempotent, so a cancelled or killed import re-run finishes the
work with nothing twice.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from storage.errors import (
    CorruptRecordError,
    DuplicateDocumentError,
    ImportFormatError,
    InvalidIdError,
    MessageTooLargeError,
    NotFoundError,
    NothingImportedError,
    StorageError,
    UnknownExportFormatError,
    UnsafeArchiveError,
)
from storage.files import make_dirs, write_json
from storage.ids import new_id, validate_id
from storage.importers import chatgpt, claude, flatfile, jan, openwebui
from storage.importers.model import (
    Conversation,
    ConversationResult,
    ConversionError,
    ImportReport,
)
from storage.importers.sources import Entry, Source, iter_json, looks_like_json, open_source
from storage.importers.writer import write_conversation, write_persona
from storage.jobs import JobCancelled, JobControl, control_or_default
from storage.layout import IMPORTS
from storage.models import utcnow
from storage.threads import run_blocking

if TYPE_CHECKING:
    from storage.archive import Archive

log = logging.getLogger(__name__)

FORMATS_TRIED = (
    "ChatGPT export (conversations.json)",
    "Claude export (conversations.json/.jsonl)",
    "Open WebUI export",
    "Jan data folder (threads/<id>/thread.json)",
    "Flatfile Chat Database archive (<user>/<session>/session.json)",
)
PEEK_ITEMS = 5  # values read to recognise a JSON file's format
UNCHANGED = "already imported, unchanged"
# A conversation that fails for one of these is reported and the import goes on; anything else
# (a full disk, a lock timeout, a bug) stops it.
_PER_CONVERSATION = (
    ConversionError,
    ValidationError,
    MessageTooLargeError,
    InvalidIdError,
    CorruptRecordError,
)
_JSON_FORMATS: dict[str, Callable[[Any], bool]] = {
    chatgpt.FORMAT: chatgpt.matches,
    claude.FORMAT: claude.matches,
    openwebui.FORMAT: openwebui.matches,
}

Converted = Conversation | ConversationResult


@dataclass
class _Plan:
    json_files: list[tuple[Entry, str]] = field(default_factory=list)
    jan_threads: list[jan.Thread] = field(default_factory=list)
    jan_assistants: list[Entry] = field(default_factory=list)
    flatfile_sessions: list[flatfile.SessionFolder] = field(default_factory=list)

    @property
    def formats(self) -> list[str]:
        found = list(dict.fromkeys(fmt for _, fmt in self.json_files))
        if self.jan_threads:
            found.append(jan.FORMAT)
        if self.flatfile_sessions:
            found.append(flatfile.FORMAT)
        return found

    @property
    def total_bytes(self) -> int:
        return (
            sum(e.size for e, _ in self.json_files)
            + sum(t.size for t in self.jan_threads)
            + sum(s.size for s in self.flatfile_sessions)
        )


class ImportCancelled(JobCancelled):
    """The import stopped because it was asked to; ``report`` says what was finished (and
    kept: a re-run completes the rest without duplicates)."""

    def __init__(self, done: int, total: int | None, report: ImportReport) -> None:
        super().__init__("import", done, total)
        self.report = report


def import_path(
    archive: Archive,
    path: str | os.PathLike[str],
    user_id: str,
    *,
    control: JobControl | None = None,
    dry_run: bool = False,
) -> ImportReport:
    """Import the chat export at ``path`` (a ZIP, a folder or a file) into ``user_id``'s
    sessions; blocking (run it in a thread, or use :func:`import_archive`).

    Returns the report, which is also stored as ``users/<user>/imports/<id>.json`` (not on a
    dry run, which writes nothing). Raises :class:`UnknownExportFormatError` when nothing in
    the input is a known export, :class:`ImportFormatError` for unreadable input (naming the
    file and byte offset), :class:`NothingImportedError` when no conversation could be
    imported, and :class:`JobCancelled` when cancelled (what was finished is kept; a re-run
    finishes the rest). Progress is counted in bytes of the export read.
    """
    source_path = Path(path).expanduser()
    validate_id(user_id, "user")
    if not dry_run and not archive.user_exists.sync(archive, user_id):  # type: ignore[attr-defined]
        raise NotFoundError("user", user_id, archive.layout.users_dir)
    control = control_or_default(control, "import")
    report = ImportReport(source=str(source_path), user_id=user_id, dry_run=dry_run)
    with open_source(source_path) as source:
        plan = _detect(source, report)
        report.format = "+".join(plan.formats)
        control.set_total(plan.total_bytes)
        try:
            _run(archive, user_id, source, plan, report, control, dry_run)
        except JobCancelled as exc:
            report.cancelled = True
            _finish(archive, report)
            raise ImportCancelled(exc.done, exc.total, report) from exc
        except ImportFormatError as exc:
            report.error = str(exc)
            _finish(archive, report)
            raise
    _finish(archive, report)
    done = report.imported + report.updated
    unchanged = sum(1 for c in report.conversations if c.reason == UNCHANGED)
    if done + unchanged == 0:
        raise NothingImportedError(source_path, _nothing_detail(report), report)
    log.info(
        "imported %s: %d new, %d updated, %d skipped, %d failed",
        source_path,
        report.imported,
        report.updated,
        report.skipped,
        report.failed,
    )
    return report


async def import_archive(
    archive: Archive,
    path: str | os.PathLike[str],
    user_id: str,
    *,
    control: JobControl | None = None,
    dry_run: bool = False,
) -> ImportReport:
    """:func:`import_path` as a job off the event loop."""
    return await run_blocking(import_path, archive, path, user_id, control=control, dry_run=dry_run)


def export_format(path: str | os.PathLike[str]) -> str | None:
    """The export format(s) of the file or folder at ``path`` ("chatgpt", "claude+jan", ...),
    or None when it is no chat export we import (so a dropped file is a document instead).
    Reads only as much as detection needs; blocking (see :func:`detect_export`). A ZIP that
    is unsafe to unpack raises :class:`UnsafeArchiveError` (never silently a document)."""
    report = ImportReport(source=str(path), user_id="-", dry_run=True)
    try:
        with open_source(Path(path).expanduser()) as source:
            return "+".join(_detect(source, report).formats) or None
    except UnsafeArchiveError:
        raise
    except (ImportFormatError, NothingImportedError) as exc:
        log.debug("%s is not an export we import: %s", path, exc)
        return None


async def detect_export(path: str | os.PathLike[str]) -> str | None:
    """:func:`export_format` off the event loop."""
    return await run_blocking(export_format, path)


def _nothing_detail(report: ImportReport) -> str:
    if not report.conversations:
        return f"the {report.format} export holds no conversations"
    reasons = sorted({c.reason for c in report.conversations if c.reason})
    return (
        f"{report.skipped} skipped and {report.failed} failed of "
        f"{len(report.conversations)} conversations ({'; '.join(reasons[:3])})"
    )


def _detect(source: Source, report: ImportReport) -> _Plan:
    plan = _Plan()
    entries = source.entries
    plan.jan_threads, plan.jan_assistants = jan.find(entries)
    plan.flatfile_sessions = flatfile.find(entries, source.path.name)
    taken = jan.claimed(plan.jan_threads, plan.jan_assistants) | flatfile.claimed(
        plan.flatfile_sessions
    )
    single = len(entries) == 1 and not source.is_zip and not source.path.is_dir()
    unreadable: list[ImportFormatError] = []
    for entry in entries:
        if entry.name in taken:
            continue
        if not single and not looks_like_json(entry):
            continue  # images, HTML and other files of the export
        try:
            items = [item for item, _ in iter_json(entry, limit=PEEK_ITEMS)]
        except ImportFormatError as exc:
            if single:
                raise
            unreadable.append(exc)
            report.ignored_files.append(f"{entry.name}: {exc}")
            continue
        if single and not items:
            raise NothingImportedError(entry.display, "the file holds no conversations (empty)")
        fmt = next(
            (name for name, match in _JSON_FORMATS.items() if any(match(i) for i in items)),
            None,
        )
        if fmt is None:
            if single:
                raise UnknownExportFormatError(entry.display, list(FORMATS_TRIED))
            report.ignored_files.append(f"{entry.name}: not a chat export")
            continue
        plan.json_files.append((entry, fmt))
    if not plan.formats:
        if unreadable:
            raise unreadable[0]
        raise UnknownExportFormatError(
            source.path, list(FORMATS_TRIED), f"looked at {len(entries)} files"
        )
    return plan


def _run(
    archive: Archive,
    user_id: str,
    source: Source,
    plan: _Plan,
    report: ImportReport,
    control: JobControl,
    dry_run: bool,
) -> None:
    seen: set[tuple[str, str]] = set()
    for item, advance in _conversations(source, plan, report):
        if isinstance(item, ConversationResult):
            result = item
        else:
            key = (item.format, item.source_id)
            if key in seen:
                result = ConversationResult(
                    item.source_id,
                    item.session_id,
                    item.title,
                    len(item.messages),
                    "skipped",
                    "duplicate id in this export; the first conversation with it was imported",
                    file=item.file,
                )
            else:
                seen.add(key)
                result = _store(archive, user_id, item, dry_run)
                if not dry_run and result.status != "failed":
                    _store_files(archive, user_id, source, item, result)
        report.add(result)
        control.step(result.title or result.source_id, advance)
    for entry in plan.jan_assistants:
        try:
            persona = jan.persona(entry)
            report.personas.append(write_persona(archive, user_id, persona, dry_run=dry_run))
        except (*_PER_CONVERSATION, ImportFormatError) as exc:
            log.warning("persona %s not imported: %s", entry.display, exc)
            report.personas.append(
                {"source_id": entry.name, "persona_id": None, "status": "failed",
                 "reason": str(exc)}
            )  # fmt: skip


def _store_files(
    archive: Archive, user_id: str, source: Source, conv: Conversation, result: ConversationResult
) -> None:
    """Files the export carries for the conversation's attachments (ChatGPT's ``file-…``
    images) are kept as the session's documents, so the export can be deleted afterwards.
    Stored once: the same bytes again are recognised by their hash."""
    wanted = {
        a["export_file"]
        for m in conv.messages
        for a in m.attachments
        if isinstance(a, dict) and isinstance(a.get("export_file"), str)
    }
    if not wanted:
        return
    entries = {e.name: e for e in source.entries}
    for name in sorted(wanted):
        entry = entries.get(name)
        if entry is None:
            result.problems.append(f"attachment file {name} is not in the export")
            continue
        try:
            with entry.open() as fh:
                data = fh.read()
            archive.save_document.sync(  # type: ignore[attr-defined]
                archive,
                user_id,
                data,
                PurePosixPath(name).name,
                session_id=conv.session_id,
                metadata={"source": conv.format, "export_file": name},
            )
        except DuplicateDocumentError:
            continue  # already kept by an earlier import of the same export
        except (StorageError, OSError) as exc:
            result.problems.append(f"attachment file {name} not kept: {exc}")


def _store(archive: Archive, user_id: str, conv: Conversation, dry_run: bool) -> ConversationResult:
    try:
        return write_conversation(archive, user_id, conv, dry_run=dry_run)
    except _PER_CONVERSATION as exc:
        log.warning("conversation %s (%s) not imported: %s", conv.source_id, conv.file, exc)
        return ConversationResult(
            conv.source_id,
            conv.session_id,
            conv.title,
            len(conv.messages),
            "failed",
            str(exc),
            file=conv.file,
            problems=conv.problems,
        )


def _conversations(
    source: Source, plan: _Plan, report: ImportReport
) -> Iterator[tuple[Converted, int]]:
    """Every conversation of the plan, converted, with the bytes of input it advanced."""
    assets = chatgpt.asset_index([e.name for e in source.entries])
    for entry, fmt in sorted(plan.json_files, key=lambda p: p[0].name):
        last = 0
        for item, pos in iter_json(entry):
            yield _convert_json(fmt, item, entry, assets), pos - last
            last = pos
    for thread in plan.jan_threads:
        yield _guarded(thread.thread, lambda t=thread: jan.convert(t)), thread.size  # type: ignore[misc]
    for folder in plan.flatfile_sessions:
        yield _guarded(folder.session, lambda f=folder: flatfile.convert(f)), folder.size  # type: ignore[misc]


def _convert_json(fmt: str, item: Any, entry: Entry, assets: dict[str, str]) -> Converted:
    try:
        if fmt == chatgpt.FORMAT:
            return chatgpt.convert(item, chatgpt.Context(entry.name, assets))
        if fmt == claude.FORMAT:
            return claude.convert(item, entry.name)
        return openwebui.convert(item, entry.name)
    except _PER_CONVERSATION as exc:
        return _failed(item, entry, exc)


def _guarded(entry: Entry, convert: Callable[[], Converted]) -> Converted:
    try:
        return convert()
    except (*_PER_CONVERSATION, ImportFormatError) as exc:
        return _failed(None, entry, exc)


def _failed(item: Any, entry: Entry, exc: Exception) -> ConversationResult:
    log.warning("%s: a conversation could not be converted: %s", entry.display, exc)
    ident = ""
    title = ""
    if isinstance(item, dict):
        for key in ("conversation_id", "uuid", "id"):
            if isinstance(item.get(key), str):
                ident = item[key]
                break
        title = item.get("title") or item.get("name") or ""
    return ConversationResult(
        ident or entry.name, None, str(title), 0, "failed", str(exc), file=entry.name
    )


def _finish(archive: Archive, report: ImportReport) -> None:
    """Stamp the report and store it under the user (not on a dry run)."""
    report.finished_at = utcnow()
    if report.dry_run:
        return
    folder = archive.layout.user_dir(report.user_id) / IMPORTS
    make_dirs(folder)
    path = folder / f"{new_id('import')}.json"
    report.report_path = str(path)
    write_json(path, report.to_dict())
