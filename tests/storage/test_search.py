"""Searching a real temp archive: keyword, semantic and hybrid modes, filters, paging,
snippets, incremental updates from this and other processes, damaged indexes."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import random
import shutil
import string
import subprocess
import sys
import time
import unicodedata
from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest
import pytest_asyncio

from storage import Archive, Message, SituationalContext, layout
from storage.search.fulltext import (
    DOCSTORE_BLOCK,
    FullTextIndex,
    IndexCorruptError,
    IndexDoc,
    hit_fields,
)
from storage.search.query import QuerySyntaxError
from storage.search.results import Hit, make_hit

pytestmark = pytest.mark.asyncio
WORKER = Path(__file__).with_name("worker.py")
T0 = dt.datetime(2025, 3, 1, 12, 0, tzinfo=dt.UTC)


def msg(mid: str, role: str, content: str, day: int = 0) -> Message:
    return Message(message_id=mid, role=role, content=content,
                   timestamp=T0 + dt.timedelta(days=day))


@pytest_asyncio.fixture
async def corpus(archive: Archive) -> AsyncIterator[tuple[Archive, str, str]]:
    await archive.create_user("ada")
    await archive.create_user("bob")
    cooking = await archive.create_session("ada", "Cooking", metadata={"source": "chatgpt"})
    travel = await archive.create_session("bob", "Travel plans")
    await archive.add_messages("ada", cooking.session_id, [
        msg("c1", "user", "How do I make a crème brûlée without a torch?"),
        msg("c2", "assistant", "Use the oven grill. Caramelise the sugar for two minutes.", 1),
        msg("c3", "user", "And a vegan pasta sauce for the misﬁts in my family?", 2),
        msg("c4", "assistant", "Blend roasted tomatoes with garlic and olive oil.", 3),
    ])
    await archive.add_messages("bob", travel.session_id, [
        msg("t1", "user", "Trains from Paris to Berlin: which is fastest?", 5),
        msg("t2", "assistant", "The direct ICE via Frankfurt takes about eight hours.", 6),
        msg("t3", "user", "Is there a night train with a sleeper?", 7),
    ])
    await archive.update_context("bob", travel.session_id, SituationalContext(
        summary="Bob plans a rail trip across Europe", key_points=["prefers night trains"],
        entities={"cities": ["Paris", "Berlin"]}, confidence=0.8, timestamp=T0))
    yield archive, cooking.session_id, travel.session_id


def ids(results: object) -> list[str | None]:
    return [h.message_id for h in results.hits]  # type: ignore[attr-defined]


async def test_keyword_language(corpus: tuple[Archive, str, str]) -> None:
    archive, _cooking, travel = corpus
    search = archive.search
    assert ids(await search("creme brulee", "keyword")) == ["c1"]  # diacritics folded
    assert ids(await search("misfits", "keyword")) == ["c3"]  # ligature folded
    assert ids(await search('"night train"', "keyword")) == ["t3"]
    assert ids(await search('"train night"', "keyword")) == []
    assert ids(await search("caramel*", "keyword")) == ["c2"]
    assert set(ids(await search("sugar OR garlic", "keyword"))) == {"c2", "c4"}
    assert set(ids(await search("kind:message train* -sleeper", "keyword"))) == {"t1"}
    results = await search("paris", "keyword")
    assert {h.kind for h in results.hits} == {"message", "context"}
    context = next(h for h in results.hits if h.kind == "context")
    assert (context.user_id, context.session_id) == ("bob", travel)


async def test_filters_paging_and_totals(corpus: tuple[Archive, str, str]) -> None:
    archive, cooking, travel = corpus
    everything = await archive.search("the OR a OR and OR with", "keyword", limit=3)
    assert everything.total == 7 and len(everything.hits) == 3  # 6 messages and the context
    page2 = await archive.search("the OR a OR and OR with", "keyword", limit=3, offset=3)
    assert len(page2.hits) == 3 and not set(ids(page2)) & set(ids(everything))
    six = await archive.search("the OR a OR and OR with", "keyword", limit=6)
    assert page2.hits == six.hits[3:] and page2.total == six.total == 7  # same hits, snippets
    beyond = await archive.search("the OR a OR and OR with", "keyword", limit=3, offset=7)
    assert beyond.hits == [] and beyond.total == 7
    assert set(ids(await archive.search("role:user the OR a", "keyword"))) == {"c1", "c3", "t3"}
    bobs = await archive.search("kind:message the OR a", "keyword", user="bob")
    assert set(ids(bobs)) == {"t2", "t3"}
    assert set(ids(await archive.search(f"session:{cooking} the OR a", "keyword"))) == \
        {"c1", "c2", "c3"}
    assert ids(await archive.search("source:chatgpt tomatoes", "keyword")) == ["c4"]
    late = await archive.search("after:2025-03-06 the OR a OR is", "keyword")
    assert set(ids(late)) == {"t1", "t2", "t3"}  # t1 is at 12:00 on the 6th
    early = await archive.search("the OR a", "keyword", kind="message",
                                 before=dt.date(2025, 3, 3))
    assert set(ids(early)) == {"c1", "c2"}
    assert {h.session_id for h in (await archive.search("kind:context a", "keyword")).hits} \
        == {travel}
    only_context = await archive.search("kind:context paris", "keyword")
    assert [h.kind for h in only_context.hits] == ["context"]
    filters_only = await archive.search("role:assistant", "keyword")
    assert filters_only.total == 3


async def test_hits_name_their_target_with_snippet_highlights(
        corpus: tuple[Archive, str, str]) -> None:
    archive, cooking, _travel = corpus
    hit = (await archive.search("caramelise sugar", "keyword")).hits[0]
    assert (hit.kind, hit.user_id, hit.session_id, hit.message_id, hit.role) == (
        "message", "ada", cooking, "c2", "assistant")
    assert hit.title == "Cooking" and hit.timestamp == T0 + dt.timedelta(days=1)
    marked = [hit.snippet[a:b].lower() for a, b in hit.highlights]
    assert marked == ["caramelise", "sugar"]
    accented = (await archive.search("creme", "keyword")).hits[0]
    assert [accented.snippet[a:b] for a, b in accented.highlights] == ["crème"]


async def test_semantic_and_hybrid(corpus: tuple[Archive, str, str]) -> None:
    archive, _cooking, _travel = corpus
    semantic = await archive.search("railway journey between European capitals", "semantic")
    assert semantic.degraded is None
    assert semantic.hits[0].message_id in {"t1", "t2", "t3"} or semantic.hits[0].kind == "context"
    assert ids(await archive.search("dessert with caramelized sugar", "semantic", limit=2))[0] \
        in {"c1", "c2"}
    hybrid = await archive.search("fastest train Berlin", "hybrid", limit=3)
    assert hybrid.hits[0].message_id == "t1"
    filtered = await archive.search("tomato sauce", "semantic", user="bob")
    assert all(h.user_id == "bob" for h in filtered.hits)


async def test_new_messages_are_searchable_at_once_and_edits_replace_old_text(
        corpus: tuple[Archive, str, str]) -> None:
    archive, cooking, _travel = corpus
    await archive.add_message("ada", cooking, msg("c5", "user", "What about quokka cupcakes?"))
    assert ids(await archive.search("quokka", "keyword")) == ["c5"]
    assert ids(await archive.search("quokka", "semantic", limit=1)) == ["c5"]
    await archive.edit_message("ada", cooking, "c5", content="What about lemon cupcakes?")
    assert ids(await archive.search("quokka", "keyword")) == []
    assert ids(await archive.search("lemon", "keyword")) == ["c5"]
    # The rewritten session's vectors are the new ones, not lost with the old.
    assert "c5" in ids(await archive.search("lemon cupcakes", "semantic", limit=3))
    assert "c1" in ids(await archive.search("crème brûlée torch", "semantic", limit=3))
    await archive.delete_message("ada", cooking, "c5")
    assert ids(await archive.search("lemon", "keyword")) == []
    assert await archive.compact_session("ada", cooking)
    assert ids(await archive.search("tomatoes", "keyword")) == ["c4"]
    await archive.delete_session("ada", cooking)
    assert ids(await archive.search("tomatoes", "keyword")) == []
    assert archive.index_problems() == []


async def test_append_from_another_process_is_seen_by_the_next_search(
        corpus: tuple[Archive, str, str]) -> None:
    archive, _cooking, travel = corpus
    assert (await archive.search("bob says", "keyword")).total == 0
    subprocess.run([sys.executable, str(WORKER), str(archive.root), "append", "bob", travel,
                    "3", "zebra"], check=True, timeout=60)
    results = await archive.search("zebra", "keyword")
    assert sorted(ids(results)) == ["zebra-0", "zebra-1", "zebra-2"]
    # Only the new tail was indexed: the earlier messages are there exactly once.
    assert ids(await archive.search('"night train"', "keyword")) == ["t3"]


async def test_another_process_write_is_seen_after_a_write_of_our_own(
        corpus: tuple[Archive, str, str]) -> None:
    """Our own write moves the change stamp past another process's: the next search must
    still rescan for that one (it waited for the 30 s rescan)."""
    archive, cooking, travel = corpus
    assert (await archive.search("zebra", "keyword")).total == 0
    subprocess.run([sys.executable, str(WORKER), str(archive.root), "append", "bob", travel,
                    "2", "zebra"], check=True, timeout=60)
    await archive.update_session("ada", cooking, title="Cooking, renamed")
    assert sorted(ids(await archive.search("zebra", "keyword"))) == ["zebra-0", "zebra-1"]


async def test_others_wrote_follows_our_own_writes_back(
        corpus: tuple[Archive, str, str]) -> None:
    """What the window's change poll and the search's rescan ask: did the change stamp move
    by another process's write, or only by ours?"""
    from storage.files import stamp_signature

    archive, cooking, travel = corpus
    since = stamp_signature(archive.root)
    for title in ("One", "Two", "Three"):
        time.sleep(0.005)  # past the file system's clock tick: each write moves the stamp
        await archive.update_session("ada", cooking, title=title)
    ours = stamp_signature(archive.root)
    assert ours != since and not archive.others_wrote(since, ours)
    assert not archive.others_wrote(ours, ours)
    time.sleep(0.005)
    subprocess.run([sys.executable, str(WORKER), str(archive.root), "append", "bob", travel,
                    "1", "yak"], check=True, timeout=60)
    assert archive.others_wrote(ours, stamp_signature(archive.root))
    time.sleep(0.005)
    await archive.update_session("ada", cooking, title="Four")
    now = stamp_signature(archive.root)
    assert archive.others_wrote(since, now) and archive.others_wrote(ours, now)


async def test_a_last_message_without_its_newline_is_found(
        corpus: tuple[Archive, str, str]) -> None:
    """A log whose last line lacks its newline (a tool wrote it so): storage reads that
    message, so search finds it; the next append completes the line, and nothing is found
    twice."""
    archive, cooking, _travel = corpus
    log = archive.root / "users" / "ada" / cooking / layout.MESSAGES
    with log.open("ab") as fh:
        fh.write(msg("c7", "user", "Quince jelly needs patience").to_json())
    reopened = await Archive.open(archive.root)
    assert "c7" in [m.message_id for m in await reopened.get_messages("ada", cooking, None)]
    assert ids(await reopened.search("quince", "keyword")) == ["c7"]
    await reopened.add_message("ada", cooking, msg("c8", "user", "More quince, please"))
    assert sorted(ids(await reopened.search("quince", "keyword"))) == ["c7", "c8"]
    assert ids(await reopened.search("tomatoes", "keyword")) == ["c4"]  # once
    assert reopened.index_problems() == []


async def test_a_session_whose_source_changes_is_found_by_the_new_one(
        corpus: tuple[Archive, str, str]) -> None:
    """Every document of a session names its source (the source: filter): a new source
    reindexes the session, through the API and by another process's write."""
    archive, cooking, _travel = corpus
    assert ids(await archive.search("source:chatgpt tomatoes", "keyword")) == ["c4"]
    await archive.update_session("ada", cooking, metadata={"source": "claude"})
    assert ids(await archive.search("source:chatgpt tomatoes", "keyword")) == []
    assert ids(await archive.search("source:claude tomatoes", "keyword")) == ["c4"]
    assert ids(await archive.search("tomatoes", "semantic", source="claude", limit=1)) == ["c4"]
    other = await Archive.open(archive.root)  # another writer; this one rescans on open
    await other.update_session("ada", cooking, metadata={"source": {"format": "openwebui"}})
    reopened = await Archive.open(archive.root)
    assert ids(await reopened.search("source:openwebui tomatoes", "keyword")) == ["c4"]
    assert ids(await reopened.search("source:claude tomatoes", "keyword")) == []
    # A change that leaves the source as it was indexes the messages no more.
    indexed = reopened._search_engine().indexer.state["sources"][f"m/ada/{cooking}"]
    await reopened.update_session("ada", cooking, title="Cooking again")
    assert ids(await reopened.search("tomatoes", "keyword")) == ["c4"]
    assert reopened._search_engine().indexer.state["sources"][f"m/ada/{cooking}"] == indexed


async def test_a_session_json_that_changed_alone_is_read_once(
        corpus: tuple[Archive, str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """A rename, a pin or a tag moves session.json, not the log: the session is read once
    to see whether its source or title changed, then no more at each rescan, in this
    process or the next (it was read again at every scan, 2.5x a scan's cost)."""
    from storage.search.indexer import Indexer

    archive, cooking, _travel = corpus
    await archive.update_session("ada", cooking, metadata={"pinned": True})
    assert ids(await archive.search("tomatoes", "keyword")) == ["c4"]
    reads: list[str] = []
    said = Indexer._session_said

    def counted(self: Indexer, source: object) -> dict[str, str]:
        reads.append(source.key)  # type: ignore[attr-defined]
        return said(self, source)  # type: ignore[arg-type]

    monkeypatch.setattr(Indexer, "_session_said", counted)
    indexer = archive._search_engine().indexer
    for _ in range(2):
        indexer.last_scan = 0.0  # the 30 s rescan
        assert ids(await archive.search("tomatoes", "keyword")) == ["c4"]
    other = await Archive.open(archive.root)
    assert ids(await other.search("tomatoes", "keyword")) == ["c4"]
    assert reads == []


async def test_a_corrupt_session_json_does_not_stop_search(
        corpus: tuple[Archive, str, str]) -> None:
    """Its messages are still found (with no source); it raised CorruptRecordError at every
    search once session.json was read whenever it moved."""
    archive, cooking, _travel = corpus
    assert ids(await archive.search("tomatoes", "keyword")) == ["c4"]
    (archive.root / "users" / "ada" / cooking / "session.json").write_text("{not json")
    reopened = await Archive.open(archive.root)
    assert ids(await reopened.search("tomatoes", "keyword")) == ["c4"]
    assert ids(await reopened.search('"night train"', "keyword")) == ["t3"]


async def test_a_sessions_title_is_found_as_the_session(
        corpus: tuple[Archive, str, str]) -> None:
    """A title is a document of its own (kind session): renamed, restarted (created_at),
    renamed by another process while this one does not rescan (the window), untitled."""
    archive, cooking, _travel = corpus
    (hit,) = (await archive.search("cooking", "keyword")).hits
    assert (hit.kind, hit.session_id, hit.message_id, hit.title) == (
        "session", cooking, None, "Cooking")
    assert ids(await archive.search("source:chatgpt kind:session cooking", "keyword")) == [None]
    await archive.update_session("ada", cooking, created_at=T0 - dt.timedelta(days=400))
    assert (await archive.search("cooking before:2024-06", "keyword")).total == 1
    archive.rescan_on_search = False
    other = await Archive.open(archive.root)
    await other.update_session("ada", cooking, title="Baking with Ada")
    assert (await other.search("baking", "keyword")).total == 1  # indexed there
    (renamed,) = (await archive.search("baking", "keyword")).hits
    assert renamed.title == renamed.snippet == "Baking with Ada"
    assert (await archive.search("cooking", "keyword")).total == 0
    await archive.update_session("ada", cooking, title="")
    assert (await archive.search("baking", "keyword")).total == 0


async def test_documents_chunks_are_searched_with_their_location(archive: Archive) -> None:
    await archive.create_user("ada")
    record = await archive.save_document("ada", b"...", "Manual.pdf")
    folder = archive.layout.documents_dir("ada", None)
    chunks = [{"chunk": 0, "start": 0, "end": 30, "page": 1, "text": "Introduction to widgets"},
              {"chunk": 1, "start": 25, "end": 80, "page": 4,
               "text": "Calibrating the flux capacitor takes patience"}]
    (folder / f"{record.doc_id}.chunks.jsonl").write_bytes(
        b"".join(orjson.dumps(c) + b"\n" for c in chunks))
    await archive.update_document("ada", record.doc_id, analysis={"chunks": 2})
    hit = (await archive.search("flux capacitor", "keyword")).hits[0]
    assert (hit.kind, hit.doc_id, hit.chunk, hit.page, hit.char_start, hit.char_end) == (
        "document", record.doc_id, 1, 4, 25, 80)
    assert hit.session_id is None and hit.title == "Manual.pdf"
    await archive.delete_document("ada", record.doc_id)
    assert (await archive.search("flux capacitor", "keyword")).total == 0


async def test_damaged_index_is_detected_reported_and_rebuilt(
        corpus: tuple[Archive, str, str]) -> None:
    archive, _cooking, _travel = corpus
    assert ids(await archive.search("tomatoes", "keyword")) == ["c4"]
    for path in (archive.root / ".index").rglob("*"):
        if path.is_file() and path.suffix in (".npy", ".idx", ".store", ".term", ".pos"):
            path.write_bytes(path.read_bytes()[: max(0, path.stat().st_size // 3)])
    reopened = await Archive.open(archive.root)
    assert reopened.index_problems()  # verify would report it
    report = await reopened.verify()
    assert any("search index" in p.problem for p in report.problems)
    results = await reopened.search("tomatoes", "keyword")
    assert ids(results) == ["c4"]
    assert reopened.index_problems() == []


async def test_interrupted_commit_means_rebuild(
        corpus: tuple[Archive, str, str], caplog: pytest.LogCaptureFixture) -> None:
    archive, _cooking, _travel = corpus
    await archive.search("warm up", "keyword")
    (archive.root / ".index" / "state.pending").write_bytes(b"{}")
    reopened = await Archive.open(archive.root)
    results = await reopened.search("tomatoes", "keyword")
    assert ids(results) == ["c4"] and results.total == 1
    assert "rebuilding the search index: the last index commit was interrupted" in caplog.text
    assert not (archive.root / ".index" / "state.pending").exists()


async def test_deleting_the_index_loses_nothing(corpus: tuple[Archive, str, str]) -> None:
    archive, _cooking, _travel = corpus
    before = ids(await archive.search("the OR a", "keyword", limit=50))
    shutil.rmtree(archive.root / ".index")
    reopened = await Archive.open(archive.root)
    assert ids(await reopened.search("the OR a", "keyword", limit=50)) == before


async def test_changed_embedder_rebuilds_vectors(
        corpus: tuple[Archive, str, str], caplog: pytest.LogCaptureFixture) -> None:
    archive, _cooking, _travel = corpus
    await archive.search("warm up", "semantic")
    other = await Archive.open(archive.root, overrides={"vector": {"embedder": "hashing"}})
    results = await other.search("tomatoes garlic", "semantic")
    assert results.hits and results.degraded and "character n-grams" in results.degraded
    assert "setting vector.embedder is hashing" in results.degraded  # chosen, not a failure
    assert "rebuilding the search index: the index was built with" in caplog.text
    manifest = orjson.loads((archive.root / ".index" / "vectors" / "manifest.json").read_bytes())
    assert manifest["embedder"]["name"] == "hashing-char-ngrams-v1"


async def test_query_errors_and_empty_queries(corpus: tuple[Archive, str, str]) -> None:
    archive, _cooking, _travel = corpus
    assert (await archive.search("", "keyword")).total == 0
    with pytest.raises(QuerySyntaxError, match="nothing to search for"):
        await archive.search("- *", "keyword")
    with pytest.raises(QuerySyntaxError, match="never closed"):
        await archive.search('"open', "hybrid")
    with pytest.raises(ValueError, match="mode must be"):
        await archive.search("x", "psychic")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="unknown search filters: colour"):
        await archive.search("x", "keyword", colour="red")
    for only_excluded in ('-"lazy dog"', "--fox", "-oven -torch"):
        with pytest.raises(QuerySyntaxError, match="only excludes words; add a word"):
            await archive.search(only_excluded, "keyword")
    # A filter given beside it is something to search for: everything else it allows.
    assert ids(await archive.search("-oven", "keyword", role="assistant", user="ada")) == ["c4"]


async def test_cancelled_indexing_resumes_without_duplicates(archive: Archive) -> None:
    from storage.jobs import JobCancelled, JobControl, Progress

    await archive.create_user("ada")
    for s in range(12):
        sid = (await archive.create_session("ada", f"s{s}")).session_id
        await archive.add_messages("ada", sid, [
            Message(role="user", content=f"common word number {i} in session {s}")
            for i in range(25)])
    seen: list[Progress] = []

    def cancel_at_once(progress: Progress) -> None:
        seen.append(progress)
        control.cancel()  # honoured inside the first session: its half is thrown away

    control = JobControl("index", cancel_at_once)
    with pytest.raises(JobCancelled, match="cancelled after 0 of 24"):  # logs and titles
        await archive.refresh_index(control)
    assert seen[0].total == 24
    assert archive.index_problems() == []  # what was committed is consistent

    def cancel_later(progress: Progress) -> None:
        if progress.done >= 4:
            second.cancel()

    second = JobControl("index", cancel_later)
    with contextlib.suppress(JobCancelled):  # may finish before the report reaches 4
        await archive.refresh_index(second)
    assert archive.index_problems() == []
    await archive.refresh_index()
    results = await archive.search("common", "keyword")
    assert results.total == 12 * 25
    assert archive.index_problems() == []


async def test_english_stemming_is_a_setting(archive_dir: Path) -> None:
    plain = await Archive.open(archive_dir, create=True)
    await plain.create_user("ada")
    sid = (await plain.create_session("ada", "t")).session_id
    await plain.add_message("ada", sid, msg("r", "user", "She was running the marathons"))
    assert ids(await plain.search("marathon", "keyword")) == []
    stemmed = await Archive.open(archive_dir, overrides={"search": {"stemming": "true"}})
    assert ids(await stemmed.search("marathon", "keyword")) == ["r"]  # index rebuilt
    assert ids(await stemmed.search("runs", "keyword")) == ["r"]


async def test_deleting_a_user_removes_their_hits(corpus: tuple[Archive, str, str]) -> None:
    archive, _cooking, _travel = corpus
    assert ids(await archive.search("tomatoes", "keyword")) == ["c4"]
    await archive.delete_user("ada")
    assert ids(await archive.search("tomatoes", "keyword")) == []
    assert archive.index_problems() == []


async def test_prefix_matches_every_expansion(archive: Archive) -> None:
    await archive.create_user("ada")
    sid = (await archive.create_session("ada", "t")).session_id
    await archive.add_messages("ada", sid, [Message(role="user", content=f"zeta{i:03d} word")
                                            for i in range(120)])  # 120 distinct expansions
    assert (await archive.search("zeta*", "keyword", limit=5)).total == 120


async def test_a_prefix_query_finds_what_the_regular_expression_finds(tmp_path: Path) -> None:
    """prefix_query (a Levenshtein automaton with no edit, in prefix mode) against the
    regular expression ``stem.*`` it replaced: the same count, hits, order and scores, for
    stems of one letter to a whole word, digits, folded accents and no match at all."""
    import re

    import tantivy

    from storage.search.fulltext import prefix_query

    rng = random.Random(7)
    letters = "abcxyz09éø"
    words = ["".join(rng.choice(letters) for _ in range(rng.randint(1, 9))) for _ in range(400)]
    index = FullTextIndex(tmp_path, False)
    with index.writer() as writer:
        index.add(writer, [
            IndexDoc(key=f"k{n}", group="g", kind="message", user="u", session="s",
                     text=" ".join(rng.sample(words, rng.randint(1, 12))), timestamp=T0)
            for n in range(3000)
        ])
        writer.commit()
    searcher = index.searcher()
    stems = {index.tokens(w)[0][:k] for w in words[:60] for k in (1, 2, 3, 9)} | {"qqq", "zz9"}
    for stem in sorted(stems):
        regex = tantivy.Query.regex_query(index.schema, "text", re.escape(stem) + ".*")
        expected = searcher.search(regex, 3000, count=True)
        found = searcher.search(prefix_query(index.schema, "text", stem), 3000, count=True)
        assert found.count == expected.count, stem
        assert [(s, a.doc) for s, a in found.hits] == [(s, a.doc) for s, a in expected.hits]
    assert len(stems) > 100


async def test_own_writes_wait_while_another_process_indexes(
        corpus: tuple[Archive, str, str]) -> None:
    import filelock

    archive, cooking, _travel = corpus
    await archive.search("warm up", "keyword")
    await archive.add_message("ada", cooking, msg("c9", "user", "okapi stew"))
    other = filelock.FileLock(str(archive.root / ".locks" / "index.lock"))
    with other:  # the index is busy elsewhere: searches read what is there, never wait
        lagging = await archive.search("okapi", "keyword")
        assert ids(lagging) == [] and "may be incomplete" in (lagging.degraded or "")
    found = await archive.search("okapi", "keyword")
    assert ids(found) == ["c9"] and found.degraded is None  # not forgotten


async def test_prefix_snippets_mark_the_words_they_can(corpus: tuple[Archive, str, str]) -> None:
    archive, _cooking, _travel = corpus
    # A one-word prefix marks the words of each hit it stands for.
    alone = (await archive.search("caramel*", "keyword")).hits[0]
    assert alone.snippet.startswith("Use the oven grill.")
    assert [alone.snippet[a:b] for a, b in alone.highlights] == ["Caramelise"]
    mixed = (await archive.search("caramel* sugar", "keyword")).hits[0]
    assert [mixed.snippet[a:b] for a, b in mixed.highlights] == ["Caramelise", "sugar"]
    both = (await archive.search("cr* OR tor*", "keyword")).hits[0]
    assert [both.snippet[a:b] for a, b in both.highlights] == ["crème", "torch"]
    accents = (await archive.search("brûl*", "keyword")).hits[0]
    assert [accents.snippet[a:b] for a, b in accents.highlights] == ["brûlée"]
    excluded = (await archive.search("sugar -torch", "keyword")).hits[0]
    assert [excluded.snippet[a:b] for a, b in excluded.highlights] == ["sugar"]


async def test_hits_made_fast_are_equal_and_as_frozen(tmp_path: Path) -> None:
    fields = dict(kind="message", user_id="u", session_id="s", score=1.5, snippet="ab",
                  highlights=[(0, 1)], message_id="m", doc_id=None, chunk=None,
                  char_start=None, char_end=None, page=None, role="user", title="T",
                  timestamp=T0, key="m/u/s/0")
    assert set(fields) == {f.name for f in dataclasses.fields(Hit)}
    fast, made = make_hit(dict(fields)), Hit(**fields)  # type: ignore[arg-type]
    assert fast == made and fast.to_dict() == made.to_dict() and repr(fast) == repr(made)
    with pytest.raises(dataclasses.FrozenInstanceError):
        fast.title = "changed"  # type: ignore[misc]


async def test_searcher_reloads_for_every_commit_and_only_then(tmp_path: Path) -> None:
    """Two indexes on one folder stand for two processes: each sees the other's commits at
    once, and a search with no commit in between does not reload (it costs ~40 µs)."""

    class Counting:
        def __init__(self, index: object) -> None:
            self.index, self.reloads = index, 0

        def reload(self) -> None:
            self.reloads += 1
            self.index.reload()  # type: ignore[attr-defined]

        def __getattr__(self, name: str) -> object:
            return getattr(self.index, name)

    def doc(n: int) -> IndexDoc:
        return IndexDoc(key=f"k{n}", group="g", kind="message", user="u", session="s",
                        text=f"word{n}", timestamp=T0)

    ours, theirs = FullTextIndex(tmp_path, False), FullTextIndex(tmp_path, False)
    counting = Counting(ours.index)
    ours.index = counting
    assert ours.searcher().num_docs == 0 and ours.searcher().num_docs == 0
    assert counting.reloads == 1
    for n, index in enumerate((theirs, ours, theirs)):
        with index.writer() as writer:
            index.add(writer, [doc(n)])
            writer.commit()
        assert ours.searcher().num_docs == n + 1
        assert theirs.searcher().num_docs == n + 1
    assert counting.reloads == 4
    assert ours.searcher().num_docs == 3 and counting.reloads == 4


async def test_an_index_of_an_older_format_is_rebuilt(
        corpus: tuple[Archive, str, str], caplog: pytest.LogCaptureFixture) -> None:
    """A search index written by an older Flatchat (another state version) is rebuilt from
    the files on open, with the reason logged; the hits are the same afterwards."""
    archive, _cooking, _travel = corpus
    before = await archive.search("tomatoes OR garlic", "keyword", limit=50)
    state_path = archive.root / ".index" / "state.json"
    state = orjson.loads(state_path.read_bytes())
    state["version"] = 1
    state_path.write_bytes(orjson.dumps(state))
    reopened = await Archive.open(archive.root)
    after = await reopened.search("tomatoes OR garlic", "keyword", limit=50)
    assert "the index on disk has format version 1" in caplog.text
    assert [h.to_dict() for h in after.hits] == [h.to_dict() for h in before.hits]
    assert orjson.loads(state_path.read_bytes())["version"] != 1


async def test_the_keyword_index_keeps_its_small_document_store_blocks(tmp_path: Path) -> None:
    """A new index stores documents in 2 KiB blocks (reading a hit decompresses one block),
    a setting tantivy keeps in meta.json: it must survive commits and reopening."""

    def block_size() -> int:
        meta = orjson.loads((tmp_path / "meta.json").read_bytes())
        return int(meta["index_settings"]["docstore_blocksize"])

    index = FullTextIndex(tmp_path, False)
    assert block_size() == DOCSTORE_BLOCK == 2048
    for batch in range(2):
        with index.writer() as writer:
            index.add(writer, [
                IndexDoc(key=f"k{batch}-{n}", group=f"g{batch}", kind="message", user="u",
                         session="s", text=f"word{n} " * 50, timestamp=T0)
                for n in range(200)
            ])
            writer.commit()
        assert block_size() == DOCSTORE_BLOCK
    reopened = FullTextIndex(tmp_path, False)
    assert reopened.num_docs() == 400 and block_size() == DOCSTORE_BLOCK


async def test_a_build_is_one_segment_when_memory_allows(
        archive: Archive, monkeypatch: pytest.MonkeyPatch) -> None:
    """A writer gets memory for the text it will index, so a build is one tantivy segment
    (each segment is one more term lookup per search). With the least memory the same build
    makes several: the test sees the difference."""
    from storage.search import fulltext

    rng = random.Random(7)
    vocabulary = ["".join(rng.choices(string.ascii_lowercase, k=rng.randint(3, 9)))
                  for _ in range(20_000)]
    await archive.create_user("ada")
    for s in range(2):
        session = await archive.create_session("ada", f"Long talk {s}")
        await archive.add_messages("ada", session.session_id, [
            msg(f"m{s}-{n}", "user", " ".join(rng.choices(vocabulary, k=1_000)))
            for n in range(1_000)
        ])
    engine = archive._search_engine()

    def segments() -> int:
        return int(engine.indexer.fulltext.searcher().num_segments)  # type: ignore[union-attr]

    monkeypatch.setattr(fulltext, "WRITER_HEAP", 15_000_000)  # tantivy's least
    monkeypatch.setattr(fulltext, "HEAP_PER_TEXT_BYTE", 0.0)
    await archive.reindex()
    assert segments() > 1
    monkeypatch.undo()
    monkeypatch.setattr(fulltext, "WRITER_HEAP", 15_000_000)
    await archive.reindex()
    assert segments() == 1
    assert (await archive.search(vocabulary[0], "keyword")).total > 0


async def test_the_hit_field_is_stored_not_searched(corpus: tuple[Archive, str, str]) -> None:
    """Everything a hit names is stored in one text field whose analyzer makes no terms: the
    term dictionary stays the size of what is searched. Dates filter on integer microseconds."""
    archive, _cooking, _travel = corpus
    found = await archive.search("oven", "keyword")
    assert [h.message_id for h in found.hits] == ["c2"]
    assert found.hits[0].timestamp == T0 + dt.timedelta(days=1)
    searcher = archive._search_engine().indexer.fulltext.searcher()  # type: ignore[union-attr]
    assert searcher.terms_with_prefix("hit", "") == []
    assert searcher.terms_with_prefix("key", "")  # a raw-token field has terms
    day = (T0 + dt.timedelta(days=1)).date().isoformat()
    assert ids(await archive.search(f"kind:message before:{day}", "keyword")) == ["c1"]
    later = await archive.search(f"kind:message after:{day}", "keyword", limit=50)
    assert sorted(ids(later)) == ["c2", "c3", "c4", "t1", "t2", "t3"]  # type: ignore[type-var]


async def test_writer_memory_is_bounded() -> None:
    from storage.search.fulltext import WRITER_HEAP, WRITER_HEAP_MAX, writer_heap

    assert writer_heap(0) == writer_heap(1_000) == WRITER_HEAP
    assert writer_heap(200_000_000) == 400_000_000
    assert WRITER_HEAP <= writer_heap(10**12) <= WRITER_HEAP_MAX


@pytest.mark.parametrize(
    ("hit", "problem"),
    [
        (None, "has no stored hit field"),
        ("[1, 2", "hit field is unreadable"),
        ('{"key": "m/a"}', "is not a list of 13"),
        ('["m/a", "message"]', "is not a list of 13"),
    ],
)
async def test_an_unreadable_hit_field_is_index_damage(hit: str | None, problem: str) -> None:
    import tantivy

    doc = tantivy.Document(text="hello") if hit is None else tantivy.Document(hit=hit)
    with pytest.raises(IndexCorruptError, match=problem):
        hit_fields(doc)


async def test_a_one_word_total_is_exact_with_and_without_deleted_documents(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A one-word search takes its total from the term dictionary, which still counts
    deleted documents: with any in the index it counts its hits instead. An exclusion
    always counts them, so both must agree before and after edits."""
    from tests.storage.search_support import archive_with

    counts: list[int | None] = []
    count_of_term = FullTextIndex.count_of_term

    def spy(searcher: object, term: str) -> int | None:
        counts.append(count_of_term(searcher, term))
        return counts[-1]

    monkeypatch.setattr(FullTextIndex, "count_of_term", staticmethod(spy))
    texts = {f"m{i}": f"warm day {i}" if i % 3 else f"cold night {i}" for i in range(40)}
    archive = await archive_with(tmp_path / "a", texts)
    session = (await archive.list_sessions("ada"))[0].session_id
    expected = sum("warm" in t for t in texts.values())
    for edited in ("m1", "m2", None):
        fast = await archive.search("warm", "keyword", limit=5)
        counted = await archive.search("warm -zzzz", "keyword", limit=5)
        assert fast.total == counted.total == expected
        assert fast.hits == counted.hits
        # Asked once, by the one-word search only: the dictionary's count, or none while
        # deleted documents are in the index (tantivy merges them away when it sees fit).
        assert counts in ([expected], [None])
        counts.clear()
        if edited:
            await archive.edit_message("ada", session, edited, content="cold now")
            expected -= 1
    await archive.close()

    def doc(n: int, group: str) -> IndexDoc:
        return IndexDoc(key=f"k{n}", group=group, kind="message", user="u", session="s",
                        text=f"word number{n}", timestamp=T0)

    index = FullTextIndex(tmp_path / "ft", False)
    with index.writer() as writer:
        index.add(writer, [doc(1, "g1"), doc(2, "g1"), doc(3, "g2")])
        writer.commit()
    searcher = index.searcher()
    assert index.count_of_term(searcher, "word") == 3
    assert index.count_of_term(searcher, "number2") == 1
    assert index.count_of_term(searcher, "absent") == 0
    with index.writer() as writer:
        index.delete_group(writer, "g1")
        writer.commit()
    searcher = index.searcher()
    assert searcher.num_docs == 1
    assert index.count_of_term(searcher, "word") is None  # the dictionary still says 3


async def test_a_logs_documents_are_those_of_its_messages(archive: Archive) -> None:
    """A build makes each message's index document straight from its log line: the same
    document as the message read through the model gives, for every kind of line (fast path,
    attachments' text, a naive time, accents written apart, CJK, the original system's "id"
    key, a line that needs the model's defaults), and for a log read merged with the original
    system's per-persona copies."""
    from storage.jsonl import JsonlLog
    from storage.layout import LEGACY_PERSONA_SUFFIX, MESSAGES
    from storage.search.fulltext import index_doc_json

    await archive.create_user("ada")
    session = await archive.create_session("ada", "Mixed", metadata={"source": "claude"})
    lines = [
        {"message_id": "m1", "role": "user", "content": "plain words",
         "timestamp": "2025-03-01T12:00:00+00:00"},
        {"message_id": "m2", "role": "assistant", "content": "see the file",
         "timestamp": "2025-03-01T12:01:00+02:00",
         "attachments": [{"file_name": "lease.txt", "extracted_content": "rent is due"}, "x"]},
        {"message_id": "m3", "role": "user", "content": "naive time",
         "timestamp": "2025-03-01T12:02:00"},
        {"message_id": "m4", "role": "user", "content": "e\u0301cole 東京は日本の首都です",
         "timestamp": "2025-03-01T12:03:00Z"},
        {"id": "m5", "role": "user", "content": "an old key", "timestamp": "2025-03-01T12:04:00Z"},
        {"message_id": "m6", "role": "user", "timestamp": 1740830700},  # through the model
    ]
    log = archive.root / "users" / "ada" / session.session_id / MESSAGES
    log.write_bytes(b"".join(orjson.dumps(line) + b"\n" for line in lines))
    indexer = archive._search_engine().indexer
    source = indexer.scan(None)[f"m/ada/{session.session_id}"]
    docs, end = indexer._message_docs(source, 0, indexer._session_said(source)["origin"])
    assert end == log.stat().st_size
    messages = await archive.get_messages("ada", session.session_id, None)
    assert [m.message_id for m in messages] == ["m1", "m2", "m3", "m4", "m5", "m6"]
    offsets = [0]
    for line in log.read_bytes().splitlines(keepends=True)[:-1]:
        offsets.append(offsets[-1] + len(line))

    def doc_of(place: str, m: Message) -> IndexDoc:
        """The document of ``m`` as the model reads it: its content, then its attachments'
        text, composed."""
        text = "\n".join(
            [m.content, *(v for a in m.attachments if isinstance(a, dict)
                          for k in ("extracted_content", "text", "file_name", "name")
                          if isinstance(v := a.get(k), str) and v)]
        )
        return IndexDoc(
            key=f"{source.key}/{place}", group=source.key, kind="message", user="ada",
            session=session.session_id, text=unicodedata.normalize("NFC", text.strip("\n")),
            timestamp=m.timestamp, role=m.role, source="claude", message_id=m.message_id,
        )

    expected = [doc_of(str(o), m) for o, m in zip(offsets, messages, strict=True)]
    assert [orjson.loads(j) for j in docs.jsons] == [
        orjson.loads(index_doc_json(d)) for d in expected
    ]
    assert docs.keys == [d.key for d in expected]
    assert docs.texts == [d.text for d in expected]
    assert "cjk" in orjson.loads(docs.jsons[3]) and "école" in docs.texts[3]
    assert docs.texts[1] == "see the file\nrent is due\nlease.txt"

    # With the original system's per-persona copies beside it, the log is read merged and
    # whole, each message keyed by its place in the merged log.
    copy = log.with_name("ada" + LEGACY_PERSONA_SUFFIX)
    copy.write_bytes(orjson.dumps(
        {"message_id": "p1", "role": "assistant", "content": "from a persona's copy",
         "timestamp": "2025-03-01T12:06:00Z",
         "attachments": [{"name": "notes.md", "text": "the notes"}]}
    ) + b"\n")
    source = indexer.scan(None)[f"m/ada/{session.session_id}"]
    assert len(source.sig) == 2
    docs, end = indexer._message_docs(source, 0, indexer._session_said(source)["origin"])
    assert end == 0  # read whole every time
    merged = list(JsonlLog(log, Message, legacy_paths=lambda: [copy]).iter())
    assert "p1" in [m.message_id for m in merged] and len(merged) == 7
    expected = [doc_of(f"n{i}", m) for i, m in enumerate(merged)]
    assert [orjson.loads(j) for j in docs.jsons] == [
        orjson.loads(index_doc_json(d)) for d in expected
    ]
    assert "from a persona's copy\nthe notes\nnotes.md" in docs.texts
