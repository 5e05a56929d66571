"""Search at its edges, on real temp archives: pages far past the end, an index folder that
cannot be made, text written with combining accents, message ids that repeat, filters given
as arguments, and a search while another process rebuilds the index."""

from __future__ import annotations

import datetime as dt
import shutil
import unicodedata
from pathlib import Path
from typing import Any

import filelock
import pytest

from storage import Archive, IndexUnavailableError, Message
from storage.search.fulltext import IndexCorruptError
from storage.search.query import QuerySyntaxError, parse
from tests.storage.search_support import HASHING, archive_with

MODES = ("keyword", "semantic", "hybrid")


@pytest.mark.asyncio
async def test_a_page_far_past_the_end_is_empty(tmp_path: Path) -> None:
    """tantivy sizes its top-hits heap by offset + limit: 2**31 made it abort the process
    (a 32 GB allocation), 2**64 overflowed its integer."""
    archive = await archive_with(tmp_path / "a", {"m1": "apple pie", "m2": "apple tart"})
    for mode in MODES:
        for offset, limit in ((2**31, 1), (1, 4_000_000_000), (2**70, 2**70)):
            results = await archive.search(
                "apple", mode, limit=limit, offset=offset, kind="message"
            )
            assert results.hits == [] or offset == 1, (mode, offset)
            assert results.total == 2, mode
        page = await archive.search("apple", mode, limit=2**40, offset=1, kind="message")
        assert len(page.hits) == 1, mode
    await archive.close()


@pytest.mark.asyncio
async def test_an_index_folder_that_cannot_be_made_is_reported(tmp_path: Path) -> None:
    root = tmp_path / "a"
    archive = await archive_with(root, {"m1": "apple pie"})
    await archive.search("apple", "keyword")  # makes the index
    await archive.close()
    shutil.rmtree(root / ".index")
    (root / ".index").write_text("not a folder")
    archive = await Archive.open(root, overrides=HASHING)
    with pytest.raises(IndexUnavailableError, match=r"\.index cannot be used: a file is in"):
        await archive.search("apple", "keyword")
    assert (root / ".index").read_text() == "not a folder"  # the user's file is left alone
    (root / ".index").unlink()
    results = await archive.search("apple", "keyword")  # the same archive object recovers
    assert [h.message_id for h in results.hits] == ["m1"]
    await archive.close()


@pytest.mark.asyncio
async def test_combining_accents_are_the_same_word_as_composed_ones(tmp_path: Path) -> None:
    decomposed = unicodedata.normalize("NFD", "Je vais à l'école demain")
    assert "e\u0301cole" in decomposed
    archive = await archive_with(tmp_path / "a", {"m1": decomposed, "m2": "rien à voir"})
    for query in ("école", "ecole", unicodedata.normalize("NFD", "école"), "éco*"):
        for mode in ("keyword", "hybrid"):
            results = await archive.search(query, mode)
            assert [h.message_id for h in results.hits][:1] == ["m1"], (query, mode)
            hit = results.hits[0]
            assert [hit.snippet[a:b] for a, b in hit.highlights] == ["école"], (query, mode)
    await archive.close()


@pytest.mark.asyncio
async def test_a_repeated_message_id_is_two_hits(tmp_path: Path) -> None:
    """Storage accepts a message id twice in a session; each line is its own hit, with its
    own text, in every mode (search keys were message ids, and one hid the other)."""
    archive = await Archive.open(tmp_path / "a", create=True, overrides=HASHING)
    await archive.create_user("ada")
    session = await archive.create_session("ada", "Twice")
    for text in ("zebra one", "zebra two"):
        await archive.add_messages(
            "ada", session.session_id, [Message(message_id="m1", role="user", content=text)]
        )
    for mode in MODES:
        results = await archive.search("zebra", mode, kind="message")  # not the title
        assert results.total == 2, mode
        assert sorted(h.snippet for h in results.hits) == ["zebra one", "zebra two"], mode
        assert {h.message_id for h in results.hits} == {"m1"}
    await archive.close()


def test_or_without_a_right_side_is_reported_where_it_is() -> None:
    for query in ("apple OR", "apple OR   ", "apple OR 🎉"):
        with pytest.raises(QuerySyntaxError, match="OR needs something after it") as info:
            parse(query)
        assert info.value.position == 6, query


def test_repeated_date_filters_must_all_hold() -> None:
    filters = parse("fox after:2023 after:2024-06 before:2025 before:2024-12-01").filters
    assert filters.after is not None and filters.before is not None
    assert (filters.after.year, filters.after.month) == (2024, 6)
    assert (filters.before.year, filters.before.month) == (2024, 12)


@pytest.mark.asyncio
async def test_filters_given_as_arguments_are_checked_as_typed_ones(tmp_path: Path) -> None:
    archive = await archive_with(tmp_path / "a", {"m1": "apple pie"})
    results = await archive.search("apple", "keyword", kind="Message")
    assert results.total == 1
    bad: list[tuple[dict[str, object], str]] = [
        ({"kind": "bogus"}, "the kind filter 'bogus' is not one of message, document, context"),
        ({"after": dt.date(1, 1, 1)}, "after:0001-01-01 is too far in the past or future"),
        ({"before": "garbage"}, "before:garbage is not a date"),
        ({"user": 5}, "the user filter must be text, not 5"),
        ({"after": 2024}, "the after filter must be a date or text, not 2024"),
    ]
    for filters, message in bad:
        with pytest.raises(QuerySyntaxError, match=message) as info:
            await archive.search("apple", "keyword", **filters)  # type: ignore[arg-type]
        assert "cannot search for 'apple'" in str(info.value)  # the query, not the value
    # With one typed in the query as well, both must hold.
    narrowed = await archive.search("apple after:2020", "keyword", after="2999-01-01")
    assert narrowed.total == 0
    session = (await archive.list_sessions("ada"))[0].session_id
    await archive.add_messages(
        "ada", session, [Message(message_id="m2", role="assistant", content="apple crumble")]
    )
    for query, role, found in [
        ("apple role:user", "assistant", []),
        ("apple role:user role:assistant", "assistant", ["m2"]),
        ("apple role:user", ["user", "assistant"], ["m1"]),
        ("apple", "assistant", ["m2"]),
        ("apple role:user", [], ["m1"]),  # an empty list: no such filter
        ("apple", [], ["m1", "m2"]),
    ]:
        results = await archive.search(query, "keyword", role=role)
        assert sorted(h.message_id or "" for h in results.hits) == found, (query, role)
        assert results.total == len(found)
    await archive.close()


@pytest.mark.asyncio
async def test_a_search_while_another_process_rebuilds_says_so(tmp_path: Path) -> None:
    """Another process holds the index lock and has wiped the index to rebuild it: results
    are what is there, marked incomplete, not a silent "no matches"."""
    root = tmp_path / "a"
    archive = await archive_with(root, {"m1": "apple pie"})
    assert (await archive.search("apple", "keyword")).degraded is None  # indexes it
    archive.rescan_on_search = False
    other = filelock.FileLock(str(root / ".locks" / "index.lock"))  # its own open file: flock
    with other:
        (root / ".index" / "state.json").unlink()  # the other's rebuild has begun
        results = await archive.search("apple", "keyword")
        assert results.degraded is not None and "being rebuilt" in results.degraded
    after = await archive.search("apple", "keyword")  # lock free: rebuilt here, complete
    assert after.degraded is None and after.total == 1
    await archive.close()


@pytest.mark.asyncio
async def test_a_search_during_another_process_reindex_never_waits(tmp_path: Path) -> None:
    """`flatchat reindex` elsewhere deletes the index files first, and this process's
    searcher finds its files gone: that is no damage to rebuild here, and a reader never
    waits for the writer (it waited for the lock, then raised filelock's own Timeout)."""
    root = tmp_path / "a"
    archive = await archive_with(
        root, {"m1": "apple pie"}, overrides={**HASHING, "storage": {"lock_timeout": 1.0}}
    )
    assert (await archive.search("apple", "hybrid")).matched == 1
    archive.rescan_on_search = False
    other = filelock.FileLock(str(root / ".locks" / "index.lock"))  # its own open file: flock
    with other:
        for name in ("fulltext", "vectors"):
            shutil.rmtree(root / ".index" / name)
        (root / ".index" / "state.json").unlink()
        for mode in MODES:
            results = await archive.search("apple", mode)
            assert results.total == 0 and results.hits == []
            assert results.degraded is not None and "being rebuilt" in results.degraded
    after = await archive.search("apple", "hybrid")  # lock free: rebuilt here, complete
    assert after.matched == 1 and "apple" in after.hits[0].snippet
    await archive.close()


@pytest.mark.asyncio
async def test_an_index_another_process_rebuilt_is_not_rebuilt_again(tmp_path: Path) -> None:
    """Files replaced by another process's reindex look unreadable to a searcher that had
    the old ones open: it opens the new index and searches it, no second rebuild."""
    root = tmp_path / "a"
    archive = await archive_with(root, {"m1": "apple pie"})
    assert (await archive.search("apple", "keyword")).total == 1
    archive.rescan_on_search = False
    other = await Archive.open(root, overrides=HASHING)
    assert (await other.reindex()).rebuilt
    made = sorted(p.name for p in (root / ".index" / "fulltext").iterdir())
    engine = archive._search_engine()
    search = engine.search
    calls = []

    def unreadable_once(*args: Any, **kwargs: Any) -> Any:
        calls.append(args)
        if len(calls) == 1:  # what the old files' reader met while they were replaced
            raise IndexCorruptError("keyword index: Failed to acquire Lockfile: NotFound")
        return search(*args, **kwargs)

    engine.search = unreadable_once  # type: ignore[method-assign]
    results = await archive.search("apple", "keyword")
    assert len(calls) == 2 and results.total == 1 and results.degraded is None
    assert sorted(p.name for p in (root / ".index" / "fulltext").iterdir()) == made
    await other.close()
    await archive.close()


@pytest.mark.asyncio
async def test_writes_after_close_are_indexed_by_the_next_search(tmp_path: Path) -> None:
    """close() lets go of the indexes; the same archive object, used again, indexes what it
    wrote meanwhile (the window does not rescan on search: it relies on what it wrote)."""
    archive = await archive_with(tmp_path / "a", {"m1": "apple pie"})
    assert (await archive.search("apple", "keyword")).total == 1  # indexes the archive
    archive.rescan_on_search = False
    session = (await archive.list_sessions("ada"))[0].session_id
    await archive.close()
    await archive.add_messages("ada", session, [Message(role="user", content="banana bread")])
    assert (await archive.search("banana", "keyword")).total == 1
    await archive.close()
