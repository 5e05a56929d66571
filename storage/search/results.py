"""What a search returns: the total and ranked hits that name their target precisely."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, get_args

# What a document of the index (and so a hit) is: the one list of kinds (kind: filters, the
# panel's and the CLI's choices, the index's counts by kind).
HitKind = Literal["message", "document", "context", "session"]
KINDS: tuple[HitKind, ...] = get_args(HitKind)
SearchMode = Literal["keyword", "semantic", "hybrid"]


@dataclass(frozen=True)
class Hit:
    kind: HitKind
    user_id: str
    session_id: str | None  # None for a document in the user's library
    score: float
    snippet: str = ""
    highlights: list[tuple[int, int]] = field(default_factory=list)  # ranges in snippet
    message_id: str | None = None
    doc_id: str | None = None
    chunk: int | None = None  # chunk number of a document
    char_start: int | None = None  # the chunk's range in the document's extracted text
    char_end: int | None = None
    page: int | None = None  # PDF page (1-based) of the chunk
    role: str | None = None
    title: str = ""  # session title or document name
    timestamp: dt.datetime | None = None
    # The index's own name for the hit: unique in an archive, where the fields above may
    # repeat (a message id written twice in a log, chunk numbers a chunk file repeats).
    key: str = ""

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["highlights"] = [list(h) for h in self.highlights]
        data["timestamp"] = self.timestamp.isoformat() if self.timestamp else None
        return data


_new = object.__new__
_set = object.__setattr__


def make_hit(fields: dict[str, Any]) -> Hit:
    """A :class:`Hit` whose ``__dict__`` is ``fields``, which must name every field (the
    search engine builds it as a dict literal). The frozen dataclass's ``__init__`` costs one
    ``object.__setattr__`` per field, 1.7 µs a hit; this costs 0.1, and the search engine
    makes up to ``limit`` hits a search. The hit is as frozen as any other."""
    hit: Hit = _new(Hit)
    _set(hit, "__dict__", fields)
    return hit


@dataclass(frozen=True)
class SearchResults:
    query: str
    mode: SearchMode
    # Keyword: every match. Semantic and hybrid: the ranked hits (at most engine.RANK_WINDOW),
    # the same whatever page was asked for, every one reachable by paging.
    total: int
    hits: list[Hit]
    degraded: str | None = None  # e.g. semantic search on the fallback embedder
    # How many of the ``total`` hits hold the query's words: all of them in a keyword search;
    # in a hybrid one, those that hold them as its keyword side asks (any word of up to three,
    # half of more), the others being there for their meaning alone; None in a semantic one.
    matched: int | None = None

    def __post_init__(self) -> None:
        if self.matched is None and self.mode == "keyword":
            object.__setattr__(self, "matched", self.total)

    def count_text(self) -> str:
        """:func:`count_text` of these results."""
        return count_text(self.total, self.matched)

    def to_dict(self) -> dict[str, Any]:
        return {
            "query": self.query,
            "mode": self.mode,
            "total": self.total,
            "degraded": self.degraded,
            "matched": self.matched,
            "hits": [h.to_dict() for h in self.hits],
        }


def count_text(total: int, matched: int | None) -> str:
    """How many hits a search has, as a person reads it: the matches of its words, and
    beside them the hits ranked by meaning alone ("6 matches, 71 similar"); "similar" only,
    for a semantic search (``matched`` None)."""
    if not total:
        return "No matches"
    matched = min(matched or 0, total)
    similar = total - matched
    parts = []
    if matched:
        parts.append(f"{matched:,} {'match' if matched == 1 else 'matches'}")
    if similar:
        parts.append(f"{similar:,} similar")
    return ", ".join(parts)
