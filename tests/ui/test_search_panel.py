"""The search panel: Enter, paging, date boxes and filters, archive and user changes, what a
row shows, document hits, errors, the status line and the keyboard."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import shutil
import unicodedata
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QModelIndex, Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QStyleOptionViewItem

from resources.sample import sample_archive_path
from storage import Archive
from storage.search.query import QuerySyntaxError, parse
from storage.search.results import Hit, SearchResults
from tests.ui.conftest import run_async, until
from ui.models import HitRoles
from ui.models.search import SearchResultsModel, hit_key, lead_cut
from ui.widgets.main_window import MainWindow
from ui.widgets.search import (
    SNIPPET_LINES,
    HitDelegate,
    InputError,
    Request,
    SearchPanel,
    box_date,
    filter_conflict,
)
from ui.widgets.sidebar import PREVIEW_CHARS, TextPreview

A002 = "chat_session_20250310_201000_000000_a002"
A003 = "chat_session_20250402_183000_000000_a003"
Search = Callable[..., Any]
# The status after a search: how many matched its words, how many are there for their meaning.
COUNT = re.compile(r"(No matches|[\d,]+ match(es)?(, [\d,]+ similar)?|[\d,]+ similar)"
                   r"(, [\d,]+ shown)?$")


def hits(panel: SearchPanel) -> list[Hit]:
    model = panel.model
    return [model.index(r, 0).data(HitRoles.RECORD) for r in range(model.rowCount())]


async def ready(window: MainWindow, path: Path | Archive) -> SearchPanel:
    """The archive open, the search panel shown, in keyword mode (what the text says)."""
    if isinstance(path, Archive):
        await window.set_archive(path)
    else:
        await window.open_archive(path)
    window.show_search()
    await window.tasks.wait_idle(timeout=30)
    panel = window.search_panel
    panel.mode.setCurrentIndex(0)
    return panel


async def search_for(panel: SearchPanel, text: str) -> list[Hit]:
    panel.query.setText(text)
    panel.run_now()
    assert panel.task is not None
    await panel.task
    return hits(panel)


def fake_hits(n: int, word: str = "hit") -> list[Hit]:
    return [
        Hit(
            kind="message",
            user_id="ada",
            session_id=f"s{i:03}",
            score=1.0 - i / 1000,
            snippet=f"{word} number {i}",
            highlights=[(0, len(word))],
            message_id=f"m{i}",
        )
        for i in range(n)
    ]


def standalone_panel(qtbot: Any, search: Search, page_size: int = 50) -> SearchPanel:
    panel = SearchPanel()
    qtbot.addWidget(panel)
    panel.resize(420, 520)
    panel.show()
    qtbot.waitExposed(panel)
    panel.set_search(search, "ada")
    panel.set_page_size(page_size)
    panel.mode.setCurrentIndex(0)
    return panel


# ------------------------------------------------------------------ 1. Enter
def test_enter_right_after_typing_opens_the_first_hit_of_what_is_typed(
    window: MainWindow, qloop: Any, sample_copy: Path
) -> None:
    opened: list[Hit] = []

    async def scenario() -> None:
        panel = await ready(window, sample_copy)
        assert (await search_for(panel, "gzip"))[0].message_id == "msg_a001_14"
        panel.hit_activated.connect(opened.append)
        panel.query.setFocus()
        panel.query.selectAll()
        QTest.keyClicks(panel.query, "Bernoulli")
        QTest.keyClick(panel.query, Qt.Key.Key_Return)  # at once: the gzip hits still listed
        assert opened == []
        await until(lambda: bool(opened), timeout=15)
        assert len(opened) == 1 and opened[0] == hits(panel)[0]
        assert "bernoulli" in opened[0].snippet.lower()
        await until(lambda: window.session is not None and window.session.session_id == A002)
        await window.tasks.wait_idle()
        opened.clear()
        QTest.keyClick(panel.query, Qt.Key.Key_Return)  # its hits are listed: opened at once
        assert opened == [hits(panel)[0]]
        await window.tasks.wait_idle()

        # Enter, then the query changes before its hits arrive: nothing is opened.
        gate = asyncio.Event()
        real = window.archive.search

        async def held(query: str, **kwargs: Any) -> SearchResults:
            await gate.wait()
            return await real(query, **kwargs)

        panel.set_search(held, window.user_id)
        opened.clear()
        panel.query.selectAll()
        QTest.keyClicks(panel.query, "gzip")
        QTest.keyClick(panel.query, Qt.Key.Key_Return)
        QTest.keyClicks(panel.query, "x")  # "gzipx" now; its search is debounced
        gate.set()  # the hits of "gzip" arrive first
        await until(lambda: panel.status.text() == "No matches", timeout=15)  # of "gzipx"
        assert opened == []

    run_async(qloop, scenario(), timeout=60)
    assert window.errors == []


# ------------------------------------------------------------------ 2. paging
def test_hits_are_fetched_a_page_at_a_time(
    window: MainWindow, qloop: Any, sample_copy: Path
) -> None:
    calls: list[tuple[str, int, int]] = []
    flying = [0, 0]  # requests in flight now, most at once

    async def scenario() -> None:
        archive = await Archive.open(sample_copy, overrides={"search": {"page_size": "20"}})
        panel = await ready(window, archive)
        real = archive.search
        gate = asyncio.Event()

        async def recorded(
            query: str, *, mode: str, limit: int, offset: int, **filters: Any
        ) -> SearchResults:
            calls.append((query, offset, limit))
            flying[0] += 1
            flying[1] = max(flying)
            try:
                if offset:
                    await gate.wait()
                return await real(query, mode=mode, limit=limit, offset=offset, **filters)
            finally:
                flying[0] -= 1

        panel.set_search(recorded, window.user_id)
        started: list[str] = []
        panel.search_started.connect(started.append)
        everything = await real("the", mode="keyword", limit=500)
        assert everything.total == len(everything.hits) > 40

        await search_for(panel, "the")
        assert panel.model.rowCount() == 20
        assert panel.status.text() == f"{everything.total} matches, 20 shown"
        panel.view.scrollToBottom()
        await until(lambda: len(calls) == 2)  # the next page, asked for by the view
        panel.model.fetchMore(QModelIndex())  # asked again while it is on its way: no
        panel.view.scrollToBottom()
        assert len(calls) == 2 and not panel.model.canFetchMore(QModelIndex())
        gate.set()
        while panel.model.rowCount() < everything.total:
            shown = panel.model.rowCount()
            panel.view.scrollToBottom()
            await until(lambda n=shown: panel.model.rowCount() > n, timeout=15)
        assert panel.status.text() == f"{everything.total} matches"
        assert not panel.model.canFetchMore(QModelIndex())
        assert [(o, n) for _, o, n in calls] == [(o, 20) for o in range(0, len(calls) * 20, 20)]
        assert len(calls) == -(-everything.total // 20)
        assert flying[1] == 1  # one request at a time
        assert started == ["the"]  # pages are not new searches
        keys = [hit_key(h) for h in hits(panel)]
        assert len(set(keys)) == len(keys) == everything.total
        assert set(keys) == {hit_key(h) for h in everything.hits}

        # A page on its way when the query changes is dropped.
        gate.clear()
        await search_for(panel, "python")
        panel.view.scrollToBottom()
        await until(lambda: calls[-1] == ("python", 20, 20))
        data = await search_for(panel, "data")
        gate.set()
        await until(lambda: flying[0] == 0)
        await asyncio.sleep(0)
        assert hits(panel) == data and len(data) == (await real("data", mode="keyword")).total
        assert all("data" in h.snippet.lower() for h in data)

    run_async(qloop, scenario(), timeout=90)
    assert window.errors == []


def test_the_list_asks_for_the_next_page_at_its_end(
    qtbot: Any, qloop: Any, qtmodeltester: Any
) -> None:
    every = fake_hits(120)
    calls: list[tuple[int, int]] = []

    async def fake(
        query: str, *, mode: str, limit: int, offset: int, **filters: Any
    ) -> SearchResults:
        calls.append((offset, limit))
        start = max(0, offset - 1)  # each page repeats the last hit of the one before
        return SearchResults(query, mode, len(every), every[start : start + limit])  # type: ignore[arg-type]

    panel = standalone_panel(qtbot, fake, page_size=20)

    async def scenario() -> None:
        await search_for(panel, "hit")
        assert calls == [(0, 20)] and panel.status.text() == "120 matches, 20 shown"
        for _ in range(3):  # not scrolled to the end: no page asked for
            await asyncio.sleep(0)
            QApplication.processEvents()
        assert calls == [(0, 20)]
        panel.view.scrollToBottom()
        await until(lambda: panel.model.rowCount() == 39)  # 19 new, the repeated one skipped
        assert calls == [(0, 20), (20, 20)]
        qtmodeltester.check(panel.model)  # every change from here on is checked
        while panel.model.canFetchMore(QModelIndex()) or panel.model.fetching:
            shown = panel.model.rowCount()
            panel.view.scrollToBottom()
            await until(lambda n=shown: panel.model.rowCount() > n)
        assert [o for o, _ in calls] == [0, 20, 39, 58, 77, 96, 115]
        assert hits(panel) == every and panel.status.text() == "120 matches"

    run_async(qloop, scenario(), timeout=30)


def test_a_page_that_fails_is_said_and_the_hits_stay(
    qtbot: Any, qloop: Any, qtmodeltester: Any
) -> None:
    every = fake_hits(60)

    async def fake(
        query: str, *, mode: str, limit: int, offset: int, **filters: Any
    ) -> SearchResults:
        if offset:
            raise OSError(5, "Input/output error", "/archive/.index/fulltext")
        return SearchResults(query, mode, len(every), every[:limit])  # type: ignore[arg-type]

    panel = standalone_panel(qtbot, fake, page_size=20)
    qtmodeltester.check(panel.model)
    failures: list[BaseException] = []
    panel.search_failed.connect(failures.append)

    async def scenario() -> None:
        await search_for(panel, "hit")
        panel.view.scrollToBottom()
        await until(lambda: bool(failures))
        assert panel.model.rowCount() == 20 and not panel.model.canFetchMore(QModelIndex())
        status = panel.status.text()
        assert status.startswith("60 matches, 20 shown — more could not be loaded")
        assert "Input/output error" in status

    run_async(qloop, scenario(), timeout=30)


# ------------------------------------------------------------------ 3. dates and filters
def test_dates_and_filters_go_to_the_archive_as_arguments(
    window: MainWindow, qloop: Any, sample_copy: Path
) -> None:
    calls: list[tuple[str, dict[str, Any]]] = []

    async def scenario() -> None:
        panel = await ready(window, sample_copy)
        real = window.archive.search

        async def recorded(query: str, **kwargs: Any) -> SearchResults:
            calls.append((query, kwargs))
            return await real(query, **kwargs)

        panel.set_search(recorded, window.user_id)
        assert await search_for(panel, "python")
        panel.after.setText("2025-13-45")
        panel.run_now()
        await panel.task
        assert panel.status.text().startswith("after: '2025-13-45' is not a date (use YYYY")
        assert panel.model.rowCount() == 0 and len(calls) == 1  # not searched unfiltered
        for text, when in (
            ("2025", dt.datetime(2025, 1, 1)),
            ("2025-03", dt.datetime(2025, 3, 1)),
            ("2025-03-05", dt.datetime(2025, 3, 5)),
            ("2025-03-05T13:30", dt.datetime(2025, 3, 5, 13, 30)),
        ):
            panel.after.setText(text)
            panel.run_now()
            await panel.task
            assert calls[-1] == (
                "python",
                {"mode": "keyword", "limit": 50, "offset": 0, "after": when.astimezone()},
            )
            assert COUNT.match(panel.status.text())
        panel.before.setText("yesterday")
        panel.run_now()
        await panel.task
        assert panel.status.text().startswith("before: 'yesterday' is not a date")
        panel.after.clear()
        panel.before.clear()

        # The panel's filters are arguments: an error's position counts what was typed.
        panel.role.setCurrentIndex(panel.role.findText("assistant"))
        await search_for(panel, "gzip OR")
        with pytest.raises(QuerySyntaxError) as typed:
            parse("gzip OR")
        assert panel.status.text() == str(typed.value)  # "… at character 6", as typed
        assert calls[-1] == (
            "gzip OR",
            {"mode": "keyword", "limit": 50, "offset": 0, "role": "assistant"},
        )
        # A filter typed in the query that the Role box rules out: said, not searched.
        before = len(calls)
        assert await search_for(panel, "role:user gzip") == []
        assert panel.status.text() == "role:user in the query and Role 'assistant' cannot both hold"
        assert len(calls) == before
        found = await search_for(panel, "role:assistant python")
        assert found and {h.role for h in found} == {"assistant"}
        panel.scope.setCurrentIndex(1)  # this user
        await search_for(panel, "python")
        assert calls[-1][1]["user"] == window.user_id == "ada"
        assert {h.user_id for h in hits(panel)} == {"ada"}

    run_async(qloop, scenario(), timeout=60)
    assert window.errors == []


# ------------------------------------------------------------------ 4. another archive
def grace_only(tmp_path: Path) -> Path:
    """A copy of the sample archive without user ada."""
    other = tmp_path / "other"
    shutil.copytree(sample_archive_path(), other)
    shutil.rmtree(other / "users" / "ada")
    return other


def test_another_archive_drops_the_hits_and_the_search_in_flight(
    window: MainWindow, qloop: Any, sample_copy: Path, tmp_path: Path
) -> None:
    other = grace_only(tmp_path)

    async def scenario() -> None:
        indexed = await Archive.open(other)  # searched at once: indexed already
        await indexed.refresh_index()
        await indexed.close()
        panel = await ready(window, sample_copy)
        assert {h.user_id for h in await search_for(panel, "python")} == {"ada", "grace"}
        gate = asyncio.Event()
        real = window.archive.search

        async def slow(query: str, **kwargs: Any) -> SearchResults:  # a big archive's search
            await gate.wait()
            return await real(query, **kwargs)

        panel.set_search(slow, window.user_id)
        panel.run_now()
        first = panel.task
        assert first is not None
        await asyncio.sleep(0)  # it is on its way
        await window.open_archive(other)
        gate.set()
        await until(
            lambda: (
                panel.task is not first
                and panel.task is not None
                and panel.task.done()
                and panel.model.rowCount() > 0
            ),
            timeout=15,
        )
        assert first.cancelled()
        assert {h.user_id for h in hits(panel)} == {"grace"}  # the query, in this archive
        assert COUNT.match(panel.status.text())
        panel.view.activated.emit(panel.model.index(0, 0))
        await until(lambda: window.session is not None)
        await window.tasks.wait_idle()

    run_async(qloop, scenario(), timeout=60)
    assert window.errors == []


def test_an_archive_opened_unindexed_is_searched_again_once_indexed(
    window: MainWindow, qloop: Any, sample_copy: Path, tmp_path: Path
) -> None:
    other = grace_only(tmp_path)

    async def scenario() -> None:
        panel = await ready(window, sample_copy)
        assert {h.user_id for h in await search_for(panel, "python")} == {"ada", "grace"}
        await window.open_archive(other)  # no index yet: the window builds it in a worker
        await until(
            lambda: bool(hits(panel)) and {h.user_id for h in hits(panel)} == {"grace"}, timeout=30
        )
        await window.tasks.wait_idle(timeout=30)
        assert window.index_report is not None and window.index_report.sources_indexed

    run_async(qloop, scenario(), timeout=60)
    assert window.errors == []


def test_an_archive_without_users_lists_no_documents(
    window: MainWindow, qloop: Any, sample_copy: Path, tmp_path: Path
) -> None:
    async def scenario() -> None:
        await window.open_archive(sample_copy)
        await window.tasks.wait_idle(timeout=30)
        await window.select_user("grace")
        assert window.sidebar.documents.rowCount() > 0
        await window.open_archive(tmp_path / "empty", create=True)
        await window.tasks.wait_idle(timeout=30)
        assert window.sidebar.documents.rowCount() == 0
        assert window.sidebar.sessions.rowCount() == 0
        assert window.sidebar.personas.rowCount() == 0
        assert window.user_id is None

    run_async(qloop, scenario(), timeout=60)
    assert window.errors == []


# ------------------------------------------------------------------ 5. another user
def test_another_user_keeps_the_hits_unless_they_are_this_users(
    window: MainWindow, qloop: Any, sample_copy: Path
) -> None:
    async def scenario() -> None:
        panel = await ready(window, sample_copy)
        found = await search_for(panel, "python")
        status = panel.status.text()
        assert COUNT.match(status)
        combo = window.sidebar.user_combo
        combo.setCurrentIndex(window.sidebar.users.row_of("grace"))
        await until(lambda: window.user_id == "grace")
        await window.tasks.wait_idle()
        assert panel.status.text() == status and hits(panel) == found

        panel.scope.setCurrentIndex(1)  # this user: grace's hits
        await until(lambda: bool(hits(panel)) and {h.user_id for h in hits(panel)} == {"grace"})
        combo.setCurrentIndex(window.sidebar.users.row_of("ada"))
        await until(
            lambda: bool(hits(panel)) and {h.user_id for h in hits(panel)} == {"ada"}, timeout=15
        )
        await until(lambda: COUNT.match(panel.status.text()) is not None)
        await window.tasks.wait_idle()

    run_async(qloop, scenario(), timeout=60)
    assert window.errors == []


# ------------------------------------------------------------------ 6. what a row shows
def xylophone_hit(snippet: str, start: int) -> Hit:
    """A message hit whose snippet has "xylophone" highlighted at ``start``."""
    return Hit(
        kind="message",
        user_id="ada",
        session_id="s1",
        score=1.0,
        snippet=snippet,
        highlights=[(start, start + len("xylophone"))],
        message_id="m1",
        title="Long",
    )


def laid_out_row(
    qtbot: Any, qloop: Any, qtmodeltester: Any, snippet: str
) -> tuple[SearchPanel, QModelIndex, HitDelegate, QStyleOptionViewItem, Any]:
    """A panel listing one hit of ``snippet`` ("xylophone" highlighted; keep the panel
    while the rest is used: they are its), the hit's row, the delegate, the row's style
    option and the document the row lays out and paints."""
    hit = xylophone_hit(snippet, snippet.index("xylophone"))

    async def fake(query: str, **kwargs: Any) -> SearchResults:
        return SearchResults(query, "keyword", 1, [hit])

    panel = standalone_panel(qtbot, fake)
    qtmodeltester.check(panel.model)
    run_async(qloop, search_for(panel, "xylophone"))
    index = panel.model.index(0, 0)
    delegate = panel.view.itemDelegate()
    assert isinstance(delegate, HitDelegate)
    option = QStyleOptionViewItem()
    option.rect = panel.view.visualRect(index)
    option.font = panel.view.font()
    option.palette = panel.view.palette()
    return panel, index, delegate, option, delegate._doc(option, index)


def test_a_row_shows_its_first_highlight(qtbot: Any, qloop: Any, qtmodeltester: Any) -> None:
    text = " ".join(f"filler{i}" for i in range(30))  # ~230 characters before the match
    snippet = f"{text} xylophone and a few words after it"
    _panel, index, delegate, option, doc = laid_out_row(qtbot, qloop, qtmodeltester, snippet)
    found = doc.find("xylophone")
    block = found.block()
    line = block.layout().lineForTextPosition(found.selectionStart() - block.position())
    bottom = doc.documentLayout().blockBoundingRect(block).top() + line.y() + line.height()
    assert bottom <= delegate._text_height(option.font)  # within the lines a row shows
    laid_out = doc.toPlainText()
    assert "…" in laid_out and "filler0 " not in laid_out  # starts shortly before the match
    html = index.data(HitRoles.SNIPPET_HTML)
    assert html.startswith("…filler") and ">xylophone</b>" in html
    assert snippet in index.data(Qt.ItemDataRole.ToolTipRole)  # the tooltip has it all
    assert SNIPPET_LINES == 3


# ------------------------------------------------------------------ 7. document hits
def test_a_document_hit_shows_its_passage(
    window: MainWindow, qloop: Any, sample_copy: Path, tmp_path: Path
) -> None:
    library = tmp_path / "long_notes.txt"
    library.write_text(
        "".join(
            f"Paragraph {i}: ordinary filler about gardens and weather. 😀\n\n" for i in range(800)
        )
        + "The xylophonist arrived at the very end of the document.\n"
    )
    attached = tmp_path / "attached_notes.txt"
    attached.write_text("Filler line.\n" * 50 + "A marimbaist is mentioned here.\n")

    async def scenario() -> None:
        await window.open_archive(sample_copy)
        await window.tasks.wait_idle(timeout=30)
        await window.archive.ingest([library], "ada")
        await window.archive.ingest([attached], "ada", A003)
        await window.select_user("ada")
        panel = await ready(window, window.archive)

        found = await search_for(panel, "xylophonist")
        assert found[0].kind == "document" and found[0].session_id is None
        assert found[0].char_start and found[0].char_start > 40_000
        panel.view.activated.emit(panel.model.index(0, 0))
        preview = window.sidebar.preview
        await until(lambda: preview.textCursor().hasSelection(), timeout=15)
        await window.tasks.wait_idle()
        assert window.sidebar.tabs.currentIndex() == 2
        assert preview.textCursor().selectedText() == "xylophonist"  # the word matched
        (passage,) = preview.extraSelections()  # its chunk, marked
        assert passage.cursor.selectedText().endswith(
            "xylophonist arrived at the very end of the document."
        )
        assert "Paragraph 799" in passage.cursor.selectedText()
        bar = preview.verticalScrollBar()
        assert bar.maximum() > 0 and bar.value() > bar.maximum() // 2  # scrolled to it
        assert "the search hit is selected" in window.sidebar.preview_label.text()

        found = await search_for(panel, "marimbaist")
        assert found[0].kind == "document" and found[0].session_id == A003
        panel.view.activated.emit(panel.model.index(0, 0))
        details = window.details
        await until(lambda: details.document_preview.textCursor().hasSelection(), timeout=15)
        await window.tasks.wait_idle()
        assert window.session is not None and window.session.session_id == A003
        current = details.documents_view.currentIndex()
        assert details.documents.record(current.row()).doc_id == found[0].doc_id
        assert details.document_preview.textCursor().selectedText() == "marimbaist"

        # A hit on a document removed since (from the library, or from the session).
        assert not window.show_library_hit(replace(found[0], doc_id="gone"))
        assert window.status_label.text() == f"“{found[0].title}” is no longer in the library"
        assert not window.select_attached_hit(window.session, replace(found[0], doc_id="gone"))
        assert window.status_label.text().endswith("is no longer attached to this session")
        assert details.documents.record(current.row()).doc_id == found[0].doc_id  # kept

    run_async(qloop, scenario(), timeout=90)
    assert window.errors == []


# ------------------------------------------------------------------ 8. errors
def test_an_error_of_the_archive_is_said_and_the_stale_hits_go(
    window: MainWindow, qloop: Any, sample_copy: Path
) -> None:
    async def scenario() -> None:
        panel = await ready(window, sample_copy)
        assert await search_for(panel, "gzip")
        index = sample_copy / ".index"
        shutil.rmtree(index)
        index.write_text("not a folder")
        await search_for(panel, "gzip python")
        assert panel.model.rowCount() == 0
        assert panel.status.text().startswith("Search failed — ")
        assert len(window.errors) == 1 and ".index" in window.errors[0]

        async def broken(query: str, **kwargs: Any) -> SearchResults:
            raise RuntimeError("search index damaged: meta.json is not JSON")

        async def working(query: str, **kwargs: Any) -> SearchResults:
            return SearchResults(query, "keyword", 3, fake_hits(3))

        panel.set_search(working, window.user_id)
        assert len(await search_for(panel, "hit")) == 3
        panel.set_search(broken, window.user_id)
        await search_for(panel, "hit")
        assert panel.model.rowCount() == 0
        assert panel.status.text() == (
            "Search failed — Unexpected error: search index damaged: meta.json is not JSON"
        )
        assert window.errors[-1].endswith("meta.json is not JSON")

        never = asyncio.Event()

        async def hanging(query: str, **kwargs: Any) -> SearchResults:
            await never.wait()
            raise AssertionError("unreachable")

        panel.set_search(hanging, window.user_id)
        panel.run_now()
        first = panel.task
        await asyncio.sleep(0)
        panel.run_now()  # the next search cancels it: cancelled, not an error
        assert first is not None
        await asyncio.wait([first], timeout=5)
        assert first.cancelled()
        assert len(window.errors) == 2

    run_async(qloop, scenario(), timeout=60)


# ------------------------------------------------------------------ minor
def test_the_status_line_counts_and_keeps_long_notes_short(
    qtbot: Any, qloop: Any, qtmodeltester: Any
) -> None:
    note = "semantic search uses the fallback embedder: " + "{'meta': 1} " * 170 + "\nmore"
    results = {
        "one": SearchResults("one", "keyword", 1, fake_hits(1)),
        "two": SearchResults("two", "hybrid", 2, fake_hits(2), degraded=note, matched=2),
    }

    async def fake(query: str, **kwargs: Any) -> SearchResults:
        return results[query]

    panel = standalone_panel(qtbot, fake)
    qtmodeltester.check(panel.model)

    async def scenario() -> None:
        await search_for(panel, "one")
        assert panel.status.text() == "1 match"
        await search_for(panel, "two")
        status = panel.status.text()
        assert status.startswith("2 matches — semantic search uses the fallback embedder: ")
        assert len(status) <= len("2 matches — ") + 160 and status.endswith("…")
        assert panel.status.toolTip() == note

    run_async(qloop, scenario(), timeout=30)
    assert len(note) > 2000


def test_keys_move_between_the_query_and_the_hits(
    qtbot: Any, qloop: Any, qtmodeltester: Any
) -> None:
    async def fake(query: str, **kwargs: Any) -> SearchResults:
        return SearchResults(query, "keyword", 5, fake_hits(5))

    panel = standalone_panel(qtbot, fake)
    qtmodeltester.check(panel.model)
    panel.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is panel)
    run_async(qloop, search_for(panel, "hit"))
    panel.query.setFocus()
    for key in (Qt.Key.Key_Down, Qt.Key.Key_PageDown):
        panel.view.setCurrentIndex(QModelIndex())
        QTest.keyClick(panel.query, key)
        assert QApplication.focusWidget() is panel.view
        assert panel.view.currentIndex().row() == 0
        QTest.keyClick(panel.view, Qt.Key.Key_Escape)
        assert QApplication.focusWidget() is panel.query
    QTest.keyClick(panel.query, Qt.Key.Key_Escape)
    assert panel.query.text() == ""


# ------------------------------------------------------------------ review of the rework
def test_an_attached_document_hit_is_seen_beside_the_search_panel(
    window: MainWindow, qloop: Any, sample_copy: Path, tmp_path: Path
) -> None:
    attached = tmp_path / "attached_notes.txt"
    attached.write_text("Filler line.\n" * 400 + "A wombatologist is mentioned here.\n")

    async def scenario() -> None:
        await window.open_archive(sample_copy)
        await window.tasks.wait_idle(timeout=30)
        await window.archive.ingest([attached], "ada", A003)
        await window.select_user("ada")
        panel = await ready(window, window.archive)
        assert window.search_dock.isVisible() and not window.details.isVisible()

        found = await search_for(panel, "wombatologist")
        assert found[0].kind == "document" and found[0].session_id == A003
        panel.view.activated.emit(panel.model.index(0, 0))
        preview = window.details.document_preview
        await until(lambda: preview.textCursor().hasSelection(), timeout=15)
        await window.tasks.wait_idle()
        assert preview.textCursor().selectedText() == "wombatologist"
        # Seen: the preview and every widget up to the window are shown, with room, and the
        # selected word is inside the part of the text in view.
        assert window.search_dock.isVisible()  # the hits stay beside it
        widget: Any = preview
        while widget is not None:
            assert widget.isVisible(), widget
            widget = widget.parentWidget()
        assert not preview.visibleRegion().isEmpty()
        assert preview.viewport().height() > 50 and preview.viewport().width() > 100
        assert preview.viewport().rect().contains(preview.cursorRect())
        assert window.details_toggle.isChecked()

        # The next hit is a message: the search panel has the room again.
        await search_for(panel, "gzip")
        panel.view.activated.emit(panel.model.index(0, 0))
        await until(lambda: window.session is not None and window.session.session_id != A003)
        await window.tasks.wait_idle()
        assert not window.details.isVisible() and window.details_toggle.isChecked()

        # View → Details pane unchecked: shown for the passage, unchecked again after it.
        window.details_toggle.setChecked(False)
        await search_for(panel, "wombatologist")
        panel.view.activated.emit(panel.model.index(0, 0))
        await until(lambda: window.details.document_preview.isVisible(), timeout=15)
        await window.tasks.wait_idle()
        assert window.details.isVisible() and window.details_toggle.isChecked()
        window.search_dock.hide()
        assert not window.details.isVisible() and not window.details_toggle.isChecked()

    run_async(qloop, scenario(), timeout=90)
    assert window.errors == []


def test_a_hit_at_the_end_of_a_long_document_is_shown_whole(qtbot: Any) -> None:
    head = ("filler line of text " * 4 + "\n") * 2600  # lines of 81 characters
    tail = "a long paragraph without a line break " * 30 + "the quokkaphile ends it."
    text = head + tail
    assert len(text) > PREVIEW_CHARS
    span = (len(text) - 400, len(text))  # the last chunk
    view = TextPreview()
    qtbot.addWidget(view)
    part = view.show_text(text, span, ["quokkaphile"])
    shown = view.toPlainText()
    assert shown.endswith(text[span[0] : span[1]])
    assert view.textCursor().selectedText() == "quokkaphile"
    start = len(text) - len(shown)
    assert start == 0 or text[start - 1] == "\n"  # from the start of a line
    assert part == f"characters {start + 1:,}–{len(text):,} of {len(text):,}"


def test_a_hit_word_is_selected_in_a_document_written_with_combining_accents(qtbot: Any) -> None:
    """The index composes text (NFC), so a hit's words are "école" where the document holds
    "e" and a combining accent (as macOS writes it)."""
    text = unicodedata.normalize("NFD", "Notes: je vais à l'école demain.")
    view = TextPreview()
    qtbot.addWidget(view)
    view.show_text(text, (0, len(text)), ["école"])
    assert view.textCursor().selectedText() == unicodedata.normalize("NFD", "école")


def paged_index(n: int) -> tuple[list[Hit], list[tuple[int, int]], Search]:
    """A fake archive's hits (change the list to change the archive), the (offset, limit)
    of each search, and the search."""
    index = fake_hits(n)
    calls: list[tuple[int, int]] = []

    async def search(
        query: str, *, mode: str, limit: int, offset: int, **filters: Any
    ) -> SearchResults:
        calls.append((offset, limit))
        await asyncio.sleep(0.01)
        return SearchResults(query, mode, len(index), index[offset : offset + limit])  # type: ignore[arg-type]

    return index, calls, search


def test_hits_are_read_again_when_the_archive_changes(
    qtbot: Any, qloop: Any, qtmodeltester: Any
) -> None:
    index, calls, search = paged_index(40)
    panel = standalone_panel(qtbot, search, page_size=10)
    qtmodeltester.check(panel.model)

    async def scenario() -> None:
        await search_for(panel, "hit")
        panel.view.scrollToBottom()
        await until(lambda: panel.model.rowCount() == 20)
        panel.view.setCurrentIndex(panel.model.index(12, 0))
        current = hits(panel)[12]
        panel.view.scrollTo(panel.model.index(8, 0), panel.view.ScrollHint.PositionAtTop)
        top = hits(panel)[8]
        # Hits before the user's place go and others come; the list is read again soon.
        del index[2:5]
        index[0:0] = [replace(h, session_id=f"new{i}") for i, h in enumerate(index[:2])]
        panel.archive_changed()
        await until(lambda: calls[-1] == (0, 20) and not panel.model.fetching)
        assert hits(panel) == index[:20]
        assert panel.view.currentIndex().row() == index.index(current)
        assert panel.view.indexAt(panel.view.viewport().rect().topLeft()).row() == index.index(top)
        assert panel.status.text() == "39 matches, 20 shown"

        # A page on its way when the archive changes is not appended at its old offset; and
        # while a job still writes, the list is read again when it asks for more.
        gate = asyncio.Event()
        real = search

        async def held(query: str, **kwargs: Any) -> SearchResults:
            if kwargs["offset"]:
                await gate.wait()
            return await real(query, **kwargs)

        panel.set_search(held, "ada")
        await search_for(panel, "hit")
        panel.view.scrollToBottom()
        await until(lambda: panel.model.fetching)  # the page at offset 10, held
        panel.view.scrollToTop()  # the user reads on (the list does not ask for more)
        before, listed = len(calls), hits(panel)
        del index[0:3]
        panel.archive_changed(settled=False)
        gate.set()
        await asyncio.sleep(0.6)  # longer than RELOAD_MS: not read again yet
        assert len(calls) == before and panel.model.outdated
        assert hits(panel) == listed  # the page read at offset 10 was dropped
        panel.view.scrollToBottom()
        await until(lambda: calls[-1] == (0, 20) and not panel.model.fetching)
        while panel.model.canFetchMore(QModelIndex()) or panel.model.fetching:
            shown = panel.model.rowCount()
            panel.view.scrollToBottom()
            await until(lambda n=shown: panel.model.rowCount() > n)
        assert hits(panel) == index  # none missed, none gone still listed
        assert panel.status.text() == "36 matches"

        # Read again when all were shown, too: the count is never one of before.
        index.append(replace(index[0], session_id="late"))
        panel.archive_changed()
        await until(lambda: panel.status.text() == "37 matches, 36 shown")
        panel.view.scrollToBottom()
        await until(lambda: panel.status.text() == "37 matches")
        assert hits(panel) == index

    run_async(qloop, scenario(), timeout=30)


def test_paging_after_a_deletion_lists_what_the_archive_holds(
    window: MainWindow, qloop: Any, sample_copy: Path
) -> None:
    async def scenario() -> None:
        archive = await Archive.open(sample_copy, overrides={"search": {"page_size": "10"}})
        panel = await ready(window, archive)
        first = await search_for(panel, "the")
        assert panel.model.rowCount() == 10 < panel.model.total
        gone = next(h for h in first if h.kind == "message" and h.user_id == window.user_id)
        await window.archive.delete_session(gone.user_id, gone.session_id)
        await window.tasks.wait_idle(timeout=30)
        while panel.model.canFetchMore(QModelIndex()) or panel.model.fetching:
            shown = panel.model.rowCount()
            panel.view.scrollToBottom()
            await until(lambda n=shown: panel.model.rowCount() > n and not panel.model.fetching)
        fresh = await window.archive.search("the", mode="keyword", limit=1000)
        assert {hit_key(h) for h in hits(panel)} == {hit_key(h) for h in fresh.hits}
        assert all(h.session_id != gone.session_id for h in hits(panel))
        assert panel.status.text() == f"{fresh.total} matches"

    run_async(qloop, scenario(), timeout=60)
    assert window.errors == []


def test_enter_is_forgotten_when_its_search_fails(qtbot: Any, qloop: Any) -> None:
    failing = [True]

    async def flaky(query: str, **kwargs: Any) -> SearchResults:
        await asyncio.sleep(0.01)
        if failing[0]:
            raise OSError(11, "Resource temporarily unavailable")
        return SearchResults(query, "keyword", 3, fake_hits(3))

    panel = standalone_panel(qtbot, flaky)
    opened: list[Hit] = []
    panel.hit_activated.connect(opened.append)

    async def scenario() -> None:
        panel.query.setFocus()
        QTest.keyClicks(panel.query, "hit")
        QTest.keyClick(panel.query, Qt.Key.Key_Return)
        await until(lambda: panel.status.text().startswith("Search failed"))
        failing[0] = False
        panel.refresh()  # the window's, when an index update ends minutes later
        assert panel.task is not None
        await panel.task
        assert panel.status.text() == "3 matches" and opened == []

        # Still running when the same search starts again (an index update ended): opened.
        panel.query.setText("hits")
        QTest.keyClick(panel.query, Qt.Key.Key_Return)
        panel.refresh()
        await until(lambda: bool(opened))
        assert opened == [hits(panel)[0]]

    run_async(qloop, scenario(), timeout=30)


def test_a_page_size_saved_during_a_search_keeps_paging(qtbot: Any, qloop: Any) -> None:
    _index, calls, search = paged_index(65)
    gate = asyncio.Event()

    async def held(query: str, **kwargs: Any) -> SearchResults:
        if not kwargs["offset"]:
            await gate.wait()
        return await search(query, **kwargs)

    panel = standalone_panel(qtbot, held, page_size=20)

    async def scenario() -> None:
        panel.query.setText("hit")
        panel.run_now()
        await asyncio.sleep(0.05)
        panel.set_page_size(50)  # search.page_size saved meanwhile
        gate.set()
        assert panel.task is not None
        await panel.task
        assert panel.model.rowCount() == 20 and panel.model.canFetchMore(QModelIndex())
        panel.view.scrollToBottom()
        await until(lambda: panel.model.rowCount() == 65)
        assert calls == [(0, 20), (20, 50)] and panel.status.text() == "65 matches"

    run_async(qloop, scenario(), timeout=30)


def test_closing_the_window_stops_the_search_panel(
    window: MainWindow, qloop: Any, sample_copy: Path
) -> None:
    calls: list[tuple[str, int]] = []

    async def scenario() -> None:
        archive = await Archive.open(sample_copy, overrides={"search": {"page_size": "5"}})
        panel = await ready(window, archive)
        real = window.archive.search
        never = asyncio.Event()

        async def held(query: str, **kwargs: Any) -> SearchResults:
            calls.append((query, kwargs["offset"]))
            if kwargs["offset"]:
                await never.wait()
            return await real(query, **kwargs)

        panel.set_search(held, window.user_id)
        await search_for(panel, "the")
        panel.view.scrollToBottom()
        await until(lambda: panel.model.fetching)
        page = panel.model._task
        QTest.keyClicks(panel.query, "x")  # typed, and the window closed within the debounce
        window.close()
        await asyncio.sleep(0.5)
        assert calls == [("the", 0), ("the", 5)]  # no search of "thex" after the close
        assert page is not None and page.cancelled()
        assert panel.task is not None and panel.task.done()
        running = [t.get_coro().__qualname__ for t in asyncio.all_tasks() if not t.done()]
        assert not [name for name in running if name.startswith(("Search", "MainWindow"))]
        panel.archive_changed()  # a job the close cancelled ends: the hits are not read again
        await asyncio.sleep(0.6)
        assert calls == [("the", 0), ("the", 5)]

    run_async(qloop, scenario(), timeout=60)


def test_a_search_error_leaves_the_status_bar_when_search_works_again(
    window: MainWindow, qloop: Any, sample_copy: Path
) -> None:
    async def broken(query: str, **kwargs: Any) -> SearchResults:
        raise OSError(5, "Input/output error", "/archive/.index/fulltext")

    async def working(query: str, **kwargs: Any) -> SearchResults:
        return SearchResults(query, "keyword", 3, fake_hits(3))

    async def scenario() -> None:
        panel = await ready(window, sample_copy)
        panel.set_search(broken, window.user_id)
        await search_for(panel, "hit")
        assert "Input/output error" in window.status_label.text()
        panel.set_search(working, window.user_id)
        await search_for(panel, "hit")
        assert window.status_label.text() == ""

        # Something else said since the error stays.
        panel.set_search(broken, window.user_id)
        await search_for(panel, "hits")
        window.notify("Settings saved")
        panel.set_search(working, window.user_id)
        await search_for(panel, "hit")
        assert window.status_label.text() == "Settings saved"

    run_async(qloop, scenario(), timeout=60)
    assert len(window.errors) == 2


@pytest.mark.parametrize(
    ("zone", "name", "text"),
    [("Asia/Tokyo", "after", "0001"), ("America/New_York", "before", "9999-12-31T23:59")],
)
def test_a_date_box_says_why_as_the_query_language_does(
    time_zone: Callable[[str], None], zone: str, name: str, text: str
) -> None:
    time_zone(zone)
    with pytest.raises(InputError) as info:
        box_date(name, text)
    assert str(info.value) == f"{name}: {text!r} is too far in the past or future to search"
    with pytest.raises(InputError, match=r"^after: '2025-13-45' is not a date \(use YYYY"):
        box_date("after", "2025-13-45")


def test_a_typed_filter_and_a_box_both_hold(qtbot: Any, qloop: Any) -> None:
    calls: list[tuple[str, dict[str, Any]]] = []

    async def fake(query: str, **kwargs: Any) -> SearchResults:
        calls.append((query, kwargs))
        return SearchResults(query, "keyword", 3, fake_hits(3))

    panel = standalone_panel(qtbot, fake)
    assert filter_conflict(Request("role:user gzip", "keyword", (("role", "assistant"),))) == (
        "role:user in the query and Role 'assistant' cannot both hold"
    )
    assert filter_conflict(Request("kind:document gzip", "keyword", (("kind", "message"),))) == (
        "kind:document in the query and Kind 'message' cannot both hold"
    )
    assert filter_conflict(Request("user:grace gzip", "keyword", (("user", "ada"),))) == (
        "user:grace in the query and This user 'ada' cannot both hold"
    )
    either = Request("role:user role:assistant gzip", "keyword", (("role", "assistant"),))
    assert filter_conflict(either) is None

    async def scenario() -> None:
        # Dates typed and in a box both apply (the later after, the earlier before): searched.
        panel.after.setText("2025-03")
        panel.before.setText("2025-06")
        await search_for(panel, "after:2025 before:2026 hit")
        assert panel.status.text() == "3 matches"
        assert calls[-1][1]["after"] == dt.datetime(2025, 3, 1).astimezone()
        assert calls[-1][1]["before"] == dt.datetime(2025, 6, 1).astimezone()
        panel.role.setCurrentIndex(panel.role.findText("assistant"))
        before = len(calls)
        await search_for(panel, "role:user hit")
        assert panel.status.text() == "role:user in the query and Role 'assistant' cannot both hold"
        assert len(calls) == before and panel.model.rowCount() == 0

    run_async(qloop, scenario(), timeout=30)


def test_a_row_is_full_when_its_highlight_is_near_the_snippet_end(
    qtbot: Any, qloop: Any, qtmodeltester: Any
) -> None:
    snippet = " ".join(f"filler{i}" for i in range(30)) + " the xylophone"  # ~240 characters
    start = snippet.index("xylophone")
    _panel, _index, delegate, option, doc = laid_out_row(qtbot, qloop, qtmodeltester, snippet)
    snippet_block = doc.begin().next()
    doc.documentLayout().blockBoundingRect(snippet_block)  # laid out
    assert snippet_block.layout().lineCount() >= SNIPPET_LINES  # not one line and two empty
    found = doc.find("xylophone")
    line = snippet_block.layout().lineForTextPosition(
        found.selectionStart() - snippet_block.position()
    )
    top = doc.documentLayout().blockBoundingRect(snippet_block).top()
    assert top + line.y() + line.height() <= delegate._text_height(option.font)  # in sight
    assert snippet_block.text().startswith("…")  # the start of the snippet is still cut

    # The cut itself: as early as the rest still fits, never after the highlight's lead.
    def fits(rest: str) -> bool:
        return len(rest) <= 100

    cut = lead_cut(snippet, start, fits=fits)
    assert cut <= lead_cut(snippet, start) and len(snippet) - cut <= 100
    assert snippet[cut - 1] == " " and len(snippet) - snippet.rfind(" ", 0, cut - 1) - 1 > 100


def test_two_hits_of_one_message_id_are_both_listed(qtmodeltester: Any) -> None:
    """A message id can repeat in a log; storage names each line's hit by its own key."""
    model = SearchResultsModel()
    qtmodeltester.check(model)
    pie, tart = (
        replace(xylophone_hit(f"apple {what}", 0), message_id="dup", key=f"m/ada/s1/{at}")
        for what, at in (("pie", 0), ("tart", 80))
    )
    model.reset([pie, tart])
    assert model.rowCount() == 2
    model.append_new([tart, pie])  # a later page repeating them adds nothing
    assert model.rowCount() == 2


def test_a_hybrid_search_says_which_hits_match_its_words(window: MainWindow, qloop: Any,
                                                          sample_copy: Path) -> None:
    """'Bernoulli' is in 6 messages and a session's title: a hybrid search lists them and,
    after them, what is near it in meaning; the status tells the two apart ("7 matches, 76
    similar"), not "83 matches". Keyword search: matches only; semantic: similar only."""

    async def scenario() -> None:
        panel = await ready(window, sample_copy)
        archive = window.archive
        assert archive is not None
        keyword = await archive.search("Bernoulli", "keyword", limit=50)
        hybrid = await archive.search("Bernoulli", "hybrid", limit=50)
        semantic = await archive.search("Bernoulli", "semantic", limit=50)
        assert keyword.matched == keyword.total == 7 and semantic.matched is None
        assert keyword.hits[0].kind == "session"  # its title: "Bernoulli numbers for a talk"
        assert hybrid.matched == 7 < hybrid.total
        assert {h.key for h in hybrid.hits[:7]} == {h.key for h in keyword.hits}
        for mode, expected in (
            ("Hybrid", f"7 matches, {hybrid.total - 7} similar"),
            ("Keyword", "7 matches"),
            ("Semantic", f"{semantic.total} similar"),
        ):
            panel.mode.setCurrentText(mode)
            panel.query.setText("Bernoulli")
            panel.run_now()
            await until(lambda: panel.task is not None and panel.task.done(), timeout=15)
            shown = panel.model.rowCount()
            tail = f", {shown} shown" if shown < panel.model.total else ""
            assert panel.status.text() == expected + tail, mode

    run_async(qloop, scenario(), timeout=60)


def test_more_hits_listed_than_counted_are_still_matches(qtbot: Any, qloop: Any) -> None:
    """A keyword page read after messages were deleted (before the change poll saw it) says
    fewer hits than are listed: the status counts what is listed, all of it matches (review:
    it said "40 matches, 10 similar")."""

    async def fake(query: str, **kw: Any) -> SearchResults:
        if kw.get("offset", 0) == 0:
            return SearchResults(query, "keyword", 60, fake_hits(50))
        return SearchResults(query, "keyword", 40, [])  # 20 messages deleted meanwhile

    panel = standalone_panel(qtbot, fake, page_size=50)

    async def scenario() -> None:
        await search_for(panel, "hit")
        assert panel.status.text() == "60 matches, 50 shown"
        panel.model.fetchMore()
        await until(lambda: not panel.model.fetching)
        assert panel.model.total == 40 and panel.status.text() == "50 matches"

    run_async(qloop, scenario(), timeout=30)
