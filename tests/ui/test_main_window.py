"""End to end on a temp copy of the sample archive: open, browse, read, find, export, errors."""

from __future__ import annotations

import asyncio
import errno
import os
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QMimeData, Qt, QUrl
from PySide6.QtWidgets import QMessageBox

import storage.files
from storage import Archive
from storage.jobs import JobControl
from storage.search.indexer import RefreshReport
from storage.search.results import Hit, SearchResults
from tests.ui.conftest import listed, run_async, simulate_drop, until
from ui.dialogs.report import ResultDialog
from ui.models import HitRoles, MessageRoles
from ui.widgets.main_window import MainWindow

A001 = "chat_session_20250303_091500_000000_a001"
A002 = "chat_session_20250310_201000_000000_a002"
A003 = "chat_session_20250402_183000_000000_a003"
PANEL = "panel_session_20250318_140000_000000_a004"


def test_open_select_read(window: MainWindow, qloop: Any, sample_copy: Path) -> None:
    async def scenario() -> None:
        assert await window.open_archive(sample_copy)
        assert listed(window) == [A003, A002, A001]  # newest activity first, panel on its tab
        assert window.sidebar.panel_proxy.rowCount() == 1
        assert window.sidebar.personas.rowCount() >= 3
        assert window.select_session_in_list(A001)
        await until(lambda: window.session is not None and window.messages.rowCount() == 16)
        await window.tasks.wait_idle()
        first = window.messages.index(0, 0)
        assert first.data(MessageRoles.AUTHOR) == "You"
        assert "4 GB" in first.data(MessageRoles.CONTENT) or first.data(MessageRoles.CONTENT)
        assert "Situational context" in window.details.text.toHtml()
        # user switch
        window.sidebar.user_combo.setCurrentIndex(window.sidebar.users.row_of("grace"))
        await until(lambda: window.user_id == "grace" and len(listed(window)) == 2)
        await window.tasks.wait_idle()
        assert window.sidebar.documents.rowCount() >= 1

    run_async(qloop, scenario())
    assert window.recent_archives() == [str(sample_copy)]
    assert window.errors == []


def test_branches_find_and_panel(window: MainWindow, qloop: Any, sample_copy: Path) -> None:
    async def scenario() -> None:
        await window.open_archive(sample_copy)
        await window.open_session(A002)
        await window.tasks.wait_idle()
        combo = window.conversation.branches
        assert combo.isVisibleTo(window) and combo.count() == 2
        # The switcher is not as wide as its labels (each a branch's first words): the title
        # keeps its room, cut with "…" to the width it has once the switcher shows.
        await asyncio.sleep(0.05)  # the layout settles
        title = window.conversation.title
        longest = max(combo.fontMetrics().horizontalAdvance(combo.itemText(i)) for i in range(2))
        assert combo.width() < longest <= combo.view().minimumWidth()
        # the branch shown is cut with "…", whole in the tooltip
        assert combo.shown_text().endswith("…") and combo.toolTip() == combo.currentText()
        full = title.full_text()
        assert title.text() == title.fontMetrics().elidedText(
            full, Qt.TextElideMode.ElideRight, title.contentsRect().width())
        window.resize(700, 800)  # narrower: cut again
        await asyncio.sleep(0.05)
        assert title.text().endswith("…") and title.text() != full and title.toolTip() == full
        window.resize(1280, 800)
        shown = window.messages.branch_leaf
        other = combo.itemData(0) if combo.itemData(0) != shown else combo.itemData(1)
        await window.switch_branch(other)
        assert window.messages.rows[-1].message_id == other
        assert (await window.archive.get_session("ada", A002)).metadata["active_leaf_id"] == other
        # find
        window.conversation.show_find()
        window.conversation.find_bar.edit.setText("Bernoulli")
        assert window.messages.matches
        assert "of" in window.conversation.find_bar.count.text()
        window.conversation.find_step(True)
        # the panel shows persona names and insights
        await window.open_session(PANEL)
        await window.tasks.wait_idle()
        authors = {window.messages.index(r, 0).data(MessageRoles.AUTHOR)
                   for r in range(window.messages.rowCount())}
        assert "pragmatic_engineer" not in authors and len(authors) >= 3
        assert "Insights" in window.details.text.toHtml()

    run_async(qloop, scenario())


def test_export_markdown_matches_source(window: MainWindow, qloop: Any, sample_copy: Path,
                                        tmp_path: Path) -> None:
    async def scenario() -> Path:
        await window.open_archive(sample_copy)
        session = await window.archive.get_session("ada", A001)
        await window.export_session(session, tmp_path / "out.json")
        await window.export_session(session, tmp_path / "out.html")
        return await window.export_session(session, tmp_path / "out.md")

    path = run_async(qloop, scenario())
    text = path.read_text(encoding="utf-8")
    assert text.startswith("---\nsession_id: \"" + A001 + "\"\n")
    assert 'title: "Streaming a 4 GB sensor CSV without running out of memory"' in text
    source = (sample_copy / "users/ada" / A001 / "messages.jsonl").read_text(encoding="utf-8")
    import json
    for line in source.splitlines():
        assert json.loads(line)["content"].rstrip("\n") in text
    assert "<section" in (tmp_path / "out.html").read_text(encoding="utf-8")
    data = json.loads((tmp_path / "out.json").read_text(encoding="utf-8"))
    assert len(data["messages"]) == 16


def test_corrupt_session_is_shown_not_raised(window: MainWindow, qloop: Any,
                                             sample_copy: Path) -> None:
    (sample_copy / "users/ada" / A002 / "session.json").write_text("{not json", encoding="utf-8")
    with (sample_copy / "users/ada" / A001 / "messages.jsonl").open("a") as fh:
        fh.write("{broken line}\n")

    async def scenario() -> None:
        await window.open_archive(sample_copy)
        await window.tasks.wait_idle()
        assert window.sidebar.problem.isVisibleTo(window)
        assert "session.json" in window.sidebar.problem.text()
        assert not await window.open_session(A002)
        assert "damaged" in window.conversation.placeholder.text()
        # what can be read is still shown: the other sessions open, bad lines skipped
        assert await window.open_session(A001)
        assert window.messages.rowCount() == 16

    run_async(qloop, scenario())
    assert any("session.json" in e for e in window.errors)


def test_read_only_archive_browses_and_says_why(window: MainWindow, qloop: Any,
                                                sample_copy: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    real_open = os.open

    def read_only(path: Any, flags: int, *args: Any) -> int:
        if flags & (os.O_WRONLY | os.O_RDWR):
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        return real_open(path, flags, *args)

    monkeypatch.setattr(storage.files.os, "open", read_only)

    async def scenario() -> None:
        await window.open_archive(sample_copy)
        assert await window.open_session(A003)
        session = window.session
        assert session is not None
        window.run("write", window.update_session(session, title="New title"), "Renaming")
        await window.tasks.wait_idle()

    run_async(qloop, scenario())
    assert window.errors and "read-only" in window.errors[-1].lower()
    assert isinstance(window.last_dialog, QMessageBox) and not window.last_dialog.isModal()


def test_non_archive_folder_offers_and_writes_nothing(window: MainWindow, qloop: Any,
                                                      tmp_path: Path) -> None:
    folder = tmp_path / "empty"
    folder.mkdir()

    async def scenario() -> bool:
        return await window.open_archive(folder)

    assert run_async(qloop, scenario()) is False
    box = window.last_dialog
    assert isinstance(box, QMessageBox) and box.isVisible()
    assert list(folder.iterdir()) == []
    box.done(QMessageBox.StandardButton.No)
    assert list(folder.iterdir()) == []

    async def accept() -> None:
        assert await window.open_archive(folder) is False
        dialog = window.last_dialog
        assert isinstance(dialog, QMessageBox)
        dialog.done(QMessageBox.StandardButton.Yes)
        await until(lambda: window.archive is not None)

    run_async(qloop, accept())
    assert (folder / "archive.json").exists()


def test_external_append_shows_up(window: MainWindow, qloop: Any, sample_copy: Path) -> None:
    async def scenario() -> None:
        await window.open_archive(sample_copy)
        await window.open_session(A003)
        other = await Archive.open(sample_copy)  # another process, as far as the window knows
        await other.add_message("ada", A003, {"role": "user", "content": "late arrival"})
        created = await other.create_session("ada", "Made elsewhere")
        await until(lambda: window.messages.rows[-1].content == "late arrival", timeout=8)
        await until(lambda: created.session_id in listed(window), timeout=8)
        # Searches in the window never rescan: the poll has a worker index what came in.
        assert window.archive is not None and not window.archive.rescan_on_search
        for _ in range(300):
            found = await window.archive.search('"late arrival"', "keyword")
            if found.total:
                break
            await asyncio.sleep(0.1)
        assert [h.message_id for h in found.hits] == [
            m.message_id for m in window.messages.rows if m.content == "late arrival"
        ]

    run_async(qloop, scenario(), timeout=60)


def test_timers_start_nothing_while_events_run_outside_the_loop(
        window: MainWindow, qloop: Any, qtbot: Any, sample_copy: Path) -> None:
    """Qt processes events outside the asyncio loop while the app shuts down (and in a test's
    teardown): the change poll and the search's debounce then start no coroutine (one would
    fail with "no running event loop" and reach the excepthook, which fails this test)."""

    async def scenario() -> None:
        await window.open_archive(sample_copy)
        await window.tasks.wait_idle(timeout=30)

    run_async(qloop, scenario(), timeout=60)
    window._poll.setInterval(10)
    window._poll.start()
    panel = window.search_panel
    panel.query.setText("Bernoulli")  # starts the debounce timer

    asked: list[int] = []

    async def fetch(offset: int, limit: int) -> SearchResults:
        asked.append(offset)
        return SearchResults("q", "keyword", 0, [])

    # hits listed, the archive changed under them: the reload timer reads them again
    panel.model.show_results(SearchResults("q", "keyword", 99, []), fetch)
    panel.model.mark_outdated()
    panel._reload_timer.start()
    qtbot.wait(700)  # a Qt event loop of its own: the timers fire outside asyncio's
    assert window._poll.isActive() and not window.tasks.running("poll")
    assert panel.task is None and not asked


def test_drop_ingests_with_progress_and_summary(window: MainWindow, qloop: Any,
                                                sample_copy: Path, tmp_path: Path) -> None:
    doc = tmp_path / "notes.txt"
    doc.write_text("hello")
    calls: list[tuple[Any, ...]] = []

    async def fake_worker(root: Path, job: str, control: JobControl, on_changes: Any,
                          **kwargs: Any) -> Any:
        if job != "ingest":
            return RefreshReport()  # the index update started on open
        control.set_total(len(kwargs["paths"]))
        await asyncio.sleep(0)
        control.step(kwargs["paths"][0])
        calls.append((kwargs["paths"], kwargs["user_id"], kwargs["session_id"]))
        return {"files": [{"path": kwargs["paths"][0], "status": "ingested"}]}

    async def scenario() -> None:
        window.job_runner = fake_worker
        await window.open_archive(sample_copy)
        await window.tasks.wait_idle()
        mime = QMimeData()
        mime.setUrls([QUrl.fromLocalFile(str(doc))])
        assert simulate_drop(window.sidebar.document_view.viewport(), mime) == (True, True)
        text = QMimeData()
        text.setText("just text")
        assert simulate_drop(window.sidebar.document_view.viewport(), text) == (False, False)
        await until(lambda: bool(calls))
        await window.tasks.wait_idle()

    run_async(qloop, scenario())
    assert calls == [([str(doc)], "ada", None)]
    assert isinstance(window.last_dialog, ResultDialog)
    assert window.last_dialog.model.rowCount() == 1


def test_search_hit_opens_session_at_message(window: MainWindow, qloop: Any,
                                             sample_copy: Path) -> None:
    seen: list[tuple[str, dict[str, Any]]] = []

    async def fake_search(query: str, mode: str = "keyword", limit: int = 20, offset: int = 0,
                          **filters: Any) -> SearchResults:
        seen.append((query, filters))
        await asyncio.sleep(0.05)
        hit = Hit(kind="message", user_id="ada", session_id=A001, score=1.0,
                  snippet="use gzip.open", highlights=[(4, 8)], message_id="msg_a001_14",
                  title="Streaming")
        return SearchResults(query=query, mode=mode, total=1, hits=[hit])  # type: ignore[arg-type]

    async def scenario() -> None:
        await window.open_archive(sample_copy)
        window.archive.search = fake_search  # type: ignore[attr-defined]
        window.search_panel.set_search(fake_search, "ada")
        window.show_search()
        panel = window.search_panel
        panel.query.setText("gz")
        panel.run_now()
        first = panel.task
        panel.query.setText("gzip")
        panel.role.setCurrentText("assistant")
        panel.run_now()
        assert first is not None and (first.cancelled() or first.done() or first.cancelling())
        await until(lambda: panel.model.rowCount() == 1)
        panel.view.activated.emit(panel.model.index(0, 0))
        await until(lambda: window.session is not None and window.session.session_id == A001)
        await window.tasks.wait_idle()
        assert window.messages.target_id == "msg_a001_14"
        current = window.conversation.view.currentIndex()
        assert current.data(MessageRoles.MESSAGE_ID) == "msg_a001_14"

    run_async(qloop, scenario())
    assert seen[-1] == ("gzip", {"role": "assistant"})  # the panel's filters as arguments


def test_persona_create_and_job_cancel(window: MainWindow, qloop: Any, sample_copy: Path) -> None:
    async def scenario() -> None:
        await window.open_archive(sample_copy)
        dialog = window.edit_persona(None)
        dialog.name.setText("Careful Critic")
        dialog.traits.setText("precise, patient")
        dialog.accept()
        await window.tasks.wait_idle()
        assert window.sidebar.personas.row_of("careful_critic") >= 0

        async def job(control: JobControl) -> int:
            control.set_total(1000)
            for _ in range(1000):
                await asyncio.sleep(0.001)
                control.step("item")
            return 0

        task = asyncio.ensure_future(window.jobs.run("Test job", job))
        await until(lambda: window.jobs.isVisibleTo(window))
        window.jobs.cancel_button.click()
        with pytest.raises(Exception, match="cancelled"):
            await task
        assert not window.jobs.isVisibleTo(window)

    run_async(qloop, scenario())
    persona = run_async(qloop, Archive.open(sample_copy))
    assert persona is not None


def test_real_search_as_you_type_opens_hit(window: MainWindow, qloop: Any,
                                           sample_copy: Path) -> None:
    async def scenario() -> None:
        await window.open_archive(sample_copy)
        assert hasattr(window.archive, "search")
        window.show_search()
        await window.tasks.wait_idle(timeout=30)
        panel = window.search_panel
        assert panel.mode.currentText() == "Hybrid"  # the archive's default mode
        panel.mode.setCurrentIndex(0)  # keyword
        for partial in ("g", "gz", "gzi", "gzip"):  # each keystroke restarts the debounce
            panel.query.setText(partial)
        assert panel.task is None  # debounced: nothing started yet
        await until(lambda: panel.model.rowCount() > 0 and panel.task is not None
                    and panel.task.done(), timeout=15)
        assert panel.status.text() == f"{panel.model.rowCount()} matches"  # all shown
        first = panel.model.index(0, 0).data(HitRoles.RECORD)
        assert first.message_id == "msg_a001_14"
        panel.view.activated.emit(panel.model.index(0, 0))
        await until(lambda: window.messages.target_id == "msg_a001_14")
        await window.tasks.wait_idle()
        current = window.conversation.view.currentIndex()
        assert current.data(MessageRoles.MESSAGE_ID) == "msg_a001_14"
        panel.mode.setCurrentIndex(2)  # hybrid
        panel.run_now()
        await panel.task
        assert panel.model.rowCount() > 0

    run_async(qloop, scenario(), timeout=40)
    assert window.errors == []


def test_search_of_only_exclusions_says_what_to_add(window: MainWindow, qloop: Any,
                                                    sample_copy: Path) -> None:
    async def scenario() -> None:
        await window.open_archive(sample_copy)
        window.show_search()
        await window.tasks.wait_idle(timeout=30)
        panel = window.search_panel
        panel.mode.setCurrentIndex(0)  # keyword
        panel.query.setText('-"lazy dog"')
        panel.run_now()
        await panel.task
        assert "only excludes words; add a word, a phrase or a filter" in panel.status.text()
        assert panel.model.rowCount() == 0
        panel.role.setCurrentIndex(panel.role.findText("assistant"))  # a filter: a search
        panel.run_now()
        await panel.task
        assert panel.model.rowCount() > 0
        assert panel.status.text() == f"{panel.model.rowCount()} matches"
        assert {panel.model.index(r, 0).data(HitRoles.RECORD).role
                for r in range(panel.model.rowCount())} == {"assistant"}

    run_async(qloop, scenario(), timeout=40)
    assert window.errors == []


def test_writes_that_move_no_stamp_are_indexed_by_the_periodic_check(
        window: MainWindow, qloop: Any, sample_copy: Path, tmp_path: Path) -> None:
    """A sync tool brings a session's files from another machine, or a tool appends to a
    messages.jsonl alone: Flatchat's change stamp does not move, and searches in the window
    never rescan. The poll's full look (every FULL_POLL_EVERY polls) has the worker check the
    index: at once when the listing shown changed, else every INDEX_CHECK_EVERY full looks."""
    import shutil

    from storage.files import stamp_signature
    from ui.widgets.main_window import FULL_POLL_EVERY, INDEX_CHECK_EVERY

    async def full_look() -> None:
        window._polls = FULL_POLL_EVERY - 1  # the next poll is a full look
        await window._poll_changes()
        await window.tasks.wait_idle(timeout=30)

    async def found(word: str) -> list[str | None]:
        assert window.archive is not None
        return [h.session_id for h in (await window.archive.search(word, "keyword")).hits]

    async def scenario() -> None:
        await window.open_archive(sample_copy)
        await window.tasks.wait_idle(timeout=30)
        await window.select_user("ada")
        await window.tasks.wait_idle(timeout=30)
        await found("quokka")  # what opening left to check, done
        elsewhere = tmp_path / "elsewhere"
        shutil.copytree(sample_copy, elsewhere)
        other = await Archive.open(elsewhere)
        await other.add_message("ada", A003, {"role": "user", "content": "a quokka sighting"})
        stamp = stamp_signature(sample_copy)
        folder = sample_copy / "users" / "ada" / A003
        for name in ("messages.jsonl", "session.json"):
            shutil.copy2(elsewhere / "users" / "ada" / A003 / name, folder / name)
        assert stamp_signature(sample_copy) == stamp
        await window._poll_changes()  # not a full look: one stat, nothing seen
        await window.tasks.wait_idle(timeout=30)
        assert await found("quokka") == []
        await full_look()  # the listing shown changed (the session has one more message)
        assert await found("quokka") == [A003]

        # A line appended to a messages.jsonl alone: the listing does not change.
        await other.add_message("ada", A003, {"role": "user", "content": "a wombat too"})
        tail = (elsewhere / "users" / "ada" / A003 / "messages.jsonl").read_bytes()
        line = tail.rstrip(b"\n").rsplit(b"\n", 1)[-1] + b"\n"
        with open(folder / "messages.jsonl", "ab") as log:
            log.write(line)
        assert stamp_signature(sample_copy) == stamp
        window._full_looks = 0
        for _ in range(INDEX_CHECK_EVERY - 1):
            await full_look()
        assert await found("wombat") == []
        await full_look()
        assert await found("wombat") == [A003]

    run_async(qloop, scenario(), timeout=90)


def test_the_periodic_check_stops_on_a_read_only_archive_and_never_hides_a_rebuild(
        window: MainWindow, qloop: Any, sample_copy: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from storage.errors import ReadOnlyArchiveError
    from ui.widgets.main_window import INDEX_CHECK_EVERY

    jobs: list[str] = []

    async def scenario() -> None:
        await window.open_archive(sample_copy)
        await window.tasks.wait_idle(timeout=30)
        assert window.archive is not None
        errors = list(window.errors)

        async def read_only(root: Path, job: str, control: JobControl, on_changes: Any,
                            **kwargs: Any) -> Any:
            jobs.append(job)
            raise ReadOnlyArchiveError(root / ".locks" / "index.lock")

        monkeypatch.setattr(window, "job_runner", read_only)
        window.check_index()
        await window.tasks.wait_idle(timeout=30)
        assert jobs == ["refresh_index"]
        assert window.errors == errors  # logged, not shown again
        window.check_index()  # stopped for this archive
        await window.tasks.wait_idle(timeout=30)
        assert jobs == ["refresh_index"]

        # A rebuild asked for and not started yet is never replaced by a check.
        window._index_checks_stopped = None
        monkeypatch.setattr(window, "job_runner", lambda *a, **k: _record(jobs, a[1]))
        jobs.clear()
        window.start_index_update(rebuild=True)
        window.check_index()
        await window.tasks.wait_idle(timeout=30)
        assert jobs == ["reindex"]
        assert INDEX_CHECK_EVERY > 1

    run_async(qloop, scenario(), timeout=60)


async def _record(jobs: list[str], job: str) -> RefreshReport:
    jobs.append(job)
    return RefreshReport()


def test_a_quiet_job_shows_only_with_work_to_do_or_after_a_while(
        window: MainWindow, qloop: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import ui.widgets.jobs

    monkeypatch.setattr(ui.widgets.jobs, "QUIET_SHOW_S", 0.4)
    seen: list[bool] = []

    def job(seconds: float, total: int | None = None) -> Any:
        async def run(control: JobControl) -> None:
            loop = asyncio.get_running_loop()
            end = loop.time() + seconds
            if total:
                await asyncio.sleep(0.05)
                control.set_total(total)
            while loop.time() < end:
                seen.append(window.jobs.isVisibleTo(window))
                await asyncio.sleep(0.02)

        return run

    async def scenario() -> None:
        await window.jobs.run("Quick check", job(0.2), quiet=True)
        assert seen and not any(seen)
        assert not window.jobs.isVisibleTo(window)
        seen.clear()
        await window.jobs.run("Check with work", job(0.3, total=5), quiet=True)
        assert seen[-1] and not window.jobs.isVisibleTo(window)
        seen.clear()
        await window.jobs.run("Long check", job(0.8), quiet=True)
        assert not seen[0] and seen[-1]  # shown after a while
        assert not window.jobs.isVisibleTo(window)
        seen.clear()
        await window.jobs.run("A user's job", job(0.2))
        assert all(seen)  # shown at once

    run_async(qloop, scenario(), timeout=60)
