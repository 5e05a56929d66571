"""Every list model through QAbstractItemModelTester after fill, inserts, removals, resets."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from storage import Archive
from storage.search.results import Hit, SearchResults
from tests.ui.conftest import run_async, until
from ui.models import (
    DocumentListModel,
    MessageListModel,
    MessageRoles,
    PersonaListModel,
    SearchResultsModel,
    SessionFilterProxy,
    SessionListModel,
    SessionRoles,
    UserListModel,
)
from ui.models.search import snippet_html

ADA_A001 = "chat_session_20250303_091500_000000_a001"
ADA_A002 = "chat_session_20250310_201000_000000_a002"


def test_session_model_pages_and_proxy(qtmodeltester: Any, qloop: Any, sample_copy: Path) -> None:
    async def scenario() -> None:
        archive = await Archive.open(sample_copy)
        model = SessionListModel(page_size=2)
        qtmodeltester.check(model)
        model.set_source(archive, "ada")
        await model.load()
        assert model.rowCount() == 2 and model.canFetchMore()
        await model.fetch_page()
        await model.fetch_page()
        assert model.rowCount() == 4 and not model.canFetchMore()
        proxy = SessionFilterProxy()
        proxy.setSourceModel(model)
        qtmodeltester.check(proxy)
        assert proxy.rowCount() == 3  # the panel is on its own tab
        panels = SessionFilterProxy(panels=True)
        panels.setSourceModel(model)
        assert panels.rowCount() == 1
        # pinned first
        await archive.update_session("ada", ADA_A001, metadata={"pinned": True})
        model.apply_listing(await archive.list_sessions("ada"))
        assert proxy.index(0, 0).data(SessionRoles.SESSION_ID) == ADA_A001
        proxy.set_filter_text("bernoulli")
        assert proxy.rowCount() == 1
        proxy.set_filter_text("")
        # removal and insertion through a fresh listing
        await archive.delete_session("ada", ADA_A002)
        model.apply_listing(await archive.list_sessions("ada"))
        assert model.row_of(ADA_A002) == -1
        new = await archive.create_session("ada", "Fresh")
        model.apply_listing(await archive.list_sessions("ada"))
        assert model.row_of(new.session_id) >= 0
        model.set_source(None, None)
        assert model.rowCount() == 0

    run_async(qloop, scenario())


def test_message_model_both_directions(qtmodeltester: Any, qloop: Any, tmp_path: Path) -> None:
    async def scenario() -> None:
        archive = await Archive.open(tmp_path / "a", create=True)
        await archive.create_user("u")
        session = await archive.create_session("u", "long")
        await archive.add_messages(
            "u", session.session_id,
            [{"role": "user" if i % 2 else "assistant", "content": f"message {i}"}
             for i in range(250)],
        )
        model = MessageListModel(page_size=40)
        qtmodeltester.check(model)
        await model.open(archive, session)
        assert model.rowCount() == 40 and model.start == 210
        assert model.index(39, 0).data(MessageRoles.CONTENT) == "message 249"
        assert await model.fetch_older() == 40
        assert model.index(0, 0).data(MessageRoles.CONTENT) == "message 170"
        # open in the middle, around a message
        middle = (await archive.get_messages("u", session.session_id, 1, 100))[0]
        await model.open(archive, session, around=middle.message_id)
        assert model.has_older and model.canFetchMore()
        await model.fetch_newer()
        assert model.row_of(middle.message_id) >= 0
        # appended by someone else while shown
        await model.open(archive, session)
        await archive.add_message("u", session.session_id, {"role": "user", "content": "late"})
        await model.sync_tail()
        assert model.index(model.rowCount() - 1, 0).data(MessageRoles.CONTENT) == "late"
        # find
        model.set_find_term("message 24")
        assert len(model.matches) == 10
        row = model.step_match(True)
        assert row >= 0 and model.index(row, 0).data(MessageRoles.FIND_TERM) == "message 24"
        model.clear()

    run_async(qloop, scenario())


def test_branch_and_small_models(qtmodeltester: Any, qloop: Any, sample_copy: Path) -> None:
    async def scenario() -> None:
        archive = await Archive.open(sample_copy)
        session = await archive.get_session("ada", ADA_A002)
        model = MessageListModel()
        qtmodeltester.check(model)
        await model.open(archive, session)
        leaves = await archive.list_leaves("ada", ADA_A002)
        assert len(leaves) == 2
        await model.show_branch(leaves[0])
        assert model.rows[-1].message_id == leaves[0]
        users = UserListModel()
        qtmodeltester.check(users)
        users.reset(await archive.list_users())
        personas = PersonaListModel()
        qtmodeltester.check(personas)
        personas.reset(await archive.list_personas("ada"))
        assert personas.rowCount() >= 3
        docs = DocumentListModel()
        qtmodeltester.check(docs)
        docs.reset(await archive.list_documents("grace"))
        docs.remove(0)
        docs.append(await archive.list_documents("grace"))

    run_async(qloop, scenario())


def test_search_results_model(qtmodeltester: Any) -> None:
    hit = Hit(kind="message", user_id="ada", session_id="s", score=1.0,
              snippet="a <b> tag and rust", highlights=[(14, 18)], message_id="m")
    model = SearchResultsModel()
    qtmodeltester.check(model)
    model.reset([hit])
    model.append([Hit(kind="document", user_id="ada", session_id=None, score=0.5, doc_id="d",
                      chunk=0, snippet="x")])
    model.remove(1)
    assert "&lt;b&gt;" in snippet_html(hit) and ">rust</b>" in snippet_html(hit)


@pytest.mark.parametrize("bad", [-1, 99])
def test_data_never_raises_on_bad_index(bad: int) -> None:
    model = UserListModel()
    assert model.data(model.index(bad, 0)) is None


def test_document_kind_is_a_short_type_a_person_knows() -> None:
    from storage import DocumentRecord
    from ui.models.lists import document_kind

    docx = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"

    def record(name: str, mime: str) -> DocumentRecord:
        return DocumentRecord(doc_id="d1", filename=name, original_name=name, mime_type=mime)

    assert document_kind(record("Report.docx", docx)) == "DOCX"
    assert document_kind(record("notes.txt", "text/plain")) == "TXT"
    assert document_kind(record("README", "text/plain")) == "plain"
    assert document_kind(record("blob", docx)) == "file"
    assert document_kind(record("archive.tar.gz.backup-copy", "application/gzip")) == "gzip"


def test_an_imported_session_shows_its_source_as_one_word(qtmodeltester: Any) -> None:
    """An import records its source as {"format", "id", "title"}: the list and the details
    pane show the format, not the dict; flags show only when set."""
    from storage import Session
    from ui.widgets.details import session_html

    meta = {
        "source": {"format": "chatgpt", "id": "6b0f", "title": "Weeknight pasta"},
        "archived": False,
        "pinned": False,
        "model": "gpt-5",
    }
    session = Session(session_id="chatgpt_6b0f", user_id="ada", title="Pasta", metadata=meta)
    model = SessionListModel()
    qtmodeltester.check(model)
    model.reset([session])
    shown = model.data(model.index(0, 0))
    assert shown.endswith("0 messages · chatgpt"), shown
    assert model.data(model.index(0, 0), SessionRoles.SOURCE) == "chatgpt"
    html = session_html(session)
    assert "<b>Source</b></td><td>chatgpt</td>" in html
    assert "format" not in html and "archived" not in html.lower() and "Pinned" not in html
    assert "<b>model</b></td><td>gpt-5</td>" in html
    archived = session.model_copy(update={"metadata": {**meta, "archived": True}})
    assert "<b>Archived</b></td><td>yes</td>" in session_html(archived)


def test_a_view_asking_for_more_outside_the_loop_starts_nothing(
        qloop: Any, sample_copy: Path) -> None:
    """Views ask for more rows while Qt processes events, also outside the asyncio loop (while
    the app shuts down): no fetch starts then (it would run with no loop); inside it, one does.
    (No model tester here: it asks for more itself, inside the loop.)"""
    model = SessionListModel(page_size=2)

    async def load() -> None:
        model.set_source(await Archive.open(sample_copy), "ada")
        await model.load()

    run_async(qloop, load())
    assert model.canFetchMore()
    model.fetchMore()  # outside the loop
    assert not model._tasks and model.rowCount() == 2

    async def more() -> None:
        model.fetchMore()
        assert model._tasks
        await asyncio.gather(*model._tasks)

    run_async(qloop, more())
    assert model.rowCount() == 4

    # the messages of a conversation opened at its first, and a search's hits
    messages = MessageListModel(page_size=2)
    hit = [Hit(kind="message", user_id="ada", session_id=ADA_A001, score=1.0, message_id=f"m{i}",
               key=f"m/ada/{ADA_A001}/m{i}") for i in range(4)]
    hits = SearchResultsModel(page_size=2)

    async def fetch(offset: int, limit: int) -> SearchResults:
        return SearchResults("q", "keyword", 4, hit[offset : offset + limit])

    async def open_them() -> None:
        archive = await Archive.open(sample_copy)
        first = (await archive.get_messages("ada", ADA_A001, None))[0]
        await messages.open(archive, await archive.get_session("ada", ADA_A001),
                            around=first.message_id)
        hits.show_results(SearchResults("q", "keyword", 4, hit[:2]), fetch)

    run_async(qloop, open_them())
    assert messages.canFetchMore() and hits.canFetchMore()
    messages.fetchMore()  # outside the loop
    hits.fetchMore()
    assert not messages._tasks and not hits.fetching

    async def more_of_them() -> None:
        messages.fetchMore()
        hits.fetchMore()
        assert messages._tasks and hits.fetching
        await asyncio.gather(*messages._tasks)
        await until(lambda: not hits.fetching)

    run_async(qloop, more_of_them())
    assert hits.rowCount() == 4 and messages.rowCount() > 2
