"""Snippets: a window of the hit's text around the query's rarest word, on whole words, with
every query word in it highlighted; checked against an independent tokenization of the text.
The ASCII analysis must be exactly tantivy's analyzer."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import tantivy
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from storage.search.fulltext import TOKEN_MAX, FullTextIndex, IndexDoc, build_analyzer
from storage.search.query import parse
from storage.search.snippets import (
    EDGE,
    ELLIPSIS,
    SNIPPET_CHARS,
    Snippets,
    best_window,
    fold_ascii,
    needles,
    prefix_snippet,
    window_snippet,
)

# Words with different document frequencies in the index below, and some it does not hold.
VOCAB = ["rust", "Language", "a", "b", "c", "x1", "2024", "memory", "safe", "Rusty", "zz"]
LONG = "q" * 63 + "w"  # 64 characters: dropped by the analyzer
NEAR_LONG = "k" * 63  # 63: kept
SEPARATORS = [" ", " ", " ", ", ", ".\n", "-", "'", " (", ") ", "_", "  ", "\t"]

words = st.sampled_from([*VOCAB, LONG, NEAR_LONG, "the", "of", "x", "Rust2", "aB"])
texts = st.lists(st.tuples(words, st.sampled_from(SEPARATORS)), max_size=160).map(
    lambda parts: "".join(w + s for w, s in parts)
)
query_words = st.sampled_from([*VOCAB, "missing", "x", "rust2", "nope"])
queries = st.lists(
    st.one_of(
        query_words,
        st.lists(query_words, min_size=2, max_size=3).map(lambda ws: '"' + " ".join(ws) + '"'),
        query_words.map(lambda w: w + "*"),
    ),
    min_size=1,
    max_size=4,
).flatmap(lambda ts: st.sampled_from([" ".join(ts), " OR ".join(ts)]))


def head(text: str) -> tuple[str, list[tuple[int, int]]]:
    """A snippet when no term is found: the text's start."""
    return (text[:SNIPPET_CHARS] + "…" if len(text) > SNIPPET_CHARS else text), []


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FullTextIndex]:
    import datetime as dt

    index = FullTextIndex(Path(tmp_path_factory.mktemp("snippets")), stemming=False)
    bodies = ["rust rust language", "rust a b c", "memory safe rust", "2024 x1 a", "a a a"]
    with index.writer() as writer:
        index.add(
            writer,
            [
                IndexDoc(
                    key=f"k{i}",
                    group="g",
                    kind="message",
                    user="u",
                    session="s",
                    text=body,
                    timestamp=dt.datetime(2025, 1, 1, tzinfo=dt.UTC),
                )
                for i, body in enumerate(bodies * (1 + len(bodies)))
            ],
        )
        writer.commit()
    yield index


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(st.characters(max_codepoint=127), max_size=300) | texts)
def test_ascii_analysis_is_the_analyzers(index: FullTextIndex, text: str) -> None:
    assert index.tokens(text) == list(build_analyzer(False).analyze(text))


def reference_words(text: str) -> list[tuple[int, int, str]]:
    """The text's words as tantivy's analyzer makes them, with where they are."""
    return [(m.start(), m.end(), m.group().lower()) for m in re.finditer("[A-Za-z0-9]+", text)]


def is_alnum(c: str) -> bool:
    return c.isascii() and c.isalnum()


def one_window_can_hold(
    words: list[tuple[int, int, str]], wanted: list[str], max_chars: int
) -> bool:
    """Whether some window of ``max_chars`` characters holds an occurrence of every one of
    ``wanted`` (``words``: :func:`reference_words`), as a window from each word on shows."""
    held = [w for w in words if w[2] in wanted]
    for first, (a, _b, _w) in enumerate(held):
        inside = {w for _a, b, w in held[first:] if b <= a + max_chars}
        if len(inside) == len(set(wanted)):
            return True
    return False


@settings(max_examples=2500, deadline=None)
@given(
    text=texts,
    terms=st.lists(
        st.sampled_from([w.lower() for w in VOCAB] + ["the", "of", "nope"]),
        min_size=1,
        max_size=5,
        unique=True,
    ),
    max_chars=st.sampled_from([64, 100, SNIPPET_CHARS]),
)
def test_the_window_holds_the_rarest_word_on_whole_words(
    text: str, terms: list[str], max_chars: int
) -> None:
    words = reference_words(text)
    present = [t for t in terms if any(w == t for _a, _b, w in words)]
    found = best_window(text, needles(terms), max_chars)
    if not present:
        assert found is None and window_snippet(text, needles(terms), max_chars) is None
        return
    assert found is not None
    start, end, ranges = found
    n = len(text)
    assert 0 <= start <= end <= n and end - start <= max_chars
    if n <= max_chars:
        assert (start, end) == (0, n)
    else:  # no more cut off than a word at either end (the longest here: 64 characters)
        assert end - start >= max_chars - 2 * (len(LONG) + 2)
    assert start == 0 or (not is_alnum(text[start - 1]) and is_alnum(text[start]))
    assert end == n or not (is_alnum(text[end - 1]) and is_alnum(text[end]))
    inside = [
        (a - start, b - start) for a, b, w in words if w in present and start <= a and b <= end
    ]
    assert ranges == inside  # every query word in the window, and nothing else
    rarest = present[0]
    assert any(text[start + a : start + b].lower() == rarest for a, b in ranges)
    if one_window_can_hold(words, present, max_chars):  # then the window does
        assert {text[start + a : start + b].lower() for a, b in ranges} == set(present)
    if present == terms:  # as a keyword search's hit: the same window, found with less looking
        assert best_window(text, needles(terms), max_chars, every=True) == found
    snippet, marked = window_snippet(text, needles(terms), max_chars)  # type: ignore[misc]
    assert [snippet[a:b].lower() for a, b in marked] == [
        text[start + a : start + b].lower() for a, b in ranges
    ]
    body = snippet.removeprefix(ELLIPSIS).removesuffix(ELLIPSIS)
    assert body.strip() and body in text
    assert snippet.startswith(ELLIPSIS) == any(is_alnum(c) for c in text[:start])
    assert snippet.endswith(ELLIPSIS) == any(c.isalnum() for c in text[end:])


@settings(max_examples=600, deadline=None)
@given(text=texts, query=st.one_of(query_words, query_words.map(str.upper), queries))
def test_a_searchs_snippets_mark_the_indexed_words_it_holds(
    index: FullTextIndex, text: str, query: str
) -> None:
    searcher = index.searcher()
    text_query = index.text_query(parse(query))
    doc = tantivy.Document(text=text)
    made = Snippets(index, searcher, text_query)(doc)
    terms = text_query.terms
    if terms is None:  # a phrase ending in a prefix: tantivy's generator decides
        return
    indexed = [t for t in terms if searcher.doc_freq("text", t) > 0]
    words = {w for _a, _b, w in reference_words(text)}
    # A one-word prefix marks the words of the hit it stands for, indexed or not.
    held = words & set(indexed) | {w for w in words if w.startswith(text_query.prefixes)}
    snippet, ranges = made
    if not held:
        assert made == head(text)
        return
    assert ranges and {snippet[a:b].lower() for a, b in ranges} <= held
    if set(indexed) == set(terms) == held:  # as a keyword search's hit: every term in it
        assert Snippets(index, searcher, text_query, matched=True)(doc) == made


def test_the_window_holding_most_words_wins(index: FullTextIndex) -> None:
    """ "memory" is in fewer documents than "rust": the window is set around it, and around
    its second occurrence, which has "rust" beside it."""
    text = "memory " + ("x " * 200) + "memory safe, rust " + ("y " * 200)
    text_query = index.text_query(parse("rust memory"))
    snippets = Snippets(index, index.searcher(), text_query, matched=True)
    assert snippets.terms == ("memory", "rust")
    snippet, ranges = snippets(tantivy.Document(text=text))
    assert [snippet[a:b] for a, b in ranges] == ["memory", "rust"]
    assert snippet.startswith("…x x") and snippet.endswith("y y…")
    assert snippet.index("memory") < len(snippet) // 2  # context on both sides
    assert len(snippet) <= SNIPPET_CHARS + 2


def test_a_text_that_fits_is_shown_whole(index: FullTextIndex) -> None:
    snippets = Snippets(index, index.searcher(), index.text_query(parse("rust")), matched=True)
    assert snippets.terms == ("rust",)
    text = "  Is Rust memory-safe?! "
    assert snippets(tantivy.Document(text=text)) == ("  Is Rust memory-safe?!", [(5, 9)])
    # Only punctuation after the window: put back, not elided.
    long = "word " * 60 + "rust?!"
    snippet, ranges = snippets(tantivy.Document(text=long))
    assert snippet.startswith("…") and snippet.endswith("rust?!")
    assert [snippet[a:b] for a, b in ranges] == ["rust"]


def test_non_ascii_text_prefix_phrases_and_absent_terms(index: FullTextIndex) -> None:
    searcher = index.searcher()
    prefix_phrase = index.text_query(parse("memory-sa*"))  # tantivy expands the prefix
    assert Snippets(index, searcher, prefix_phrase).terms is None
    doc = tantivy.Document(text="Crème sáfe rust")  # character ranges, not bytes
    assert Snippets(index, searcher, index.text_query(parse("safe")))(doc)[1] == [(6, 10)]
    # The generator's fragment of a long text is elided as a window is.
    long = "Crème " * 80 + "safe " + "brûlée " * 80
    snippet, ranges = Snippets(index, searcher, index.text_query(parse("safe")))(
        tantivy.Document(text=long)
    )
    assert snippet.startswith("…") and snippet.endswith("…")
    assert [snippet[a:b] for a, b in ranges] == ["safe"]
    # A term no document holds is not highlighted, even when the text has it.
    doc = tantivy.Document(text="missing piece of rust")
    snippets = Snippets(index, searcher, index.text_query(parse("missing OR rust")))
    assert snippets.terms == ("rust",)
    assert snippets(doc) == ("missing piece of rust", [(17, 21)])


def test_a_hit_without_the_words_shows_its_start(index: FullTextIndex) -> None:
    snippets = Snippets(index, index.searcher(), index.text_query(parse("rust")))
    assert snippets(tantivy.Document(text="nothing here")) == ("nothing here", [])
    long = "nothing " * 40
    assert snippets(tantivy.Document(text=long)) == (long[:SNIPPET_CHARS] + "…", [])


@settings(max_examples=1500, deadline=None)
@given(
    parts=st.lists(
        st.tuples(st.integers(0, 90), st.sampled_from(["memory", "rust", "safe", "zz"])),
        min_size=2,
        max_size=8,
    ),
    terms=st.permutations(["memory", "rust", "safe", "zz"]).map(lambda ts: ts[:3]),
    max_chars=st.sampled_from([64, 100, SNIPPET_CHARS]),
    every=st.booleans(),
)
def test_the_window_holds_every_word_when_one_window_can(
    parts: list[tuple[int, str]], terms: list[str], max_chars: int, every: bool
) -> None:
    """Query words scattered among filler, the rarest wherever it falls: the window holds
    every one the text holds whenever a window of that size can."""
    text = " ".join(" ".join(["x"] * gap + [word]) for gap, word in parts) + " x" * 40
    words = reference_words(text)
    present = [t for t in terms if any(w == t for _a, _b, w in words)]
    if not present or (every and present != terms):
        return
    found = best_window(text, needles(terms), max_chars, every=every)
    assert found is not None
    start, end, ranges = found
    assert end - start <= max_chars
    marked = {text[start + a : start + b] for a, b in ranges}
    assert present[0] in marked
    if one_window_can_hold(words, present, max_chars):
        assert marked == set(present)


def test_a_word_the_text_holds_fewer_times_is_not_lost_among_the_rarest(
    index: FullTextIndex,
) -> None:
    """ "rust" is held by more documents than "memory", but here it occurs once, after a
    hundred "memory": the window is the one that holds both."""
    snippets = Snippets(index, index.searcher(), index.text_query(parse("rust memory")), True)
    assert snippets.terms == ("memory", "rust")
    text = "memory " * 100 + "rust"
    for made in (
        snippets(tantivy.Document(text=text)),
        window_snippet(text, needles(["memory", "rust"])),
    ):
        assert made is not None
        snippet, ranges = made
        assert snippet.endswith("memory memory rust") and snippet.startswith("…memory")
        assert [snippet[a:b] for a, b in ranges][-2:] == ["memory", "rust"]
    # One occurrence each, "rust" too far after "memory" for the window set around "memory"
    # (two thirds of it after), not for a window.
    text = "x " * 100 + "memory " + "y " * 97 + "rust " + "z " * 200
    snippet, ranges = snippets(tantivy.Document(text=text))
    assert [snippet[a:b] for a, b in ranges] == ["memory", "rust"]
    assert snippet.startswith("…x x") and snippet.endswith("z z…")
    # "safe" is not in the text: the window holds the two it has.
    text = "memory " * 100 + "rust " + "x " * 100
    made = window_snippet(text, needles(["safe", "memory", "rust"]))
    assert made is not None and [made[0][a:b] for a, b in made[1]][-2:] == ["memory", "rust"]


@settings(max_examples=600, deadline=None)
@given(text=texts, prefix=st.sampled_from(["r", "ru", "rust", "me", "x", "k", "q", "20", "ab"]))
@example(  # 242 characters, the window's 240 and ", ": the comma is put back (241)
    text=f"Language memory memory memory memory {' '.join(['q' * 63 + 'w'] * 3)} the rust, ",
    prefix="me",
)
def test_a_lone_prefix_marks_each_of_its_words_around_the_first(text: str, prefix: str) -> None:
    """``typ*`` alone: its words count as one word. The window is set around the first of
    them the analyzer indexes (one of 64 bytes or more is not), and marks each in it."""
    words = [(a, b, w) for a, b, w in reference_words(text)
             if w.startswith(prefix) and len(w) < TOKEN_MAX]
    made = prefix_snippet(text, fold_ascii(text), b" " + prefix.encode())
    if not words:
        assert made is None
        return
    assert made is not None
    snippet, ranges = made
    body = snippet.removeprefix(ELLIPSIS).removesuffix(ELLIPSIS)
    shift = len(snippet) - len(snippet.removeprefix(ELLIPSIS))
    # The window's letters and digits; only punctuation and spaces past its ends are put
    # back (up to EDGE characters each side), as every snippet does.
    letters = [k for k, c in enumerate(body) if is_alnum(c)]
    assert letters and letters[-1] - letters[0] < SNIPPET_CHARS
    assert len(body) <= SNIPPET_CHARS + 2 * EDGE
    at = text.find(body)
    assert at >= 0
    inside = [(a - at + shift, b - at + shift) for a, b, _w in words if b <= at + len(body)]
    assert ranges == inside and ranges[0][0] == words[0][0] - at + shift
    assert snippet.startswith(ELLIPSIS) == any(is_alnum(c) for c in text[:at])
    assert snippet.endswith(ELLIPSIS) == any(c.isalnum() for c in text[at + len(body):])
    if snippet.endswith(ELLIPSIS):  # context before the word: a third of the window at most
        assert words[0][0] - at <= SNIPPET_CHARS // 3


def test_a_lone_prefix_in_a_search_hit(index: FullTextIndex) -> None:
    """Through :class:`Snippets`: ASCII and accented Latin text; a word too long to index is
    not marked; the window is around the first word, with context before it."""
    snippets = Snippets(index, index.searcher(), index.text_query(parse("mem*")), matched=True)
    text = "x " * 150 + "memory " + "y " * 30 + "Mémoires, memo " + "z " * 200
    snippet, ranges = snippets(tantivy.Document(text=text))
    assert [snippet[a:b] for a, b in ranges] == ["memory", "Mémoires", "memo"]
    assert snippet.startswith("…x x") and snippet.endswith("z z…")
    assert 60 <= snippet.index("memory") <= SNIPPET_CHARS // 3 + 1
    # Its words count as one: the window is around the first, not the one holding most.
    text = "memo " + "x " * 150 + "memo memory memoir " + "y " * 150
    snippet, ranges = snippets(tantivy.Document(text=text))
    assert [snippet[a:b] for a, b in ranges] == ["memo"] and snippet.startswith("memo x x")
    long = "mem" + "o" * 61
    snippet, ranges = snippets(tantivy.Document(text=f"{long} then memos"))
    assert snippet == f"{long} then memos" and ranges == [(len(long) + 6, len(snippet))]
    assert snippets(tantivy.Document(text=f"{long} and nothing")) == (f"{long} and nothing", [])
