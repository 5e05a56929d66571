"""Extractors for text formats: plain text and code, Markdown, JSON/JSONL, CSV/TSV, HTML.

Encoding: a UTF-8 or UTF-16 byte-order mark wins; otherwise UTF-8; otherwise the charset the
document declares (HTML ``<meta charset>``); otherwise :data:`FALLBACK_ENCODING` with
replacement characters and a warning. Text that is mostly replacement characters is not text.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from html.parser import HTMLParser
from typing import Any

import orjson

from storage.errors import CorruptDocumentError
from storage.ingest.extract import Extracted

FALLBACK_ENCODING = "utf-8"  # decoded with errors="replace": bad bytes become U+FFFD
MAX_REPLACED_RATIO = 0.2  # above this share of U+FFFD the bytes are not text at all
MAX_WARNINGS = 5  # per kind of warning in one file: enough to say what is wrong
MAX_CSV_FIELD = 16 * 1024 * 1024
_HEADING_RE = re.compile(r"^\s{0,3}#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)
_META_CHARSET_RE = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_\-:.]+)""", re.I)
_SPACES_RE = re.compile(r"[ \t\f\v\u00a0\u200b]+")
_BLANK_LINES_RE = re.compile(r"\n{3,}")


def decode(data: bytes, source: str, declared: str | None = None) -> tuple[str, list[str]]:
    """Text of ``data`` with newlines normalised to ``\\n``, and any warnings."""
    warnings: list[str] = []
    if data.startswith(codecs.BOM_UTF8):
        text, bad = _decode(data[3:], "utf-8")
    elif data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        text, bad = _decode(data, "utf-16")
    else:
        text, bad = _decode(data, "utf-8")
        if bad is not None and declared and _usable(declared):
            declared_text, declared_bad = _decode(data, declared)
            if declared_bad is None:
                return normalise_newlines(declared_text), [
                    f"not UTF-8; decoded as {declared}, the charset the document declares"
                ]
    if bad is not None:
        replaced = text.count("\ufffd")
        if replaced > MAX_REPLACED_RATIO * max(1, len(text)):
            raise CorruptDocumentError(
                source,
                f"not text: {replaced:,} of {len(text):,} characters are invalid "
                f"({bad}); binary content in a text file",
            )
        warnings.append(
            f"invalid text encoding ({bad}); {replaced:,} bad byte sequences were replaced "
            "with U+FFFD"
        )
    return normalise_newlines(text), warnings


def _decode(data: bytes, encoding: str) -> tuple[str, str | None]:
    try:
        return data.decode(encoding), None
    except UnicodeDecodeError as exc:
        where = f"invalid {exc.encoding} at byte {exc.start:,}"
        return data.decode(encoding if encoding != "utf-8" else FALLBACK_ENCODING, "replace"), where


def _usable(encoding: str) -> bool:
    try:
        codecs.lookup(encoding)
    except LookupError:
        return False
    return True


def normalise_newlines(text: str) -> str:
    if text.startswith("\ufeff"):
        text = text[1:]
    return text.replace("\r\n", "\n").replace("\r", "\n")


class TextExtractor:
    """Plain text and source code: the decoded text as it is, so line numbers match."""

    def __init__(self, name: str = "text") -> None:
        self.name = name

    def extract(self, data: bytes, source: str) -> Extracted:
        text, warnings = decode(data, source)
        return Extracted(text, warnings=warnings)


class MarkdownExtractor:
    """Markdown kept as written (markup is searchable text too); the title is the first heading."""

    name = "markdown"

    def extract(self, data: bytes, source: str) -> Extracted:
        text, warnings = decode(data, source)
        heading = _HEADING_RE.search(text)
        return Extracted(text, title=heading.group(1) if heading else None, warnings=warnings)


def _flatten(value: Any, path: str, out: list[str]) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            _flatten(item, f"{path}.{key}" if path else str(key), out)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _flatten(item, f"{path}[{i}]", out)
    elif value is not None:
        text = value if isinstance(value, str) else orjson.dumps(value).decode()
        out.append(f"{path}: {text}" if path else text)


class JsonExtractor:
    """JSON as ``path.to.key: value`` lines, one per value; invalid JSON is kept as text."""

    name = "json"

    def extract(self, data: bytes, source: str) -> Extracted:
        text, warnings = decode(data, source)
        try:
            value = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            warnings.append(f"not valid JSON ({exc}); indexed as plain text")
            return Extracted(text, warnings=warnings)
        lines: list[str] = []
        _flatten(value, "", lines)
        return Extracted("\n".join(line.replace("\n", " ") for line in lines), warnings=warnings)


class JsonlExtractor:
    """JSON Lines: one output line per input line (``key: value; …``), so line numbers match."""

    name = "jsonl"

    def extract(self, data: bytes, source: str) -> Extracted:
        text, warnings = decode(data, source)
        out: list[str] = []
        bad: list[int] = []
        for number, line in enumerate(text.split("\n"), 1):
            if not line.strip():
                out.append("")
                continue
            try:
                value = orjson.loads(line)
            except orjson.JSONDecodeError:
                bad.append(number)
                out.append(line)
                continue
            parts: list[str] = []
            _flatten(value, "", parts)
            out.append("; ".join(p.replace("\n", " ") for p in parts))
        if bad:
            shown = ", ".join(map(str, bad[:MAX_WARNINGS]))
            more = f" and {len(bad) - MAX_WARNINGS} more" if len(bad) > MAX_WARNINGS else ""
            warnings.append(f"lines {shown}{more} are not valid JSON; kept as plain text")
        return Extracted("\n".join(out), warnings=warnings)


class CsvExtractor:
    """CSV/TSV: the header row, then each row as ``header: value | …`` (empty cells left out),
    one line per row so a hit names its row."""

    def __init__(self, delimiter: str) -> None:
        self.delimiter = delimiter
        self.name = "csv" if delimiter == "," else "tsv"

    def extract(self, data: bytes, source: str) -> Extracted:
        text, warnings = decode(data, source)
        csv.field_size_limit(MAX_CSV_FIELD)
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=self.delimiter)
        lines: list[str] = []
        try:
            header = next(reader, [])
            lines.append(" | ".join(h.strip() for h in header))
            for row in reader:
                cells = [
                    f"{header[i].strip()}: {cell.strip()}" if i < len(header) else cell.strip()
                    for i, cell in enumerate(row)
                    if cell.strip()
                ]
                lines.append(" | ".join(c.replace("\n", " ") for c in cells))
        except csv.Error as exc:
            warnings.append(f"not valid {self.name.upper()} ({exc}); indexed as plain text")
            return Extracted(text, warnings=warnings)
        return Extracted("\n".join(lines), warnings=warnings)


# Elements whose content is never visible text.
_INVISIBLE = frozenset({"script", "style", "noscript", "template", "head", "svg", "iframe"})
# Elements that start a new line of text.
_BLOCK = frozenset(
    [
        "address",
        "article",
        "aside",
        "blockquote",
        "br",
        "dd",
        "div",
        "dl",
        "dt",
        "fieldset",
        "figcaption",
        "figure",
        "footer",
        "form",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "header",
        "hr",
        "li",
        "main",
        "nav",
        "ol",
        "p",
        "pre",
        "section",
        "table",
        "tbody",
        "td",
        "th",
        "thead",
        "tfoot",
        "tr",
        "ul",
        "title",
    ]
)


class _VisibleText(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.hidden = 0  # depth inside invisible elements
        self.title: str | None = None
        self.h1: str | None = None
        self._capture: str | None = None
        self._captured: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _INVISIBLE:
            self.hidden += 1
        if tag in _BLOCK:
            self.parts.append("\n")
        if tag in ("title", "h1") and self._capture is None:
            self._capture, self._captured = tag, []

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _BLOCK:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _INVISIBLE and self.hidden:
            self.hidden -= 1
        if tag in _BLOCK:
            self.parts.append("\n")
        if tag == self._capture:
            found = _SPACES_RE.sub(" ", " ".join(self._captured)).strip() or None
            if tag == "title" and self.title is None:
                self.title = found
            elif tag == "h1" and self.h1 is None:
                self.h1 = found
            self._capture = None

    def handle_data(self, data: str) -> None:
        if self._capture is not None:
            self._captured.append(data)
        if not self.hidden:
            self.parts.append(data)


class HtmlExtractor:
    """Visible text only (no scripts, styles or head), one line per block element; the title
    is ``<title>`` or the first ``<h1>``."""

    name = "html"

    def extract(self, data: bytes, source: str) -> Extracted:
        match = _META_CHARSET_RE.search(data[:4096])
        declared = match.group(1).decode("ascii") if match else None
        text, warnings = decode(data, source, declared)
        parser = _VisibleText()
        parser.feed(text)
        parser.close()
        lines = (_SPACES_RE.sub(" ", line).strip() for line in "".join(parser.parts).split("\n"))
        visible = _BLANK_LINES_RE.sub("\n\n", "\n".join(lines)).strip()
        return Extracted(visible, title=parser.title or parser.h1, warnings=warnings)
