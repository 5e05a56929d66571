"""Snippets of text in other scripts than ASCII: words written onto Chinese, Japanese or
Korean, letters that fold to several (as tantivy folds them), stemming, and the window that
holds every query word."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from storage import Archive, Message
from storage.search.fulltext import build_analyzer
from storage.search.snippets import (
    ELLIPSIS,
    LATIN_CODECS,
    SNIPPET_CHARS,
    fold,
    fold_latin,
    unicode_snippet,
    words_agree,
)
from tests.storage.search_support import HASHING, archive_with

ANALYZER = build_analyzer(stemming=False)


def marked(hit: object) -> list[str]:
    snippet: str = hit.snippet  # type: ignore[attr-defined]
    return [snippet[a:b] for a, b in hit.highlights]  # type: ignore[attr-defined]


def marks(made: tuple[str, list[tuple[int, int]]] | None) -> list[str]:
    assert made is not None
    snippet, ranges = made
    return [snippet[a:b] for a, b in ranges]


async def search(archive: Archive, query: str, mode: str = "keyword") -> dict[str, list[str]]:
    results = await archive.search(query, mode)  # type: ignore[arg-type]
    return {h.message_id: marked(h) for h in results.hits if h.message_id}


# ------------------------------------------------------- words of a query written with CJK


def test_the_latin_words_of_a_cjk_query_word_are_whole_words() -> None:
    text = "İstanbul, ﬁshtab Straße c-d42 東京 and more"
    assert marks(unicode_snippet(text, ["東京", "nb", "s", "42", "d"], ())) == ["東京"]
    assert marks(unicode_snippet(text, ["東京", "c", "d42"], ())) == ["c", "d42", "東京"]
    # Written onto Korean or Japanese: whole where the other letters end.
    text = "서울에서 KTX로 갔다, XKTX로 아니고 KTXs로 아니고; サーバーCPUの使用率"
    assert marks(unicode_snippet(text, ["KTX로"], ())) == ["KTX로"]
    assert marks(unicode_snippet(text, ["KTX"], ())) == ["KTX"]
    assert marks(unicode_snippet(text, ["サーバーCPU"], ())) == ["サーバーCPU"]


@pytest.mark.asyncio
async def test_a_phrase_of_cjk_and_latin_words_marks_the_latin_ones_whole(tmp_path: Path) -> None:
    archive = await archive_with(
        tmp_path / "a",
        {
            "apple": "한국 Apple is sold; pineapple and applesauce too",
            "num": "42 東京 and c-d42",
            "ktx": "서울에서 KTX로, XKTX로 아니고",
        },
    )
    assert await search(archive, '"한국 Apple"') == {"apple": ["한국", "Apple"]}
    assert await search(archive, '"42 東京"') == {"num": ["42", "東京"]}
    assert await search(archive, "KTX로") == {"ktx": ["KTX로"]}
    await archive.close()


# ------------------------------------------ a word held only by the cjk field is highlighted


@pytest.mark.asyncio
async def test_a_word_written_onto_cjk_is_marked_with_other_words_and_in_hybrid(
    tmp_path: Path,
) -> None:
    archive = await archive_with(
        tmp_path / "a",
        {"ko": "서울에서 KTX로 부산에 갔다 train", "ja": "サーバーCPUの使用率 server"},
    )
    assert await search(archive, "KTX") == {"ko": ["KTX"]}
    assert await search(archive, "KTX train") == {"ko": ["KTX", "train"]}
    assert await search(archive, "KTX OR nothing") == {"ko": ["KTX"]}
    assert await search(archive, "CPU server") == {"ja": ["CPU", "server"]}
    hybrid = await search(archive, "KTX", "hybrid")
    assert hybrid["ko"] == ["KTX"] and hybrid["ja"] == []
    assert (await search(archive, "cpu OR nothing", "hybrid"))["ja"] == ["CPU"]
    await archive.close()


# --------------------------------------------------- letters that fold to several letters


def test_letters_fold_as_the_analyzer_folds_them() -> None:
    assert fold("Große Straße, Æsir, ﬁsh, Œuvre, ĳs") == "grosse strasse, aesir, fish, oeuvre, ijs"
    assert fold("Crème Smørrebrød Łódź") == "creme smorrebrod lodz"
    # Letters of other scripts keep what tantivy keeps (Unicode would take off "й"'s breve).
    assert fold("йод ΛΟΓΟΣ 東京") == "йод λογοσ 東京"


@settings(max_examples=300, deadline=None)
@given(
    text=st.lists(
        st.sampled_from(["Straße", "ß", "Æsir", "ﬁsh", "İstanbul", "crème", "x1", "ŒUF", "ss"]),
        max_size=80,
    ).map(" ".join)
)
def test_fold_makes_the_analyzers_words(text: str) -> None:
    words = [w for w in fold(text).split(" ") if w]
    assert words == [t for t in ANALYZER.analyze(text)]


@pytest.mark.parametrize(
    ("words", "prefixes", "expected"),
    [
        (["strasse"], [], ["Straße", "STRASSE"]),
        (["ss"], [], ["ss"]),  # not the "ß" of a word
        ([], ["stras"], ["Straße", "STRASSE"]),
        ([], ["gros"], ["Große"]),
        (["aesir", "fish"], [], ["Æsir", "ﬁsh"]),
        ([], ["aes", "fis"], ["Æsir", "ﬁsh"]),
        (["i̇stanbul"], [], ["İstanbul"]),
        (["stanbul"], [], []),  # not after the dot that "İ" folds to
    ],
)
def test_letters_that_fold_to_several_are_marked_whole(
    words: list[str], prefixes: list[str], expected: list[str]
) -> None:
    text = "Große Straße ss, Æsir ﬁsh İstanbul STRASSE"
    made = unicode_snippet(text, [], words, prefixes=prefixes)
    assert (marks(made) if expected else made) == (expected or None)
    # Where the text is cut, what comes before it folds to several too.
    long = "Æx " * 200 + text + " Æx" * 200
    made = unicode_snippet(long, [], words, prefixes=prefixes)
    if expected:
        assert marks(made) == expected
        assert made is not None and made[0].startswith(ELLIPSIS) and "Æx Große" in made[0]


@pytest.mark.asyncio
async def test_hits_mark_letters_that_fold_to_several(tmp_path: Path) -> None:
    archive = await archive_with(
        tmp_path / "a", {"de": "Die Straße in 東京", "mix": "Große Straße, Æsir, ﬁsh"}
    )
    assert await search(archive, "strasse") == {"de": ["Straße"], "mix": ["Straße"]}
    assert await search(archive, "strasse 東京") == {"de": ["Straße", "東京"]}
    assert await search(archive, "stras*") == {"de": ["Straße"], "mix": ["Straße"]}
    assert await search(archive, "gros*") == {"mix": ["Große"]}
    assert await search(archive, "aes* fis*") == {"mix": ["Æsir", "ﬁsh"]}
    await archive.close()


# ------------------------------------------------------------------------------ stemming


@pytest.mark.asyncio
async def test_with_stemming_words_are_marked_beside_prefixes_and_cjk(tmp_path: Path) -> None:
    overrides = {**HASHING, "search": {"stemming": True}}
    archive = await Archive.open(tmp_path / "a", create=True, overrides=overrides)
    await archive.create_user("ada")
    session = await archive.create_session("ada", "Stems")
    texts = {
        "apples": "I was running to the apples store, she runs daily",
        "tokyo": "Crème brûlée runs; 東京 running",
        "ktx": "서울에서 KTX로 갔다",
    }
    await archive.add_messages(
        "ada",
        session.session_id,
        [Message(message_id=k, role="user", content=v) for k, v in texts.items()],
    )
    assert await search(archive, "running app*") == {"apples": ["running", "apples", "runs"]}
    assert await search(archive, "runs 東京") == {"tokyo": ["runs", "東京", "running"]}
    assert (await search(archive, "run*"))["tokyo"] == ["runs", "running"]
    assert await search(archive, "ktx") == {"ktx": ["KTX"]}
    await archive.close()


# ------------------------------------------------------ a window that holds every word


def test_the_window_holds_every_word_when_one_window_can() -> None:
    text = "東京 " * 100 + "大阪"
    assert marks(unicode_snippet(text, ["東京", "大阪"], ()))[-2:] == ["東京", "大阪"]
    text = "café " * 100 + "aiguille " + "thé " * 100
    made = unicode_snippet(text, [], ["cafe", "aiguille"])
    assert marks(made)[-2:] == ["café", "aiguille"]
    assert made is not None and len(made[0]) <= SNIPPET_CHARS + 2
    # Too far apart for one window: set around the first found.
    text = "café " + "x " * 300 + "aiguille"
    assert marks(unicode_snippet(text, [], ["cafe", "aiguille"])) == ["café"]


# ------------------------------------------- accented text, and text tantivy splits otherwise


def _codec_chars(codec: str) -> str:
    return "".join(
        ch for code in range(256) for ch in [bytes([code]).decode(codec, errors="ignore")] if ch
    )


@settings(max_examples=600, deadline=None)
@given(
    text=st.sampled_from(LATIN_CODECS).flatmap(
        lambda codec: st.text(st.sampled_from(_codec_chars(codec)), max_size=120)
    )
    | st.lists(
        st.sampled_from(["Crème", "SEÑOR", "x²", "Zażółć", "ŽLUŤOUČKÝ", "ılık", "ėė", "¿Qué?"]),
        max_size=30,
    ).map(" ".join)
)
def test_latin_text_folds_to_the_analyzers_words_one_byte_a_character(text: str) -> None:
    padded = fold_latin(text)
    if padded is None:  # a letter the analyzer folds to several, or to one not ASCII
        assert not text.isascii()
        return
    assert len(padded) == len(text) + 2 and padded.isascii()
    assert padded.decode().split() == list(ANALYZER.analyze(text))


def test_accented_latin_text_folds_in_one_byte_encodings_and_other_text_does_not() -> None:
    assert fold_latin("Zażółć gęślą, Žluťoučký kůň") == b" zazolc gesla  zlutoucky kun "
    assert fold_latin("ağaç ılık") == b" agac ilik "
    assert fold_latin("Lietuvių ėė") == b" lietuviu ee "
    assert fold_latin("Été à Łódź") is None  # no one of the encodings holds both
    for text in ("Straße", "Æsir", "µm", "½", "Привет", "Ελλάδα", "東京", "café Привет"):
        assert fold_latin(text) is None, text


def test_python_and_tantivy_agree_on_the_words_of_latin_greek_cyrillic() -> None:
    assert words_agree("Zażółć gęślą jaźń, Привет мир, Γειά σου, İstanbul, ﬁsh 😀")
    # Vowel signs are letters to tantivy and not to Python; circled letters too.
    assert not words_agree("नमस्ते दुनिया")
    assert not words_agree("สวัสดีครับ")
    assert not words_agree("Ⓐ team")


@pytest.mark.asyncio
@pytest.mark.parametrize("stemming", [False, True])
async def test_accented_text_gets_a_window_that_holds_every_word(
    tmp_path: Path, stemming: bool
) -> None:
    """tantivy's generator, which made these snippets, set its window around one word's
    occurrences and left the other out ("café" a hundred times, then "aiguille")."""
    texts = {
        "fr": "café " * 100 + "aiguille " + "thé " * 100,  # Latin-1
        "pl": "Zażółć " * 100 + "jaźń " + "gęślą " * 100,  # Latin Extended
        "ru": "привет " * 100 + "мир " + "слово " * 100,
        "en": "x " * 50 + "running " * 60 + "dogs " + "y " * 100,  # ASCII: stems with stemming
        "hi": "नमस्ते " * 60 + "दुनिया " + "शब्द " * 60,  # tantivy's generator
    }
    archive = await archive_with(
        tmp_path / "a", texts, overrides={**HASHING, "search": {"stemming": stemming}}
    )
    for query, expected in (
        ("café aiguille", {"café", "aiguille"}),
        ("Zażółć jaźń", {"Zażółć", "jaźń"}),
        ("привет мир", {"привет", "мир"}),
        ("running dogs", {"running", "dogs"}),
    ):
        (hit,) = (await archive.search(query, "keyword")).hits
        assert set(marked(hit)) == expected, query
        assert len(hit.snippet) <= SNIPPET_CHARS + 2
        assert hit.snippet.startswith(ELLIPSIS) and hit.snippet.endswith(ELLIPSIS)
    (hit,) = (await archive.search("नमस्ते", "keyword")).hits  # two words to tantivy (the virama)
    assert marked(hit)[:2] == ["नमस", "ते"]
    await archive.close()


def test_words_too_long_for_the_analyzer_are_not_marked(tmp_path: Path) -> None:
    """The analyzer leaves out words of 64 bytes or more in UTF-8, measured before folding:
    "café" 13 times (65 bytes) is not indexed, though its fold "cafe" 13 times (52) is a
    word that is. Only the indexed one is marked, on every path."""
    import datetime as dt

    import tantivy

    from storage.search.fulltext import FullTextIndex, IndexDoc
    from storage.search.query import parse
    from storage.search.snippets import Snippets

    index = FullTextIndex(tmp_path / "i", stemming=False)
    indexed = ["cafe" * 13, "zazolc" * 9, "typical"]
    with index.writer() as writer:
        index.add(
            writer,
            [
                IndexDoc(f"k{i}", "g", "message", "u", "s", word, dt.datetime(2025, 1, 1))
                for i, word in enumerate(indexed)
            ],
        )
        writer.commit()
    searcher = index.searcher()
    for query, text, expected in (
        ("cafe" * 13, "café" * 13 + " and " + "cafe" * 13, ["cafe" * 13]),  # Latin-1
        ("zazolc" * 9, "zażółć" * 9 + " ß " + "zazolc" * 9, ["zazolc" * 9]),  # unicode path
        ("typ*", "typ" + "x" * 70 + " typical", ["typical"]),  # ASCII
        ("typ*", "typé" + "x" * 70 + " typical", ["typical"]),  # Latin-1
        ("typ*", "typ" + "ß" * 40 + " typical", ["typical"]),  # unicode path
    ):
        assert list(ANALYZER.analyze(text))[-1] == expected[0].lower()
        snippets = Snippets(index, searcher, index.text_query(parse(query)), matched=True)
        assert marks(snippets(tantivy.Document(text=text))) == expected, text


@settings(max_examples=400, deadline=None)
@given(
    text=st.lists(
        st.sampled_from(
            [
                "Привет", "МИР", "ΛΟΓΟΣ", "Σ", "λόγος", "東京", "«", "»", "—", "…", "İ", "ß",
                "é", "x²", "ǅ", "K", "ﬁ", "Ω", ",", " ",
            ]
        ),
        max_size=40,
    ).map("".join)
)
def test_words_are_found_in_the_lower_cased_text_as_in_its_fold(text: str) -> None:
    """unicode_snippet finds words in str.lower's text where that has the fold's letters and
    digits at the same places (Greek, Cyrillic, CJK), and in the fold elsewhere."""
    from storage.search.snippets import _fold_words

    def words(folded: str) -> list[tuple[tuple[int, int], str]]:
        return [(m.span(), m[0]) for m in re.finditer(r"[^\W_]+", folded)]

    quick = _fold_words(text)
    assert quick == fold(text) or (len(quick) == len(text) and words(quick) == words(fold(text)))


def test_circled_letters_are_marked_as_the_words_tantivy_made_of_them(tmp_path: Path) -> None:
    """"Ⓐ" is a word character to tantivy, which folds it to "a", and none to Python: text
    holding it is searched in its fold, not in str.lower's "ⓐ" (the Chinese, Japanese and
    Korean path and one-word prefixes found no "Ⓐbc" for "abc")."""
    import datetime as dt

    import tantivy

    from storage.search.fulltext import FullTextIndex, IndexDoc
    from storage.search.query import parse
    from storage.search.snippets import Snippets

    texts = ["東京 Ⓐbc", "東京 ⒶbcⒶbc Ⓐbc", "ⓩ9ⓗⓔⓛⓛⓞ 東京"]
    index = FullTextIndex(tmp_path / "i", stemming=False)
    with index.writer() as writer:
        index.add(
            writer,
            [IndexDoc(f"k{i}", "g", "message", "u", "s", t, dt.datetime(2025, 1, 1))
             for i, t in enumerate(texts)],
        )
        writer.commit()
    assert list(ANALYZER.analyze(texts[1])) == ["東京", "abcabc", "abc"]  # one word, not two
    searcher = index.searcher()
    for text, query, expected in (
        (texts[0], "東京 abc", [(0, 2), (3, 6)]),
        (texts[0], "ab*", [(3, 6)]),
        (texts[1], "東京 abc", [(0, 2), (10, 13)]),  # not "Ⓐbc" inside "ⒶbcⒶbc"
        (texts[1], "ab*", [(3, 9), (10, 13)]),  # the whole of "ⒶbcⒶbc"
        (texts[2], "ⓩ9ⓗⓔⓛⓛ* 東京", [(0, 7), (8, 10)]),  # to the word's end: "ⓞ" too
    ):
        snippets = Snippets(index, searcher, index.text_query(parse(query)), matched=True)
        assert snippets(tantivy.Document(text=text)) == (text, expected), (text, query)


THAI = (  # spaces between phrases, none between words
    "วันนี้อากาศดีมากเราจะไปเที่ยวทะเลกันที่จังหวัดชลบุรีและพักที่โรงแรมริมหาด"
    "ผมซื้อโทรศัพท์เครื่องใหม่เมื่อวานนี้ราคาไม่แพงแต่ใช้งานได้ดีมากครับ"
)


@pytest.mark.parametrize(
    ("text", "query"),
    [
        ("नमस्ते " * 60 + "दुनिया " + "शब्द " * 60, "दुनिया"),
        ("สวัสดีครับ " * 40 + "โลก " + "คำ " * 60, "โลก"),
        (THAI * 2 + " iPhone " + THAI * 2, "iphone"),  # no space near the window's ends
        ("नमस्ते" * 100 + " दुनिया " + "नमस्ते" * 100, "दुनिया"),
    ],
)
def test_tantivys_snippets_are_a_window_of_characters_on_whole_words(
    tmp_path: Path, text: str, query: str
) -> None:
    """Scripts whose words only tantivy finds (vowel signs) keep its generator, which counts
    bytes of UTF-8: a Hindi snippet was 88 characters, not 240, and it started inside a
    word (tantivy makes "नमस" and "ते" of "नमस्ते")."""
    import datetime as dt

    import tantivy

    from storage.search.fulltext import FullTextIndex, IndexDoc
    from storage.search.query import parse
    from storage.search.snippets import Snippets

    index = FullTextIndex(tmp_path / "i", stemming=False)
    with index.writer() as writer:
        index.add(writer, [IndexDoc("k", "g", "message", "u", "s", text, dt.datetime(2025, 1, 1))])
        writer.commit()
    snippets = Snippets(index, index.searcher(), index.text_query(parse(query)), matched=True)
    assert not words_agree(text)  # the generator's
    snippet, ranges = snippets(tantivy.Document(text=text))
    assert [snippet[a:b].lower() for a, b in ranges] == [query]
    assert SNIPPET_CHARS - 30 <= len(snippet) <= SNIPPET_CHARS + 2
    assert snippet.startswith(ELLIPSIS) and snippet.endswith(ELLIPSIS)
    body = snippet[1:-1]
    assert body in text
    pieces = body.split(" ")
    if len(pieces) > 3:  # whole words at both ends
        assert {pieces[0], pieces[-1]} <= set(text.split(" "))
    else:  # a space too far from an end: cut there, not at a space next to the word
        a, b = ranges[0]
        assert a > 60 and len(snippet) - b > 60


@pytest.mark.asyncio
async def test_a_snippet_is_cut_before_a_long_row_of_symbols(tmp_path: Path) -> None:
    """Only punctuation, spaces or emoji past the window were all put back: a message ending
    in 300 emoji made a snippet of 500 characters. A short tail still is ("?!")."""
    texts = {
        "tail": "word " * 60 + "party " + "🎉" * 300,
        "head": "🎉" * 300 + " party " + "word " * 60,
        "short": "word " * 60 + "party?!",
    }
    archive = await archive_with(tmp_path / "a", texts)
    hits = {h.message_id: h for h in (await archive.search("party", "keyword")).hits}
    for hit in hits.values():
        assert len(hit.snippet) <= SNIPPET_CHARS + 2 and marked(hit) == ["party"]
    assert hits["tail"].snippet.endswith(ELLIPSIS)
    assert hits["head"].snippet.startswith(ELLIPSIS)
    assert hits["short"].snippet.endswith("party?!")
    await archive.close()
