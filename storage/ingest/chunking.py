"""Cutting extracted text into ~200-word chunks on sentence and paragraph boundaries.

Each chunk is a slice ``text[start:end]`` of the extracted text, so a search hit maps back to
exact characters; it also carries its page (paged documents: a chunk never straddles pages) or
its line range. Consecutive chunks overlap by up to :data:`OVERLAP_WORDS` words (whole
sentences), so a phrase cut by a boundary is still found whole in one chunk.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

TARGET_WORDS = 200
OVERLAP_WORDS = 30
MIN_WORDS_AT_PARAGRAPH = 150  # a paragraph break this late closes the chunk early
MAX_CHUNK_CHARS = 3000  # text without spaces (CJK, base64) is cut by length instead

# A word: a run of letters/digits, or one CJK character (those scripts write no spaces).
WORD_RE = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]|\w+")
# Boundaries: a blank line (paragraph), a line end, or whitespace after a sentence end.
_BOUNDARY_RE = re.compile(r"\n[ \t]*\n\s*|\n|(?<=[.!?;:…])\s+|(?<=[。！？；])")


@dataclass(frozen=True)
class Chunk:
    chunk: int
    start: int
    end: int
    page: int | None
    line_start: int | None
    line_end: int | None
    text: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "chunk": self.chunk,
            "start": self.start,
            "end": self.end,
            "page": self.page,
            "line_start": self.line_start,
            "line_end": self.line_end,
            "text": self.text,
        }


@dataclass(frozen=True)
class _Segment:
    start: int
    end: int
    words: int
    paragraph_before: bool


def chunk_text(text: str, page_starts: list[int] | None = None) -> list[Chunk]:
    """Chunks of ``text``; with ``page_starts`` (offsets where pages begin) each chunk gets
    its 1-based page, otherwise its 1-based line range."""
    regions: list[tuple[int, int, int | None]]
    if page_starts:
        bounds = [*page_starts[1:], len(text)]
        regions = [(s, e, n) for n, (s, e) in enumerate(zip(page_starts, bounds, strict=True), 1)]
    else:
        regions = [(0, len(text), None)]
    newlines = [m.start() for m in re.finditer("\n", text)] if not page_starts else []
    chunks: list[Chunk] = []
    for region_start, region_end, page in regions:
        for start, end in _cut(text, region_start, region_end):
            first = last = None
            if page is None:
                first = bisect.bisect_left(newlines, start) + 1
                last = bisect.bisect_left(newlines, end - 1) + 1
            chunks.append(Chunk(len(chunks), start, end, page, first, last, text[start:end]))
    return chunks


def _segments(text: str, start: int, end: int) -> Iterator[_Segment]:
    position = start
    paragraph = True
    for match in _BOUNDARY_RE.finditer(text, start, end):
        yield from _trimmed(text, position, match.start(), paragraph)
        paragraph = match.group().count("\n") >= 2
        position = match.end()
    yield from _trimmed(text, position, end, paragraph)


def _trimmed(text: str, start: int, end: int, paragraph: bool) -> Iterator[_Segment]:
    piece = text[start:end]
    stripped = piece.strip()
    if not stripped:
        return
    start += len(piece) - len(piece.lstrip())
    end = start + len(stripped)
    if end - start <= MAX_CHUNK_CHARS:
        count = len(WORD_RE.findall(text, start, end))
        if count <= TARGET_WORDS:
            yield _Segment(start, end, count, paragraph)
            return
    words = [(m.start(), m.end()) for m in WORD_RE.finditer(text, start, end)]
    # A "sentence" longer than a chunk (a table row, CJK prose): cut it at word boundaries.
    piece_start = start
    count = 0
    for word_start, word_end in words:
        if count and (count >= TARGET_WORDS or word_end - piece_start > MAX_CHUNK_CHARS):
            yield _Segment(piece_start, _rstrip(text, piece_start, word_start), count, paragraph)
            piece_start, count, paragraph = word_start, 0, False
        count += 1
    while end - piece_start > MAX_CHUNK_CHARS:  # no words at all (symbols): cut by length
        cut = piece_start + MAX_CHUNK_CHARS
        yield _Segment(piece_start, cut, count, paragraph)
        piece_start, count, paragraph = cut, 0, False
    if end > piece_start:
        yield _Segment(piece_start, end, count, paragraph)


def _rstrip(text: str, start: int, end: int) -> int:
    while end > start and text[end - 1].isspace():
        end -= 1
    return end


def _cut(text: str, start: int, end: int) -> Iterator[tuple[int, int]]:
    current: list[_Segment] = []
    words = 0
    for segment in _segments(text, start, end):
        full = current and words + segment.words > TARGET_WORDS
        early = current and segment.paragraph_before and words >= MIN_WORDS_AT_PARAGRAPH
        too_long = current and segment.end - current[0].start > MAX_CHUNK_CHARS
        if full or early or too_long:
            yield current[0].start, current[-1].end
            current, words = _overlap(current)
        current.append(segment)
        words += segment.words
    if current:  # the last segment was added after the last yield: never a bare overlap
        yield current[0].start, current[-1].end


def _overlap(previous: list[_Segment]) -> tuple[list[_Segment], int]:
    """The trailing whole segments of the previous chunk to repeat (never all of it)."""
    kept: list[_Segment] = []
    words = 0
    for segment in reversed(previous[1:]):
        if words + segment.words > OVERLAP_WORDS:
            break
        kept.insert(0, segment)
        words += segment.words
    return kept, words
