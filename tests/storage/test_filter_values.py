"""Filter values given as arguments (the GUI's, the command line's --user) that cannot be
searched: a QuerySyntaxError naming the filter and where, as for the query's own text."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from storage import Archive
from storage.search.query import QuerySyntaxError
from tests.storage.search_support import archive_with

pytestmark = pytest.mark.asyncio


async def filled(root: Path) -> Archive:
    archive = await archive_with(root, {"m1": "alpha bravo", "m2": "alpha charlie"})
    assert (await archive.search("alpha", "keyword")).total == 2
    return archive


@pytest.mark.parametrize("mode", ["keyword", "semantic", "hybrid"])
@pytest.mark.parametrize("name", ["user", "session", "role", "source"])
async def test_a_filter_value_that_is_not_utf8_is_a_syntax_error(
    tmp_path: Path, name: str, mode: str
) -> None:
    """What Python makes of the command-line byte 0xFF (surrogateescape) reached tantivy,
    whose ValueError ("Expected Str type for field user") the command line printed as a
    traceback."""
    archive = await filled(tmp_path / "a")
    with pytest.raises(QuerySyntaxError) as caught:
        await archive.search("alpha", mode, **{name: "\udcff"})
    message = str(caught.value)
    assert f"the {name} filter '\\udcff' is not valid UTF-8 (byte 0xFF at character 1 of it)" in (
        message
    )
    message.encode()  # printable: the value is shown escaped
    # Each value of a list is checked; a lone surrogate that is no byte is named as such.
    with pytest.raises(QuerySyntaxError, match=r"\(byte 0xFE at character 3 of it\)"):
        await archive.search("alpha", mode, **{name: ["ada", "ab\udcfe"]})
    with pytest.raises(QuerySyntaxError, match=r"\(U\+D800 at character 1 of it\)"):
        await archive.search("alpha", mode, **{name: "\ud800"})
    # The archive stays usable, and good values still filter.
    assert (await archive.search("alpha", "keyword", user="ada")).total == 2
    await archive.close()


@pytest.mark.parametrize("name", ["after", "before"])
async def test_a_date_filter_that_is_not_utf8_is_a_syntax_error(tmp_path: Path, name: str) -> None:
    """Its error quoted the value as it was: a message holding a lone surrogate cannot be
    printed (UnicodeEncodeError)."""
    archive = await filled(tmp_path / "a")
    with pytest.raises(QuerySyntaxError) as caught:
        await archive.search("alpha", "keyword", **{name: "2024-\udcff"})
    assert "is not valid UTF-8 (byte 0xFF at character 6 of it)" in str(caught.value)
    str(caught.value).encode()
    found = await archive.search("alpha", "keyword", **{name: dt.date(2000, 1, 1)})
    assert found.total == (2 if name == "after" else 0)
    await archive.close()
