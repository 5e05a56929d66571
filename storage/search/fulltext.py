"""The keyword index: tantivy in ``.index/fulltext/``.

One tantivy document per message, document chunk and situational context. Text is tokenized
on Unicode word boundaries, lower-cased and folded to ASCII (so "Crème" finds "creme" and the
ligature in "misﬁts" finds "misfits"); English stemming is optional. BM25 ranking is tantivy's.
"""

from __future__ import annotations

import datetime as dt
import errno
import logging
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import tantivy

from storage.errors import IndexUnavailableError
from storage.files import atomic_write
from storage.search.query import Filters, ParsedQuery, Term
from storage.search.results import KINDS, HitKind
from storage.search.watch import FileCutError, MappedFiles, segment_files

log = logging.getLogger(__name__)

WRITER_HEAP = 64_000_000  # the least indexing memory a writer gets
WRITER_HEAP_MAX = 1 << 30  # the most (and at most an eighth of the machine's memory)
HEAP_PER_TEXT_BYTE = 2.0  # indexing memory per byte of text, with room to spare
DOCSTORE_BLOCK = 2048  # bytes of documents compressed together (see _create)
TOKEN_MAX = 64
# The files tantivy writes for every segment (and a .del file for one with deletions); a
# test checks that a new index's segments have just these.
SEGMENT_FILES = ("fast", "fieldnorm", "idx", "pos", "store", "term")
# ASCII bytes lower-cased, and every byte that is not a letter or digit made a space: what
# tantivy's analyzer (without stemming) makes of ASCII text, split on the spaces.
ASCII_FOLD = bytes(
    c + 32 if 65 <= c <= 90 else c if 48 <= c <= 57 or 97 <= c <= 122 else 32 for c in range(256)
)


# Chinese and Japanese are written without spaces: the word analyzer would make a whole
# sentence one term. Korean has spaces, but between words with their particles and endings
# attached ("서울은", "서울에서"): a space-delimited term is rarely the word searched for.
# Text holding kana, Han ideographs or Hangul is also indexed in the ``cjk`` field, one term
# per kana, ideograph or syllable (as Lucene's StandardTokenizer does for the first two), and
# a query word holding them is a phrase of those characters there: "東京" finds
# "東京は日本の首都です", "서울" finds "서울은 한국의 수도입니다". Punctuation is a term of its
# own, so a phrase never runs across it.
CJK_ANALYZER = "flat_cjk"
# With the long-vowel and sound marks, which Unicode counts in no script ("ユーザー").
_CJK_CHARS = (
    r"\p{Han}\p{Hiragana}\p{Katakana}\p{Hangul}"
    r"\x{30FC}\x{FF70}\x{309B}\x{309C}\x{FF9E}\x{FF9F}"
)
CJK_TOKEN = rf"[{_CJK_CHARS}]|\p{{P}}|[^{_CJK_CHARS}\p{{P}}\s]+"
CJK_RANGES = (  # kana, Han ideographs and Hangul, for a character class of Python's re
    r"\u1100-\u11ff\u3040-\u30ff\u3130-\u318f\u3400-\u4dbf\u4e00-\u9fff\ua960-\ua97f"
    r"\uac00-\ud7ff\uf900-\ufaff\uff66-\uffdc\U00020000-\U0003134f"
)
_CJK = re.compile(f"[{CJK_RANGES}]")
_RUNS = re.compile(r"[^\W_]+")  # letters and digits between punctuation and spaces
_PUNCTUATION = re.compile(r"[^\w\s]+|_+")


def is_cjk(text: str) -> bool:
    """Whether ``text`` holds kana, Han ideographs or Hangul (one isascii() for ASCII text)."""
    return not text.isascii() and _CJK.search(text) is not None


class IndexCorruptError(RuntimeError):
    """An index file is missing, truncated or unreadable (the index is rebuilt)."""


# Failures of the disk, not of the index: rebuilding would not help (and, on a full disk,
# would leave no index at all). tantivy reports them as ValueError carrying the OS's text.
_UNAVAILABLE = (errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS)


def _disk_failure(exc: BaseException) -> OSError | None:
    if isinstance(exc, OSError) and exc.errno in _UNAVAILABLE:
        return exc
    text = str(exc)
    for code in _UNAVAILABLE:
        if os.strerror(code) in text:
            return OSError(code, os.strerror(code))
    return None


@contextmanager
def index_errors(what: str, folder: Path | None = None) -> Iterator[None]:
    """tantivy's failures inside as :class:`IndexCorruptError` saying ``what`` failed: its
    errors (ValueError, OSError) and its panics (pyo3's PanicException, which is not an
    Exception: tantivy panics on some damaged files). A full disk, or files that cannot be
    written, are :class:`IndexUnavailableError` about ``folder``: nothing to rebuild."""
    try:
        yield
    except BaseException as exc:
        disk = _disk_failure(exc) if folder is not None else None
        if disk is not None:
            raise IndexUnavailableError(folder or what, disk) from exc
        if isinstance(exc, ValueError | OSError) or type(exc).__module__ == "pyo3_runtime":
            raise IndexCorruptError(f"{what}: {exc}") from exc
        raise


@dataclass(frozen=True)
class TextQuery:
    """The queries for a search's words, phrases and prefixes: one a document must match per
    AND group (with ``any_term``, one query for them all); empty when analysis left nothing
    to search for. ``highlights``: whether tantivy's snippet generator can mark anything with
    them (a one-word prefix is a prefix automaton, which names no terms). ``terms``: the terms
    the generator highlights, or None when they cannot be listed here (a phrase ending in a
    prefix: tantivy expands it). ``required``: a document matches only if it holds every
    one of ``terms`` (no OR). ``cjk``: the runs of letters and digits of query words holding
    Chinese, Japanese or Korean ("한국 Apple": "한국", "Apple"), which snippets find as they
    are written: their characters of these scripts anywhere (there are no word boundaries to
    find them by), those of other scripts as whole words ("KTX로" after no other letter).
    ``prefixes``: the stems of one-word prefixes (``caramel*``), whose words snippets find
    in each hit. ``term``: the query is that one term of the text field, and nothing else."""

    clauses: list[Any]
    highlights: bool
    terms: tuple[str, ...] | None = ()
    required: bool = False
    cjk: tuple[str, ...] = ()
    prefixes: tuple[str, ...] = ()
    term: str | None = None  # the one term of the text field that the clauses are, if so

    def query(self) -> Any | None:
        """The clauses as one query (what snippets highlight); None when there are none."""
        if len(self.clauses) <= 1:
            return self.clauses[0] if self.clauses else None
        return tantivy.Query.boolean_query([(tantivy.Occur.Must, q) for q in self.clauses])


DocKind = HitKind


@dataclass(slots=True)  # not frozen: a build makes one per message, and frozen takes 3.5x longer
class IndexDoc:
    key: str  # unique: <group>/<line offset> (or n<i>) for a message, <group>/<i> for a chunk
    group: str  # what is deleted together: a session's messages, a document, a context
    kind: DocKind
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


def build_cjk_analyzer() -> Any:
    return (
        tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.regex(CJK_TOKEN))
        .filter(tantivy.Filter.remove_long(TOKEN_MAX))
        .filter(tantivy.Filter.lowercase())
        .filter(tantivy.Filter.ascii_fold())
        .build()
    )


def build_schema(stemming: bool) -> Any:
    """Indexed for searching and filtering: ``text`` and the raw-token fields; ``timestamp``
    (microseconds since 1970) is a fast field, which date filters read directly (indexing it
    would add a term for every distinct time). Stored: only ``text`` (for snippets) and
    ``hit``, everything else a hit names packed in one JSON list (:func:`doc_json`). Each
    stored field costs every hit a conversion: with the fifteen this index stored before,
    reading a hit's document took twice as long.

    ``hit`` is a text field that its analyzer (:data:`STORED_ONLY`) makes no terms of, and
    ``timestamp`` an integer: tantivy's Python binding takes 3 µs to convert a bytes value and
    3.5 µs a datetime; making a document took 6.5 µs with them and 2.1 µs without."""
    sb = tantivy.SchemaBuilder()
    for name in ("key", "group", "kind", "user", "session", "role", "source"):
        sb.add_text_field(name, stored=False, tokenizer_name="raw")
    sb.add_text_field("text", stored=True, tokenizer_name=analyzer_name(stemming))
    sb.add_text_field("cjk", stored=False, tokenizer_name=CJK_ANALYZER)
    sb.add_text_field("hit", stored=True, tokenizer_name=STORED_ONLY, index_option="basic")
    sb.add_integer_field("timestamp", stored=False, indexed=False, fast=True)
    return sb.build()


STORED_ONLY = "stored_only"  # the analyzer of fields that are stored, not searched


def stored_only_analyzer() -> Any:
    """Makes no terms: the raw tokenizer's one token, dropped as too long (1 byte or more)."""
    return (
        tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.raw())
        .filter(tantivy.Filter.remove_long(1))
        .build()
    )


EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)  # hit timestamps count microseconds from it
_MICROSECOND = dt.timedelta(microseconds=1)
_I64_MIN, _I64_MAX = -(2**63), 2**63 - 1


def micros(when: dt.datetime) -> int:
    """Microseconds since 1970 (a naive time is local)."""
    return ((when if when.tzinfo else when.astimezone()) - EPOCH) // _MICROSECOND


def doc_json(
    key: str,
    group: str,
    kind: DocKind,
    user: str,
    session: str,
    text: str,
    stamp: int,
    role: str = "",
    source: str = "",
    message_id: str = "",
    doc_id: str = "",
    chunk: int | None = None,
    page: int | None = None,
    char_start: int | None = None,
    char_end: int | None = None,
) -> str:
    """A document as the writer takes it (:meth:`FullTextIndex.add_json`): the fields of an
    :class:`IndexDoc`, its time as ``stamp`` (:func:`micros`). Everything a hit needs is
    packed into the stored ``hit`` field as one JSON list (:func:`hit_fields` reads it).
    A build passes a message's fields straight from its log line: making an IndexDoc of each
    first cost the thread that feeds tantivy 0.8 µs a message more (4.5 µs against 3.7 to
    read a line and make its JSON). A build takes as long either way, 2.0-2.3 s for 100,000
    messages: its time is that of tantivy's own indexing thread, which this one keeps fed."""
    where = (chunk, page, char_start, char_end, stamp)
    hit = orjson.dumps([key, kind, user, session, role, source, message_id, doc_id, *where])
    fields: dict[str, Any] = {
        "key": key,
        "group": group,
        "kind": kind,
        "user": user,
        "text": text,
        "hit": hit.decode(),
        "timestamp": stamp,
    }
    # Empty fields are left out: each field costs indexing time.
    if session:
        fields["session"] = session
    if role:
        fields["role"] = role
    if source:
        fields["source"] = source
    if is_cjk(text):
        fields["cjk"] = text
    return orjson.dumps(fields).decode()


def index_doc_json(d: IndexDoc) -> str:
    """:func:`doc_json` of ``d``."""
    return doc_json(
        d.key,
        d.group,
        d.kind,
        d.user,
        d.session,
        d.text,
        micros(d.timestamp),
        d.role,
        d.source,
        d.message_id,
        d.doc_id,
        d.chunk,
        d.page,
        d.char_start,
        d.char_end,
    )


HIT_FIELDS = 13  # the values doc_json packs into the hit field


def hit_fields(doc: Any) -> list[Any]:
    """The ``hit`` field of a stored tantivy document read back: the list :func:`doc_json`
    packs (key, kind, user, session, role, source, message id, doc id, chunk, page, char
    start, char end, microseconds since :data:`EPOCH`), with empty strings for what a hit
    does not have."""
    packed = doc.get_first("hit")
    if packed is None:
        raise IndexCorruptError("a keyword index document has no stored hit field")
    try:
        fields = orjson.loads(packed)
    except orjson.JSONDecodeError as exc:
        raise IndexCorruptError(
            f"a keyword index document's hit field is unreadable: {exc}"
        ) from exc
    if not isinstance(fields, list) or len(fields) != HIT_FIELDS:
        raise IndexCorruptError(
            f"a keyword index document's hit field is not a list of {HIT_FIELDS}: {packed[:80]!r}"
        )
    return fields


class FullTextIndex:
    def __init__(self, folder: Path, stemming: bool) -> None:
        self.folder = folder
        self.stemming = stemming
        self.schema = build_schema(stemming)
        self.analyzer = build_analyzer(stemming)
        self.cjk_analyzer = build_cjk_analyzer()
        # tantivy replaces meta.json at every commit (a new file renamed over the old one).
        self._meta_path = os.path.join(folder, "meta.json")
        self._meta_sig: tuple[int, int, int, int] | None = None  # at the last reload
        self._view: Any = None  # the searcher last handed out: the search being made
        self._files = MappedFiles(folder)  # what the searcher mapped: checked before a search
        folder.mkdir(parents=True, exist_ok=True)
        with index_errors(f"keyword index in {folder} cannot be opened", folder):
            if not os.path.exists(self._meta_path):
                _create(self.schema, folder)
            self.index = tantivy.Index(self.schema, path=str(folder), reuse=True)
            self.index.register_tokenizer(analyzer_name(stemming), self.analyzer)
            self.index.register_tokenizer(STORED_ONLY, stored_only_analyzer())
            self.index.register_tokenizer(CJK_ANALYZER, self.cjk_analyzer)
            self.index.reload()
            self.index.searcher().num_docs  # noqa: B018 - touches the segment files

    # ------------------------------------------------------------------ writing
    @contextmanager
    def writer(self, text_bytes: int = 0) -> Iterator[Any]:
        """A writer; committed by the caller. Always released, so other processes can write.
        ``text_bytes``: about how much text it will index (see :func:`writer_heap`)."""
        with index_errors(f"keyword index in {self.folder} cannot be written", self.folder):
            writer = self.index.writer(heap_size=writer_heap(text_bytes), num_threads=1)
        try:
            yield writer
        finally:
            self._meta_sig = None  # the next searcher reloads, whatever meta.json's stat says
            with index_errors(f"keyword index in {self.folder}: merging segments", self.folder):
                writer.wait_merging_threads()

    def add(self, writer: Any, docs: Sequence[IndexDoc]) -> None:
        self.add_json(writer, [index_doc_json(d) for d in docs])

    def add_json(self, writer: Any, docs: Sequence[str]) -> None:
        """Documents made by :func:`doc_json`. Each is handed to tantivy as JSON: 1.7 µs a
        document less than making a ``tantivy.Document`` of the same fields."""
        add = writer.add_json
        for doc in docs:
            try:
                add(doc)
            except ValueError as exc:  # the writer failed (its files): not the document's fault
                disk = _disk_failure(exc)
                if disk is not None:
                    raise IndexUnavailableError(self.folder, disk) from exc
                raise IndexCorruptError(f"keyword index in {self.folder}: {exc}") from exc

    def delete_group(self, writer: Any, group: str) -> None:
        with index_errors(f"keyword index in {self.folder}", self.folder):
            writer.delete_documents_by_term("group", group)

    def commit(self, writer: Any) -> None:
        with index_errors(f"keyword index in {self.folder}: committing", self.folder):
            writer.commit()

    def num_docs(self) -> int:
        with index_errors(f"keyword index in {self.folder}", self.folder):
            self.index.reload()
            return int(self.index.searcher().num_docs)

    # ------------------------------------------------------------------ querying
    def tokens(self, text: str) -> list[str]:
        """``text`` through the analyzer. ASCII text without stemming is analyzed here (what
        the analyzer does to it is this simple, and tests check that the two agree): a
        query's words cost a call into tantivy each otherwise."""
        if not self.stemming and text.isascii():
            if text.isalnum():  # one word
                return [text.lower()] if len(text) < TOKEN_MAX else []
            words = text.encode().translate(ASCII_FOLD).decode().split()
            return [t for t in words if len(t) < TOKEN_MAX]
        return [term_text(t) for t in self.analyzer.analyze(text)]

    def _term(self, term: Term) -> tuple[Any, tuple[str, ...] | None, str | None] | None:
        """The query for one term, the terms a snippet highlights for it (None: tantivy
        decides which) and the term of the text field the query is, if it is just that."""
        if is_cjk(term.text):
            # Chinese, Japanese or Korean: the characters in a row, in the cjk field; punctuation
            # ("「東京」", "東京、大阪") separates runs that must each be there. A prefix is no
            # different: the characters are found wherever they stand.
            runs = []
            for run in _PUNCTUATION.split(term.text):
                chars: list[str | tuple[int, str]] = [
                    term_text(t) for t in self.cjk_analyzer.analyze(run)
                ]
                if len(chars) == 1:
                    runs.append(tantivy.Query.term_query(self.schema, "cjk", chars[0]))
                elif chars:
                    runs.append(tantivy.Query.phrase_query(self.schema, "cjk", chars))
            if not runs:
                return None
            if len(runs) == 1:
                return runs[0], (), None
            return tantivy.Query.boolean_query([(tantivy.Occur.Must, q) for q in runs]), (), None
        tokens = self.tokens(term.text)
        if not tokens:
            return None
        words: list[str | tuple[int, str]] = list(tokens)  # what tantivy's stubs accept
        if term.kind == "prefix":
            if len(tokens) == 1:
                return prefix_query(self.schema, "text", tokens[0]), (), None
            return tantivy.Query.phrase_prefix_query(self.schema, "text", words), None, None
        if len(tokens) == 1:
            query = tantivy.Query.term_query(self.schema, "text", tokens[0])
            attached = self._attached(term.text, tokens[0])
            if attached is not None:
                return _any_of([query, attached]), (tokens[0],), None
            return query, (tokens[0],), tokens[0]
        return tantivy.Query.phrase_query(self.schema, "text", words), tuple(tokens), None

    def _attached(self, word: str, token: str) -> Any | None:
        """The query for ``word`` written onto Chinese, Japanese or Korean text ("KTX로",
        "サーバーCPUの"), where the word analyzer made one term of it all and the cjk field
        holds it apart; None where the cjk field does not hold it (one lookup: ASCII-only
        archives never do)."""
        if not self.stemming and word.isascii():
            plain = token  # what the cjk analyzer makes of it too
        else:
            found = [term_text(t) for t in self.cjk_analyzer.analyze(word)]
            if len(found) != 1:
                return None
            plain = found[0]
        view = self._view
        if view is None:
            return None
        # tantivy opens a field's postings and positions at its first read: here.
        with index_errors(f"keyword index in {self.folder}"):
            held = view.doc_freq("cjk", plain)
        if not held:
            return None
        return tantivy.Query.term_query(self.schema, "cjk", plain)

    def text_query(
        self, parsed: ParsedQuery, any_term: bool = False, at_least: int = 1
    ) -> TextQuery:
        """The words, phrases and prefixes of ``parsed``, without its filters and exclusions:
        what a search's snippets highlight. ``any_term``: see :meth:`build`; ``at_least``
        of the AND groups must then match."""
        clauses: list[Any] = []
        terms: list[str] | None = []
        cjk: list[str] = []
        prefixes: list[str] = []
        required = not any_term
        sole: str | None = None
        for group in parsed.groups:
            required = required and len(group) == 1
            alternatives = []
            for t in group:
                cjk_term = is_cjk(t.text)
                if cjk_term:
                    cjk.extend(_RUNS.findall(t.text))
                built = self._term(t)
                if built is not None and t.kind == "prefix" and built[1] == () and not cjk_term:
                    prefixes.extend(self.tokens(t.text)[:1])  # a regex query: no terms
                if built is not None:
                    sole = built[2] if len(parsed.groups) == 1 and len(group) == 1 else None
                    alternatives.append(built[0])
                    if built[1] is None:
                        terms = None
                    elif terms is not None:
                        terms.extend(built[1])
            if len(alternatives) == 1:
                clauses.append(alternatives[0])
            elif alternatives:
                clauses.append(_any_of(alternatives))
        if any_term and len(clauses) > 1:
            clauses = [_any_of(clauses, min(at_least, len(clauses)))]
        highlights = terms is None or bool(terms) or bool(cjk) or bool(prefixes)
        unique = None if terms is None else tuple(dict.fromkeys(terms))
        return TextQuery(
            clauses,
            highlights,
            unique,
            required,
            tuple(dict.fromkeys(cjk)),
            tuple(dict.fromkeys(prefixes)),
            sole,
        )

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
                    tantivy.FieldType.Integer,
                    micros(filters.after) if filters.after else _I64_MIN,
                    micros(filters.before) if filters.before else _I64_MAX,
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
        text: TextQuery | None = None,
    ) -> Any | None:
        """The tantivy query for ``parsed``; None when nothing can match. With ``keys``, only
        those documents (used to filter semantic candidates). ``any_term``: a document needs
        one of the terms, not all (BM25 still ranks those with more first): the keyword leg
        of a hybrid search, where a natural-language question rarely matches every word.
        ``text``: :meth:`text_query` of ``parsed`` if the caller has it already."""
        occur = tantivy.Occur
        clauses: list[tuple[Any, Any]] = []
        if text_required:
            if text is None:
                text = self.text_query(parsed, any_term)
            if not text.clauses and not parsed.filters.any():
                return None
            clauses.extend((occur.Must, q) for q in text.clauses)
        if parsed.filters.any():
            for q in self.filter_clauses(parsed.filters):
                clauses.append((occur.Must, q))
        if keys is not None:
            clauses.append(
                (occur.Must, tantivy.Query.term_set_query(self.schema, "key", list(keys)))
            )
        for term in parsed.excluded:
            built = self._term(term)
            if built is not None:
                clauses.append((occur.MustNot, built[0]))
        if not any(o == occur.Must for o, _ in clauses):
            clauses.append((occur.Must, tantivy.Query.all_query()))
        if len(clauses) == 1:
            return clauses[0][1]  # a lone clause needs no boolean wrapper (a third faster)
        return tantivy.Query.boolean_query(clauses)

    @staticmethod
    def count_of_term(searcher: Any, term: str) -> int | None:
        """How many documents hold ``term`` in their text, from the term dictionary (no
        posting list is walked: a search need not count its hits, and tantivy then skips the
        blocks of postings that cannot reach its top hits); None when ``searcher``'s segments
        hold deleted documents, which the dictionary still counts. Every document has one of
        :data:`KINDS`, so their counts add up to the live documents only without deletions."""
        with index_errors("reading the keyword index failed"):
            stored = sum(searcher.doc_freq("kind", kind) for kind in KINDS)
            if stored != searcher.num_docs:
                return None
            return int(searcher.doc_freq("text", term))

    def searcher(self) -> Any:
        """A searcher that sees every commit made so far, by this process or another.
        Reloading costs ~40 µs (tantivy reopens every segment), so it is done only when
        meta.json was replaced since the last reload, or this process wrote: one stat
        (~2 µs) otherwise. tantivy's own watcher (it reloads within a second of a commit) is
        a second line in case a replaced meta.json ever looked the same to stat."""
        try:
            st = os.stat(self._meta_path)
            sig: tuple[int, int, int, int] | None = (
                st.st_ino,
                st.st_size,
                st.st_mtime_ns,
                st.st_ctime_ns,
            )
        except FileNotFoundError:
            sig = None  # reload: tantivy reports what is wrong
        try:
            # The files this searcher mapped, before tantivy reads them (a search or a
            # reload, which keeps the maps of segments a commit left alone): one cut
            # shorter would be SIGBUS there (see storage.search.watch).
            if not self._files.check():  # a file gone: tantivy replaced segments
                sig = None
            if sig is None or sig != self._meta_sig:
                with index_errors(f"keyword index in {self.folder}", self.folder):
                    self._files.reload(self.index.reload)
                lost = missing_files(self.folder, self._files.sizes)
                if lost:
                    raise IndexCorruptError(
                        f"keyword index in {self.folder}: segment files missing: {', '.join(lost)}"
                    )
                self._meta_sig = sig
        except FileCutError as exc:
            raise IndexCorruptError(f"keyword index in {self.folder}: {exc}") from exc
        self._view = self.index.searcher()
        return self._view

    def close(self) -> None:
        """Stop watching the folder (the searchers stay usable)."""
        self._files.close()


def missing_files(folder: Path, present: Iterable[str]) -> list[str]:
    """The files of :data:`SEGMENT_FILES` that segments ``folder``'s meta.json names lack in
    ``present`` (the segment files found after meta.json was read, as
    :func:`~storage.search.watch.segment_files` lists them). tantivy opens a segment without
    its positions (.pos): every search of a word then failed ("Failed to open field's
    positions"), and verify saw nothing wrong. A writer's merge may have removed a segment's
    files since meta.json was read: only segments that meta.json, read again now, still
    names count (tantivy writes a segment's files before the meta.json naming it, and
    deletes them only once a meta.json no longer does)."""
    have: dict[str, set[str]] = {}
    for name in present:
        segment, _, ext = name.partition(".")
        have.setdefault(segment, set()).add(ext)
    lacking = {
        segment: [ext for ext in SEGMENT_FILES if ext not in exts] for segment, exts in have.items()
    }
    if not any(lacking.values()):
        return []  # the usual case: no file read
    named = segment_files(folder)  # meta.json read again (None: tantivy reports it)
    still = {name.partition(".")[0] for name in named or {}}
    return [
        f"{segment}.{ext}"
        for segment, exts in sorted(lacking.items())
        if segment in still
        for ext in exts
    ]


def writer_heap(text_bytes: int) -> int:
    """The indexing memory for a writer that will index about ``text_bytes`` of text.

    tantivy writes a new segment each time a writer's memory fills, and merges segments only
    when eight of a size have piled up: a build of 1,000,000 messages (590 MB of JSON lines)
    in 64 MB left three segments (827,362, 104,066 and 68,572 documents), and every search
    then looks each term up three times (5-word queries took 161 µs in tantivy instead of
    110). Enough memory for the whole build makes it one segment and skips the merges; tantivy
    takes the memory as it fills it (that build peaked at 680 MB resident with 1 GB allowed,
    760 MB with 64 MB, merges included). Small refreshes keep the least, ``WRITER_HEAP``."""
    want = int(text_bytes * HEAP_PER_TEXT_BYTE)
    return max(WRITER_HEAP, min(want, WRITER_HEAP_MAX, _physical_memory() // 8))


def _physical_memory() -> int:
    """The machine's memory in bytes (8 GiB where the system cannot say)."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # a system without these sysconf names
        return 8 << 30


def _create(schema: Any, folder: Path) -> None:
    """A new, empty index whose document store is made of 2 KiB blocks, not tantivy's 16 KiB:
    a hit's stored fields are read by decompressing the block that holds them, and a search
    reads ten or fifty hits from blocks all over the index. Measured on 1,000,000 messages
    (plain raw tantivy indexes, 200 rare-word searches of ten hits each, p50): 163 µs a search
    with 16 KiB blocks, 111 with 4 KiB, 101 with 2 KiB, 97 with 1 KiB; the stores were 343,
    381, 404 and 426 MB. 2 KiB takes most of the gain for a store 18% larger than tantivy's
    (an index made with other blocks keeps them: both read alike). tantivy's Python binding
    cannot set this, so the setting is written into the new index's ``meta.json`` (where
    tantivy keeps its index settings, and keeps them at every commit) before anything is
    stored; tests check it survives commits."""
    tantivy.Index(schema, path=str(folder), reuse=True)  # writes meta.json
    meta_path = folder / "meta.json"
    meta = orjson.loads(meta_path.read_bytes())
    settings = meta.get("index_settings")
    if not isinstance(settings, dict) or "docstore_blocksize" not in settings:
        log.warning("tantivy's meta.json has no docstore_blocksize; keeping its block size")
        return
    settings["docstore_blocksize"] = DOCSTORE_BLOCK
    atomic_write(meta_path, orjson.dumps(meta, option=orjson.OPT_INDENT_2))


def prefix_query(schema: Any, field: str, stem: str) -> Any:
    """Every document holding a term that starts with ``stem`` (phrase_prefix_query would
    expand to 50 terms at most). It is tantivy's Levenshtein automaton with no edit allowed,
    in prefix mode: the same terms, documents and (constant) scores as the regular expression
    ``stem.*``, whose automaton tantivy compiles at each search. Measured on 100,000 messages
    (50 three-letter prefixes, p50): 0.9 µs to make the query, 164 µs to search with it,
    against 222 µs and 180 µs with the regular expression."""
    return tantivy.Query.fuzzy_term_query(
        schema, field, stem, distance=0, transposition_cost_one=False, prefix=True
    )


def _any_of(queries: list[Any], at_least: int = 1) -> Any:
    return tantivy.Query.boolean_query(
        [(tantivy.Occur.Should, q) for q in queries],
        minimum_number_should_match=at_least if at_least > 1 else None,
    )
