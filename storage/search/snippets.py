"""Snippets with highlight ranges for a search's hits.

What tantivy's ``SnippetGenerator`` makes of a hit's text is the reference: the text is cut
into fragments of at most ``max_chars`` (a fragment starts at the first token that would make
the one before it too long), each fragment scores the sum of ``1 / (1 + doc_freq)`` over the
query terms it holds, and the best fragment (the earliest on a tie) is the snippet, with every
query term in it highlighted.

For ASCII text without stemming (most chat messages), :func:`ascii_snippet` finds the same
fragment with ``str.find``: tokens are then runs of ASCII letters and digits, lower-cased,
those of ``TOKEN_MAX`` bytes or more dropped. It looks only for the query's terms and where
fragments start, where the generator runs every token of the text through tantivy's analyzer
(about 0.1 µs a token): a third of the generator's time or less on a 500-character message.
Term weights (a ``doc_freq`` each) are looked up only when fragments holding different terms
compete, and such close sums are added in float32 as tantivy adds them. Tests check that both
give the same snippets. Other text (and a phrase ending in a prefix) goes to the generator.
"""

from __future__ import annotations

import re
import string
import struct
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import tantivy

from storage.search.fulltext import TOKEN_MAX, FullTextIndex, TextQuery

SNIPPET_CHARS = 240
# ascii_snippet for texts with at most one occurrence (as a substring) of the terms per this
# many characters; the generator for denser ones (both give the same snippet).
OCCURRENCES_PER_CHAR = 25

_TOKEN = re.compile(r"[A-Za-z0-9]+")
_RUN = re.compile(r"[A-Za-z0-9]*")
_ALNUM_CHARS = string.ascii_letters + string.digits
_ALNUM = frozenset(_ALNUM_CHARS)
_NOT_ALNUM = "".join(chr(c) for c in range(128) if chr(c) not in _ALNUM)
_F32 = struct.Struct("f")

Snippet = tuple[str, list[tuple[int, int]]]


def term_scores(searcher: Any, terms: Iterable[str]) -> dict[str, float]:
    """Each term's weight in a fragment's score, as tantivy's generator weighs it: the
    float32 ``1 / (1 + doc_freq)``; terms no document holds are left out (never
    highlighted)."""
    scores = {}
    for term in terms:
        freq = int(searcher.doc_freq("text", term))
        if freq > 0:
            scores[term] = f32(1.0 / f32(1.0 + f32(freq)))
    return scores


def f32(value: float) -> float:
    """``value`` rounded to the nearest float32, as tantivy computes scores."""
    result: float = _F32.unpack(_F32.pack(value))[0]
    return result


def ascii_snippet(
    text: str,
    terms: Sequence[str],
    max_chars: int,
    weights: Callable[[], Mapping[str, float]],
    lower: str | None = None,
) -> Snippet | None:
    """The best fragment of ASCII ``text`` for the lower-case ASCII ``terms`` (each held by
    some indexed document), with the ranges of the terms in it; None when no term occurs in
    the text as a whole token. ``weights()``: the terms' :func:`term_scores`, asked for only
    when fragments holding different terms compete. ``lower``: ``text.lower()`` if the
    caller has it."""
    if max_chars < TOKEN_MAX:
        raise ValueError(f"max_chars must be at least {TOKEN_MAX}, not {max_chars}")
    if lower is None:
        lower = text.lower()
    n = len(text)
    found: list[tuple[int, int, str]] = []  # each occurrence: start, end, term
    for term in terms:
        size = len(term)
        i = lower.find(term)
        while i >= 0:
            j = i + size
            if (i == 0 or lower[i - 1] not in _ALNUM) and (j == n or lower[j] not in _ALNUM):
                found.append((i, j, term))
                i = lower.find(term, j)
            else:
                i = lower.find(term, i + 1)
    if not found:
        return None
    if len(terms) > 1:
        found.sort()
    if found[-1][1] <= max_chars:  # all in the first fragment: it is the only one
        start, end, first, last = 0, _next_fragment(text, n, max_chars), 0, len(found)
    else:
        start, end, first, last = _best_fragment(text, found, max_chars, weights)
    stop = _last_token_end(text, start, end)
    return text[start:stop], [(a - start, b - start) for a, b, _ in found[first:last]]


def _best_fragment(
    text: str,
    found: list[tuple[int, int, str]],
    max_chars: int,
    weights: Callable[[], Mapping[str, float]],
) -> tuple[int, int, int, int]:
    """The fragments in turn, each from where the last one ended: the best one's start and
    end, and its slice of ``found``."""
    n = len(text)
    fragments = []  # start, end, first, last of those holding a term
    start = k = 0
    count = len(found)
    while k < count:
        end = _next_fragment(text, n, start + max_chars)
        first = k
        while k < count and found[k][0] < end:
            k += 1
        if k > first:
            fragments.append((start, end, first, k))
        start = end
    if len(fragments) == 1:
        return fragments[0]
    if len({term for _a, _b, term in found}) == 1:
        # One term: the fragment holding it most often (its sums only grow with the count).
        most = max(f[3] - f[2] for f in fragments)
        return next(f for f in fragments if f[3] - f[2] == most)  # the earliest
    scores = weights()
    sums = [sum(scores[term] for _a, _b, term in found[f[2] : f[3]]) for f in fragments]
    top = max(sums)
    close = [f for f, total in zip(fragments, sums, strict=True) if total >= top * (1 - 1e-4)]
    if len(close) == 1:
        return close[0]
    # Sums this close may order differently in float32, as tantivy adds in text order.
    exact = []
    for f in close:
        total = 0.0
        for _a, _b, term in found[f[2] : f[3]]:
            total = f32(total + scores[term])
        exact.append(total)
    return close[exact.index(max(exact))]  # the earliest of the best


def _next_fragment(text: str, n: int, limit: int) -> int:
    """Where the next fragment starts: at the first kept token that ends after ``limit``
    (``n`` when there is none)."""
    if limit >= n:
        return n
    pos = limit
    if text[limit] in _ALNUM:  # inside a run of letters and digits: its start and end
        floor = max(limit - TOKEN_MAX, 0)
        before = text[floor:limit]
        a = limit - (len(before) - len(before.rstrip(_ALNUM_CHARS)))
        run = _RUN.match(text, limit)
        assert run is not None  # matches the empty string at worst
        b = run.end()
        if (a == 0 or text[a - 1] not in _ALNUM) and b - a < TOKEN_MAX:
            return a
        pos = b  # a dropped (too long) token
    while True:
        m = _TOKEN.search(text, pos)
        if m is None:
            return n
        if m.end() - m.start() < TOKEN_MAX:
            return m.start()
        pos = m.end()


def _last_token_end(text: str, start: int, end: int) -> int:
    """Where the last kept token that starts in ``[start, end)`` ends (the fragment's end)."""
    frag = text[start:end]
    while True:
        e = len(frag.rstrip(_NOT_ALNUM))
        b = len(frag[:e].rstrip(_ALNUM_CHARS))
        if e == 0 or e - b < TOKEN_MAX:
            return start + e
        frag = frag[:b]


class Snippets:
    """Makes the snippets of one search's hits: ``snippets(doc)`` for a stored document.
    ``matched``: the hits matched every term of ``text`` (a keyword search's AND query).
    ``fast=False``: every snippet from tantivy's generator (the reference tests compare
    :func:`ascii_snippet` with)."""

    def __init__(
        self,
        fulltext: FullTextIndex,
        searcher: Any,
        text: TextQuery,
        matched: bool = False,
        fast: bool = True,
    ) -> None:
        self._fulltext = fulltext
        self._searcher = searcher
        self._query = text.query() if text.highlights else None
        self._all_terms = text.terms or ()
        self._scores: dict[str, float] | None = None
        self._generator: Any = None
        self._terms: tuple[str, ...] | None = None  # None: tantivy's generator
        if fast and self._query is not None and text.terms is not None and not fulltext.stemming:
            if matched and text.required:
                self._terms = text.terms  # every hit holds every term: all are indexed
            else:  # tantivy highlights only terms some document holds
                self._terms = tuple(t for t in text.terms if t in self._weights())

    def _weights(self) -> dict[str, float]:
        if self._scores is None:
            self._scores = term_scores(self._searcher, self._all_terms)
        return self._scores

    def __call__(self, doc: Any) -> Snippet:
        text: str = doc.get_first("text") or ""
        if self._query is not None:
            terms = self._terms
            lower = text.lower() if terms is not None and text.isascii() else None
            # ascii_snippet spends ~0.3 µs on each occurrence of a term, the generator ~0.1 µs
            # on each token: a text dense with the terms (common words) is the generator's.
            if (
                terms is not None
                and lower is not None
                and sum(map(lower.count, terms)) * OCCURRENCES_PER_CHAR <= len(text)
            ):
                made = ascii_snippet(text, terms, SNIPPET_CHARS, self._weights, lower)
            else:
                made = self._tantivy(doc)
            if made is not None:
                return made
        head = text[:SNIPPET_CHARS]
        return (head + "…" if len(text) > SNIPPET_CHARS else head), []

    def _tantivy(self, doc: Any) -> Snippet | None:
        """tantivy's snippet; it gives UTF-8 byte ranges, the hit's are character ranges."""
        if self._generator is None:
            assert self._query is not None  # only called with something to highlight
            self._generator = tantivy.SnippetGenerator.create(
                self._searcher, self._query, self._fulltext.schema, "text"
            )
            self._generator.set_max_num_chars(SNIPPET_CHARS)
        snippet = self._generator.snippet_from_doc(doc)
        fragment: str = snippet.fragment()
        if not fragment:
            return None
        spans = snippet.highlighted()
        if fragment.isascii():  # bytes are characters
            return fragment, [(span.start, span.end) for span in spans]
        raw = fragment.encode()
        ranges = []
        for span in spans:
            start = len(raw[: span.start].decode(errors="ignore"))
            end = len(raw[: span.end].decode(errors="ignore"))
            ranges.append((start, end))
        return fragment, ranges
