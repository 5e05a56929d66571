"""The keyword index: tantivy in ``.index/fulltext/``.

One tantivy document per message, document chunk and situational context. Text is tokenized
on Unicode word boundaries, lower-cased and folded to ASCII (so "Crème" finds "creme" and the
ligature in "misﬁts" finds "misfits"); English stemming is optional. BM25 ranking is tantivy's.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tantivy

from storage.search.query import Filters, ParsedQuery, Term

log = logging.getLogger(__name__)

WRITER_HEAP = 64_000_000
TOKEN_MAX = 64


class IndexCorruptError(RuntimeError):
    """An index file is missing, truncated or unreadable (the index is rebuilt)."""


@dataclass(frozen=True)
class IndexDoc:
    key: str  # unique: <group>/<message id> or <group>/<chunk>
    group: str  # what is deleted together: a session's messages, a document, a context
    kind: str  # message | document | context
    user: str
    session: str  # "" for a document in the user's library
    text: str
    timestamp: dt.datetime
    role: str = ""
    source: str = ""
    message_id: str = ""
    doc_id: str = ""
    chunk: int | None = None
    page: int | None = None
    char_start: int | None = None
    char_end: int | None = None


def term_text(token: str | tuple[int, str]) -> str:
    return token if isinstance(token, str) else token[1]


def analyzer_name(stemming: bool) -> str:
    return "flat_en" if stemming else "flat"


def build_analyzer(stemming: bool) -> Any:
    builder = (
        tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple())
        .filter(tantivy.Filter.remove_long(TOKEN_MAX))
        .filter(tantivy.Filter.lowercase())
        .filter(tantivy.Filter.ascii_fold())
    )
    if stemming:
        builder = builder.filter(tantivy.Filter.stemmer("english"))
    return builder.build()


def build_schema(stemming: bool) -> Any:
    sb = tantivy.SchemaBuilder()
    for name in (
        "key",
        "group",
        "kind",
        "user",
        "session",
        "role",
        "source",
        "message_id",
        "doc_id",
    ):
        sb.add_text_field(name, stored=True, tokenizer_name="raw")
    sb.add_text_field("text", stored=True, tokenizer_name=analyzer_name(stemming))
    for name in ("chunk", "page", "char_start", "char_end"):
        sb.add_unsigned_field(name, stored=True)
    sb.add_date_field("timestamp", stored=True, indexed=True, fast=True)
    return sb.build()


class FullTextIndex:
    def __init__(self, folder: Path, stemming: bool) -> None:
        self.folder = folder
        self.stemming = stemming
        self.schema = build_schema(stemming)
        self.analyzer = build_analyzer(stemming)
        folder.mkdir(parents=True, exist_ok=True)
        try:
            self.index = tantivy.Index(self.schema, path=str(folder), reuse=True)
            self.index.register_tokenizer(analyzer_name(stemming), self.analyzer)
            self.index.reload()
            self.index.searcher().num_docs  # noqa: B018 - touches the segment files
        except (ValueError, OSError) as exc:
            raise IndexCorruptError(f"keyword index in {folder} cannot be opened: {exc}") from exc

    # ------------------------------------------------------------------ writing
    @contextmanager
    def writer(self) -> Iterator[Any]:
        """A writer; committed by the caller. Always released, so other processes can write."""
        writer = self.index.writer(heap_size=WRITER_HEAP, num_threads=1)
        try:
            yield writer
        finally:
            writer.wait_merging_threads()

    def add(self, writer: Any, docs: Sequence[IndexDoc]) -> None:
        for d in docs:
            fields: dict[str, Any] = {
                "key": d.key,
                "group": d.group,
                "kind": d.kind,
                "user": d.user,
                "text": d.text,
                "timestamp": d.timestamp,
            }
            # Empty fields are left out: each field costs indexing time.
            for name in ("session", "role", "source", "message_id", "doc_id"):
                value = getattr(d, name)
                if value:
                    fields[name] = value
            for name in ("chunk", "page", "char_start", "char_end"):
                value = getattr(d, name)
                if value is not None:
                    fields[name] = value
            writer.add_document(tantivy.Document(**fields))

    @staticmethod
    def delete_group(writer: Any, group: str) -> None:
        writer.delete_documents_by_term("group", group)

    def num_docs(self) -> int:
        self.index.reload()
        return int(self.index.searcher().num_docs)

    # ------------------------------------------------------------------ querying
    def tokens(self, text: str) -> list[str]:
        return list(self.analyzer.analyze(text))

    def _term(self, term: Term) -> Any | None:
        tokens: list[str | tuple[int, str]] = list(self.tokens(term.text))
        if not tokens:
            return None
        if term.kind == "prefix":
            if len(tokens) == 1:
                # Every word with the prefix: phrase_prefix_query would expand to 50 at most.
                stem = re.escape(term_text(tokens[0]))
                return tantivy.Query.regex_query(self.schema, "text", stem + ".*")
            return tantivy.Query.phrase_prefix_query(self.schema, "text", tokens)
        if len(tokens) == 1:
            return tantivy.Query.term_query(self.schema, "text", term_text(tokens[0]))
        return tantivy.Query.phrase_query(self.schema, "text", tokens)

    def filter_clauses(self, filters: Filters) -> list[Any]:
        must = []
        for name in ("role", "user", "session", "kind", "source"):
            values = getattr(filters, name)
            if values:
                must.append(tantivy.Query.term_set_query(self.schema, name, list(values)))
        if filters.after or filters.before:
            must.append(
                tantivy.Query.range_query(
                    self.schema,
                    "timestamp",
                    tantivy.FieldType.Date,
                    filters.after,
                    filters.before,
                    include_upper=filters.before is None,  # "before" excludes its own instant
                )
            )
        return must

    def build(
        self,
        parsed: ParsedQuery,
        keys: Sequence[str] | None = None,
        text_required: bool = True,
        any_term: bool = False,
    ) -> Any | None:
        """The tantivy query for ``parsed``; None when nothing can match. With ``keys``, only
        those documents (used to filter semantic candidates). ``any_term``: a document needs
        one of the terms, not all (BM25 still ranks those with more first): the keyword leg
        of a hybrid search, where a natural-language question rarely matches every word."""
        occur = tantivy.Occur
        clauses: list[tuple[Any, Any]] = []
        if text_required:
            terms: list[Any] = []
            for group in parsed.groups:
                alternatives = [q for t in group if (q := self._term(t)) is not None]
                if len(alternatives) == 1:
                    terms.append(alternatives[0])
                elif alternatives:
                    terms.append(_any_of(alternatives))
            if any_term and len(terms) > 1:
                clauses.append((occur.Must, _any_of(terms)))
            else:
                clauses.extend((occur.Must, q) for q in terms)
            if not clauses and not parsed.filters.any():
                return None
        for q in self.filter_clauses(parsed.filters):
            clauses.append((occur.Must, q))
        if keys is not None:
            clauses.append(
                (occur.Must, tantivy.Query.term_set_query(self.schema, "key", list(keys)))
            )
        for term in parsed.excluded:
            q = self._term(term)
            if q is not None:
                clauses.append((occur.MustNot, q))
        if not any(o == occur.Must for o, _ in clauses):
            clauses.append((occur.Must, tantivy.Query.all_query()))
        if len(clauses) == 1:
            return clauses[0][1]  # a lone clause needs no boolean wrapper (a third faster)
        return tantivy.Query.boolean_query(clauses)

    def searcher(self) -> Any:
        self.index.reload()
        return self.index.searcher()


def _any_of(queries: list[Any]) -> Any:
    return tantivy.Query.boolean_query([(tantivy.Occur.Should, q) for q in queries])
