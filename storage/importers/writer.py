"""Store a converted conversation idempotently.

A conversation is written in steps that are each complete on their own — create the session,
append the messages it lacks (one write), keep the raw source, update title and flags — so a
killed import leaves a valid session, and the next run finds what is missing and adds only that.
The user's lock is held per conversation, so two imports of the same export into the same user
do not both append the same messages.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import orjson
import zstandard

from storage.errors import AlreadyExistsError, DocumentTooLargeError, DuplicateDocumentError
from storage.files import atomic_write
from storage.importers.model import Conversation, ConversationResult, PersonaImport
from storage.models import Persona, Session

if TYPE_CHECKING:
    from storage.archive import Archive

log = logging.getLogger(__name__)

SOURCE_FILE = "source.json.zst"  # the raw source conversation, for lossless re-processing
SOURCE_ZSTD_LEVEL = 6
SOURCE_KEY = "source"
# Persona fields compared to tell whether a re-imported persona changed.
_PERSONA_FIELDS = ("name", "description", "metadata")


def source_metadata(conv: Conversation) -> dict[str, Any]:
    return {"format": conv.format, "id": conv.source_id, "title": conv.title}


def session_metadata(conv: Conversation) -> dict[str, Any]:
    meta = {**conv.metadata, SOURCE_KEY: source_metadata(conv)}
    if conv.active_leaf_id is not None:
        meta["active_leaf_id"] = conv.active_leaf_id
    return meta


def write_conversation(
    archive: Archive, user_id: str, conv: Conversation, *, dry_run: bool = False
) -> ConversationResult:
    """Create or complete the session of ``conv``; report what changed."""
    result = ConversationResult(
        conv.source_id,
        conv.session_id,
        conv.title,
        len(conv.messages),
        "imported",
        file=conv.file,
        problems=list(conv.problems),
    )
    if dry_run:
        return _plan(archive, user_id, conv, result)
    with archive.locks.user(user_id):
        existing = _existing(archive, user_id, conv.session_id)
        created = existing is None
        if existing is None:
            try:
                existing = archive.create_session.sync(  # type: ignore[attr-defined]
                    archive,
                    user_id,
                    conv.title,
                    conv.session_type,
                    metadata=session_metadata(conv),
                    session_id=conv.session_id,
                    created_at=conv.created_at,
                    updated_at=conv.updated_at,
                )
            except AlreadyExistsError:
                # A folder without session.json (an interrupted create by the original system
                # or another tool): not ours to overwrite.
                result.status = "failed"
                result.reason = f"a folder named {conv.session_id!r} exists but is not a session"
                return result
        assert existing is not None
        owner = existing.metadata.get(SOURCE_KEY)
        if not created and not _same_source(owner, conv):
            result.status = "failed"
            result.reason = (
                f"session {conv.session_id!r} exists and was not imported from this "
                f"{conv.format} conversation; left as it is"
            )
            return result
        missing = _missing_messages(archive, user_id, conv)
        if missing:
            archive.add_messages.sync(  # type: ignore[attr-defined]
                archive, user_id, conv.session_id, missing, touch=False
            )
        result.added = len(missing)
        changed = _update_session(archive, user_id, existing, conv)
        context_changed = _write_context(archive, user_id, conv)
        context_changed |= _write_context_history(archive, user_id, conv)
        documents_added = _write_documents(archive, user_id, conv, result)
        _write_source(archive, user_id, conv)
    if created:
        result.status = "imported"
    elif missing or changed or context_changed or documents_added:
        result.status = "updated"
    else:
        result.status = "skipped"
        result.reason = "already imported, unchanged"
    return result


def _plan(
    archive: Archive,
    user_id: str,
    conv: Conversation,
    result: ConversationResult,
) -> ConversationResult:
    """What :func:`write_conversation` would do, without writing."""
    user_known = archive.user_exists.sync(archive, user_id)  # type: ignore[attr-defined]
    existing = _existing(archive, user_id, conv.session_id) if user_known else None
    if existing is None:
        result.added = len(conv.messages)
        return result
    if not _same_source(existing.metadata.get(SOURCE_KEY), conv):
        result.status = "failed"
        result.reason = f"session {conv.session_id!r} exists and was not imported from this"
        return result
    missing = _missing_messages(archive, user_id, conv)
    result.added = len(missing)
    if missing or _changes(existing, conv):
        result.status = "updated"
    else:
        result.status = "skipped"
        result.reason = "already imported, unchanged"
    return result


def _existing(archive: Archive, user_id: str, session_id: str) -> Session | None:
    if not archive.session_exists.sync(archive, user_id, session_id):  # type: ignore[attr-defined]
        return None
    session: Session = archive.get_session.sync(archive, user_id, session_id)  # type: ignore[attr-defined]
    return session


def _same_source(owner: Any, conv: Conversation) -> bool:
    return (
        isinstance(owner, dict)
        and owner.get("format") == conv.format
        and owner.get("id") == conv.source_id
    )


def _missing_messages(archive: Archive, user_id: str, conv: Conversation) -> list[Any]:
    stored = archive.get_all_messages.sync(archive, user_id, conv.session_id)  # type: ignore[attr-defined]
    have = {m.message_id for m in stored}
    return [m for m in conv.messages if m.message_id not in have]


def _changes(session: Session, conv: Conversation) -> tuple[str | None, dict[str, Any]]:
    """(new title or None, changed metadata keys) between the stored session and ``conv``.

    The title changes only when the source's title changed, so a title the user edited in
    Flatchat survives re-importing an unchanged export.
    """
    previous = session.metadata.get(SOURCE_KEY)
    previous_title = previous.get("title") if isinstance(previous, dict) else None
    title = conv.title if previous_title != conv.title and conv.title != session.title else None
    wanted = session_metadata(conv)
    changed = {k: v for k, v in wanted.items() if session.metadata.get(k) != v}
    return title, changed


def _update_session(archive: Archive, user_id: str, session: Session, conv: Conversation) -> bool:
    title, changed = _changes(session, conv)
    if title is None and not changed:
        return False
    current: Session = archive.get_session.sync(archive, user_id, conv.session_id)  # type: ignore[attr-defined]
    archive.update_session.sync(  # type: ignore[attr-defined]
        archive,
        user_id,
        conv.session_id,
        title=title,
        metadata=changed,
        touch=False,
        updated_at=max(current.updated_at, conv.updated_at).isoformat(),
    )
    return True


def _write_context(archive: Archive, user_id: str, conv: Conversation) -> bool:
    if conv.context is None:
        return False
    current = archive.get_context.sync(archive, user_id, conv.session_id)  # type: ignore[attr-defined]
    if current is not None and current.to_dict() == _context_dict(conv.context):
        return False
    archive.update_context.sync(archive, user_id, conv.session_id, conv.context)  # type: ignore[attr-defined]
    return True


def _context_dict(context: dict[str, Any]) -> dict[str, Any]:
    from storage.models import SituationalContext

    return SituationalContext.model_validate(context).to_dict()


def _write_context_history(archive: Archive, user_id: str, conv: Conversation) -> bool:
    """Snapshots not yet kept (recognised by their timestamp), oldest first."""
    if not conv.context_history:
        return False
    from storage.models import SituationalContext

    kept = {
        c.timestamp
        for c in archive.get_context_history.sync(archive, user_id, conv.session_id)  # type: ignore[attr-defined]
    }
    added = False
    for raw in conv.context_history:
        snapshot = SituationalContext.model_validate(raw)
        if snapshot.timestamp in kept:
            continue
        archive.save_context_snapshot.sync(archive, user_id, conv.session_id, snapshot)  # type: ignore[attr-defined]
        kept.add(snapshot.timestamp)
        added = True
    return added


def _write_documents(
    archive: Archive, user_id: str, conv: Conversation, result: ConversationResult
) -> int:
    """The session's documents, byte for byte with their records' names and metadata; the
    same bytes again are recognised by their hash and not stored twice."""
    added = 0
    for entry, record in conv.documents:
        with entry.open() as fh:
            data = fh.read()
        name = str(record.get("original_name") or record.get("filename") or entry.parts[-1])
        metadata = {**(record.get("metadata") or {}), "imported_record": record}
        try:
            archive.save_document.sync(  # type: ignore[attr-defined]
                archive,
                user_id,
                data,
                name,
                session_id=conv.session_id,
                mime_type=record.get("mime_type") or None,
                metadata=metadata,
                uploaded_by=record.get("uploaded_by") or None,
            )
            added += 1
        except DuplicateDocumentError:
            continue  # kept by an earlier import
        except DocumentTooLargeError as exc:
            result.problems.append(f"{entry.display}: {exc}")
    return added


def source_path(archive: Archive, user_id: str, session_id: str) -> Any:
    return archive.layout.session_dir(user_id, session_id) / SOURCE_FILE


def _write_source(archive: Archive, user_id: str, conv: Conversation) -> None:
    path = source_path(archive, user_id, conv.session_id)
    data = zstandard.ZstdCompressor(level=SOURCE_ZSTD_LEVEL).compress(orjson.dumps(conv.raw))
    if path.exists() and path.read_bytes() == data:
        return
    atomic_write(path, data)


def read_source(archive: Archive, user_id: str, session_id: str) -> Any:
    """The raw source conversation kept with an imported session."""
    data = source_path(archive, user_id, session_id).read_bytes()
    return orjson.loads(zstandard.ZstdDecompressor().decompress(data))


def write_persona(
    archive: Archive, user_id: str, persona: PersonaImport, *, dry_run: bool = False
) -> dict[str, Any]:
    """Save an imported persona as the user's own, unless it is already there unchanged."""
    record = Persona.model_validate(persona.record)
    path = archive.layout.persona_file(record.id, user_id)
    status = "imported"
    if path.exists():
        current = archive.get_persona.sync(archive, record.id, user_id)  # type: ignore[attr-defined]
        same = all(getattr(current, f) == getattr(record, f) for f in _PERSONA_FIELDS)
        status = "skipped" if same else "updated"
    if status != "skipped" and not dry_run:
        archive.save_persona.sync(archive, record, user_id)  # type: ignore[attr-defined]
    return {"source_id": persona.source_id, "persona_id": record.id, "status": status}
