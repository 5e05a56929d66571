"""PDF text with pypdf, page by page, so every chunk knows its page.

Broken files are read leniently (``strict=False`` repairs a bad xref table, as most viewers
do); what pypdf reports while repairing becomes a warning on the document. Encrypted files
whose text needs a password fail with :class:`EncryptedDocumentError`.
"""

from __future__ import annotations

import io
import logging
import re
import struct
import threading
import zlib
from collections.abc import Iterator
from contextlib import contextmanager

from pypdf import PdfReader
from pypdf.errors import DependencyError, FileNotDecryptedError, PdfReadError

from storage.errors import CorruptDocumentError, EncryptedDocumentError
from storage.ingest.extract import Extracted
from storage.ingest.text import normalise_newlines

log = logging.getLogger(__name__)

PAGE_SEPARATOR = "\n\n"
MAX_LOGGED_WARNINGS = 5
# pypdf raises these (beyond its own PdfReadError) on malformed files: to us each one means
# the file is corrupt, and says so, with the original exception chained.
_MALFORMED = (
    PdfReadError,
    ValueError,
    KeyError,
    IndexError,
    TypeError,
    AttributeError,
    AssertionError,
    RecursionError,
    OverflowError,
    struct.error,
    zlib.error,
)
_FILENAME_TITLE_RE = re.compile(r"\.(pdf|docx?|rtf|txt|indd|qxd)$|^(untitled|microsoft word)", re.I)


class _ThreadWarnings(logging.Handler):
    """Collects what pypdf logs from this thread only (other ingests may run concurrently)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.thread = threading.get_ident()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if record.thread == self.thread and message not in self.messages:
            self.messages.append(message)


@contextmanager
def _pypdf_warnings() -> Iterator[_ThreadWarnings]:
    handler = _ThreadWarnings()
    logger = logging.getLogger("pypdf")
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


def usable_title(title: object) -> str | None:
    """A metadata title, unless it is a file name or a tool's placeholder."""
    if not isinstance(title, str):
        return None
    title = " ".join(title.split())
    if not title or _FILENAME_TITLE_RE.search(title):
        return None
    return title


class PdfExtractor:
    name = "pdf"

    def extract(self, data: bytes, source: str) -> Extracted:
        with _pypdf_warnings() as pypdf_log:
            reader = self._open(data, source)
            texts: list[str] = []
            warnings: list[str] = []
            for number in range(1, len(reader.pages) + 1):
                try:
                    texts.append(normalise_newlines(reader.pages[number - 1].extract_text()))
                except _MALFORMED as exc:
                    log.info("%s: page %d has unreadable text: %s", source, number, exc)
                    warnings.append(f"page {number}: text could not be extracted ({exc})")
                    texts.append("")
            title = self._title(reader)
        warnings[:0] = [
            f"repaired while reading: {m}" for m in pypdf_log.messages[:MAX_LOGGED_WARNINGS]
        ]
        page_starts: list[int] = []
        offset = 0
        for text in texts:
            page_starts.append(offset)
            offset += len(text) + len(PAGE_SEPARATOR)
        if not any(t.strip() for t in texts):
            warnings.append(
                "no extractable text (a scanned or image-only PDF; OCR is not supported): "
                "stored, not searchable"
            )
        return Extracted(PAGE_SEPARATOR.join(texts), page_starts, title, warnings)

    def _open(self, data: bytes, source: str) -> PdfReader:
        try:
            reader = PdfReader(io.BytesIO(data), strict=False)
            if reader.is_encrypted and not reader.decrypt(""):
                raise EncryptedDocumentError(
                    source, "password-protected PDF: its text cannot be read without the password"
                )
            len(reader.pages)  # parses the page tree: a broken one fails here, not later
        except (FileNotDecryptedError, DependencyError) as exc:
            # DependencyError: AES needs the 'cryptography' package even for an empty password.
            raise EncryptedDocumentError(
                source,
                f"password-protected PDF: its text cannot be read without the password ({exc})",
            ) from exc
        except _MALFORMED as exc:
            raise CorruptDocumentError(source, f"corrupt or truncated PDF: {exc}") from exc
        return reader

    def _title(self, reader: PdfReader) -> str | None:
        try:
            metadata = reader.metadata
        except _MALFORMED as exc:  # a broken info dictionary costs only the title
            log.info("unreadable PDF metadata: %s", exc)
            return None
        return usable_title(metadata.title) if metadata is not None else None
