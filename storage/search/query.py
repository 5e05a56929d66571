"""The search language (ARCHITECTURE §6), parsed into a plain structure.

    words            all must match (AND)
    "exact phrase"   the words in this order
    prefix*          any word starting with "prefix"
    -excluded        must not match (also -"a phrase"); needs a word, phrase or filter besides
    a OR b           either (words, phrases, prefixes: not exclusions or filters)
    role: user: session: kind: source: before: after:    filters (repeat a field for OR;
                     a filter cannot be excluded)

Unknown ``name:`` prefixes are searched as plain text (so URLs and times work). Problems that
cannot be read as text raise :class:`QuerySyntaxError` saying what and where.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Literal

from storage.errors import StorageError
from storage.search.results import KINDS

MAX_QUERY_CHARS = 1000
MAX_CLAUSES = 64
FIELDS = ("role", "user", "session", "kind", "source", "before", "after")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
# A lone surrogate: what Python makes of a byte that is not UTF-8 in a command line or file
# name (U+DC80-U+DCFF stand for the bytes 0x80-0xFF). Such a query cannot be encoded as UTF-8
# for the index, or for JSON output.
_SURROGATE = re.compile(r"[\ud800-\udfff]")
_ALNUM = re.compile(r"[^\W_]")  # a character str.isalnum() accepts (one search, not a loop)
# Only plain words: each starts with a letter or digit and holds no quote, colon, star or
# surrogate, so no word is an exclusion, a phrase, a prefix, a field or not text (what most
# typed queries are).
_PLAIN_WORD = r'[^\W_][^\s"*:\x00-\x1f\x7f\ud800-\udfff]*'
_PLAIN = re.compile(rf"\s*{_PLAIN_WORD}(?:\s+{_PLAIN_WORD})*\s*")
_OR = 'it joins words or phrases ("a OR b")'
_OR_FILTER = (
    "OR joins words or phrases, not filters; "
    "to allow several values, repeat the field (role:user role:assistant)"
)


class QuerySyntaxError(StorageError, ValueError):
    def __init__(self, query: str, position: int | None, detail: str) -> None:
        self.query = query
        self.position = position
        self.detail = detail
        where = f" at character {position + 1}" if position is not None else ""
        super().__init__(f"cannot search for {_shorten(query)!r}: {detail}{where}")


def _shorten(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass(frozen=True)
class Term:
    text: str
    kind: Literal["word", "phrase", "prefix"] = "word"

    def __post_init__(self) -> None:
        # Composed (NFC), as the index holds text: "école" typed with a combining accent
        # (as macOS writes it) is then the same word as the precomposed one.
        if not self.text.isascii():
            object.__setattr__(self, "text", unicodedata.normalize("NFC", self.text))


@dataclass
class Filters:
    role: list[str] = field(default_factory=list)
    user: list[str] = field(default_factory=list)
    session: list[str] = field(default_factory=list)
    kind: list[str] = field(default_factory=list)
    source: list[str] = field(default_factory=list)
    after: dt.datetime | None = None  # inclusive
    before: dt.datetime | None = None  # exclusive
    none: bool = False  # filters that no document can pass (role:user and role=assistant)

    def narrow(self, name: Literal["after", "before"], when: dt.datetime) -> None:
        """Add a date filter: with one already there, both must hold (the later ``after``,
        the earlier ``before``)."""
        current = getattr(self, name)
        if current is not None:
            when = max(current, when) if name == "after" else min(current, when)
        setattr(self, name, when)

    def any(self) -> bool:
        return bool(
            self.role
            or self.user
            or self.session
            or self.kind
            or self.source
            or self.after
            or self.before
        )


@dataclass
class ParsedQuery:
    text: str
    groups: list[list[Term]] = field(default_factory=list)  # AND of OR-alternatives
    excluded: list[Term] = field(default_factory=list)
    filters: Filters = field(default_factory=Filters)

    @property
    def free_text(self) -> str:
        """The words, phrases and prefixes, for the embedder (a semantic search)."""
        return " ".join(t.text for group in self.groups for t in group)

    @property
    def whole_text(self) -> str:
        """The words and phrases, without prefixes: for the embedder in a hybrid search. A
        prefix is a piece of a word ("bern*"), whose embedding means nothing: its nearest
        messages would be fused in beside the words it does match."""
        return " ".join(t.text for group in self.groups for t in group if t.kind != "prefix")

    @property
    def positive_terms(self) -> list[Term]:
        return [t for group in self.groups for t in group]

    @property
    def empty(self) -> bool:
        return not self.groups

    def check_searchable(self) -> None:
        """Raise :class:`QuerySyntaxError` for a query that only excludes (``-fox``): it says
        what to add, where "nothing to search for" would not. Call it once every filter has
        joined: parsing cannot, as ``search("-fox", role="user")`` adds its filter after."""
        if self.excluded and not self.groups and not self.filters.any():
            raise QuerySyntaxError(
                self.text,
                None,
                "it only excludes words; add a word, a phrase or a filter to search for",
            )


def parse_date(value: str, name: str, query: str, position: int) -> dt.datetime:
    """YYYY, YYYY-MM, YYYY-MM-DD or an ISO date-time; local time when no offset is given."""
    try:
        if re.fullmatch(r"\d{4}", value):
            parsed = dt.datetime(int(value), 1, 1)
        elif re.fullmatch(r"\d{4}-\d{2}", value):
            parsed = dt.datetime(int(value[:4]), int(value[5:]), 1)
        else:
            parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        raise QuerySyntaxError(
            query, position, f"{name}:{value} is not a date (use YYYY-MM-DD)"
        ) from None
    return aware(parsed, f"{name}:{value}", query, position)


def aware(value: dt.datetime, what: str, query: str, position: int | None) -> dt.datetime:
    """``value`` with a time zone: local time when it has none. ``what``: how an error
    names it (a filter of ``query``, typed at ``position`` or given as an argument)."""
    if value.tzinfo:
        return value
    try:
        # Local time at the ends of the calendar (0001-01-01, 9999-12-31) can fall in year 0
        # or 10000, which datetime cannot hold (ValueError, or OverflowError on some zones).
        return value.astimezone()
    except (ValueError, OverflowError):
        raise QuerySyntaxError(
            query, position, f"{what} is too far in the past or future to search"
        ) from None


def kind_of(value: str, what: str, query: str, position: int | None) -> str:
    """The kind a kind filter names (any case), or QuerySyntaxError naming it as ``what``."""
    kind = value.lower()
    if kind not in KINDS:
        raise QuerySyntaxError(query, position, f"{what} is not one of {', '.join(KINDS)}")
    return kind


def not_utf8(text: str) -> tuple[int, str] | None:
    """Where ``text`` holds a lone surrogate, and what it stands for ("byte 0xFF", or
    "U+D800" for one that is no byte); None when ``text`` can be encoded as UTF-8."""
    bad = _SURROGATE.search(text)
    if bad is None:
        return None
    code = ord(bad.group())
    return bad.start(), f"byte 0x{code - 0xDC00:02X}" if code >= 0xDC80 else f"U+{code:04X}"


def parse(query: str) -> ParsedQuery:
    if len(query) <= MAX_QUERY_CHARS and _PLAIN.fullmatch(query):
        words = query.split()
        if "OR" not in words and len(words) <= MAX_CLAUSES:
            return ParsedQuery(query, [[Term(w)] for w in words])  # as parse_full would
    return parse_full(query)


def parse_full(query: str) -> ParsedQuery:
    """:func:`parse` without its shortcut for plain words (tests compare the two)."""
    if len(query) > MAX_QUERY_CHARS:
        raise QuerySyntaxError(
            query,
            None,
            f"the query is {len(query):,} characters long; "
            f"at most {MAX_QUERY_CHARS:,} are searched",
        )
    bad = not_utf8(query)
    if bad is not None:
        raise QuerySyntaxError(query, bad[0], f"it is not valid UTF-8 ({bad[1]})")
    text = _CONTROL.sub(" ", query)
    parsed = ParsedQuery(text=query)
    pending_or = False
    or_at = 0  # where the pending OR is
    previous = ""  # what the last clause read was: "term", "exclusion" or "filter"
    pos = 0
    n = len(text)
    while pos < n:
        if text[pos].isspace():
            pos += 1
            continue
        start = pos
        negate = text[pos] == "-" and pos + 1 < n and not text[pos + 1].isspace()
        if negate:
            pos += 1
        if text[pos] == '"':
            close = text.find('"', pos + 1)
            if close < 0:
                raise QuerySyntaxError(query, pos, 'this " is never closed')
            term: Term | None = Term(text[pos + 1 : close].strip(), "phrase")
            pos = close + 1
            if term is not None and not term.text:
                term = None
        else:
            end = pos
            while end < n and not text[end].isspace():
                if text[end] == '"' and ":" in text[pos:end] and text[end - 1] == ":":
                    close = text.find('"', end + 1)  # field:"quoted value"
                    if close < 0:
                        raise QuerySyntaxError(query, end, 'this " is never closed')
                    end = close + 1
                    break
                end += 1
            token = text[pos:end]
            pos = end
            if token == "OR" and not negate:
                if previous == "filter":
                    raise QuerySyntaxError(query, start, _OR_FILTER)
                if previous == "exclusion":
                    raise QuerySyntaxError(query, start, f"OR cannot follow an exclusion; {_OR}")
                if not parsed.groups:
                    raise QuerySyntaxError(query, start, "OR needs something before it")
                pending_or, or_at = True, start
                continue
            name, colon, value = token.partition(":")
            if colon and name.lower() in FIELDS:
                if negate:
                    raise QuerySyntaxError(
                        query,
                        start,
                        f"a filter cannot be excluded (-{_shorten(token, 30)}); "
                        "filter by the values to keep instead",
                    )
                if pending_or:
                    raise QuerySyntaxError(query, start, _OR_FILTER)
                _apply_filter(parsed.filters, name.lower(), value.strip('"'), query, start)
                previous = "filter"
                continue
            term = _bare_term(token)
        if term is None:
            continue  # a lone "-" or "*" or punctuation: nothing to search for
        if negate:
            if pending_or:
                raise QuerySyntaxError(
                    query, start, f"OR cannot be followed by an exclusion; {_OR}"
                )
            parsed.excluded.append(term)
            previous = "exclusion"
        elif pending_or:
            parsed.groups[-1].append(term)
            pending_or = False
            previous = "term"
        else:
            parsed.groups.append([term])
            previous = "term"
        if len(parsed.groups) + len(parsed.excluded) > MAX_CLAUSES:
            raise QuerySyntaxError(query, start, f"more than {MAX_CLAUSES} search terms")
    if pending_or:
        raise QuerySyntaxError(query, or_at, "OR needs something after it")
    return parsed


def _bare_term(token: str) -> Term | None:
    if token.endswith("*"):
        stem = token.rstrip("*")
        return Term(stem, "prefix") if _ALNUM.search(stem) else None
    return Term(token) if _ALNUM.search(token) else None


def _apply_filter(filters: Filters, name: str, value: str, query: str, position: int) -> None:
    if not value:
        raise QuerySyntaxError(query, position, f"{name}: needs a value")
    if name == "after":
        filters.narrow("after", parse_date(value, name, query, position))
    elif name == "before":
        filters.narrow("before", parse_date(value, name, query, position))
    elif name == "kind":
        filters.kind.append(kind_of(value, f"kind:{value}", query, position))
    else:
        getattr(filters, name).append(value)
