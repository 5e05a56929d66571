"""Hybrid search on natural-language questions: the keyword leg counts only the words a
question is about, so hits that share just its "how" and "do" are not fused to the top."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from resources.sample import sample_archive_path
from storage import Archive
from storage.search.engine import _at_least, content_words
from storage.search.query import parse

pytestmark = pytest.mark.asyncio


def words(query: str) -> list[str]:
    return [t.text for group in content_words(parse(query)).groups for t in group]


async def test_function_words_leave_the_keyword_leg_unless_nothing_else_is_left() -> None:
    assert words("how do castles keep warm in winter") == ["castles", "keep", "warm", "winter"]
    assert words("to be or not to be") == ["to", "be", "or", "not", "to", "be"]
    assert words('"how do" castles') == ["how do", "castles"]  # a phrase is kept whole
    assert words("how OR castles") == ["how", "castles"]  # an OR group with another word
    assert words("Where IS it") == ["Where", "IS", "it"]
    assert [_at_least(content_words(parse(q))) for q in ("a castle", "castle keep",
            "castle keep warm", "castle keep warm winter", "b c d e f g h")] == [1, 1, 1, 2, 4]


@pytest.mark.parametrize(
    ("question", "session", "top"),
    [
        ("how do castles keep warm in winter", "A slow weekend in Edinburgh", 8),
        ("why is the cobol report slow", "Porting a COBOL payroll report to Python", 3),
    ],
)
async def test_a_question_finds_what_it_is_about(
    tmp_path: Path, question: str, session: str, top: int
) -> None:
    root = tmp_path / "sample"
    shutil.copytree(sample_archive_path(), root)
    archive = await Archive.open(root)
    results = await archive.search(question, "hybrid", limit=top)
    assert [h.title for h in results.hits] == [session] * top
    await archive.close()


async def test_a_prefix_is_no_meaning_to_fuse_in(tmp_path: Path) -> None:
    """A prefix is a piece of a word: hybrid search finds the words it stands for and fuses
    in no messages "near" the piece ("bern*" found the COBOL port); beside a word, the word
    is what the semantic leg embeds. Semantic search, asked for, still embeds it."""
    root = tmp_path / "sample"
    shutil.copytree(sample_archive_path(), root)
    archive = await Archive.open(root)
    keyword = await archive.search("bern*", "keyword", limit=50)
    hybrid = await archive.search("bern*", "hybrid", limit=50)
    assert keyword.total and hybrid.total == keyword.total
    assert {h.key for h in hybrid.hits} == {h.key for h in keyword.hits}
    assert all(h.highlights for h in hybrid.hits)
    assert (await archive.search("bern*", "semantic", limit=5)).total
    assert parse("castle bern* \"note g\"").whole_text == "castle note g"
    await archive.close()


async def test_a_hybrid_search_counts_as_matches_every_hit_holding_its_words(
    tmp_path: Path,
) -> None:
    """'zebra' is in 300 messages: every hit of the 200 a hybrid search ranks holds it, also
    those its keyword side ranked below its own top hits and the semantic side brought in;
    none of them is counted as there for its meaning alone (review: "159 matches, 41
    similar"). A word no message holds: all similar."""
    archive = await Archive.open(tmp_path / "a", create=True)
    await archive.create_user("u")
    session = await archive.create_session("u", "zoo")
    await archive.add_messages("u", session.session_id, [
        {"role": "user", "content": f"the zebra number {i} walks" if i < 300 else f"a lion {i}"}
        for i in range(400)
    ])
    keyword = await archive.search("zebra", "keyword", limit=5)
    hybrid = await archive.search("zebra", "hybrid", limit=200)
    assert keyword.total == 300 and hybrid.total == hybrid.matched == 200
    assert all("zebra" in h.snippet for h in hybrid.hits)
    assert hybrid.count_text() == "200 matches"
    both = await archive.search("zebra lion", "hybrid", limit=5)  # any of up to three words
    assert both.matched == both.total
    nothing = await archive.search("qwxz", "hybrid", limit=5)
    assert nothing.matched == 0 and nothing.count_text() == f"{nothing.total} similar"
    await archive.close()
