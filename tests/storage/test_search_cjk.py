"""Chinese and Japanese, written without spaces between words, and Korean, whose words carry
their particles and endings, are found by their words (issue #3: "Unicode tokenizer"; a
whole sentence used to be one term, and a Korean word was found only without them)."""

from __future__ import annotations

from pathlib import Path

import pytest

from storage import Archive
from storage.search.snippets import SNIPPET_CHARS, unicode_snippet
from tests.storage.search_support import archive_with

pytestmark = pytest.mark.asyncio
TEXTS = {
    "ja": "東京は日本の首都です。北京は中国の首都です。",
    "zh": "我们明天去北京看长城，然后回上海。",
    "mix": "The Tokyo office (東京オフィス) opens at nine.",
    "kana": "カタカナとひらがなを勉強しています。",
    "en": "Capital cities of Europe: Paris, Berlin, Madrid.",
    "id": "ユーザーIDを入力してください",
    "cpu": "サーバーCPUの使用率",
    "to": "東京都の人口",
    "fr": "Crème brûlée, ça va très bien. Smørrebrød in Łódź. " + "lorem ipsum dolor " * 20,
    "ko": "서울은 한국의 수도입니다. 서울에서 부산까지 KTX로 두 시간 걸려요.",
    "ko2": "부산 사람들은 바다를 좋아해요",
}


async def cjk_archive(root: Path) -> Archive:
    return await archive_with(root, TEXTS, "Languages")


def marked(hit: object) -> list[str]:
    snippet: str = hit.snippet  # type: ignore[attr-defined]
    return [snippet[a:b] for a, b in hit.highlights]  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("東京", {"ja", "mix", "to"}),
        ("首都", {"ja"}),
        ("日本", {"ja"}),
        ("北京", {"ja", "zh"}),
        ("長城", set()),  # traditional, the text has simplified 长城
        ("长城", {"zh"}),
        ("北京 上海", {"zh"}),
        ("北京 OR 東京", {"ja", "zh", "mix", "to"}),
        ('"首都です"', {"ja"}),
        ("東京*", {"ja", "mix", "to"}),
        ("カタカナ", {"kana"}),
        ("ひらがな", {"kana"}),
        ("東京 office", {"mix"}),
        ("京北", set()),  # never across the full stop between 京。北
        ("東京 -オフィス", {"ja", "to"}),
        ("ユーザー", {"id"}),  # the long-vowel mark is part of the word, not of "ID"
        ("サーバー", {"cpu"}),
        ("「東京」", {"ja", "mix", "to"}),  # punctuation typed with the word
        ("東京、北京", {"ja"}),
        ("東京?", {"ja", "mix", "to"}),
        # Korean: a word found with its particles ("서울은", "서울에서", "부산까지").
        ("서울", {"ko"}),
        ("부산", {"ko", "ko2"}),
        ("수도", {"ko"}),
        ("서울 바다", set()),
        ("부산 바다", {"ko2"}),
        ('"두 시간"', {"ko"}),
        ("서울 -바다", {"ko"}),
        ("서울은", {"ko"}),
        ("서울도", set()),
        ("KTX로", {"ko"}),
        # A word of another script written onto them, alone or excluded.
        ("KTX", {"ko"}),
        ("ktx 부산", {"ko"}),
        ("서울 -KTX", set()),
        ("CPU", {"cpu"}),
        ("ID", {"id"}),
        ("Tokyo", {"mix"}),
        ("office -東京", set()),
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
    # A prefix of these scripts marks the word as typed, not the run of text after it.
    assert {h.message_id: marked(h) for h in (await archive.search("東京*", "keyword")).hits} == {
        "ja": ["東京"],
        "mix": ["東京"],
        "to": ["東京"],
    }
    # Overlapping words are marked once, as one range.
    (hit,) = (await archive.search("東京 京都", "keyword")).hits
    assert hit.message_id == "to" and hit.highlights == [(0, 3)]
    # A Korean word is marked without the particles that follow it.
    (hit,) = (await archive.search("서울", "keyword")).hits
    assert hit.snippet == TEXTS["ko"] and marked(hit) == ["서울", "서울"]
    # So is a word of another script written onto Korean or Japanese.
    (hit,) = (await archive.search("KTX", "keyword")).hits
    assert marked(hit) == ["KTX"]
    (hit,) = (await archive.search("cpu", "keyword")).hits
    assert marked(hit) == ["CPU"]
    await archive.close()


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ("crème brûl*", ["Crème", "brûlée"]),  # an accented word beside a prefix
        ("smør*", ["Smørrebrød"]),  # letters tantivy folds that Unicode does not decompose
        ("łódź*", ["Łódź"]),
        ("lodz*", ["Łódź"]),
    ],
)
async def test_prefixes_mark_words_of_any_script(
    tmp_path: Path, query: str, words: list[str]
) -> None:
    archive = await cjk_archive(tmp_path / "a")
    (hit,) = (await archive.search(query, "keyword")).hits
    assert marked(hit) == words
    await archive.close()


async def test_a_window_of_spaced_text_starts_and_ends_on_whole_words() -> None:
    text = "lorem ipsum dolor " * 30 + "needle " + "sit amet " * 60
    made = unicode_snippet(text, [], ["needle"])
    assert made is not None
    snippet, ranges = made
    assert [snippet[a:b] for a, b in ranges] == ["needle"]
    inner = snippet.strip("…")
    assert inner.split()[0] in ("lorem", "ipsum", "dolor") and inner.split()[-1] in ("sit", "amet")
    assert text.find(inner) >= 0


async def test_a_long_text_is_cut_around_the_first_word() -> None:
    text = "あ" * 500 + "東京タワー" + "い" * 500
    made = unicode_snippet(text, ["東京"], ())
    assert made is not None
    snippet, ranges = made
    assert snippet.startswith("…") and snippet.endswith("…")
    assert len(snippet) <= SNIPPET_CHARS + 2
    assert [snippet[a:b] for a, b in ranges] == ["東京"]
    assert unicode_snippet(text, ["北京"], ()) is None
