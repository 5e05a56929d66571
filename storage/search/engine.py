"""Running a query: keyword (tantivy BM25), semantic (vectors) and hybrid (reciprocal rank
fusion, k=60), with filters, paging, totals and snippets with highlight ranges."""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import tantivy

from storage.search.fulltext import EPOCH, IndexCorruptError, TextQuery, hit_fields
from storage.search.indexer import Indexer
from storage.search.query import (
    Filters,
    ParsedQuery,
    QuerySyntaxError,
    aware,
    kind_of,
    not_utf8,
    parse,
    parse_date,
)
from storage.search.results import Hit, SearchMode, SearchResults, make_hit
from storage.search.snippets import Snippets

log = logging.getLogger(__name__)

_timedelta = dt.timedelta

RRF_K = 60
MODES = ("keyword", "semantic", "hybrid")
# Semantic and hybrid searches rank the best RANK_WINDOW hits (each leg's, for hybrid), the
# same ones whatever page is asked for: pages never repeat or skip a hit and the total does
# not move from page to page (as Elasticsearch's rank_window_size). Deeper pages are empty.
RANK_WINDOW = 200
# Filters a vector's group cannot tell (role, source, dates, excluded words) are applied
# after the nearest-neighbour search: it looks this many times deeper first, then deeper
# again while too few pass, down to DEEPEST.
OVERSAMPLE = 4
DEEPEST = 32_000
_GROUP_KINDS = {"message": "m", "context": "c", "document": "d", "session": "t"}
# English function words, left out of a hybrid search's keyword leg when the query has other
# words: any one word is enough there, and a hit holding only "how" or "do" would rank among
# the keyword leg's best in a small archive and be fused above what the question is about.
# (Lucene's English stop words, with the question words and pronouns chat queries start with.)
_STOP_WORDS = """a an and are as at be but by for if in into is it no not of on or such that the
    their then there these they this to was will with how what why when where who which
    whom whose do does did doing can could should would shall may might must i me my mine
    myself you your yours we our us he him his she her its them am been being have has had
    having so than too very just about any some from up out"""
STOP_WORDS = frozenset(_STOP_WORDS.split())

Stored = tuple[float, Any, list[Any]]  # a hit read: score, stored document, hit_fields(doc)


@dataclass(slots=True)
class _Candidate:
    key: str
    score: float
    doc: Any = None  # the stored tantivy.Document (None: not read yet)
    fields: list[Any] | None = None  # its hit field, decoded (hit_fields)


def merge_filters(parsed: ParsedQuery, **filters: Any) -> ParsedQuery:
    """Filters given as arguments (from the GUI) join those typed in the query: both must
    hold (``role:user`` typed and ``role="assistant"`` given match nothing). A bad one raises
    :class:`QuerySyntaxError` naming the argument."""
    f: Filters = parsed.filters
    for name in ("role", "user", "session", "kind", "source"):
        value = filters.pop(name, None)
        if value is None:
            continue
        values = list(value) if isinstance(value, list | tuple | set | frozenset) else [value]
        if not values:
            continue  # an empty list: no such filter
        if not all(isinstance(v, str) and v for v in values):
            raise QuerySyntaxError(
                parsed.text, None, f"the {name} filter must be text, not {value!r}"
            )
        for v in values:
            _check_utf8(parsed.text, name, v)
        if name == "kind":
            values = [kind_of(v, f"the kind filter {v!r}", parsed.text, None) for v in values]
        typed: list[str] = getattr(f, name)
        if typed:  # both must hold: a document has one role, user, session, kind and source
            kept = [v for v in typed if v in values]
            f.none = f.none or not kept
            typed[:] = kept
        else:
            typed.extend(values)
    for name in ("after", "before"):
        value = filters.pop(name, None)
        if value is not None:
            f.narrow(
                "after" if name == "after" else "before", _date_filter(parsed.text, name, value)
            )
    if filters:
        raise TypeError(f"unknown search filters: {', '.join(sorted(filters))}")
    return parsed


def _check_utf8(query: str, name: str, value: str) -> None:
    """Raise :class:`QuerySyntaxError` for a filter value that cannot be encoded as UTF-8
    (a lone surrogate: what Python makes of a byte that is not UTF-8 in a command line). The
    query's own text is checked as it is parsed; tantivy rejected such a value with a bare
    ValueError ("Expected Str type for field user")."""
    bad = not_utf8(value)
    if bad is not None:
        raise QuerySyntaxError(
            query,
            None,
            f"the {name} filter {value!r} is not valid UTF-8 "
            f"({bad[1]} at character {bad[0] + 1} of it)",
        )


def _date_filter(query: str, name: str, value: Any) -> dt.datetime:
    """An after/before argument (a date, a datetime, or text as the query language reads it)
    as an aware datetime (local time when it has none)."""
    if isinstance(value, str):
        _check_utf8(query, name, value)
        try:
            return parse_date(value, name, value, 0)
        except QuerySyntaxError as exc:  # said of the filter, in the query it filters
            raise QuerySyntaxError(query, None, exc.detail) from None
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        value = dt.datetime(value.year, value.month, value.day)
    if not isinstance(value, dt.datetime):
        raise QuerySyntaxError(
            query, None, f"the {name} filter must be a date or text, not {value!r}"
        )
    return aware(value, f"{name}:{value.date().isoformat()}", query, None)


class SearchEngine:
    def __init__(self, indexer: Indexer, titles: Any) -> None:
        self.indexer = indexer
        self._titles = titles  # (user, session) -> session title (the archive remembers them)
        self._current: Any = None  # the searcher of the search in progress

    def search(
        self,
        query: str,
        mode: SearchMode = "hybrid",
        limit: int = 20,
        offset: int = 0,
        **filters: Any,
    ) -> SearchResults:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
        if limit < 0 or offset < 0:
            raise ValueError("limit and offset must be >= 0")
        parsed = parse(query)
        if filters:
            parsed = merge_filters(parsed, **filters)
        parsed.check_searchable()
        if parsed.filters.none:
            return SearchResults(query, mode, 0, [])
        if parsed.empty and not parsed.filters.any():
            if query.strip():
                raise QuerySyntaxError(
                    query,
                    None,
                    "there is nothing to search for in it (only operators or punctuation)",
                )
            return SearchResults(query, mode, 0, [])
        fulltext = self.indexer.fulltext
        assert fulltext is not None
        try:
            self._current = fulltext.searcher()  # one consistent view for the whole search
            return self._search(parsed, mode, limit, offset)
        except BaseException as exc:
            # tantivy reads a damaged file by panicking (pyo3's PanicException is not an
            # Exception): the index's fault, not the query's.
            if type(exc).__module__ == "pyo3_runtime":
                raise IndexCorruptError(f"the keyword index is unreadable: {exc}") from exc
            raise
        finally:
            self._current = None

    def _searcher(self) -> Any:
        if self._current is None:
            fulltext = self.indexer.fulltext
            assert fulltext is not None
            self._current = fulltext.searcher()
        return self._current

    def _search(
        self, parsed: ParsedQuery, mode: SearchMode, limit: int, offset: int
    ) -> SearchResults:
        degraded = None
        embedder = self.indexer.embedder if mode != "keyword" else None
        if mode != "keyword":
            if embedder is None or self.indexer.vectors is None:
                degraded = "semantic search is switched off (setting vector.enabled)"
                mode = "keyword"
            else:
                degraded = embedder.degraded
        if self.indexer.rebuilt_reason:
            degraded = f"the search index is being rebuilt: {self.indexer.rebuilt_reason}"
        elif self.indexer.lost:  # state.json gone: .index/ deleted, or another process rebuilds
            degraded = "the search index is being rebuilt: results are incomplete until it is done"
        elif self.indexer.unchecked:  # another process holds the index: results may lag
            degraded = f"the search index may be incomplete: {self.indexer.unchecked}"
        fulltext = self.indexer.fulltext
        assert fulltext is not None
        # The words to search for (and to highlight, built once for both); a semantic search
        # builds them only if it has hits to highlight.
        text: TextQuery | None = None
        matched: int | None = None
        if mode == "keyword" or parsed.empty:
            text = fulltext.text_query(parsed)
            total, page = self._keyword_page(parsed, offset, limit, text)
            matched = total
        else:
            if mode == "semantic":
                ranked = self._semantic(parsed, RANK_WINDOW)
            else:
                # The same terms as a plain keyword search, any of them required: what
                # snippets highlight does not depend on how the terms combine.
                words = content_words(parsed)
                text = fulltext.text_query(words, any_term=True, at_least=_at_least(words))
                _k_total, k_ranked = self._keyword(words, RANK_WINDOW, text)
                semantic = self._semantic(parsed, RANK_WINDOW, parsed.whole_text)
                ranked = _fuse(k_ranked, semantic)[:RANK_WINDOW]
                matched = self._matched(words, ranked, k_ranked, text)
            total = len(ranked)  # every one of them reachable by paging
            page = self._read(ranked[offset : offset + limit])
        hits = self._hits(parsed, page, text, matched=mode == "keyword")
        return SearchResults(parsed.text, mode, total, hits, degraded, matched)

    # ------------------------------------------------------------------ retrieval
    def _keyword_page(
        self, parsed: ParsedQuery, offset: int, limit: int, text: TextQuery
    ) -> tuple[int, list[Stored]]:
        """A keyword search's total, and each hit on the page read (the hits before
        ``offset`` are ranked, not read)."""
        total, ranked = self._ranked(parsed, offset + limit, text)
        return total, _docs(self._searcher(), ranked[offset : offset + limit])

    def _keyword(
        self, parsed: ParsedQuery, want: int, text: TextQuery
    ) -> tuple[int, list[_Candidate]]:
        """The keyword leg of a hybrid search: candidates to fuse."""
        total, ranked = self._ranked(parsed, want, text)
        docs = _docs(self._searcher(), ranked)
        return total, [_Candidate(fields[0], score, doc, fields) for score, doc, fields in docs]

    def _ranked(self, parsed: ParsedQuery, want: int, text: TextQuery) -> tuple[int, list[Any]]:
        """The total and the top ``want`` (score, address) pairs of a keyword search."""
        fulltext = self.indexer.fulltext
        assert fulltext is not None
        query = fulltext.build(parsed, text=text)
        if query is None:
            return 0, []
        searcher = self._searcher()
        total = None
        if text.term is not None and not parsed.filters.any() and not parsed.excluded:
            # One word: its count is in the term dictionary. Counting the hits would score
            # every one (260,000 for a common word at 1,000,000 messages): 16% of the search.
            total = fulltext.count_of_term(searcher, text.term)
        # No more hits than documents: tantivy sizes its top-hits heap by the limit, and a page
        # far out (offset 2**31) would otherwise ask it for gigabytes, or overflow its integer.
        want = max(min(want, searcher.num_docs), 1)
        result = _run(searcher, query, want, count=total is None)
        return int(result.count or 0) if total is None else total, result.hits

    def _matched(
        self,
        words: ParsedQuery,
        ranked: list[_Candidate],
        found: list[_Candidate],
        text: TextQuery,
    ) -> int:
        """How many of a hybrid search's ``ranked`` hits hold its words as its keyword side
        asks (``words``, ``text``): those that side ranked (``found``), and those it ranked
        below its top hits but the semantic side brought in (one search among just them)."""
        keys = {c.key for c in found}
        others = [c.key for c in ranked if c.key not in keys]
        matched = len(ranked) - len(others)
        if others:
            fulltext = self.indexer.fulltext
            assert fulltext is not None
            query = fulltext.build(words, keys=others, text=text)
            if query is not None:
                matched += int(_run(self._searcher(), query, 1).count or 0)
        return matched

    def _semantic(
        self, parsed: ParsedQuery, want: int, text: str | None = None
    ) -> list[_Candidate]:
        """The ``want`` nearest hits that pass the query's filters, nearest first. Filters
        on whose the hit is (user, session, kind) narrow the vector search itself, so a
        selective one still finds everything it allows; the others are checked in the
        keyword index after it, looking deeper while too few pass. ``text``: what to embed
        (default: the query's words, phrases and prefixes)."""
        embedder, vectors, fulltext = (
            self.indexer.embedder,
            self.indexer.vectors,
            self.indexer.fulltext,
        )
        text = parsed.free_text if text is None else text
        if embedder is None or vectors is None or fulltext is None or not text:
            return []
        query_vector = embedder.encode([text])[0]
        allow = _group_filter(parsed.filters)
        f = parsed.filters
        if not (f.role or f.source or f.after or f.before or parsed.excluded):
            return [_Candidate(k, s) for k, s in vectors.search(query_vector, want, allow=allow)]
        searcher = self._searcher()
        depth = want * OVERSAMPLE
        while True:
            nearest = vectors.search(query_vector, depth, allow=allow)
            scores = dict(nearest)
            query = fulltext.build(parsed, keys=list(scores), text_required=False)
            result = _run(searcher, query, max(len(scores), 1))
            ranked = [
                _Candidate(fields[0], scores.get(fields[0], 0.0), doc, fields)
                for _score, doc, fields in _docs(searcher, result.hits)
            ]
            if len(ranked) >= want or len(nearest) < depth or depth >= DEEPEST:
                break
            depth = min(depth * OVERSAMPLE, DEEPEST)
        ranked.sort(key=lambda c: -c.score)
        return ranked[:want]

    def _read(self, candidates: list[_Candidate]) -> list[Stored]:
        """The page's hits read from the keyword index (those a semantic search found are
        read only now: a page, not the whole window); a hit no longer there is left out."""
        unread = [c.key for c in candidates if c.doc is None]
        if unread:
            fulltext = self.indexer.fulltext
            assert fulltext is not None
            searcher = self._searcher()
            query = tantivy.Query.term_set_query(fulltext.schema, "key", unread)
            read = {
                f[0]: (doc, f)
                for _, doc, f in _docs(searcher, _run(searcher, query, len(unread)).hits)
            }
            for c in candidates:
                if c.doc is None and c.key in read:
                    c.doc, c.fields = read[c.key]
        return [(c.score, c.doc, c.fields) for c in candidates if c.fields is not None]

    # ------------------------------------------------------------------ presentation
    def _hits(
        self,
        parsed: ParsedQuery,
        page: list[Stored],
        text: TextQuery | None,
        matched: bool = False,
    ) -> list[Hit]:
        """The hits of ``page``, as :func:`_docs` read them."""
        if not page:
            return []
        fulltext = self.indexer.fulltext
        assert fulltext is not None
        if text is None:
            text = fulltext.text_query(parsed)
        # A keyword search's hits matched its terms; a semantic one's need not have.
        snippets = Snippets(fulltext, self._searcher(), text, matched=matched)
        titles = self._titles
        hits = []
        for score, doc, fields in page:
            (
                key,
                kind,
                user,
                session,
                role,
                source,
                message_id,
                doc_id,
                chunk,
                page_no,
                char_start,
                char_end,
                stamp,
            ) = fields
            snippet, ranges = snippets(doc)
            # A document's title is its name; a message's, its session's.
            title = source if kind == "document" else titles(user, session) if session else ""
            hits.append(
                make_hit(
                    {
                        "kind": kind,
                        "user_id": user,
                        "session_id": session or None,
                        "score": score,
                        "snippet": snippet,
                        "highlights": ranges,
                        "message_id": message_id or None,
                        "doc_id": doc_id or None,
                        "chunk": chunk,
                        "char_start": char_start,
                        "char_end": char_end,
                        "page": page_no,
                        "role": role or None,
                        "title": title,
                        "timestamp": EPOCH + _timedelta(0, 0, stamp),  # positional: faster
                        "key": key,
                    }
                )
            )
        return hits


def _run(searcher: Any, query: Any, limit: int, count: bool = True) -> Any:
    """Run a built query; a failure here is the index's (unreadable files), not the query's."""
    try:
        return searcher.search(query, limit, count=count)
    except (ValueError, OSError) as exc:
        raise IndexCorruptError(f"searching the keyword index failed: {exc}") from exc


def _docs(searcher: Any, ranked: list[Any]) -> list[Stored]:
    """Each (score, address) in ``ranked`` read: its score, its stored tantivy.Document
    (fields are read with get_first: converting them all to a dict costs twice as much) and
    its hit field decoded, once for everything that uses it."""
    try:
        docs = [(float(score), searcher.doc(address)) for score, address in ranked]
    except (ValueError, OSError) as exc:
        raise IndexCorruptError(f"reading the keyword index failed: {exc}") from exc
    return [(score, doc, hit_fields(doc)) for score, doc in docs]


def content_words(parsed: ParsedQuery) -> ParsedQuery:
    """``parsed`` without the words of :data:`STOP_WORDS` (alone in their OR group), unless
    nothing else would be left (a query of such words searches for them)."""
    kept = [
        group
        for group in parsed.groups
        if not all(t.kind == "word" and t.text.lower() in STOP_WORDS for t in group)
    ]
    if not kept or len(kept) == len(parsed.groups):
        return parsed
    return dataclasses.replace(parsed, groups=kept)


def _at_least(parsed: ParsedQuery) -> int:
    """How many of the words (AND groups) of a hybrid search's keyword leg a hit needs: one
    of up to three, half of four or more (a hit holding one word of a long question is no
    keyword match worth fusing)."""
    n = len(parsed.groups)
    return 1 if n < 4 else (n + 1) // 2


def _group_filter(filters: Filters) -> Callable[[str], bool] | None:
    """The filters a vector's group tells (``m/<user>/<session>``, ``c/<user>/<session>``,
    ``d/<user>/<session or _>/<doc>``) as a test of group names; None without such filters."""
    users = set(filters.user)
    sessions = set(filters.session)
    kinds = {_GROUP_KINDS[k] for k in filters.kind if k in _GROUP_KINDS}
    if filters.kind and not kinds:
        return lambda group: False
    if not (users or sessions or kinds):
        return None

    def allow(group: str) -> bool:
        kind, user, session = group.split("/", 3)[:3]
        if kind == "d" and session == "_":
            session = ""  # a document in the user's library: in no session
        return (
            (not kinds or kind in kinds)
            and (not users or user in users)
            and (not sessions or session in sessions)
        )

    return allow


def _fuse(*rankings: list[_Candidate]) -> list[_Candidate]:
    """Reciprocal rank fusion: score = sum of 1 / (k + rank) over the rankings."""
    fused: dict[str, _Candidate] = {}
    for ranking in rankings:
        for rank, candidate in enumerate(ranking, start=1):
            entry = fused.setdefault(candidate.key, _Candidate(candidate.key, 0.0))
            if entry.doc is None:
                entry.doc, entry.fields = candidate.doc, candidate.fields
            entry.score += 1.0 / (RRF_K + rank)
    return sorted(fused.values(), key=lambda c: -c.score)
