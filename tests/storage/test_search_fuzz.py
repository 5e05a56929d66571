"""Random query strings against a real index: a result or a QuerySyntaxError, never a crash."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from storage import Archive, Message
from storage.search.query import QuerySyntaxError


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(alphabet=st.sampled_from('ab "*-:()\\OR\x00é漢 '), max_size=40))
def test_random_queries_never_crash(tmp_path_factory: pytest.TempPathFactory, text: str) -> None:
    async def run() -> None:
        root = tmp_path_factory.getbasetemp() / "fuzz-archive"
        archive = await Archive.open(root, create=True)
        if not await archive.user_exists("u"):
            await archive.create_user("u")
            sid = (await archive.create_session("u", "t")).session_id
            await archive.add_message("u", sid, Message(role="user", content="ab ba é 漢字 OR"))
        for mode in ("keyword", "hybrid"):
            with contextlib.suppress(QuerySyntaxError):  # the other allowed outcome
                await archive.search(text, mode)  # type: ignore[arg-type]

    asyncio.run(asyncio.wait_for(run(), 30))
