"""Settings dialog, index refresh on open, Documents tab, export of a selection, search hits
in a large session, change polling."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QItemSelectionModel, Qt, QUrl
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import QMessageBox, QSpinBox

from storage import Archive, StorageError
from storage.jobs import JobControl
from storage.search.results import Hit
from storage.worker import run_here
from tests.conftest import shared_data
from tests.ui.conftest import listed, run_async, until
from ui.dialogs.settings import SettingsDialog
from ui.models import HitRoles, MessageRoles
from ui.widgets.main_window import MainWindow

A001 = "chat_session_20250303_091500_000000_a001"
A003 = "chat_session_20250402_183000_000000_a003"


def test_settings_dialog_edits_validates_and_maintains(window: MainWindow, qloop: Any,
                                                       sample_copy: Path) -> None:
    async def scenario() -> SettingsDialog:
        await window.open_archive(sample_copy)
        await window.tasks.wait_idle(timeout=30)
        dialog = window.show_settings()
        assert isinstance(dialog, SettingsDialog) and not dialog.isModal()
        await window.tasks.wait_idle(timeout=30)
        assert dialog.embedder_state.text().startswith("ready")
        assert "up to date" in dialog.index_state.text()
        # edit and save: only what changed is sent, and it is stored
        spin = dialog.editors[("search", "page_size")]
        assert isinstance(spin, QSpinBox) and spin.maximum() == 1000  # the model's range
        # each number says what it counts, as the model says
        units = {key: dialog.editors[key].suffix() for key in (  # type: ignore[attr-defined]
            ("storage", "lock_timeout"), ("storage", "compact_after_days"),
            ("storage", "max_message_bytes"), ("document", "max_bytes"), ("search", "page_size"))}
        assert units == {("storage", "lock_timeout"): " s",
                         ("storage", "compact_after_days"): " days",
                         ("storage", "max_message_bytes"): " bytes",
                         ("document", "max_bytes"): " bytes", ("search", "page_size"): ""}
        spin.setValue(75)
        assert dialog.changes() == {"search": {"page_size": 75}}
        dialog.save_button.click()
        await window.tasks.wait_idle()
        assert "Saved" in dialog.message.text()
        stored = json.loads((sample_copy / "archive.json").read_text())
        assert stored["settings"]["search"]["page_size"] == 75
        # a value the model refuses: the message names the key, nothing written
        await window.save_settings(dialog, {"storage": {"lock_timeout": -1}})
        assert "storage.lock_timeout" in dialog.message.text()
        assert "lock_timeout" not in (sample_copy / "archive.json").read_text()
        # rebuild the index: a status-bar job with progress
        dialog.reindex_button.click()
        await until(lambda: window.index_report is not None and window.index_report.rebuilt,
                    timeout=30)
        await window.tasks.wait_idle(timeout=30)
        dialog.compact_button.click()
        await window.tasks.wait_idle(timeout=30)
        assert "Compacted" in window.status_label.text()
        return dialog

    run_async(qloop, scenario(), timeout=90)
    assert window.errors == []


def test_settings_the_dialog_cannot_hold_are_kept_as_they_are(window: MainWindow, qloop: Any,
                                                              sample_copy: Path) -> None:
    """A 3 GiB file limit is past what a QSpinBox holds (it cut it to 2 GiB, which Save then
    wrote), and a lock timeout of 5 ms has more than two decimals (it was rounded to 0.01):
    the dialog shows both as they are and, unedited, changes nothing (review)."""

    async def scenario() -> None:
        overrides = {"document": {"max_bytes": 3 * 2**30}, "storage": {"lock_timeout": 0.005}}
        await window.set_archive(await Archive.open(sample_copy, overrides=overrides))
        await window.tasks.wait_idle(timeout=30)
        dialog = window.show_settings()
        assert dialog is not None
        big = dialog.editors[("document", "max_bytes")]
        assert big.text() == "3,221,225,472 bytes"  # type: ignore[attr-defined]
        assert dialog.editors[("storage", "lock_timeout")].text() == "0.005 s"  # type: ignore[attr-defined]
        assert dialog.changes() == {}
        big.setValue(4 * 2**30)  # type: ignore[attr-defined]
        assert dialog.changes() == {"document": {"max_bytes": 4 * 2**30}}
        await window.tasks.wait_idle(timeout=30)

    run_async(qloop, scenario(), timeout=60)


def test_degraded_semantic_search_is_said(window: MainWindow, qloop: Any,
                                          sample_copy: Path) -> None:
    async def scenario() -> None:
        archive = await Archive.open(sample_copy, overrides={"vector": {"enabled": "false"}})
        await window.set_archive(archive)
        await window.tasks.wait_idle(timeout=30)
        dialog = window.show_settings()
        await window.tasks.wait_idle(timeout=30)
        assert dialog is not None and "switched off" in dialog.embedder_state.text()
        panel = window.search_panel
        window.show_search()
        panel.mode.setCurrentIndex(1)  # semantic
        panel.query.setText("gzip")
        panel.run_now()
        await panel.task
        assert "switched off" in panel.status.text()

    run_async(qloop, scenario(), timeout=60)


def test_deleted_index_is_rebuilt_on_open_with_progress_and_cancel(
        window: MainWindow, qloop: Any, sample_copy: Path) -> None:
    async def first() -> None:
        await window.open_archive(sample_copy)
        await window.tasks.wait_idle(timeout=30)

    run_async(qloop, first(), timeout=60)
    assert (sample_copy / ".index").is_dir()
    shutil.rmtree(sample_copy / ".index")
    names: list[str] = []

    async def reopen_and_cancel() -> None:
        await window.open_archive(sample_copy)
        await until(lambda: window.jobs.control is not None, timeout=10)
        names.append(window.jobs.label.text())
        assert window.jobs.isVisibleTo(window) and window.jobs.cancel_button.isEnabled()
        window.jobs.cancel_button.click()
        await window.tasks.wait_idle(timeout=30)

    run_async(qloop, reopen_and_cancel(), timeout=60)
    assert names[0].startswith("Updating the search index")
    assert window.errors == []  # a cancelled background update is not an error

    # Whether the cancel came before the (small) update finished is a race; delete the
    # index again so the next open surely has everything to do.
    shutil.rmtree(sample_copy / ".index", ignore_errors=True)

    async def reopen_fully() -> None:
        await window.open_archive(sample_copy)
        # The update may be over before a poll could see it running: judge it by its result.
        await window.tasks.wait_idle(timeout=60)
        assert window.jobs.last_progress is not None and window.jobs.last_progress.total
        hits = await window.archive.search("gzip", mode="keyword")
        assert hits.hits

    run_async(qloop, reopen_fully(), timeout=90)
    assert window.index_report is not None and window.index_report.sources_indexed > 0


@pytest.mark.parametrize("end", ["cancel", "failure"])
def test_an_unfinished_index_update_is_finished_at_the_next_search(
        window: MainWindow, qloop: Any, sample_copy: Path, end: str) -> None:
    jobs: list[str] = []

    async def job_runner(root: Path, job: str, control: JobControl, on_changes: Any,
                         **kwargs: Any) -> Any:
        jobs.append(job)
        if len(jobs) == 1:  # the update on open: runs until the user cancels it, or fails
            if end == "failure":
                raise StorageError("the disk is full")
            while True:
                await asyncio.sleep(0.01)
                control.check()
        return await run_here(root, job, control, on_changes, **kwargs)  # the real job

    async def scenario() -> None:
        window.job_runner = job_runner
        await window.open_archive(sample_copy)
        if end == "cancel":
            await until(lambda: window.jobs.control is not None, timeout=10)
            window.jobs.cancel_button.click()
        await window.tasks.wait_idle(timeout=30)
        assert jobs == ["refresh_index"]
        if end == "cancel":
            assert window.status_label.text() == (
                "Updating the search index: cancelled. Searches use what is indexed; the rest "
                "is indexed in the background at your next search.")
        else:
            assert len(window.errors) == 1 and "the disk is full" in window.errors[0]
        window.show_search()
        panel = window.search_panel
        started: list[str] = []
        panel.search_started.connect(started.append)
        panel.mode.setCurrentIndex(0)  # keyword
        panel.query.setText("gzip")
        panel.run_now()
        await panel.task
        assert started == ["gzip"]
        await until(lambda: len(jobs) == 2, timeout=10)  # the search started the update
        await window.tasks.wait_idle(timeout=60)
        assert window.index_report is not None and window.index_report.sources_indexed > 0
        panel.run_now()
        await panel.task
        assert panel.model.index(0, 0).data(HitRoles.RECORD).message_id == "msg_a001_14"
        await window.tasks.wait_idle(timeout=30)

    run_async(qloop, scenario(), timeout=90)
    assert jobs == ["refresh_index", "refresh_index"]  # once: later searches start none
    assert len(window.errors) == (end == "failure")


def test_documents_tab_preview_open_delete(window: MainWindow, qloop: Any, sample_copy: Path,
                                           monkeypatch: pytest.MonkeyPatch,
                                           qtmodeltester: Any) -> None:
    opened: list[QUrl] = []
    monkeypatch.setattr(QDesktopServices, "openUrl", lambda url: opened.append(url) or True)
    doc = shared_data("docs", "crazyones.txt")
    binary = sample_copy.parent / "blob.bin"
    binary.write_bytes(bytes(range(256)) * 8)

    async def scenario() -> None:
        await window.open_archive(sample_copy)
        await window.ingest_paths([str(doc), str(binary)], None)
        await window.tasks.wait_idle(timeout=30)
        model = window.sidebar.documents
        qtmodeltester.check(model)
        assert model.columnCount() == 5
        assert [model.headerData(c, Qt.Orientation.Horizontal) for c in range(5)] == [
            "Name", "Type", "Size", "Pages", "Added"]
        row = next(r for r in range(model.rowCount())
                   if model.index(r, 0).data() == "crazyones.txt")
        assert model.index(row, 1).data() == "TXT" and model.index(row, 2).data()
        window.sidebar.tabs.setCurrentIndex(2)
        window.sidebar.document_view.setCurrentIndex(model.index(row, 2))
        await until(lambda: "round pegs" in window.sidebar.preview.toPlainText())
        assert "extracted text" in window.sidebar.preview_label.text()
        window.sidebar.open_document.click()
        await until(lambda: bool(opened))
        assert Path(opened[0].toLocalFile()).exists()
        # a file with no text: stored, not searchable
        blob = next(r for r in range(model.rowCount()) if model.index(r, 0).data() == "blob.bin")
        window.sidebar.document_view.setCurrentIndex(model.index(blob, 0))
        await until(lambda: "not searchable" in window.sidebar.preview_label.text())
        # delete asks first; No keeps it, Yes removes it
        window.sidebar.delete_document.click()
        box = window.last_dialog
        assert isinstance(box, QMessageBox) and box.isVisible()
        box.done(QMessageBox.StandardButton.No)
        await window.tasks.wait_idle()
        assert model.rowCount() >= 2
        before = model.rowCount()
        window.sidebar.delete_document.click()
        window.last_dialog.done(QMessageBox.StandardButton.Yes)
        await until(lambda: model.rowCount() == before - 1)
        await window.tasks.wait_idle()
        names = [d.original_name for d in await window.archive.list_documents("ada")]
        assert "blob.bin" not in names and "crazyones.txt" in names

    run_async(qloop, scenario(), timeout=60)
    assert window.errors == []


def test_export_selected_sessions(window: MainWindow, qloop: Any, sample_copy: Path,
                                  tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()

    async def scenario() -> list[Path]:
        await window.open_archive(sample_copy)
        await window.tasks.wait_idle(timeout=30)
        view, proxy = window.sidebar.session_view, window.sidebar.session_proxy
        flags = QItemSelectionModel.SelectionFlag.Select | QItemSelectionModel.SelectionFlag.Rows
        for row in range(proxy.rowCount()):
            view.selectionModel().select(proxy.index(row, 0), flags)
        sessions = window.selected_sessions()
        assert [s.session_id for s in sessions] == listed(window)
        window.choose_export_selection()
        window.last_dialog.textValueSelected.emit("HTML (.html)")
        window.last_dialog.fileSelected.emit(str(out))
        await until(lambda: len(list(out.iterdir())) == len(sessions))
        await window.tasks.wait_idle()
        return await window.export_sessions(sessions, out, ".json")

    written = run_async(qloop, scenario())
    assert len(list(out.glob("*.html"))) == 3
    assert {json.loads(p.read_text())["session"]["session_id"] for p in written} == set(
        [A003, A001, "chat_session_20250310_201000_000000_a002"])


def test_search_hit_in_a_large_session_uses_find_message(window: MainWindow, qloop: Any,
                                                         sample_copy: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    async def scenario() -> None:
        await window.open_archive(sample_copy)
        archive = window.archive
        session = await archive.create_session("ada", "Huge")
        batch = [{"role": "user", "content": f"line {n}"} for n in range(3000)]
        await archive.add_messages("ada", session.session_id, batch)
        target = (await archive.get_messages("ada", session.session_id, 1, 1234))[0]

        def no_streaming(*_a: Any, **_k: Any) -> Any:
            raise AssertionError("the session was streamed to find the hit")

        monkeypatch.setattr(archive, "iter_messages", no_streaming)
        hit = Hit(kind="message", user_id="ada", session_id=session.session_id, score=1.0,
                  message_id=target.message_id)
        assert await window.open_hit(hit)
        await window.tasks.wait_idle()
        assert window.messages.start <= 1234 < window.messages.start + window.messages.rowCount()
        current = window.conversation.view.currentIndex()
        assert current.data(MessageRoles.MESSAGE_ID) == target.message_id

    run_async(qloop, scenario(), timeout=60)


def test_poll_lists_only_after_a_write(window: MainWindow, qloop: Any, sample_copy: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    listings: list[str] = []

    async def scenario() -> None:
        await window.open_archive(sample_copy)
        await window.tasks.wait_idle(timeout=30)
        real = window.archive.list_sessions

        async def counted(user: str, *a: Any, **k: Any) -> Any:
            listings.append(user)
            return await real(user, *a, **k)

        monkeypatch.setattr(window.archive, "list_sessions", counted)
        await window._poll_changes()  # first look: remembers the stamp
        listings.clear()
        for _ in range(3):
            await window._poll_changes()
        assert listings == []  # nothing written: one stat each, no listing
        other = await Archive.open(sample_copy)
        made = await other.create_session("ada", "From elsewhere")
        await window._poll_changes()
        assert listings == ["ada"] and made.session_id in listed(window)

    run_async(qloop, scenario(), timeout=60)


def test_search_panel_starts_in_the_archives_default_mode(window: MainWindow, qloop: Any,
                                                          sample_copy: Path) -> None:
    async def scenario() -> None:
        panel = window.search_panel
        panel.mode.setCurrentIndex(0)  # keyword, as a user may leave it
        await window.open_archive(sample_copy)
        await window.tasks.wait_idle(timeout=30)
        assert panel.mode.currentText() == "Hybrid"  # the setting's default
        dialog = window.show_settings()
        assert dialog is not None
        await window.tasks.wait_idle(timeout=30)
        await window.save_settings(dialog, {"search": {"default_mode": "semantic"}})
        assert panel.mode.currentText() == "Semantic"
        panel.mode.setCurrentIndex(0)  # the user's pick holds while nothing is saved
        await window.save_settings(dialog, {"search": {"page_size": 60}})
        assert panel.mode.currentText() == "Keyword"
        reopened = await Archive.open(sample_copy)
        await window.set_archive(reopened)
        await window.tasks.wait_idle(timeout=30)
        assert panel.mode.currentText() == "Semantic"  # stored in archive.json

    run_async(qloop, scenario(), timeout=90)
    assert window.errors == []
