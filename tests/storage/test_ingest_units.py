"""The pieces of ingestion on their own: sniffing, decoding, chunking, analysis."""

from __future__ import annotations

import codecs
import itertools

import pytest

from storage.errors import CorruptDocumentError
from storage.ingest import chunk_text, sniff
from storage.ingest.analysis import analyse, detect_language, keywords
from storage.ingest.chunking import MAX_CHUNK_CHARS, OVERLAP_WORDS, TARGET_WORDS, WORD_RE
from storage.ingest.text import CsvExtractor, JsonExtractor, JsonlExtractor, decode


@pytest.mark.parametrize(
    ("name", "data", "mime", "kind"),
    [
        ("notes.txt", b"hello", "text/plain", "text"),
        ("README", b"hello", "text/plain", "text"),
        ("script.py", b"print(1)\n", "text/x-python", "code"),
        ("a.md", b"# T", "text/markdown", "markdown"),
        ("page", b"  <!DOCTYPE html><p>x", "text/html", "html"),
        ("x.pdf.txt", b"%PDF-1.4\n...", "application/pdf", "pdf"),
        ("photo.jpg", b"\xff\xd8\xff\xe0" + bytes(20), "image/jpeg", None),
        ("blob", b"\x00\x01\x02", "application/octet-stream", None),
        ("utf16.txt", codecs.BOM_UTF16_LE + "hi".encode("utf-16-le"), "text/plain", "text"),
    ],
)
def test_sniff(name: str, data: bytes, mime: str, kind: str | None) -> None:
    sniffed = sniff(name, data)
    assert (sniffed.mime_type, sniffed.kind) == (mime, kind)


def test_sniff_rejects_a_lying_extension() -> None:
    with pytest.raises(CorruptDocumentError, match=r"named \.txt but its content is binary"):
        sniff("photo.txt", b"\x89PNG\r\n\x1a\n" + bytes(20))


@pytest.mark.parametrize(
    ("data", "text"),
    [
        (codecs.BOM_UTF8 + "café".encode(), "café"),
        (codecs.BOM_UTF16_LE + "café\r\nx".encode("utf-16-le"), "café\nx"),
        (codecs.BOM_UTF16_BE + "ﬁne".encode("utf-16-be"), "ﬁne"),
        (b"line\rmac", "line\nmac"),
    ],
)
def test_decode(data: bytes, text: str) -> None:
    assert decode(data, "f") == (text, [])


def test_structured_text() -> None:
    json_text = JsonExtractor().extract(b'{"a": {"b": ["x", 2]}, "c": null}', "f").text
    assert json_text == "a.b[0]: x\na.b[1]: 2"
    jsonl = JsonlExtractor().extract(b'{"role": "user"}\nnot json\n{"n": 1}', "f")
    assert jsonl.text == "role: user\nnot json\nn: 1"  # one line per input line
    assert "lines 2 are not valid JSON" in jsonl.warnings[0]
    csv_text = CsvExtractor(",").extract(b'name,city\n"Doe, J",Oslo\n,Rome\n', "f").text
    assert csv_text == "name | city\nname: Doe, J | city: Oslo\ncity: Rome"


def _words(n: int, sentence: int = 12) -> str:
    return " ".join(f"w{i}" + ("." if i % sentence == sentence - 1 else "") for i in range(n))


def test_chunks_are_slices_with_overlap() -> None:
    text = _words(1000)
    chunks = chunk_text(text)
    assert len(chunks) >= 5
    for chunk in chunks:
        assert chunk.text == text[chunk.start : chunk.end]
        assert len(WORD_RE.findall(chunk.text)) <= TARGET_WORDS
        assert chunk.text.endswith(".") or chunk is chunks[-1]  # cut at sentence ends
    for a, b in itertools.pairwise(chunks):
        assert b.start < a.end  # overlap
        assert len(WORD_RE.findall(text[b.start : a.end])) <= OVERLAP_WORDS
    assert chunks[-1].end == len(text)


def test_chunk_lines_and_pages() -> None:
    text = "\n".join(f"Line {n} has words." for n in range(1, 301))
    chunks = chunk_text(text)
    assert chunks[0].line_start == 1
    assert chunks[-1].line_end == 300
    for chunk in chunks:
        assert chunk.text.startswith(f"Line {chunk.line_start} ")
        assert chunk.text.endswith(f"Line {chunk.line_end} has words.")
    pages = ["Page one text. " * 150, "Page two.", "", "Page four."]
    starts, offset = [], 0
    for page in pages:
        starts.append(offset)
        offset += len(page) + 2
    paged = chunk_text("\n\n".join(pages), starts)
    assert {c.page for c in paged} == {1, 2, 4}
    assert all(c.line_start is None for c in paged)
    assert [c.text for c in paged if c.page == 4] == ["Page four."]


def test_text_without_spaces_is_cut_by_length() -> None:
    cjk = "吾輩は猫である。" * 200
    chunks = chunk_text(cjk)
    assert 5 <= len(chunks) < 20
    blob = "x" * (3 * MAX_CHUNK_CHARS)
    assert [c.end - c.start for c in chunk_text(blob)] == [MAX_CHUNK_CHARS] * 3
    assert chunk_text("") == chunk_text("  \n\n ") == []


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("The quick brown fox jumps over the lazy dog and the cat is in the house.", "en"),
        ("Le chat est sur la table et il ne veut pas descendre pour le dîner.", "fr"),
        ("Der Hund ist nicht in dem Haus und die Katze auch nicht.", "de"),
        ("Привет, мир. Это простой текст на русском языке.", "ru"),
        ("吾輩は猫である。名前はまだ無い。", "ja"),
        ("你好世界，这是一个简单的中文句子。", "zh"),
        ("12 34", "und"),
    ],
)
def test_language(text: str, language: str) -> None:
    assert detect_language(text) == language


def test_analysis() -> None:
    text = "Engines compute numbers. The engine is a machine. Engines and numbers. " * 30
    result = analyse(text, None, "Engines")
    assert result["words"] == 11 * 30
    assert result["characters"] == len(text)
    assert result["reading_time_minutes"] == 1.5
    assert keywords(text)[:3] == ["engines", "numbers", "compute"]
    assert "the" not in result["keywords"]
