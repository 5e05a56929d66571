"""Stored documents: the file byte for byte in ``documents/<doc_id>`` and its record in
``documents/metadata.json`` ({doc_id: record}). Text extraction and indexing build on this.

A document is written file first, record last, each atomically, so after a crash either both
exist or only an orphan file does (``verify`` reports it, ``verify --repair`` removes it).
"""

from __future__ import annotations

import hashlib
import mimetypes
import re
import unicodedata
from collections.abc import Mapping
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from storage.base import ArchiveBase, threaded
from storage.errors import (
    CorruptRecordError,
    DocumentTooLargeError,
    DuplicateDocumentError,
    NotFoundError,
)
from storage.events import DocumentsChanged
from storage.files import (
    atomic_write,
    describe_validation_error,
    fsync_dir,
    read_json,
    write_error,
    write_json,
)
from storage.ids import MAX_ID_LENGTH, validate_id
from storage.layout import DOCUMENTS_META
from storage.models import DocumentRecord, utcnow

# Our own table first: mimetypes' answer depends on the system's tables (.md especially), and
# the same file must get the same record on every machine.
_MIME_BY_SUFFIX = {
    ".txt": "text/plain",
    ".md": "text/markdown",
    ".markdown": "text/markdown",
    ".csv": "text/csv",
    ".tsv": "text/tab-separated-values",
    ".json": "application/json",
    ".jsonl": "application/jsonl",
    ".html": "text/html",
    ".htm": "text/html",
    ".pdf": "application/pdf",
    ".py": "text/x-python",
    ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
}
_SLUG_RE = re.compile(r"[^A-Za-z0-9_.\-]+")
_DERIVED_SUFFIX_RE = re.compile(r"(\.[a-z0-9]+)+")


def guess_mime_type(name: str) -> str:
    suffix = Path(name).suffix.lower()
    return (
        _MIME_BY_SUFFIX.get(suffix) or mimetypes.guess_type(name)[0] or "application/octet-stream"
    )


def slug(name: str) -> str:
    """A file-name-safe rendering of ``name`` for our own generated doc ids."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    cleaned = _SLUG_RE.sub("_", ascii_name).strip("._-")
    return cleaned or "document"


class DocumentsMixin(ArchiveBase):
    def _docs_lock(self, user_id: str, session_id: str | None) -> AbstractContextManager[None]:
        if session_id is None:
            return self.locks.user(user_id)
        return self.locks.session(user_id, session_id)

    def _docs_dir(self, user_id: str, session_id: str | None) -> Path:
        if session_id is None:
            self._require_user(user_id)
        else:
            self._session_path(user_id, session_id)
        return self.layout.documents_dir(user_id, session_id)

    def _read_records(self, folder: Path) -> dict[str, DocumentRecord]:
        path = folder / DOCUMENTS_META
        if not path.exists():
            return {}
        raw = read_json(path)
        if not isinstance(raw, dict):
            raise CorruptRecordError(path, "expected an object of {doc_id: record}")
        records = {}
        for doc_id, value in raw.items():
            if not isinstance(value, dict):
                raise CorruptRecordError(path, f"record {doc_id!r} is not an object")
            try:
                records[doc_id] = DocumentRecord.model_validate(
                    {"doc_id": doc_id, "filename": doc_id, **value}
                )
            except ValidationError as exc:
                raise CorruptRecordError(
                    path, f"record {doc_id!r}: {describe_validation_error(exc)}"
                ) from exc
        return records

    def _write_records(self, folder: Path, records: dict[str, DocumentRecord]) -> None:
        write_json(folder / DOCUMENTS_META, {k: r.to_dict() for k, r in records.items()})

    @threaded
    def save_document(
        self,
        user_id: str,
        data: bytes,
        original_name: str,
        *,
        session_id: str | None = None,
        mime_type: str | None = None,
        metadata: dict[str, Any] | None = None,
        uploaded_by: str | None = None,
        analysis: dict[str, Any] | None = None,
    ) -> DocumentRecord:
        """Store ``data`` in the session's (or the user's library) documents folder.

        Raises DocumentTooLargeError over ``document.max_bytes`` and DuplicateDocumentError
        when the same bytes are already stored there; nothing is written in either case.
        """
        limit = self.settings.document.max_bytes
        if len(data) > limit:
            raise DocumentTooLargeError(original_name, len(data), limit)
        return self.store_document_sync(
            user_id,
            data,
            original_name,
            session_id=session_id,
            mime_type=mime_type or guess_mime_type(original_name),
            metadata=metadata,
            uploaded_by=uploaded_by,
            analysis=analysis,
        )

    def store_document_sync(
        self,
        user_id: str,
        data: bytes,
        original_name: str,
        *,
        session_id: str | None = None,
        mime_type: str,
        derived: Mapping[str, bytes] | None = None,
        metadata: dict[str, Any] | None = None,
        uploaded_by: str | None = None,
        analysis: dict[str, Any] | None = None,
    ) -> DocumentRecord:
        """Store ``data`` and its ``derived`` files (``{suffix: bytes}``, written as
        ``<doc_id><suffix>``, e.g. ``.txt``), then the record, all under the folder's lock.

        Every file is written atomically and the record last, so a crash leaves either a
        complete document or orphan files without a record (``verify --repair`` removes them);
        a failed write removes what it wrote before re-raising. Raises DuplicateDocumentError
        when the same bytes are already stored in that folder.
        """
        folder = self._docs_dir(user_id, session_id)
        digest = hashlib.sha256(data).hexdigest()
        base = slug(Path(original_name).name)
        with self._docs_lock(user_id, session_id):
            records = self._read_records(folder)
            for existing in records.values():
                if existing.sha256 == digest:
                    raise DuplicateDocumentError(original_name, existing.doc_id, folder)
            doc_id = _unique_id(f"{digest[:8]}_{base}", records, folder)
            record = DocumentRecord(
                doc_id=doc_id,
                filename=doc_id,
                original_name=original_name,
                mime_type=mime_type,
                size=len(data),
                sha256=digest,
                uploaded_at=utcnow(),
                uploaded_by=uploaded_by or user_id,
                analysis=analysis or {},
                metadata=metadata or {},
            )
            written = [folder / doc_id]
            try:
                atomic_write(folder / doc_id, data)
                for suffix, content in (derived or {}).items():
                    written.append(folder / f"{doc_id}{_derived_suffix(suffix)}")
                    atomic_write(written[-1], content)
                self._write_records(folder, {**records, doc_id: record})
            except BaseException:
                for path in written:  # no half document: nothing without its record stays
                    path.unlink(missing_ok=True)
                raise
        self._emit(DocumentsChanged(user_id, session_id))
        return record

    def known_hashes_sync(self, user_id: str, session_id: str | None = None) -> dict[str, str]:
        """{sha256: doc_id} of the documents in that folder: a duplicate hint read without the
        lock (:meth:`store_document_sync` checks again under it)."""
        records = self._read_records(self._docs_dir(user_id, session_id))
        return {r.sha256: r.doc_id for r in records.values() if r.sha256}

    @threaded
    def list_documents(self, user_id: str, session_id: str | None = None) -> list[DocumentRecord]:
        records = self._read_records(self._docs_dir(user_id, session_id))
        return sorted(records.values(), key=lambda r: (r.uploaded_at, r.doc_id))

    @threaded
    def get_document(
        self, user_id: str, doc_id: str, session_id: str | None = None
    ) -> DocumentRecord:
        folder = self._docs_dir(user_id, session_id)
        record = self._read_records(folder).get(doc_id)
        if record is None:
            raise NotFoundError("document", doc_id, folder)
        return record

    @threaded
    def document_path(self, user_id: str, doc_id: str, session_id: str | None = None) -> Path:
        """Where the stored bytes are (for opening with the system viewer)."""
        folder = self._docs_dir(user_id, session_id)
        if doc_id not in self._read_records(folder):
            raise NotFoundError("document", doc_id, folder)
        return folder / validate_id(doc_id, "document")

    @threaded
    def read_document(self, user_id: str, doc_id: str, session_id: str | None = None) -> bytes:
        folder = self._docs_dir(user_id, session_id)
        if doc_id not in self._read_records(folder):
            raise NotFoundError("document", doc_id, folder)
        path = folder / validate_id(doc_id, "document")
        try:
            return path.read_bytes()
        except FileNotFoundError:
            raise NotFoundError("document file", doc_id, folder) from None

    @threaded
    def read_document_text(
        self, user_id: str, doc_id: str, session_id: str | None = None
    ) -> str | None:
        """The text extracted at ingest (``<doc_id>.txt`` or ``.txt.zst``), or None when the
        document is stored but not searchable: no text, or only white space (what a scanned
        PDF's pages give, which its ingest reported as "no text found")."""
        folder = self._docs_dir(user_id, session_id)
        if doc_id not in self._read_records(folder):
            raise NotFoundError("document", doc_id, folder)
        base = folder / validate_id(doc_id, "document")
        plain, packed = base.with_name(base.name + ".txt"), base.with_name(base.name + ".txt.zst")
        if plain.exists():
            # As stored, line endings too: a hit's char_start/char_end index this text
            # (read_text would make "\r\n" one character and move every offset after it).
            text = plain.read_bytes().decode("utf-8", errors="replace")
        elif packed.exists():
            import zstandard

            with open(packed, "rb") as fh:
                data = zstandard.ZstdDecompressor().stream_reader(fh).read()
            text = data.decode("utf-8", errors="replace")
        else:
            return None
        return text if text.strip() else None

    @threaded
    def update_document(
        self,
        user_id: str,
        doc_id: str,
        session_id: str | None = None,
        *,
        analysis: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> DocumentRecord:
        """Merge ``analysis`` and ``metadata`` into a document's record."""
        folder = self._docs_dir(user_id, session_id)
        with self._docs_lock(user_id, session_id):
            records = self._read_records(folder)
            if doc_id not in records:
                raise NotFoundError("document", doc_id, folder)
            current = records[doc_id]
            record = current.model_copy(
                update={
                    "analysis": {**current.analysis, **(analysis or {})},
                    "metadata": {**current.metadata, **(metadata or {})},
                }
            )
            self._write_records(folder, {**records, doc_id: record})
        self._emit(DocumentsChanged(user_id, session_id))
        return record

    @threaded
    def delete_document(self, user_id: str, doc_id: str, session_id: str | None = None) -> None:
        """Remove the record (first, atomically), then the file and its derived siblings."""
        folder = self._docs_dir(user_id, session_id)
        with self._docs_lock(user_id, session_id):
            records = self._read_records(folder)
            if doc_id not in records:
                raise NotFoundError("document", doc_id, folder)
            del records[doc_id]
            self._write_records(folder, records)
            validate_id(doc_id, "document")
            try:
                for path in folder.iterdir():
                    if path.name == doc_id or path.name.startswith(doc_id + "."):
                        path.unlink()
                fsync_dir(folder)
            except OSError as exc:
                raise write_error(folder, exc) from exc
        self._emit(DocumentsChanged(user_id, session_id))


def _derived_suffix(suffix: str) -> str:
    if not _DERIVED_SUFFIX_RE.fullmatch(suffix):
        raise ValueError(f"derived file suffix {suffix!r} must look like '.txt' or '.chunks.jsonl'")
    return suffix


def _unique_id(candidate: str, records: dict[str, DocumentRecord], folder: Path) -> str:
    candidate = candidate[:MAX_ID_LENGTH]
    doc_id = candidate
    n = 1
    while doc_id in records or (folder / doc_id).exists():
        n += 1
        stem, dot, ext = candidate.rpartition(".")
        tail = f"_{n}"
        doc_id = (
            f"{stem[: MAX_ID_LENGTH - len(tail) - len(ext) - 1]}{tail}.{ext}"
            if dot
            else f"{candidate[: MAX_ID_LENGTH - len(tail)]}{tail}"
        )
    return validate_id(doc_id, "document")
