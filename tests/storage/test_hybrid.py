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
