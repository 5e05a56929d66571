"""Snippets made in Python for ASCII text must be exactly what tantivy's generator makes, and
the ASCII analysis must be exactly tantivy's analyzer."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import tantivy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from storage.search.fulltext import FullTextIndex, IndexDoc, build_analyzer
from storage.search.query import parse
from storage.search.snippets import SNIPPET_CHARS, Snippets, ascii_snippet

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


@settings(max_examples=2500, deadline=None)
@given(text=texts, query=st.one_of(query_words, query_words.map(str.upper), queries))
def test_snippets_are_tantivys(index: FullTextIndex, text: str, query: str) -> None:
    searcher = index.searcher()
    text_query = index.text_query(parse(query))
    doc = tantivy.Document(text=text)
    reference = Snippets(index, searcher, text_query, fast=False)(doc)
    terms = text_query.terms
    # As a keyword search's hit when it would be one (it holds every term, each indexed).
    matched = bool(terms) and all(
        searcher.doc_freq("text", t) > 0 and t in index.tokens(text) for t in terms or ()
    )
    for snippets in (
        Snippets(index, searcher, text_query, matched),
        Snippets(index, searcher, text_query),
    ):
        assert (snippets._terms is not None) == (terms is not None and text_query.highlights)
        assert snippets(doc) == reference
        if snippets._terms is not None:  # the Python path itself, whatever the text's density
            made = ascii_snippet(text, snippets._terms, SNIPPET_CHARS, snippets._weights)
            assert (made or head(text)) == reference


def test_one_word_in_a_long_text_takes_the_fragment_holding_it_most(
    index: FullTextIndex,
) -> None:
    text = ("a b c " * 60) + "memory safe rust " + ("x " * 200) + "rust, Rust and RUST memory"
    text_query = index.text_query(parse("rust"))
    searcher = index.searcher()
    fast = Snippets(index, searcher, text_query, matched=True)
    assert fast._terms == ("rust",) and fast._scores is None  # no weights looked up
    doc = tantivy.Document(text=text)
    snippet, ranges = fast(doc)
    assert (snippet, ranges) == Snippets(index, searcher, text_query, fast=False)(doc)
    assert [snippet[a:b] for a, b in ranges] == ["rust", "Rust", "RUST"]  # the last three
    assert len(snippet) <= SNIPPET_CHARS and fast._scores is None


def test_competing_fragments_are_weighed_as_tantivy_weighs_them(index: FullTextIndex) -> None:
    """ "memory" is in fewer documents than "rust", so it weighs more: the fragment with one
    "memory" beats the one with one "rust"."""
    text = "rust " + ("x " * 200) + "memory"
    text_query = index.text_query(parse("rust OR memory"))
    searcher = index.searcher()
    fast = Snippets(index, searcher, text_query)
    doc = tantivy.Document(text=text)
    snippet, ranges = fast(doc)
    assert fast._scores is not None and fast._scores["memory"] > fast._scores["rust"]
    assert (snippet, ranges) == Snippets(index, searcher, text_query, fast=False)(doc)
    assert [snippet[a:b] for a, b in ranges] == ["memory"]


def test_non_ascii_text_prefix_phrases_and_absent_terms(index: FullTextIndex) -> None:
    searcher = index.searcher()
    prefix_phrase = index.text_query(parse("memory-sa*"))  # tantivy expands the prefix
    assert Snippets(index, searcher, prefix_phrase)._terms is None
    doc = tantivy.Document(text="Crème sáfe rust")  # character ranges, not bytes
    assert Snippets(index, searcher, index.text_query(parse("safe")))(doc)[1] == [(6, 10)]
    # A term no document holds is not highlighted (tantivy's rule), even when the text has it.
    doc = tantivy.Document(text="missing piece of rust")
    snippets = Snippets(index, searcher, index.text_query(parse("missing OR rust")))
    assert snippets._terms == ("rust",)
    assert snippets(doc) == ("missing piece of rust", [(17, 21)])


def test_ascii_snippet_refuses_a_window_shorter_than_a_token() -> None:
    with pytest.raises(ValueError, match="at least 64"):
        ascii_snippet("rust", ["rust"], 10, dict)
