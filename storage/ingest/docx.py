"""DOCX text with python-docx: body paragraphs and tables (nested ones too) in reading order,
then the headers and footers of every section.

A DOCX is a zip: before python-docx unpacks anything, the declared uncompressed sizes are
checked against :data:`MAX_UNCOMPRESSED` so a zip bomb fails fast instead of filling memory.
"""

from __future__ import annotations

import io
import logging
import zipfile
from collections.abc import Iterable, Iterator
from typing import Any

import docx
from docx.opc.exceptions import PackageNotFoundError
from docx.table import Table
from docx.text.paragraph import Paragraph
from lxml.etree import XMLSyntaxError  # type: ignore[import-untyped]

from storage.errors import CorruptDocumentError
from storage.ingest.extract import Extracted
from storage.ingest.pdf import usable_title

log = logging.getLogger(__name__)

MAX_UNCOMPRESSED = 512 * 1024 * 1024  # a real DOCX this large is unheard of; a bomb is not
MAX_RATIO = 200  # deflate rarely beats 100:1 on real XML; bombs reach 1000:1
RATIO_CHECKED_ABOVE = 16 * 1024 * 1024  # small members may compress extremely (blank XML)
CELL_SEPARATOR = " | "
# python-docx and lxml raise these on a damaged package: each means the file is corrupt.
_MALFORMED = (
    PackageNotFoundError,
    zipfile.BadZipFile,
    XMLSyntaxError,
    KeyError,
    ValueError,
    AttributeError,
    TypeError,
    IndexError,
)


def check_zip(data: bytes, source: str) -> None:
    """Raise CorruptDocumentError for a broken zip or one that unpacks beyond the caps."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            infos = zf.infolist()
    except zipfile.BadZipFile as exc:
        raise CorruptDocumentError(source, f"not a DOCX: broken zip archive ({exc})") from exc
    total = sum(info.file_size for info in infos)
    if total > MAX_UNCOMPRESSED:
        raise CorruptDocumentError(
            source,
            f"DOCX unpacks to {total:,} bytes, over the cap of {MAX_UNCOMPRESSED:,} "
            "(a zip bomb?); not extracted",
        )
    for info in infos:
        ratio = info.file_size // max(1, info.compress_size)
        if info.file_size > RATIO_CHECKED_ABOVE and ratio > MAX_RATIO:
            raise CorruptDocumentError(
                source,
                f"DOCX member {info.filename!r} expands {ratio:,}-fold to {info.file_size:,} "
                "bytes (a zip bomb?); not extracted",
            )


def _blocks(container: Any) -> Iterator[str]:
    """Lines of text of a document body, table cell, header or footer, in order."""
    for item in container.iter_inner_content():
        if isinstance(item, Paragraph):
            yield item.text
        elif isinstance(item, Table):
            yield from _table(item)


def _table(table: Table) -> Iterator[str]:
    for row in table.rows:
        cells: list[str] = []
        seen: set[int] = set()
        for cell in row.cells:
            if id(cell._tc) in seen:  # a merged cell is returned once per grid column
                continue
            seen.add(id(cell._tc))
            text = "\n".join(line for line in _blocks(cell) if line.strip())
            if text:
                cells.append(text)
        if cells:
            yield CELL_SEPARATOR.join(cells)


def _unique(lines: Iterable[str], seen: set[str]) -> Iterator[str]:
    for line in lines:
        if line.strip() and line not in seen:
            seen.add(line)
            yield line


class DocxExtractor:
    name = "docx"

    def extract(self, data: bytes, source: str) -> Extracted:
        check_zip(data, source)
        try:
            document = docx.Document(io.BytesIO(data))
            body = list(_blocks(document))
            seen: set[str] = set()
            margins: list[str] = []
            for section in document.sections:
                for part in (section.header, section.footer):
                    if not part.is_linked_to_previous:
                        margins.extend(_unique(_blocks(part), seen))
            title = usable_title(document.core_properties.title) or _first_heading(document)
        except _MALFORMED as exc:
            raise CorruptDocumentError(source, f"corrupt DOCX: {exc}") from exc
        text = "\n".join(body)
        if margins:
            text += "\n\n" + "\n".join(margins)
        return Extracted(text.strip("\n"), title=title)


def _first_heading(document: Any) -> str | None:
    for paragraph in document.paragraphs:
        style = paragraph.style.name if paragraph.style is not None else ""
        if style.startswith(("Heading", "Title")) and paragraph.text.strip():
            return str(paragraph.text.strip())
    return None
