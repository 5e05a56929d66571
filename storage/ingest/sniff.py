"""What a file is, judged by its bytes first and its name second.

The extension only chooses between text formats (Markdown, CSV, code…); the content decides
whether it is text at all, a PDF, a DOCX or some other binary. A file whose name claims a format
its bytes contradict (binary junk named ``.txt``, a ``.docx`` that is not a zip) is an error, not
a guess.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from pathlib import Path

from storage.documents import guess_mime_type
from storage.errors import CorruptDocumentError

HEAD_BYTES = 8192  # enough to judge text vs binary
PDF_MAGIC_WINDOW = 1024  # the PDF spec allows junk before "%PDF-" within the first 1 KiB
MAX_CONTROL_RATIO = 0.05  # more C0 control bytes than this in the head: not text
DOCX_MIME = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
BOMS = (b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")
_ALLOWED_CONTROLS = frozenset(b"\t\n\r\f\b\x1b")

# Magic numbers of common binary formats: stored as they are, not searchable.
_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"\x1f\x8b", "application/gzip"),
    (b"\x28\xb5\x2f\xfd", "application/zstd"),
    (b"7z\xbc\xaf\x27\x1c", "application/x-7z-compressed"),
    (b"Rar!", "application/vnd.rar"),
    (b"\x7fELF", "application/x-executable"),
    (b"SQLite format 3\x00", "application/vnd.sqlite3"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "application/x-ole-storage"),
    (b"OggS", "audio/ogg"),
    (b"ID3", "audio/mpeg"),
)

# Text formats told apart by extension (the content already proved to be text).
_TEXT_KINDS = {
    ".md": "markdown",
    ".markdown": "markdown",
    ".json": "json",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".html": "html",
    ".htm": "html",
    ".xhtml": "html",
    ".txt": "text",
    ".text": "text",
    ".log": "text",
    ".rst": "text",
}
_CODE_SUFFIXES = frozenset(
    [
        ".py",
        ".pyi",
        ".js",
        ".mjs",
        ".ts",
        ".tsx",
        ".jsx",
        ".java",
        ".kt",
        ".c",
        ".h",
        ".cc",
        ".cpp",
        ".hpp",
        ".cs",
        ".go",
        ".rs",
        ".rb",
        ".php",
        ".swift",
        ".scala",
        ".sh",
        ".bash",
        ".zsh",
        ".ps1",
        ".sql",
        ".r",
        ".lua",
        ".pl",
        ".m",
        ".toml",
        ".yaml",
        ".yml",
        ".ini",
        ".cfg",
        ".conf",
        ".xml",
        ".css",
        ".scss",
        ".tex",
        ".diff",
        ".patch",
    ]
)
_KIND_MIME = {
    "markdown": "text/markdown",
    "json": "application/json",
    "jsonl": "application/jsonl",
    "csv": "text/csv",
    "tsv": "text/tab-separated-values",
    "html": "text/html",
    "text": "text/plain",
    "pdf": "application/pdf",
    "docx": DOCX_MIME,
}
_CLAIMED_BINARY = {".pdf": "pdf", ".docx": "docx"}


@dataclass(frozen=True)
class Sniffed:
    mime_type: str
    kind: str | None  # the extractor to use; None: stored, not searchable


def sniff(name: str, data: bytes) -> Sniffed:
    """The type of ``data`` (a file called ``name``). Raises CorruptDocumentError when the name
    claims PDF, DOCX or text but the bytes are something else."""
    suffix = Path(name).suffix.lower()
    kind = _binary_kind(data)
    claimed = _CLAIMED_BINARY.get(suffix)
    if claimed is not None and kind != claimed:
        raise CorruptDocumentError(name, _mismatch(claimed, data))
    if kind is not None:
        return Sniffed(_KIND_MIME[kind], kind)
    for magic, mime in _MAGIC:
        if data.startswith(magic):
            return _binary(name, suffix, mime)
    if data.startswith(b"PK\x03\x04"):
        return _binary(name, suffix, guess_mime_type(name))
    if not looks_like_text(data[:HEAD_BYTES]):
        return _binary(name, suffix, guess_mime_type(name))
    text_kind = _TEXT_KINDS.get(suffix)
    if text_kind is None and suffix in _CODE_SUFFIXES:
        return Sniffed(_text_mime(name, "text/plain"), "code")
    if text_kind is None:
        text_kind = _text_kind_from_content(data[:HEAD_BYTES])
    return Sniffed(_text_mime(name, _KIND_MIME[text_kind]), text_kind)


def looks_like_text(head: bytes) -> bool:
    """No NUL bytes (unless UTF-16 with a BOM) and few control characters."""
    if head.startswith(BOMS):
        return True
    if b"\x00" in head:
        return False
    controls = sum(1 for b in head if b < 0x20 and b not in _ALLOWED_CONTROLS)
    return controls <= MAX_CONTROL_RATIO * max(1, len(head))


def _binary_kind(data: bytes) -> str | None:
    if b"%PDF-" in data[:PDF_MAGIC_WINDOW]:
        return "pdf"
    if data.startswith(b"PK\x03\x04"):
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as zf:
                names = set(zf.namelist())
        except zipfile.BadZipFile:
            return None  # a broken zip: judged as the binary it is
        if "word/document.xml" in names:
            return "docx"
    return None


def _binary(name: str, suffix: str, mime: str) -> Sniffed:
    if suffix in _TEXT_KINDS or suffix in _CODE_SUFFIXES:
        raise CorruptDocumentError(
            name,
            f"named {suffix} but its content is binary ({mime}; NUL bytes or control "
            "characters), not text",
        )
    return Sniffed(mime, None)


def _mismatch(claimed: str, data: bytes) -> str:
    if claimed == "pdf":
        return "named .pdf but is not a PDF: no %PDF- header (truncated or another format)"
    if data.startswith(b"PK\x03\x04"):
        return "named .docx but is not a DOCX: a zip archive without word/document.xml"
    return "named .docx but is not a DOCX: DOCX files are zip archives and this is not one"


def _text_kind_from_content(head: bytes) -> str:
    start = head.lstrip(b"\xef\xbb\xbf \t\r\n")[:64].lower()
    if start.startswith((b"<!doctype html", b"<html")):
        return "html"
    return "text"


def _text_mime(name: str, default: str) -> str:
    guessed = guess_mime_type(name)
    if guessed.startswith("text/") or guessed in ("application/json", "application/jsonl"):
        return guessed
    return default
