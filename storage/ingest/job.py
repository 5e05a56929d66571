"""The ingest job: files in, documents out, one file at a time, each complete or absent.

For each file: read it once (size-capped), hash it, recognise a duplicate, sniff its type,
extract its text, chunk and analyse it, then store the original bytes, ``<doc_id>.txt``
(``.txt.zst`` above ``document.compress_text_above``), ``<doc_id>.chunks.jsonl`` and, last,
the record (:meth:`storage.documents.DocumentsMixin.store_document_sync`). The bytes that were
hashed are the bytes extracted and stored, even if the source changes meanwhile.

A file that cannot be ingested gets a per-file result with the reason; the batch continues.
Cancelling stops before the next file (or before storing the current one) and raises
:class:`IngestCancelled` carrying the results so far.
"""

from __future__ import annotations

import hashlib
import logging
import os
import stat
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import orjson
import zstandard

from storage.documents import DocumentsMixin
from storage.errors import (
    DocumentError,
    DocumentTooLargeError,
    DuplicateDocumentError,
    EmptyDocumentError,
    StorageError,
    UnreadableDocumentError,
)
from storage.ingest.analysis import analyse, fallback_title
from storage.ingest.chunking import chunk_text
from storage.ingest.extract import Extracted, Extractor, default_extractors
from storage.ingest.sniff import sniff
from storage.ingest.walk import Skipped, collect
from storage.jobs import JobCancelled, JobControl, control_or_default
from storage.models import DocumentRecord
from storage.threads import run_blocking

log = logging.getLogger(__name__)

Status = Literal["ingested", "duplicate", "unsupported", "failed"]
TEXT_SUFFIX = ".txt"
ZST_SUFFIX = ".txt.zst"
CHUNKS_SUFFIX = ".chunks.jsonl"
ZSTD_LEVEL = 3
NOT_SEARCHABLE = "stored, not searchable"
# Kinds whose first line is usually a title (not a CSV header or a line of code).
_TITLE_FROM_FIRST_LINE = frozenset({"text", "markdown", "html", "pdf", "docx"})
STAGES = ("read", "extract", "chunk", "analyse", "store", "after_store")


@dataclass(frozen=True)
class StoredDocument:
    """What :func:`ingest` hands to ``after_store`` (the indexer) for each stored document."""

    user_id: str
    session_id: str | None
    folder: Path
    record: DocumentRecord

    @property
    def chunks_path(self) -> Path:
        return self.folder / f"{self.record.doc_id}{CHUNKS_SUFFIX}"


AfterStore = Callable[[StoredDocument], None]


@dataclass
class FileResult:
    path: str
    status: Status
    doc_id: str | None = None
    reason: str | None = None
    warnings: list[str] = field(default_factory=list)
    record: DocumentRecord | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "status": self.status,
            "doc_id": self.doc_id,
            "reason": self.reason,
            "warnings": self.warnings,
        }


@dataclass
class IngestReport:
    files: list[FileResult] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STAGES, 0.0))
    bytes_read: int = 0

    def count(self, status: Status) -> int:
        return sum(1 for f in self.files if f.status == status)

    @property
    def stored(self) -> list[DocumentRecord]:
        return [f.record for f in self.files if f.record is not None]

    def to_dict(self) -> dict[str, Any]:
        return {
            "files": [f.to_dict() for f in self.files],
            "skipped": [{"path": s.path, "reason": s.reason} for s in self.skipped],
        }


class IngestCancelled(JobCancelled):
    """Ingest stopped on request; ``report`` holds the files finished before (all kept)."""

    def __init__(self, done: int, total: int | None, report: IngestReport) -> None:
        super().__init__("ingest", done, total)
        self.report = report


def ingest_sync(
    archive: DocumentsMixin,
    paths: Iterable[str | os.PathLike[str]],
    user_id: str,
    session_id: str | None = None,
    *,
    control: JobControl | None = None,
    after_store: AfterStore | None = None,
    extractors: Mapping[str, Extractor] | None = None,
) -> IngestReport:
    """Ingest ``paths`` (files, or folders to walk) into the session's documents, or the
    user's library when ``session_id`` is None. Blocking; see :func:`ingest`."""
    control = control_or_default(control, "ingest")
    archive._docs_dir(user_id, session_id)  # NotFoundError now, not once per file
    files, skipped = collect(paths)
    report = IngestReport(skipped=skipped)
    job = _Job(archive, user_id, session_id, control, after_store, extractors, report)
    control.set_total(len(files))
    try:
        for path in files:
            control.check()
            report.files.append(job.one(path))
            control.step(str(path))
    except JobCancelled as exc:
        log.info("ingest cancelled after %d of %d files", exc.done, len(files))
        raise IngestCancelled(exc.done, exc.total, report) from exc
    return report


async def ingest(
    archive: DocumentsMixin,
    paths: Iterable[str | os.PathLike[str]],
    user_id: str,
    session_id: str | None = None,
    *,
    control: JobControl | None = None,
    after_store: AfterStore | None = None,
    extractors: Mapping[str, Extractor] | None = None,
) -> IngestReport:
    """Ingest files and folders as a job in a worker thread: progress and cancel through
    ``control``; ``after_store`` runs (in the worker) after each document is stored, e.g. to
    index its chunks. Returns a result per file: ingested, duplicate, unsupported (stored, not
    searchable) or failed with the reason."""
    return await run_blocking(
        ingest_sync,
        archive,
        list(paths),
        user_id,
        session_id,
        control=control,
        after_store=after_store,
        extractors=extractors,
    )


class _Job:
    def __init__(
        self,
        archive: DocumentsMixin,
        user_id: str,
        session_id: str | None,
        control: JobControl,
        after_store: AfterStore | None,
        extractors: Mapping[str, Extractor] | None,
        report: IngestReport,
    ) -> None:
        self.archive = archive
        self.user_id = user_id
        self.session_id = session_id
        self.control = control
        self.after_store = after_store
        self.extractors = extractors if extractors is not None else default_extractors()
        self.report = report
        self.limit = archive.settings.document.max_bytes
        self.compress_above = archive.settings.document.compress_text_above
        # Read once per job, not once per file (that was quadratic in the folder's size).
        self.known = archive.known_hashes_sync(user_id, session_id)

    def _timed(self, stage: str, started: float) -> float:
        now = time.perf_counter()
        self.report.timings[stage] += now - started
        return now

    def one(self, path: Path) -> FileResult:
        try:
            return self._ingest(path)
        except DuplicateDocumentError as exc:
            return FileResult(
                str(path),
                "duplicate",
                exc.existing_doc_id,
                f"same content as {exc.existing_doc_id!r}, already stored",
            )
        except (DocumentError, DocumentTooLargeError) as exc:
            log.info("not ingested: %s", exc)
            return FileResult(str(path), "failed", reason=_reason(exc, path))

    def _ingest(self, path: Path) -> FileResult:
        started = time.perf_counter()
        data = read_source(path, self.limit)
        self.report.bytes_read += len(data)
        digest = hashlib.sha256(data).hexdigest()
        existing = self.known.get(digest)
        if existing is not None:
            raise DuplicateDocumentError(path.name, existing, path)
        sniffed = sniff(path.name, data)
        extractor = self.extractors.get(sniffed.kind) if sniffed.kind else None
        started = self._timed("read", started)
        if extractor is None:
            self.control.check()
            record = self._store(path, data, sniffed.mime_type, {}, _unsupported_analysis())
            return FileResult(str(path), "unsupported", record.doc_id, NOT_SEARCHABLE, [], record)
        extracted = extractor.extract(data, str(path))
        started = self._timed("extract", started)
        chunks = chunk_text(extracted.text, extracted.page_starts)
        started = self._timed("chunk", started)
        analysis = self._analysis(extracted, sniffed.kind, extractor.name, len(chunks))
        started = self._timed("analyse", started)
        text_bytes = extracted.text.encode("utf-8")
        derived = {
            **self._text_file(text_bytes),
            CHUNKS_SUFFIX: b"".join(orjson.dumps(c.to_dict()) + b"\n" for c in chunks),
        }
        self.control.check()  # a cancel between extracting and storing stores nothing
        record = self._store(path, data, sniffed.mime_type, derived, analysis)
        self._timed("store", started)
        warnings = list(extracted.warnings)
        reason = None if analysis["searchable"] else "no text found: " + NOT_SEARCHABLE
        return FileResult(str(path), "ingested", record.doc_id, reason, warnings, record)

    def _text_file(self, text: bytes) -> dict[str, bytes]:
        if len(text) > self.compress_above:
            return {ZST_SUFFIX: zstandard.ZstdCompressor(level=ZSTD_LEVEL).compress(text)}
        return {TEXT_SUFFIX: text}

    def _analysis(
        self, extracted: Extracted, kind: str | None, extractor: str, chunks: int
    ) -> dict[str, Any]:
        title = extracted.title
        if title is None and kind in _TITLE_FROM_FIRST_LINE:
            title = fallback_title(extracted.text)
        return {
            **analyse(extracted.text, extracted.pages, title),
            "chunks": chunks,
            "searchable": chunks > 0,
            "extractor": extractor,
            "warnings": extracted.warnings,
        }

    def _store(
        self,
        path: Path,
        data: bytes,
        mime_type: str,
        derived: dict[str, bytes],
        analysis: dict[str, Any],
    ) -> DocumentRecord:
        record = self.archive.store_document_sync(
            self.user_id,
            data,
            path.name,
            session_id=self.session_id,
            mime_type=mime_type,
            derived=derived,
            analysis=analysis,
            metadata={"source_path": str(path.absolute())},
        )
        if record.sha256:
            self.known[record.sha256] = record.doc_id
        if self.after_store is not None:
            started = time.perf_counter()
            self.after_store(
                StoredDocument(
                    self.user_id,
                    self.session_id,
                    self.archive.layout.documents_dir(self.user_id, self.session_id),
                    record,
                )
            )
            self._timed("after_store", started)
        return record


def _unsupported_analysis() -> dict[str, Any]:
    return {"chunks": 0, "searchable": False, "extractor": None, "warnings": [NOT_SEARCHABLE]}


def _reason(exc: StorageError, path: Path) -> str:
    if isinstance(exc, DocumentError):
        return exc.detail
    return str(exc)


def read_source(path: Path, limit: int) -> bytes:
    """The bytes of ``path``, at most ``limit`` of them; typed errors for every way a dropped
    file can fail to be read."""
    try:
        st = os.stat(path)
        if not stat.S_ISREG(st.st_mode):
            raise UnreadableDocumentError(path, "not a regular file (a device, pipe or socket)")
        if st.st_size > limit:
            raise DocumentTooLargeError(str(path), st.st_size, limit)
        with open(path, "rb") as fh:
            data = fh.read(limit + 1)  # the file may have grown since stat()
    except FileNotFoundError as exc:
        raise UnreadableDocumentError(
            path, "file not found (it was moved or deleted before it could be read)"
        ) from exc
    except PermissionError as exc:
        raise UnreadableDocumentError(path, "cannot read: permission denied") from exc
    except IsADirectoryError as exc:
        raise UnreadableDocumentError(path, "is a folder") from exc
    except OSError as exc:
        raise UnreadableDocumentError(path, f"cannot read: {exc.strerror or exc}") from exc
    if len(data) > limit:
        raise DocumentTooLargeError(str(path), len(data), limit)
    if not data:
        raise EmptyDocumentError(path, "empty file (0 bytes): nothing to store")
    return data
