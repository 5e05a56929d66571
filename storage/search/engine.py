"""Running a query: keyword (tantivy BM25), semantic (vectors) and hybrid (reciprocal rank
fusion, k=60), with filters, paging, totals and snippets with highlight ranges."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

from storage.search.fulltext import IndexCorruptError, StoredHit, TextQuery, unpack_hit
from storage.search.indexer import Indexer
from storage.search.query import Filters, ParsedQuery, QuerySyntaxError, parse
from storage.search.results import Hit, SearchMode, SearchResults, make_hit
from storage.search.snippets import Snippets

log = logging.getLogger(__name__)

RRF_K = 60
MODES = ("keyword", "semantic", "hybrid")


@dataclass(slots=True)
class _Candidate:
    key: str
    score: float
    doc: Any  # the stored tantivy.Document
    hit: StoredHit  # its hit field


def merge_filters(parsed: ParsedQuery, **filters: Any) -> ParsedQuery:
    """Filters given as arguments (from the GUI) join those typed in the query."""
    f: Filters = parsed.filters
    for name in ("role", "user", "session", "kind", "source"):
        value = filters.pop(name, None)
        if value is None:
            continue
        values = [value] if isinstance(value, str) else list(value)
        getattr(f, name).extend(values)
    for name in ("after", "before"):
        value = filters.pop(name, None)
        if value is None:
            continue
        if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
            value = dt.datetime(value.year, value.month, value.day)
        if isinstance(value, str):
            from storage.search.query import parse_date

            value = parse_date(value, name, value, 0)
        if value.tzinfo is None:
            value = value.astimezone()
        setattr(f, name, value)
    if filters:
        raise TypeError(f"unknown search filters: {', '.join(sorted(filters))}")
    return parsed


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
        self._current = fulltext.searcher()  # one consistent view for the whole search
        try:
            return self._search(parsed, mode, limit, offset)
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
        want = offset + limit
        fulltext = self.indexer.fulltext
        assert fulltext is not None
        # The words to search for (and to highlight, built once for both); a semantic search
        # builds them only if it has hits to highlight.
        text: TextQuery | None = None
        if mode == "keyword" or parsed.empty:
            text = fulltext.text_query(parsed)
            total, ranked = self._keyword(parsed, want, text)
        elif mode == "semantic":
            total, ranked = self._semantic(parsed, want)
        else:
            depth = max(want, 50) * 2
            # The same terms as a plain keyword search, any of them required: what snippets
            # highlight does not depend on how the terms combine.
            text = fulltext.text_query(parsed, any_term=True)
            k_total, k_ranked = self._keyword(parsed, depth, text)
            _s_total, s_ranked = self._semantic(parsed, depth)
            ranked = _fuse(k_ranked, s_ranked)
            total = max(k_total, len(ranked))
        page = ranked[offset : offset + limit]
        hits = self._hits(parsed, page, text, matched=mode == "keyword")
        return SearchResults(parsed.text, mode, total, hits, degraded)

    # ------------------------------------------------------------------ retrieval
    def _keyword(
        self, parsed: ParsedQuery, want: int, text: TextQuery
    ) -> tuple[int, list[_Candidate]]:
        fulltext = self.indexer.fulltext
        assert fulltext is not None
        query = fulltext.build(parsed, text=text)
        if query is None:
            return 0, []
        searcher = self._searcher()
        result = _run(searcher, query, max(want, 1))
        ranked = []
        for score, address in result.hits:
            doc = _doc(searcher, address)
            stored = unpack_hit(doc)
            ranked.append(_Candidate(stored.key, float(score), doc, stored))
        return int(result.count or 0), ranked

    def _semantic(self, parsed: ParsedQuery, want: int) -> tuple[int, list[_Candidate]]:
        embedder, vectors, fulltext = (
            self.indexer.embedder,
            self.indexer.vectors,
            self.indexer.fulltext,
        )
        if embedder is None or vectors is None or fulltext is None or not parsed.free_text:
            return 0, []
        query_vector = embedder.encode([parsed.free_text])[0]
        # Oversample: filters and tombstones are applied after the nearest-neighbour search.
        depth = max(want * 4, 100) if parsed.filters.any() or parsed.excluded else want
        nearest = vectors.search(query_vector, depth)
        if not nearest:
            return 0, []
        scores = dict(nearest)
        query = fulltext.build(parsed, keys=list(scores), text_required=False)
        searcher = self._searcher()
        result = _run(searcher, query, len(scores))
        ranked = []
        for _score, address in result.hits:
            doc = _doc(searcher, address)
            stored = unpack_hit(doc)
            ranked.append(_Candidate(stored.key, scores.get(stored.key, 0.0), doc, stored))
        ranked.sort(key=lambda c: -c.score)
        return len(ranked), ranked[:want]

    # ------------------------------------------------------------------ presentation
    def _hits(
        self,
        parsed: ParsedQuery,
        page: list[_Candidate],
        text: TextQuery | None,
        matched: bool = False,
    ) -> list[Hit]:
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
        for candidate in page:
            stored = candidate.hit
            snippet, ranges = snippets(candidate.doc)
            session = stored.session
            if stored.kind == "document":
                title = stored.source  # the document's name
            else:
                title = titles(stored.user, session) if session else ""
            hits.append(
                make_hit(
                    {
                        "kind": stored.kind,
                        "user_id": stored.user,
                        "session_id": session or None,
                        "score": candidate.score,
                        "snippet": snippet,
                        "highlights": ranges,
                        "message_id": stored.message_id or None,
                        "doc_id": stored.doc_id or None,
                        "chunk": stored.chunk,
                        "char_start": stored.char_start,
                        "char_end": stored.char_end,
                        "page": stored.page,
                        "role": stored.role or None,
                        "title": title,
                        "timestamp": stored.timestamp,
                    }
                )
            )
        return hits


def _run(searcher: Any, query: Any, limit: int) -> Any:
    """Run a built query; a failure here is the index's (unreadable files), not the query's."""
    try:
        return searcher.search(query, limit, count=True)
    except (ValueError, OSError) as exc:
        raise IndexCorruptError(f"searching the keyword index failed: {exc}") from exc


def _doc(searcher: Any, address: Any) -> Any:
    """The stored tantivy.Document (fields are read with get_first: converting them all to a
    dict costs twice as much)."""
    try:
        return searcher.doc(address)
    except (ValueError, OSError) as exc:
        raise IndexCorruptError(f"reading the keyword index failed: {exc}") from exc


def _fuse(*rankings: list[_Candidate]) -> list[_Candidate]:
    """Reciprocal rank fusion: score = sum of 1 / (k + rank) over the rankings."""
    fused: dict[str, _Candidate] = {}
    for ranking in rankings:
        for rank, candidate in enumerate(ranking, start=1):
            entry = fused.setdefault(
                candidate.key, _Candidate(candidate.key, 0.0, candidate.doc, candidate.hit)
            )
            entry.score += 1.0 / (RRF_K + rank)
    return sorted(fused.values(), key=lambda c: -c.score)
