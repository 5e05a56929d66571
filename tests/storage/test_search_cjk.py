"""Chinese and Japanese, written without spaces between words, are found by their words
(issue #3: "Unicode tokenizer"; a whole sentence used to be one term)."""

from __future__ import annotations

from pathlib import Path

import pytest

from storage import Archive
from storage.search.snippets import SNIPPET_CHARS, cjk_snippet
from tests.storage.search_support import archive_with

pytestmark = pytest.mark.asyncio
TEXTS = {
    "ja": "東京は日本の首都です。北京は中国の首都です。",
    "zh": "我们明天去北京看长城，然后回上海。",
    "mix": "The Tokyo office (東京オフィス) opens at nine.",
    "kana": "カタカナとひらがなを勉強しています。",
    "en": "Capital cities of Europe: Paris, Berlin, Madrid.",
}


async def cjk_archive(root: Path) -> Archive:
    return await archive_with(root, TEXTS, "Languages")


def marked(hit: object) -> list[str]:
    snippet: str = hit.snippet  # type: ignore[attr-defined]
    return [snippet[a:b] for a, b in hit.highlights]  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("東京", {"ja", "mix"}),
        ("首都", {"ja"}),
        ("日本", {"ja"}),
        ("北京", {"ja", "zh"}),
        ("長城", set()),  # traditional, the text has simplified 长城
        ("长城", {"zh"}),
        ("北京 上海", {"zh"}),
        ("北京 OR 東京", {"ja", "zh", "mix"}),
        ('"首都です"', {"ja"}),
        ("東京*", {"ja", "mix"}),
        ("カタカナ", {"kana"}),
        ("ひらがな", {"kana"}),
        ("東京 office", {"mix"}),
        ("京北", set()),  # never across the full stop between 京。北
        ("東京 -オフィス", {"ja"}),
    ],
)
async def test_chinese_and_japanese_words_are_found(
    tmp_path: Path, query: str, expected: set[str]
) -> None:
    archive = await cjk_archive(tmp_path / "a")
    results = await archive.search(query, "keyword")
    assert {h.message_id for h in results.hits} == expected
    assert results.total == len(expected)
    await archive.close()


async def test_their_snippets_highlight_the_words(tmp_path: Path) -> None:
    archive = await cjk_archive(tmp_path / "a")
    (hit,) = (await archive.search("首都", "keyword")).hits
    assert hit.snippet == TEXTS["ja"] and marked(hit) == ["首都", "首都"]
    hits = (await archive.search("東京 office", "keyword")).hits
    assert marked(hits[0]) == ["office", "東京"]
    await archive.close()


async def test_a_long_text_is_cut_around_the_first_word() -> None:
    text = "あ" * 500 + "東京タワー" + "い" * 500
    made = cjk_snippet(text, ["東京"], ())
    assert made is not None
    snippet, ranges = made
    assert snippet.startswith("…") and snippet.endswith("…")
    assert len(snippet) <= SNIPPET_CHARS + 2
    assert [snippet[a:b] for a, b in ranges] == ["東京"]
    assert cjk_snippet(text, ["北京"], ()) is None
