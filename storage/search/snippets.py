"""Snippets with highlight ranges for a search's hits.

A snippet is a window of at most ``SNIPPET_CHARS`` characters of the hit's text, set around
an occurrence of the query's rarest word the text holds, so that the word has context on
both sides (a third of the window before it, two thirds after). Where that word occurs more
than once, the window is the one holding the most of the query's other words (the earliest
of those). Windows start and end on whole words; "…" marks text cut off at either end, and
every query word in the window is highlighted. A text that fits whole is shown whole.

For ASCII text without stemming (most chat messages) the window is found here: the text is
lower-cased with every character that is not a letter or digit made a space (one
``bytes.translate``), and each query word is then one ``bytes.find``, done only for the
rarest word's first occurrences and inside the candidate windows; where a window is cut is
read from the same bytes (no regular expression runs over the text). On the benchmark's
1,000,000-message top-10 hits that costs 1.2 µs a hit for a rare word, 3.6 µs for two words
and 6.1 µs for five (texts of 150-750 characters). tantivy's ``SnippetGenerator`` runs
every token of the text through the analyzer instead (about 0.1 µs a token), and its cut
into fixed fragments can leave the word at a fragment's very end, with no context after it.
Words are runs of ASCII letters and digits compared lower-cased, as tantivy's analyzer makes
them (tests check that the two agree). Other text (accents, other scripts, stemming) and
phrases ending in a prefix go to tantivy's generator, whose best fragment is elided the same
way.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from typing import Any

import tantivy

from storage.search.fulltext import ASCII_FOLD, CJK_RANGES, FullTextIndex, TextQuery, is_cjk

SNIPPET_CHARS = 240
ELLIPSIS = "…"
ANCHORS = 8  # windows tried: around the rarest word's first occurrences

_SPACE = 32
_WORD_CHAR = re.compile(r"[^\W_]")  # a letter or digit, in any script
# Not next to a letter or digit, but for those of Chinese, Japanese and Korean (a word of
# another script can be written onto them: "KTX로", "サーバーCPUの").
_OTHER_WORD_CHAR = rf"(?![{CJK_RANGES}])[^\W_]"
_NOT_AFTER = rf"(?<!{_OTHER_WORD_CHAR})"
_NOT_BEFORE = rf"(?!{_OTHER_WORD_CHAR})"
_SPACE_RE = re.compile(r"\s+")

Snippet = tuple[str, list[tuple[int, int]]]


def needles(terms: Sequence[str]) -> tuple[bytes, ...]:
    """What :func:`best_window` looks for: each term between spaces."""
    return tuple(b" " + t.encode() + b" " for t in terms)


def fold_ascii(text: str) -> bytes:
    """ASCII ``text`` as :func:`window_snippet` searches it: lower-cased, every character that
    is not a letter or digit a space, and a space added at both ends."""
    return f" {text} ".encode("ascii").translate(ASCII_FOLD)


def window_snippet(
    text: str, terms: Sequence[bytes], max_chars: int = SNIPPET_CHARS, padded: bytes = b""
) -> Snippet | None:
    """The snippet of ASCII ``text`` for ``terms`` (lower-case ASCII words as
    :func:`needles`, rarest first; see the module's description); None when the text holds
    none of them as a whole word. ``padded``: :func:`fold_ascii` of ``text``, if made."""
    padded = padded or fold_ascii(text)
    placed = _place(text, padded, terms, max_chars)
    if placed is None:
        return None
    start, end, rank = placed
    n = len(text)
    if start == 0 and end == n:  # the whole text (most messages): nothing cut off
        return text.rstrip(), _ranges(padded, terms, rank, 0, n, 0)
    # Letters and digits are the bytes of ``padded`` that are not spaces (character k is byte
    # k + 1): where the last and first of them are tells what the window cuts off.
    snippet, at = _cut(
        text,
        start,
        end,
        start > 0 and len(padded) - len(padded.lstrip()) - 1 < start,
        len(padded.rstrip()) - 2 >= end,
    )
    return snippet, _ranges(padded, terms, rank, start, end, at - start)


def best_window(
    text: str, terms: Sequence[bytes], max_chars: int
) -> tuple[int, int, list[tuple[int, int]]] | None:
    """Where :func:`window_snippet` cuts ASCII ``text``: start, end, and the ranges of the
    terms in ``text[start:end]``.

    The text is searched as bytes, lower-cased, with every character that is not a letter
    or digit made a space and a space added at both ends: a word at ``[a, b)`` of the text
    is then `` word `` at ``[a, b + 2)`` of those bytes, found by one ``bytes.find``."""
    padded = fold_ascii(text)
    placed = _place(text, padded, terms, max_chars)
    if placed is None:
        return None
    start, end, rank = placed
    return start, end, _ranges(padded, terms, rank, start, end, -start)


def _place(
    text: str, padded: bytes, terms: Sequence[bytes], max_chars: int
) -> tuple[int, int, int] | None:
    """The window :func:`best_window` cuts from ``text`` (searched as ``padded``): start, end
    and the rank in ``terms`` of the rarest term the text holds; None when it holds none."""
    n = len(text)
    for rank, term in enumerate(terms):
        i = padded.find(term)
        if i >= 0:
            others = terms[rank + 1 :]  # the rarer ones are not in the text at all
            break
    else:
        return None
    if n <= max_chars:
        return 0, n, rank
    size = len(term) - 2
    anchors = [i]
    if others:  # more occurrences to choose from by the other words they have near
        i = padded.find(term, i + size + 1)
        while i >= 0 and len(anchors) < ANCHORS:
            anchors.append(i)
            i = padded.find(term, i + size + 1)
    if len(anchors) == 1:  # no choice to make
        start, end = _window(padded, n, anchors[0], anchors[0] + size, max_chars)
        return start, end, rank
    best = -1
    for i in anchors:
        s, e = _window(padded, n, i, i + size, max_chars)
        held = sum(1 for t in others if padded.find(t, s, e + 2) >= 0)
        if held > best:
            best, start, end = held, s, e
            if held == len(others):
                break
    return start, end, rank


def _ranges(
    padded: bytes, terms: Sequence[bytes], rank: int, start: int, end: int, shift: int
) -> list[tuple[int, int]]:
    """Where ``terms[rank:]`` are in ``text[start:end]`` (``padded``: as
    :func:`best_window` searches it), in order, each moved by ``shift``."""
    ranges = []
    for t in terms[rank:]:
        size = len(t) - 2
        i = padded.find(t, start, end + 2)
        while i >= 0:
            ranges.append((i + shift, i + shift + size))
            i = padded.find(t, i + size + 1, end + 2)
    if rank < len(terms) - 1:
        ranges.sort()
    return ranges


def _window(padded: bytes, n: int, a: int, b: int, max_chars: int) -> tuple[int, int]:
    """A window of at most ``max_chars`` on whole words that holds the word at ``[a, b)``,
    with a third of the room left before it (more when the text ends sooner). ``padded``:
    the text as :func:`best_window` searches it (character ``k`` is byte ``k + 1``)."""
    start = max(0, min(a - (max_chars - (b - a)) // 3, n - max_chars))
    if start > 0 and not (padded[start] == _SPACE and padded[start + 1] != _SPACE):
        # The next word's start: past the first space from ``start`` and the spaces after it
        # (``padded[a]`` is the space before the word at ``a``).
        space = padded.find(b" ", start, a + 1)
        start = a - len(padded[space : a + 1].lstrip()) if space >= 0 else a
    end = min(n, start + max_chars)
    if end < n and padded[end] != _SPACE and padded[end + 1] != _SPACE:  # a word cut
        end = padded.rfind(b" ", start, end + 1)  # leave it out
    return start, end


def _cut(text: str, start: int, end: int, cut_before: bool, cut_after: bool) -> tuple[str, int]:
    """``text[start:end]`` with "…" where letters or digits are cut off before or after it
    (``cut_before``, ``cut_after``); only punctuation or spaces cut off are put back instead.
    Also where ``text[start]`` is in the snippet."""
    if not cut_after:
        end = len(text)
    snippet = text[start:end].rstrip()
    if cut_after:
        snippet += ELLIPSIS
    if start == 0:
        return snippet, 0
    if not cut_before:
        return text[:start] + snippet, start
    return ELLIPSIS + snippet, 1


def unicode_snippet(
    text: str,
    cjk: Sequence[str],
    words: Sequence[str],
    max_chars: int = SNIPPET_CHARS,
    prefixes: re.Pattern[str] | None = None,
) -> Snippet | None:
    """The snippet of ``text`` (any script) for a query's Chinese, Japanese or Korean words
    (``cjk``, found as written, also inside longer runs: these scripts put no spaces between
    words, or in Korean none between a word and its particles), its other ``words`` (as the
    analyzer makes them: lower-case, accents folded; found as whole words) and the words that
    ``prefixes`` (a pattern over :func:`fold` of the text) finds: a window set around the
    first found, with every one found in it highlighted. None when it holds none of them."""
    folded = fold(text)
    found = []
    for word in cjk:
        word = fold(word)
        i = folded.find(word) if word else -1
        while i >= 0:
            found.append((i, i + len(word)))
            i = folded.find(word, i + len(word))
    if words:
        # Whole words, which may be written onto Chinese, Japanese or Korean ("KTX로").
        pattern = "|".join(map(re.escape, words))
        found.extend(
            m.span() for m in re.finditer(rf"{_NOT_AFTER}(?:{pattern}){_NOT_BEFORE}", folded)
        )
    if prefixes is not None:
        found.extend(m.span() for m in prefixes.finditer(folded))
    if not found:
        return None
    found.sort()
    merged = [found[0]]  # overlapping finds ("東京" and "京都" in "東京都") marked as one
    for a, b in found[1:]:
        if a < merged[-1][1]:
            merged[-1] = (merged[-1][0], max(b, merged[-1][1]))
        else:
            merged.append((a, b))
    n = len(text)
    if n <= max_chars:
        return text.rstrip(), merged
    a, b = merged[0]
    start = max(0, min(a - (max_chars - (b - a)) // 3, n - max_chars))
    end = min(n, start + max_chars)
    # Whole words where the text has spaces between them (Chinese and Japanese have none).
    if 0 < start < a and text[start - 1].isalnum() and text[start].isalnum():
        space = _SPACE_RE.search(text, start, a)
        start = space.end() if space else start
    if b < end < n and text[end - 1].isalnum() and text[end].isalnum():
        spaces = [m.start() for m in _SPACE_RE.finditer(text, b, end)]
        end = spaces[-1] if spaces else end
    cut_before = _WORD_CHAR.search(text, 0, start) is not None
    snippet, at = _cut(text, start, end, cut_before, _WORD_CHAR.search(text, end) is not None)
    return snippet, [(x - start + at, y - start + at) for x, y in merged if start <= x and y <= end]


# Letters that Unicode does not decompose but tantivy's ascii_fold does (as for "ø", "ł").
_FOLD_EXTRA = str.maketrans("øØłŁđĐħĦıŧŦ", "oollddhhitt")


class _FoldTable(dict[int, str]):
    """str.translate's table for :func:`fold`, filled as characters are first seen."""

    def __missing__(self, code: int) -> str:
        ch = chr(code)
        plain = "".join(
            c for c in unicodedata.normalize("NFKD", ch) if not unicodedata.combining(c)
        )
        plain = plain.lower().translate(_FOLD_EXTRA)
        lower = ch.lower()
        folded = plain if len(plain) == 1 else lower if len(lower) == 1 else ch
        self[code] = folded
        return folded


_FOLD = _FoldTable()


def fold(text: str) -> str:
    """``text`` lower-cased and its accents taken off as the analyzer folds them, character for
    character (a character that would become more than one, as "ß", stays), so that offsets in
    it are offsets in ``text``."""
    return text.translate(_FOLD)


def head(text: str) -> Snippet:
    """The snippet of a hit in which no query word is found: the text's start."""
    if len(text) <= SNIPPET_CHARS:
        return text, []
    return text[:SNIPPET_CHARS] + ELLIPSIS, []


class Snippets:
    """Makes the snippets of one search's hits: ``snippets(doc)`` for a stored document.
    ``matched``: the hits matched every term of ``text`` (a keyword search's AND query)."""

    def __init__(
        self, fulltext: FullTextIndex, searcher: Any, text: TextQuery, matched: bool = False
    ) -> None:
        self._fulltext = fulltext
        self._searcher = searcher
        self._text = text
        self._highlights = text.highlights
        self._cjk = text.cjk
        # One-word prefixes: each hit's words they stand for are found in it (see
        # _with_prefixes); ASCII text through its folded bytes, as words are found.
        self._prefixes = text.prefixes
        self._stems = tuple(b" " + p.encode() for p in text.prefixes if p.isascii())
        self._prefix: re.Pattern[str] | None = None  # for other text, made when first needed
        self._generator: Any = None
        self.terms: tuple[str, ...] | None = None  # rarest first; None: tantivy's generator
        self._needles: tuple[bytes, ...] = ()
        terms = text.terms
        if self._highlights and terms is not None and not fulltext.stemming:
            if len(terms) > 1 or not (matched and text.required):
                # Rarest first; a word no document holds is never highlighted (as tantivy's
                # generator does): it can only be in a semantic hit's text by chance.
                freqs = {t: int(searcher.doc_freq("text", t)) for t in terms}
                terms = tuple(sorted((t for t in terms if freqs[t] > 0), key=freqs.__getitem__))
            self.terms = terms
            self._needles = needles(terms)

    def __call__(self, doc: Any) -> Snippet:
        text: str = doc.get_first("text") or ""
        if self._highlights:
            if self._prefixes:
                made = self._with_prefixes(text)
            elif self._cjk and not text.isascii():
                made = unicode_snippet(text, self._cjk, self.terms or ())
            elif self.terms is not None and text.isascii():
                made = window_snippet(text, self._needles)
            elif self.terms is not None and is_cjk(text):
                made = unicode_snippet(text, (), self.terms)
            else:
                made = self._tantivy(doc, text)
            if made is not None:
                return made
        return head(text)

    def _with_prefixes(self, text: str) -> Snippet | None:
        """The snippet of a query with one-word prefixes: the words of ``text`` they stand
        for are searched for as whole words (after the query's other words: the rarest
        first)."""
        known = self.terms or ()
        if text.isascii() and self.terms is not None:
            # Each word the stem starts, read from the folded bytes: " stem" is a word start,
            # the next space its end (as window_snippet finds words).
            padded = fold_ascii(text)
            found: dict[bytes, None] = {}
            for stem in self._stems:
                i = padded.find(stem)
                while i >= 0:
                    end = padded.find(b" ", i + 1)
                    found[padded[i : end + 1]] = None
                    i = padded.find(stem, end)
            extra = tuple(w for w in found if w[1:-1].decode() not in known)
            return window_snippet(text, self._needles + extra, padded=padded)
        if self._prefix is None:
            stems = "|".join(map(re.escape, self._prefixes))
            self._prefix = re.compile(rf"(?<![^\W_])(?:{stems})[^\W_]*")
        # Found in the folded text ("brul*" finds "brûlée"), marked where the text has them.
        return unicode_snippet(text, self._cjk, known, prefixes=self._prefix)

    def _tantivy(self, doc: Any, text: str) -> Snippet | None:
        """tantivy's snippet; it gives UTF-8 byte ranges, the hit's are character ranges."""
        if self._generator is None:
            query = self._text.query()
            assert query is not None  # only called with words to highlight
            self._generator = tantivy.SnippetGenerator.create(
                self._searcher, query, self._fulltext.schema, "text"
            )
            self._generator.set_max_num_chars(SNIPPET_CHARS)
        snippet = self._generator.snippet_from_doc(doc)
        fragment: str = snippet.fragment()
        if not fragment:
            return None
        spans = snippet.highlighted()
        if fragment.isascii():  # bytes are characters
            ranges = [(span.start, span.end) for span in spans]
        else:
            raw = fragment.encode()
            ranges = []
            for span in spans:
                start = len(raw[: span.start].decode(errors="ignore"))
                end = len(raw[: span.end].decode(errors="ignore"))
                ranges.append((start, end))
        start = max(text.find(fragment), 0)
        end = start + len(fragment)
        cut_before = _WORD_CHAR.search(text, 0, start) is not None
        snippet, at = _cut(text, start, end, cut_before, _WORD_CHAR.search(text, end) is not None)
        return snippet, [(a + at, b + at) for a, b in ranges]
