"""Paging and totals that hold still, and filters that narrow a semantic search however
selective they are, on a real temp archive."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from storage import Archive, Message
from storage.search import engine

pytestmark = pytest.mark.asyncio
T0 = dt.datetime(2025, 3, 1, 12, 0, tzinfo=dt.UTC)
WORDS = ["castle", "tower", "stone", "wall", "river", "bridge", "market", "winter", "summer",
         "garden", "kitchen"]


async def many(root: Path) -> tuple[Archive, str, str]:
    """300 messages of ada's, three of bob's about castles in winter (one of them the
    only system message of the archive, one from 2020)."""
    archive = await Archive.open(root, create=True, overrides={"vector": {"embedder": "hashing"}})
    await archive.create_user("ada")
    await archive.create_user("bob")
    ada = await archive.create_session("ada", "Lots")
    bob = await archive.create_session("bob", "")  # untitled: its messages are all it holds
    await archive.add_messages(
        "ada",
        ada.session_id,
        [
            Message(
                message_id=f"a{i:03d}",
                role="user" if i % 2 else "assistant",
                content=" ".join(WORDS[(i * 7 + j) % len(WORDS)] for j in range(6 + i % 5)),
                timestamp=T0 + dt.timedelta(minutes=i),
            )
            for i in range(300)
        ],
    )
    await archive.add_messages(
        "bob",
        bob.session_id,
        [
            Message(message_id="b1", role="user", content="how do castles keep warm in winter",
                    timestamp=T0),
            Message(message_id="b2", role="system", content="castles warm winter fires",
                    timestamp=T0),
            Message(message_id="b3", role="user", content="old castle walls in the cold",
                    timestamp=dt.datetime(2020, 1, 1, tzinfo=dt.UTC)),
        ],
    )
    return archive, ada.session_id, bob.session_id


def ids(results: object) -> list[str | None]:
    return [h.message_id for h in results.hits]  # type: ignore[attr-defined]


async def test_limit_zero_gives_the_total_and_no_hits(tmp_path: Path) -> None:
    archive, _ada, _bob = await many(tmp_path / "a")
    for mode in ("keyword", "semantic", "hybrid"):
        results = await archive.search("castle", mode, limit=0)
        assert results.hits == [] and results.total > 0, mode
    with pytest.raises(ValueError, match="limit and offset"):
        await archive.search("castle", "keyword", limit=-1)
    await archive.close()


@pytest.mark.parametrize("mode", ["semantic", "hybrid"])
async def test_pages_of_a_ranked_search_hold_still(tmp_path: Path, mode: str) -> None:
    archive, _ada, _bob = await many(tmp_path / "a")
    whole = await archive.search("castle winter garden", mode, limit=engine.RANK_WINDOW)
    pages = [await archive.search("castle winter garden", mode, limit=7, offset=o)
             for o in range(0, engine.RANK_WINDOW + 14, 7)]
    assert {p.total for p in pages} == {whole.total}
    assert whole.total == len(whole.hits) <= engine.RANK_WINDOW
    seen = [m for p in pages for m in ids(p)]
    assert seen == ids(whole) and len(set(seen)) == len(seen)  # no repeats, no gaps
    await archive.close()


async def test_a_selective_filter_still_finds_what_it_allows(tmp_path: Path) -> None:
    archive, ada, bob = await many(tmp_path / "a")
    query = "how do castles keep warm in winter"
    for mode in ("semantic", "hybrid"):
        for found in (
            await archive.search(f"{query} user:bob", mode),
            await archive.search(query, mode, user="bob"),
            await archive.search(f"{query} session:{bob}", mode),
        ):
            assert sorted(ids(found)) == ["b1", "b2", "b3"], mode
            assert found.total == 3 and ids(found)[0] == "b1"
        # Filters the vector index cannot tell: looked for deeper until found.
        assert ids(await archive.search(f"{query} role:system", mode)) == ["b2"]
        assert ids(await archive.search(f"{query} before:2021", mode)) == ["b3"]
        assert ids(await archive.search(f"{query} user:bob -castles", mode)) == ["b3"]
    semantic = await archive.search(query, "semantic", user="ada", limit=50)
    assert len(semantic.hits) == 50 and {h.user_id for h in semantic.hits} == {"ada"}
    assert (await archive.search(f"{query} kind:document", "semantic")).hits == []
    assert (await archive.search(f"{query} session:{ada} user:bob", "semantic")).hits == []
    await archive.close()
