"""The extractor interface: bytes in, text out (with pages, a title and warnings).

An extractor turns one sniffed kind of file into plain text. It raises a
:class:`storage.errors.DocumentError` subclass for a file it cannot read (encrypted, corrupt)
and adds a warning for what it read only in part. Extractors are registered by kind in
:data:`EXTRACTORS`; callers may pass their own mapping (tests, a future OCR extractor).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol


@dataclass
class Extracted:
    text: str
    # Character offset where each page starts (PDF), so chunks never straddle pages.
    page_starts: list[int] | None = None
    title: str | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def pages(self) -> int | None:
        return len(self.page_starts) if self.page_starts is not None else None


class Extractor(Protocol):
    name: str

    def extract(self, data: bytes, source: str) -> Extracted:
        """The text of ``data``; ``source`` names the file in errors and warnings."""
        ...


def default_extractors() -> Mapping[str, Extractor]:
    # Imported here: pypdf and python-docx cost ~100 ms to import, only paid when used.
    from storage.ingest.docx import DocxExtractor
    from storage.ingest.pdf import PdfExtractor
    from storage.ingest.text import (
        CsvExtractor,
        HtmlExtractor,
        JsonExtractor,
        JsonlExtractor,
        MarkdownExtractor,
        TextExtractor,
    )

    return {
        "text": TextExtractor(),
        "code": TextExtractor("code"),
        "markdown": MarkdownExtractor(),
        "json": JsonExtractor(),
        "jsonl": JsonlExtractor(),
        "csv": CsvExtractor(","),
        "tsv": CsvExtractor("\t"),
        "html": HtmlExtractor(),
        "pdf": PdfExtractor(),
        "docx": DocxExtractor(),
    }
