"""The search panel: Enter, paging, date boxes and filters, archive and user changes, what a
row shows, document hits, errors, the status line and the keyboard."""

from __future__ import annotations

import asyncio
import datetime as dt
import shutil
from collections.abc import Callable
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
from ui.models.search import hit_key
from ui.widgets.main_window import MainWindow
from ui.widgets.search import SNIPPET_LINES, HitDelegate, SearchPanel

A002 = "chat_session_20250310_201000_000000_a002"
A003 = "chat_session_20250402_183000_000000_a003"
Search = Callable[..., Any]


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
            assert panel.status.text().endswith("matches")
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
        # A filter typed in the query that the Role box contradicts: said, not ORed.
        before = len(calls)
        assert await search_for(panel, "role:user gzip") == []
        assert "role:user" in panel.status.text() and "the Role box says assistant" in (
            panel.status.text()
        )
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
        assert panel.status.text().endswith("matches")
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
        assert status.endswith("matches")
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
        await until(lambda: panel.status.text().endswith("matches"))
        await window.tasks.wait_idle()

    run_async(qloop, scenario(), timeout=60)
    assert window.errors == []


# ------------------------------------------------------------------ 6. what a row shows
def test_a_row_shows_its_first_highlight(qtbot: Any, qloop: Any, qtmodeltester: Any) -> None:
    text = " ".join(f"filler{i}" for i in range(30))  # ~230 characters before the match
    snippet = f"{text} xylophone and a few words after it"
    start = snippet.index("xylophone")
    hit = Hit(
        kind="message",
        user_id="ada",
        session_id="s1",
        score=1.0,
        snippet=snippet,
        highlights=[(start, start + len("xylophone"))],
        message_id="m1",
        title="Long",
    )

    async def fake(
        query: str, *, mode: str, limit: int, offset: int, **filters: Any
    ) -> SearchResults:
        return SearchResults(query, mode, 1, [hit])  # type: ignore[arg-type]

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
    doc = delegate._doc(option, index)  # what the row lays out and paints
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
        "two": SearchResults("two", "hybrid", 2, fake_hits(2), degraded=note),
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
