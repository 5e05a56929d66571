"""Snippets with highlight ranges for a search's hits.

A snippet is a window of at most ``SNIPPET_CHARS`` characters of the hit's text, set around
an occurrence of the query's rarest word the text holds, so that the word has context on
both sides (a third of the window before it, two thirds after). Where that word occurs more
than once, the window is the one holding the most of the query's other words (the earliest
of those). Where none of those holds every query word the text holds but some window could,
the window is set around the nearest occurrences of them all instead (found from each
occurrence of the word the text holds fewest times). Windows start and end on whole words;
"…" marks text cut off at either end, and every query word in the window is highlighted. A
text that fits whole is shown whole.

For ASCII text without stemming (most chat messages) the window is found here: the text is
lower-cased with every character that is not a letter or digit made a space (one
``bytes.translate``; for accented Latin text, its letters are made the ASCII letters the
analyzer folds them to in the same call: :func:`fold_latin`), and each query word is then one
``bytes.find``, done only for the rarest word's first occurrences and inside the candidate
windows; where a window is cut is read from the same bytes (no regular expression runs over the
text). On the benchmark's 1,000,000-message top-10 hits that costs 1.2 µs a hit for a rare
word, 3.6 µs for two words and 6.1 µs for five (texts of 150-750 characters). Looking further
where the first windows miss a word the text holds (for two or three words ANDed, over half the
hits longer than a window; a tenth of those are moved to hold every word) adds about 0.8 µs a
hit to two or three words, 0.5 µs to them ORed and 1-1.4 µs to five (the benchmark's queries,
top-10 hits over 50,000 of its messages; one word and phrases: nothing). tantivy's
``SnippetGenerator`` runs every token of the text through the analyzer instead (about 0.1 µs a
token), and its cut into fixed fragments can leave the word at a fragment's very end, with no
context after it. Words are runs of ASCII letters and digits compared lower-cased, as tantivy's
analyzer makes them (tests check that the two agree). Text holding Chinese, Japanese or Korean,
and queries with a one-word prefix, are searched here too, in the text folded as tantivy folds
it (:func:`fold`); with stemming, the words found there are those whose stem is a query word's.
So is other text in which Python and tantivy find the same words (accented Latin text, Greek,
Cyrillic, ASCII with stemming: :func:`words_agree`). Text of scripts where the two disagree
(the vowel signs of Devanagari or Thai) and phrases ending in a prefix go to tantivy's
generator, whose best fragment is elided the same way. A query that is one one-word prefix
(``typ*``) counts the words it stands for as one word: the window is set around the first
(:func:`prefix_snippet`).
"""

from __future__ import annotations

import bisect
import functools
import re
import threading
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from typing import Any

import tantivy

from storage.search.fulltext import (
    ASCII_FOLD,
    CJK_RANGES,
    TOKEN_MAX,
    FullTextIndex,
    TextQuery,
    is_cjk,
)

SNIPPET_CHARS = 240
EDGE = SNIPPET_CHARS // 8  # how far a window's end moves to a space, not to cut a word
ELLIPSIS = "…"
ANCHORS = 8  # windows tried: around the rarest word's first occurrences

_SPACE = 32
_WORD_CHAR = re.compile(r"[^\W_]")  # a letter or digit, in any script
_WORD_REST = re.compile(r"[^\W_]*")
_SPACE_RE = re.compile(r"\s+")
# Letters and digits but for those of Chinese, Japanese and Korean, which a word of another
# script can be written onto ("KTX로", "サーバーCPUの"; the cjk field holds "ktx" and "로").
_OTHER_WORD = re.compile(rf"[^\W_{CJK_RANGES}]+")

Snippet = tuple[str, list[tuple[int, int]]]


def needles(terms: Sequence[str]) -> tuple[bytes, ...]:
    """What :func:`best_window` looks for: each term between spaces."""
    return tuple(b" " + t.encode() + b" " for t in terms)


def fold_ascii(text: str) -> bytes:
    """ASCII ``text`` as :func:`window_snippet` searches it: lower-cased, every character that
    is not a letter or digit a space, and a space added at both ends."""
    return f" {text} ".encode("ascii").translate(ASCII_FOLD)


def fold_latin(text: str) -> bytes | None:
    """:func:`fold_ascii` for text in the Latin alphabet with accents (French, German, Polish,
    Czech, Turkish, Lithuanian...): each accented letter made the ASCII letter the analyzer
    folds it to ("é" "e", "ł" "l"), one byte a character as for ASCII, so
    :func:`window_snippet` searches it as fast. The text is encoded in the first of
    :data:`LATIN_CODECS` (one byte a character) that holds it and in which each of its letters
    folds to one ASCII letter, then translated byte by byte. None for other text, and for text
    holding a letter the analyzer folds to several ("ß" "ss") or to none of ASCII ("µ"),
    which :func:`unicode_snippet` finds."""
    padded = f" {text} "
    for codec, (table, uneven) in _latin_folds().items():
        try:
            raw = padded.encode(codec)
        except UnicodeEncodeError:
            continue
        if uneven.search(raw) is None:
            folded = raw.translate(table)
            if _LONG_RUN not in folded.translate(_RUNS):  # 1.5 µs, a regex search 7
                return folded
            # A word the analyzer leaves out (TOKEN_MAX bytes or more in UTF-8: "café" 13
            # times) must match no query word, though its fold is short enough to.
            return _MAYBE_LONG.sub(
                lambda m: m[0] if not _too_long(padded, *m.span()) else b"\0" * len(m[0]),
                folded,
            )
    return None


# Words that may be too long to index: in these encodings a word character is at most two
# bytes in UTF-8, so a word of fewer than TOKEN_MAX / 2 is short enough.
_MAYBE_LONG = re.compile(b"[^ ]{%d,}" % (TOKEN_MAX // 2))
_RUNS = bytes(_SPACE if c == _SPACE else 97 for c in range(256))  # words as runs of "a"
_LONG_RUN = b"a" * (TOKEN_MAX // 2)


def window_snippet(
    text: str,
    terms: Sequence[bytes],
    max_chars: int = SNIPPET_CHARS,
    padded: bytes = b"",
    every: bool = False,
) -> Snippet | None:
    """The snippet of ASCII ``text`` for ``terms`` (lower-case ASCII words as
    :func:`needles`, rarest first; see the module's description); None when the text holds
    none of them as a whole word. ``padded``: :func:`fold_ascii` of ``text``, if made.
    ``every``: the text holds every one of ``terms`` (a keyword search's hit, which matched
    them all), so that none is looked for in all of it."""
    padded = padded or fold_ascii(text)
    placed = _place(text, padded, terms, max_chars, every)
    if placed is None:
        return None
    start, end, rank = placed
    n = len(text)
    if start == 0 and end == n:  # the whole text (most messages): nothing cut off
        return text.rstrip(), _ranges(padded, terms, rank, 0, n, 0)
    snippet, at = _cut_folded(text, padded, start, end)
    return snippet, _ranges(padded, terms, rank, start, end, at - start)


def _cut_folded(text: str, padded: bytes, start: int, end: int) -> tuple[str, int]:
    """:func:`_cut` of ASCII ``text`` searched as ``padded``: letters and digits are the bytes
    of ``padded`` that are not spaces (character k is byte k + 1), so where the last and first
    of them are tells what the window cuts off."""
    return _cut(
        text,
        start,
        end,
        start > 0 and len(padded) - len(padded.lstrip()) - 1 < start,
        len(padded.rstrip()) - 2 >= end,
    )


def prefix_snippet(
    text: str, padded: bytes, stem: bytes, max_chars: int = SNIPPET_CHARS
) -> Snippet | None:
    """The snippet of a query that is one one-word prefix (``typ*``), in ASCII ``text``
    searched as ``padded`` (:func:`fold_ascii`, or :func:`fold_latin`): the words the prefix
    stands for (``stem`` is a space and the prefix: a word start) count as one word, so the
    window is set around the first of them, and each of them in it is marked. None when the
    text holds none (a word of :data:`TOKEN_MAX` bytes or more is not indexed: not one).

    :func:`window_snippet` with each of those words a term of its own (as a prefix beside
    other words is found) looks for every one of them again in each window it tries, to hold
    the most of them: 4.2 µs a hit against 3.0 here, folding the text included (the first ten
    texts holding each of the benchmark's fifty 3-letter prefixes at 100,000 messages)."""
    i = padded.find(stem)
    while i >= 0:
        stop = padded.find(b" ", i + 1)  # the word is text[i:stop - 1]
        if stop - i - 1 < TOKEN_MAX:
            break
        i = padded.find(stem, stop)
    else:
        return None
    n = len(text)
    start, end = (0, n) if n <= max_chars else _window(padded, n, i, stop - 1, max_chars)
    ranges = []
    while i >= 0:
        if stop - 1 > end:
            break
        if stop - i - 1 < TOKEN_MAX:
            ranges.append((i, stop - 1))
        i = padded.find(stem, stop)
        stop = padded.find(b" ", i + 1)
    if start == 0 and end == n:
        return text.rstrip(), ranges
    snippet, at = _cut_folded(text, padded, start, end)
    shift = at - start
    return snippet, [(a + shift, b + shift) for a, b in ranges]


def best_window(
    text: str, terms: Sequence[bytes], max_chars: int, every: bool = False
) -> tuple[int, int, list[tuple[int, int]]] | None:
    """Where :func:`window_snippet` cuts ASCII ``text``: start, end, and the ranges of the
    terms in ``text[start:end]``.

    The text is searched as bytes, lower-cased, with every character that is not a letter
    or digit made a space and a space added at both ends: a word at ``[a, b)`` of the text
    is then `` word `` at ``[a, b + 2)`` of those bytes, found by one ``bytes.find``."""
    padded = fold_ascii(text)
    placed = _place(text, padded, terms, max_chars, every)
    if placed is None:
        return None
    start, end, rank = placed
    return start, end, _ranges(padded, terms, rank, start, end, -start)


def _place(
    text: str, padded: bytes, terms: Sequence[bytes], max_chars: int, every: bool
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
    if not others:  # one word: no choice to make
        start, end = _window(padded, n, i, i + size, max_chars)
        return start, end, rank
    # Other words to hold: the first of the word's first occurrences whose window holds
    # every one the text holds, or around which a window can (see _nearest); else the window
    # that holds the most. Unless the text is known to hold them all, where each is first
    # in it tells which it holds.
    present = others
    first: dict[bytes, int] = {}
    if not every:
        first = {t: padded.find(t) for t in others}
        present = [t for t in others if first[t] >= 0]
    best = -1
    for _ in range(ANCHORS):
        s, e = _window(padded, n, i, i + size, max_chars)
        missing = []
        for t in present:
            if padded.find(t, s, e + 2) < 0:
                missing.append(t)
        if not missing:
            return s, e, rank
        # A window can hold a missing word only if it is within a window's reach of the
        # occurrence (not if it is first after that).
        lo, hi = max(0, i + size - max_chars), i + max_chars + 2
        for t in missing:
            j = first.get(t, -1)
            if j + len(t) > hi or (j < lo and padded.find(t, lo, hi) < 0):
                break
        else:
            span = _nearest(padded, i, i + size, present, max_chars)
            if span is not None:
                start, end = _window(padded, n, span[0], span[1], max_chars)
                return start, end, rank
        if len(present) - len(missing) > best:
            best, start, end = len(present) - len(missing), s, e
        i = padded.find(term, i + size + 1)
        if i < 0:
            return start, end, rank
    # The word is in the text more often than that: each occurrence of the word the text holds
    # fewest times.
    span = _ascii_cover(padded, [term, *present], max_chars)
    if span is not None:
        start, end = _window(padded, n, span[0], span[1], max_chars)
    return start, end, rank


def _ascii_cover(padded: bytes, terms: Sequence[bytes], max_chars: int) -> tuple[int, int] | None:
    """The first span (start, end) of at most ``max_chars`` that holds every one of ``terms``
    that ``padded`` holds (see :func:`best_window`), if there is one: each occurrence of the
    one it holds fewest times (the first of them on a tie) with the nearest occurrences of
    the others (see :func:`_nearest`)."""
    counts = [padded.count(t) for t in terms]  # about how often (" a a " counts " a " once)
    present = [(c, k) for k, c in enumerate(counts) if c]
    first = min(present)[1]
    anchor = terms[first]
    others = [terms[k] for _c, k in present if k != first]
    size = len(anchor) - 2
    i = padded.find(anchor)
    while i >= 0:
        span = _nearest(padded, i, i + size, others, max_chars)
        if span is not None:
            return span
        i = padded.find(anchor, i + size + 1)
    return None


def _nearest(
    padded: bytes, a: int, b: int, others: Sequence[bytes], max_chars: int
) -> tuple[int, int] | None:
    """The shortest span of at most ``max_chars`` that holds the word at ``[a, b)`` and an
    occurrence of each of ``others`` (``padded``: as :func:`best_window` searches the text),
    if there is one: each at its nearest occurrence before or after."""
    room = max_chars - (b - a)  # for the others
    lo, hi = max(0, b - max_chars), a + max_chars + 2
    sides = []  # per word: how far before ``a`` it starts, how far after ``b`` it ends
    for t in others:
        j = padded.rfind(t, lo, a + 1)
        before = a - j if j >= 0 else max_chars
        j = padded.find(t, b + 1, hi)
        after = j + len(t) - 2 - b if j >= 0 else max_chars
        if before > room and after > room:
            return None
        sides.append((before, after))
    # Those that start nearest before taken before, the others after: the split that
    # reaches least far.
    sides.sort()
    best: tuple[int, int] | None = None
    ahead = 0  # how far the words taken after reach
    for k in range(len(sides), -1, -1):
        back = sides[k - 1][0] if k else 0
        if back + ahead <= room and (best is None or back + ahead < best[0] + best[1]):
            best = (back, ahead)
        if k:
            ahead = max(ahead, sides[k - 1][1])
    return None if best is None else (a - best[0], b + best[1])


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
    """A window of at most ``max_chars`` on whole words that holds the word (or words) at
    ``[a, b)``, with a third of the room left before it (more when the text ends sooner).
    ``padded``: the text as :func:`best_window` searches it (character ``k`` is byte
    ``k + 1``)."""
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
    (``cut_before``, ``cut_after``); only punctuation or spaces cut off are put back instead,
    up to :data:`EDGE` characters (a message that ends in a row of emoji is cut too). Also
    where ``text[start]`` is in the snippet."""
    cut_after = cut_after or len(text) - end > EDGE
    cut_before = cut_before or start > EDGE
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
    prefixes: Sequence[str] = (),
    stands_for: Mapping[str, str] | None = None,
) -> Snippet | None:
    """The snippet of ``text`` (any script) for a query's words and the words that start
    with its ``prefixes``: a window set around the first found (around them all where one
    can be), with every one found in it highlighted. None when it holds none of them.

    Words are found in :func:`fold` of the text, as the analyzer makes them. ``cjk``: the
    runs of letters and digits of query words holding Chinese, Japanese or Korean. Their
    characters of these scripts are found as written, also inside longer runs (they put no
    spaces between words, or in Korean none between a word and its particles); those of
    other scripts only as whole words (which may be written onto the others: "KTX로").
    ``words``: the query's other words, as the analyzer makes them (lower-case, accents
    folded), found as whole words; ``stands_for``: the query word each of them stands for, if
    not itself (several words of a text can have one stem)."""
    folded = _fold_words(text)
    back = _Unfolded(text) if len(folded) != len(text) else None
    finds: dict[object, list[tuple[int, int]]] = {}  # per query word
    bounded: dict[str, tuple[bool, bool]] = {}  # a word: whether it starts, ends a word
    for run in cjk:
        word = fold(run)
        if not word:
            continue
        if _OTHER_WORD.search(word) is None:  # Chinese, Japanese or Korean only
            i = folded.find(word)
            while i >= 0:
                finds.setdefault(word, []).append(_span(back, i, i + len(word)))
                i = folded.find(word, i + len(word))
        else:  # a word where it starts or ends with other letters
            bounded[word] = (not is_cjk(word[0]), not is_cjk(word[-1]))
    for word in words:
        bounded[word] = (True, True)
    for a, b, word in _words(text, folded, back, bounded):
        if bounded[word] == (True, True) and _too_long(text, a, b):
            continue  # a word the analyzer left out: not what the hit matched
        key = stands_for.get(word, word) if stands_for else word
        finds.setdefault(key, []).append((a, b))
    for a, b, stem in _words(text, folded, back, dict.fromkeys(prefixes, (True, False))):
        end = _word_end(text, b)  # the word a prefix starts, to its end
        if not _too_long(text, a, end):
            finds.setdefault(("*", stem), []).append((a, end))
    if not finds:
        return None
    start, end, merged = _window_of(text, finds, max_chars)
    if end - start == len(text):
        return text.rstrip(), merged
    cut_before = _WORD_CHAR.search(text, 0, start) is not None
    snippet, at = _cut(text, start, end, cut_before, _WORD_CHAR.search(text, end) is not None)
    return snippet, [(x - start + at, y - start + at) for x, y in merged if start <= x and y <= end]


def _window_of(
    text: str,
    finds: Mapping[object, list[tuple[int, int]]],
    max_chars: int,
    in_word: Callable[[str], bool] = str.isalnum,
) -> tuple[int, int, list[tuple[int, int]]]:
    """The window of ``text`` for the spans of ``finds`` (per query word): start, end, and
    every span, those that overlap merged. Set around the first span, or around one of each
    word where a window can hold them (a third of the room before); the whole text if it
    fits. Its ends are not inside a word (``in_word``: of a word's characters) where the
    text has spaces."""
    found = sorted(span for spans in finds.values() for span in spans)
    merged = [found[0]]  # overlapping finds ("東京" and "京都" in "東京都") marked as one
    for a, b in found[1:]:
        if a < merged[-1][1]:
            merged[-1] = (merged[-1][0], max(b, merged[-1][1]))
        else:
            merged.append((a, b))
    n = len(text)
    if n <= max_chars:
        return 0, n, merged
    a, b = merged[0]
    if len(finds) > 1:
        a, b = _cover(finds.values(), max_chars) or (a, b)
    start = max(0, min(a - (max_chars - (b - a)) // 3, n - max_chars))
    end = min(n, start + max_chars)
    # Whole words where the text has spaces between them (Chinese and Japanese have none).
    start, end = _to_spaces(text, start, end, a, b, in_word)
    return start, end, merged


def _to_spaces(
    text: str, start: int, end: int, a: int, b: int, in_word: Callable[[str], bool]
) -> tuple[int, int]:
    """``start`` and ``end`` moved to the nearest spaces inside ``[start, a)`` and
    ``(b, end]`` where they cut a word, if one is within :data:`EDGE` characters: scripts
    that put spaces between phrases, not words (Thai), keep their context, cut inside it."""
    if 0 < start < a and in_word(text[start - 1]) and in_word(text[start]):
        space = _SPACE_RE.search(text, start, min(a, start + EDGE))
        start = space.end() if space else start
    if b < end < len(text) and in_word(text[end - 1]) and in_word(text[end]):
        spaces = [m.start() for m in _SPACE_RE.finditer(text, max(b, end - EDGE), end)]
        end = spaces[-1] if spaces else end
    return start, end


def _not_space(char: str) -> bool:
    return not char.isspace()


def _too_long(text: str, a: int, b: int) -> bool:
    """Whether the word at ``[a, b)`` of ``text`` is one the analyzer leaves out: of
    :data:`TOKEN_MAX` bytes or more in UTF-8, before it is folded ("café" 13 times is 65
    bytes, its fold 52 letters)."""
    return b - a >= TOKEN_MAX // 4 and len(text[a:b].encode()) >= TOKEN_MAX


def _span(back: _Unfolded | None, a: int, b: int) -> tuple[int, int]:
    """Where ``[a, b)`` of a text's :func:`fold` is in the text (``back``: see
    :class:`_Unfolded`; None: where each character folded to one)."""
    return (a, b) if back is None else (back.at(a), back.at(b - 1) + 1)


def _words(
    text: str, folded: str, back: _Unfolded | None, words: Mapping[str, tuple[bool, bool]]
) -> Iterator[tuple[int, int, str]]:
    """Where ``words`` are in ``text`` (start, end, word): found in ``folded`` (its
    :func:`fold`; ``back``: see :func:`_span`), each where it starts a word of the text
    (for a word whose first value is true) and ends one (second value). Whether a word
    starts or ends is read from ``text``, which the analyzer splits into words: a letter
    folds to what may not read as one ("İ" to "i" and a combining dot)."""
    words = {w: wanted for w, wanted in words.items() if w}
    if not words:
        return
    n = len(text)
    # The longest first: where one is found, no other that is found there is a whole word.
    pattern = "|".join(map(re.escape, sorted(words, key=len, reverse=True)))
    for m in re.finditer(pattern, folded):
        word = m.group()
        starts, ends = words[word]
        a, b = m.span()
        if back is not None:
            if (starts and back.inside(a)) or (ends and back.inside(b)):
                continue  # it starts or ends inside what a character folds to
            a, b = back.at(a), back.at(b - 1) + 1
        if starts and a and _other_letter(text[a - 1]):
            continue
        if ends and b < n and _other_letter(text[b]):
            continue
        yield a, b, word


def _other_letter(char: str) -> bool:
    """Whether ``char`` is a word character to tantivy (a letter or digit; also a vowel
    sign, a circled letter), but not of Chinese, Japanese or Korean."""
    word = char.isalnum() if _AGREES[char] else bool(_WORD_SPLITTER.analyze(char))
    return word and not is_cjk(char)


def _word_end(text: str, i: int) -> int:
    """Where the word that goes on at ``text[i]`` ends, as tantivy's tokenizer reads it."""
    n = len(text)
    while True:
        i = _WORD_REST.match(text, i).end()  # type: ignore[union-attr]  # matches empty
        if i < n and not _AGREES[text[i]] and _WORD_SPLITTER.analyze(text[i]):
            i += 1  # a word character to tantivy only ("Ⓐ", a vowel sign)
            continue
        return i


def _cover(groups: Collection[list[tuple[int, int]]], max_chars: int) -> tuple[int, int] | None:
    """The first span (start, end) of at most ``max_chars`` that holds one of each group of
    spans, if there is one: of the shortest spans ending at each span, the first that fits."""
    finds = sorted((a, b, g) for g, spans in enumerate(groups) for a, b in spans)
    count = [0] * len(groups)
    missing = len(groups)
    left = 0
    for right, (a, _b, g) in enumerate(finds):
        if not count[g]:
            missing -= 1
        count[g] += 1
        if missing:
            continue
        while count[finds[left][2]] > 1:  # the span at ``left`` is held again further on
            count[finds[left][2]] -= 1
            left += 1
        start = finds[left][0]
        if a - start < max_chars:
            end = max(f[1] for f in finds[left : right + 1])  # overlapping finds: the last end
            if end - start <= max_chars:
                return start, end
    return None


# What tantivy's lowercase and ascii_fold filters make of one character. Both work character by
# character, so a text is folded as its characters are; a character can become several ("ß"
# "ss", "Æ" "ae", "ﬁ" "fi", "İ" "i̇"), and letters of other scripts keep their accents ("й").
_CHAR_FOLD = (
    tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.raw())
    .filter(tantivy.Filter.lowercase())
    .filter(tantivy.Filter.ascii_fold())
    .build()
)


class _FoldTable(dict[int, str]):
    """str.translate's table for :func:`fold`, filled as characters are first seen (threads
    fill it together). ``uneven``: a pattern that finds the characters seen that fold to
    more than one."""

    def __init__(self) -> None:
        super().__init__()
        self._several = ""  # the characters seen that fold to several
        self.uneven = re.compile("(?!)")  # none yet
        self._lock = threading.Lock()

    def __missing__(self, code: int) -> str:
        ch = chr(code)
        with self._lock:
            if code in self:  # another thread's
                return self[code]
            folded = ch
            if not 0xD800 <= code <= 0xDFFF:  # a lone surrogate is not text tantivy takes
                folded = "".join(_CHAR_FOLD.analyze(ch)) or ch  # never shorter than ``ch``
            if len(folded) > 1:  # found by the pattern before it is in the table: _Unfolded
                self._several += ch
                self.uneven = re.compile(f"[{re.escape(self._several)}]")
            self[code] = folded
            return folded


_FOLD = _FoldTable()

# tantivy's tokenizer: a character makes a token alone if and only if it is a word character
# to tantivy (Rust's char::is_alphanumeric).
_WORD_SPLITTER = tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple()).build()


class _Agrees(dict[str, bool]):
    """Per character: whether Python and tantivy agree on whether it is a word character,
    filled as characters are first seen. They differ on the marks of scripts such as
    Devanagari or Thai (vowel signs: letters to tantivy, not to Python) and a few symbols
    (circled letters), where only tantivy's generator finds the words tantivy made."""

    def __missing__(self, ch: str) -> bool:
        code = ord(ch)
        agrees = not 0xD800 <= code <= 0xDFFF and ch.isalnum() == bool(_WORD_SPLITTER.analyze(ch))
        self[ch] = agrees  # threads may both fill it: the same value
        return agrees


_AGREES = _Agrees()


def words_agree(text: str) -> bool:
    """Whether Python finds the same words in ``text`` as tantivy's analyzer (its characters
    of other scripts than ASCII are all ones the two agree on): then :func:`unicode_snippet`
    marks what was indexed, and sets its window around every word it can (accented text:
    "café" and "aiguille" far apart), which tantivy's generator does not."""
    agrees = _AGREES
    return all(agrees[ch] for ch in set(text) if ch > "\x7f")


# One-byte encodings of the Latin alphabet, tried in turn by fold_latin: Western Europe,
# Central Europe, the Baltic languages, Turkish.
LATIN_CODECS = ("latin-1", "cp1250", "cp1257", "cp1254")


@functools.cache
def _latin_folds() -> dict[str, tuple[bytes, re.Pattern[bytes]]]:
    """Per codec of :data:`LATIN_CODECS`: :data:`ASCII_FOLD` for its bytes (see
    :func:`fold_latin`), made from what the analyzer makes of each character, and a pattern of
    the bytes it folds to other than one ASCII letter or digit (made at the first use: 512
    characters through tantivy, about a millisecond)."""
    folds = {}
    for codec in LATIN_CODECS:
        table = bytearray(ASCII_FOLD)
        uneven = bytearray()
        for code in range(0x80, 0x100):
            try:
                ch = bytes([code]).decode(codec)
            except UnicodeDecodeError:  # a byte the codec leaves unused: never in its text
                continue
            if not _WORD_SPLITTER.analyze(ch):  # no word character to the analyzer: a space
                table[code] = _SPACE
                continue
            folded = "".join(_CHAR_FOLD.analyze(ch))
            # (At most two bytes in UTF-8, as _MAYBE_LONG counts on.)
            if len(folded) == 1 and folded.isascii() and folded.isalnum() and ch <= "\u07ff":
                table[code] = ord(folded)
            else:
                uneven.append(code)
        folds[codec] = (bytes(table), re.compile(b"[" + re.escape(bytes(uneven)) + b"]"))
    return folds


def fold(text: str) -> str:
    """``text`` lower-cased and folded as the analyzer folds it; it is longer than ``text``
    where a character folds to several (:class:`_Unfolded` maps its offsets back)."""
    return text.translate(_FOLD)


class _LowerSafe(dict[str, bool]):
    """Per character, filled as characters are first seen: whether ``str.lower`` makes of it
    what finding words in its :func:`fold` needs: its fold, one character; or, for one that
    is no word character to Python or tantivy, one character that is none either (what it
    folds to does not matter: no word holds it; "«" stays "«" where the analyzer makes it
    '"'). Not "Σ", which ``str.lower`` makes "ς" at a word's end (the analyzer: "σ"); not
    "Ⓐ", a word character to tantivy only, which it folds to "a"."""

    def __missing__(self, ch: str) -> bool:
        low = ch.lower()
        if len(low) != 1 or ch == "Σ":
            safe = False
        elif low == _FOLD[ord(ch)]:
            safe = True
        else:
            safe = not (ch.isalnum() or low.isalnum() or _WORD_SPLITTER.analyze(ch))
        self[ch] = safe  # threads may both fill it: the same value
        return safe


_LOWER_SAFE = _LowerSafe()


def _fold_words(text: str) -> str:
    """:func:`fold` of ``text`` as far as finding its words goes (the same letters and
    digits at the same places), by ``str.lower`` where that does it (Greek, Cyrillic,
    Chinese, Japanese and Korean: some 1 µs for 1,000 characters, against 30 for
    ``str.translate`` with a table of every character)."""
    safe = _LOWER_SAFE
    if all(safe[ch] for ch in set(text) if ch > "\x7f"):
        return text.lower()
    return fold(text)


class _Unfolded:
    """Where offsets in :func:`fold` of a text are in the text, where characters of it fold
    to several: found from those characters (few in most texts, so that a text's letters are
    not gone through one by one in Python)."""

    def __init__(self, text: str) -> None:
        self._starts: list[int] = []  # where each of those characters' folds starts
        self._ends: list[int] = []  # and ends
        self._chars: list[int] = []  # where the character is in the text
        grown = 0  # how much longer than the text the fold is so far
        for m in _FOLD.uneven.finditer(text):
            i = m.start()
            self._starts.append(i + grown)
            grown += len(_FOLD[ord(m.group())]) - 1
            self._ends.append(i + grown + 1)
            self._chars.append(i)

    def at(self, x: int) -> int:
        """Where the character that offset ``x`` of the fold comes from is in the text."""
        k = bisect.bisect_right(self._starts, x) - 1
        if k < 0:
            return x
        if x < self._ends[k]:
            return self._chars[k]
        return x - (self._ends[k] - self._chars[k] - 1)

    def inside(self, x: int) -> bool:
        """Whether offset ``x`` of the fold is inside a character's fold, past its start."""
        k = bisect.bisect_right(self._starts, x) - 1
        return k >= 0 and self._starts[k] < x < self._ends[k]


def head(text: str) -> Snippet:
    """The snippet of a hit in which no query word is found: the text's start."""
    if len(text) <= SNIPPET_CHARS:
        return text, []
    return text[:SNIPPET_CHARS] + ELLIPSIS, []


def _doc_freq(searcher: Any, term: str) -> int:
    """How many documents hold ``term``: in the text field, or else in the cjk field, which
    holds a word written onto Chinese, Japanese or Korean apart ("KTX로" as "ktx", "로")."""
    return int(searcher.doc_freq("text", term)) or int(searcher.doc_freq("cjk", term))


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
        self._generator: Any = None
        self.terms: tuple[str, ...] | None = None  # rarest first; None: tantivy's generator
        self._needles: tuple[bytes, ...] = ()
        self._every = matched and text.required  # each hit holds every term
        # With stemming, the query's terms are stems: the words of a text found here are those
        # whose stem is one of them (see _stemmed). A search's hits share most of their words,
        # so each word's stem is kept.
        self._stemmed_terms: frozenset[str] = frozenset()
        self._stem_of: dict[str, tuple[str, str]] = {}  # a word: folded, and its stem
        terms = text.terms
        if self._highlights and terms is not None:
            if len(terms) > 1 or not (matched and text.required):
                # Rarest first; a word no document holds is never highlighted (as tantivy's
                # generator does): it can only be in a semantic hit's text by chance.
                freqs = {t: _doc_freq(searcher, t) for t in terms}
                terms = tuple(sorted((t for t in terms if freqs[t] > 0), key=freqs.__getitem__))
            if fulltext.stemming:
                self._stemmed_terms = frozenset(terms)
            else:
                self.terms = terms
                self._needles = needles(terms)

    def __call__(self, doc: Any) -> Snippet:
        text: str = doc.get_first("text") or ""
        if self._highlights:
            if self._prefixes:
                made = self._with_prefixes(text)
            elif self._cjk and not text.isascii():
                made = self._unicode(text, self._cjk)
            elif self.terms is not None and text.isascii():
                made = window_snippet(text, self._needles, every=self._every)
            elif self.terms is not None and (padded := fold_latin(text)) is not None:
                made = window_snippet(text, self._needles, padded=padded, every=self._every)
            elif (self.terms is not None or self._stemmed_terms) and (
                is_cjk(text) or words_agree(text)
            ):
                made = self._unicode(text, ())
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
        padded = None
        if self.terms is not None:
            padded = fold_ascii(text) if text.isascii() else fold_latin(text)
        if padded is not None:
            if not self._needles and len(self._stems) == len(self._prefixes) == 1:
                return prefix_snippet(text, padded, self._stems[0])
            # Each word the stem starts, read from the folded bytes: " stem" is a word start,
            # the next space its end (as window_snippet finds words).
            found: dict[bytes, None] = {}
            for stem in self._stems:
                i = padded.find(stem)
                while i >= 0:
                    end = padded.find(b" ", i + 1)
                    if end - i - 1 < TOKEN_MAX:  # longer: left out by the analyzer
                        found[padded[i : end + 1]] = None
                    i = padded.find(stem, end)
            extra = tuple(w for w in found if w[1:-1].decode() not in known)
            return window_snippet(text, self._needles + extra, padded=padded, every=self._every)
        # Found in the folded text ("brul*" finds "brûlée"), marked where the text has them.
        return self._unicode(text, self._cjk, self._prefixes)

    def _unicode(
        self, text: str, cjk: Sequence[str], prefixes: Sequence[str] = ()
    ) -> Snippet | None:
        """:func:`unicode_snippet` with the query's words: with stemming, the words of
        ``text`` whose stem is one of the query's."""
        if not self._stemmed_terms:
            return unicode_snippet(text, cjk, self.terms or (), prefixes=prefixes)
        stemmed = self._stemmed(text)
        return unicode_snippet(text, cjk, tuple(stemmed), prefixes=prefixes, stands_for=stemmed)

    def _stemmed(self, text: str) -> dict[str, str]:
        """The words of ``text`` whose stem is one of the query's terms: each folded (as
        :func:`unicode_snippet` finds words), with its stem."""
        words = dict.fromkeys(_OTHER_WORD.findall(text))
        known = self._stem_of
        new = [w for w in words if w not in known]
        if new:
            known.update((w, (fold(w), "")) for w in new)
            short = [w for w in new if len(w.encode()) < TOKEN_MAX]  # longer: not indexed
            # One call into tantivy for them all, unless it splits a word that Python's
            # \w does not (then one each: a word it splits has no one stem).
            stems = self._fulltext.tokens(" ".join(short))
            if len(stems) != len(short):
                stems = [" ".join(self._fulltext.tokens(w)) for w in short]
            known.update((w, (fold(w), stem)) for w, stem in zip(short, stems, strict=True))
        terms = self._stemmed_terms
        return dict(known[w] for w in words if known[w][1] in terms)

    def _tantivy(self, doc: Any, text: str) -> Snippet | None:
        """tantivy's snippet; it gives UTF-8 byte ranges, the hit's are character ranges."""
        if self._generator is None:
            query = self._text.query()
            assert query is not None  # only called with words to highlight
            self._generator = tantivy.SnippetGenerator.create(
                self._searcher, query, self._fulltext.schema, "text"
            )
            # It counts bytes of UTF-8, not characters: room for SNIPPET_CHARS of any
            # script (a Hindi fragment of 240 bytes was 88 characters), cut down below.
            self._generator.set_max_num_chars(SNIPPET_CHARS * 4)
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
        # The window is set around the fragment's marks in the text, as any text's: the
        # fragment may end at a mark, and it can start inside a word ("नमस्ते" is "नमस" and
        # "ते" to tantivy). Ends move to spaces (a vowel sign is a word's, not a letter to
        # Python).
        at_fragment = max(text.find(fragment), 0)
        spans = [(at_fragment + a, at_fragment + b) for a, b in ranges]
        finds: dict[object, list[tuple[int, int]]] = {}
        for a, b in spans:
            finds.setdefault(text[a:b].lower(), []).append((a, b))
        if finds:
            start, end, _merged = _window_of(text, finds, SNIPPET_CHARS, _not_space)
        else:  # nothing marked: the fragment's start
            start = at_fragment
            end = _to_spaces(
                text, start, min(start + SNIPPET_CHARS, len(text)), start, start, _not_space
            )[1]
        ranges = [(a - start, b - start) for a, b in spans if start <= a and b <= end]
        cut_before = _WORD_CHAR.search(text, 0, start) is not None
        snippet, at = _cut(text, start, end, cut_before, _WORD_CHAR.search(text, end) is not None)
        return snippet, [(a + at, b + at) for a, b in ranges]
