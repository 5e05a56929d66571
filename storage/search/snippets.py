"""Snippets with highlight ranges for a search's hits.

What tantivy's ``SnippetGenerator`` makes of a hit's text is the reference: the text is cut
into fragments of at most ``max_chars`` (a fragment starts at the first token that would make
the one before it too long), each fragment scores the sum of ``1 / (1 + doc_freq)`` over the
query terms it holds, and the best fragment (the earliest on a tie) is the snippet, with every
query term in it highlighted.

For the commonest search, one word, in ASCII text without stemming, :func:`ascii_snippet`
finds the same fragment with ``str.find``: tokens are then runs of ASCII letters and digits,
lower-cased, those of ``TOKEN_MAX`` bytes or more dropped, and with a single term the best
fragment is the one holding it most often. That costs about half the generator's time on a
600-character message, which runs the whole text through tantivy's analyzer (tests check that
both give the same snippets). Other searches go to the generator.
"""

from __future__ import annotations

import re
import string
from typing import Any

import tantivy

from storage.search.fulltext import TOKEN_MAX, FullTextIndex, TextQuery

SNIPPET_CHARS = 240

_TOKEN = re.compile(r"[A-Za-z0-9]+")
_RUN = re.compile(r"[A-Za-z0-9]*")
_ALNUM_CHARS = string.ascii_letters + string.digits
_ALNUM = frozenset(_ALNUM_CHARS)
_NOT_ALNUM = "".join(chr(c) for c in range(128) if chr(c) not in _ALNUM)

Snippet = tuple[str, list[tuple[int, int]]]


def ascii_snippet(text: str, term: str, max_chars: int) -> Snippet | None:
    """The best fragment of ASCII ``text`` for one lower-case ASCII ``term`` (which some
    indexed document holds), with the term's ranges in it; None when the term does not occur
    in the text as a whole token."""
    if max_chars < TOKEN_MAX:
        raise ValueError(f"max_chars must be at least {TOKEN_MAX}, not {max_chars}")
    lower = text.lower()
    n = len(text)
    size = len(term)
    found: list[int] = []  # where the term starts, in order
    i = lower.find(term)
    while i >= 0:
        j = i + size
        if (i == 0 or lower[i - 1] not in _ALNUM) and (j == n or lower[j] not in _ALNUM):
            found.append(i)
            i = lower.find(term, j)
        else:
            i = lower.find(term, i + 1)
    if not found:
        return None
    if found[-1] + size <= max_chars:  # all in the first fragment: it is the only one
        start, end, first, last = 0, _next_fragment(text, n, max_chars), 0, len(found)
    else:
        start, end, first, last = _best_fragment(text, found, max_chars)
    stop = _last_token_end(text, start, end)
    return text[start:stop], [(a - start, a - start + size) for a in found[first:last]]


def _best_fragment(text: str, found: list[int], max_chars: int) -> tuple[int, int, int, int]:
    """The fragments in turn, each from where the last one ended: the start and end of the
    one holding the term most often (the earliest of those), and its slice of ``found``."""
    n = len(text)
    best = (0, 0, 0, 0, 0)  # count, start, end, first, last
    start = k = 0
    count = len(found)
    while k < count:
        end = _next_fragment(text, n, start + max_chars)
        first = k
        while k < count and found[k] < end:
            k += 1
        if k - first > best[0]:
            best = (k - first, start, end, first, k)
        start = end
    return best[1:]


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
        self._term: str | None = None  # the one term ascii_snippet looks for
        if (
            fast
            and self._query is not None
            and text.terms is not None
            and len(text.terms) == 1
            and not fulltext.stemming
            # tantivy highlights only terms some document holds: a hit of a keyword search
            # holds its terms; others may not.
            and ((matched and text.required) or searcher.doc_freq("text", text.terms[0]) > 0)
        ):
            self._term = text.terms[0]
        self._generator: Any = None

    def __call__(self, doc: Any) -> Snippet:
        text: str = doc.get_first("text") or ""
        if self._query is not None:
            if self._term is not None and text.isascii():
                made = ascii_snippet(text, self._term, SNIPPET_CHARS)
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
