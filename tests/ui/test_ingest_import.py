"""Drops and imports end to end on the real archive API: files listed and found by search,
per-file reports, sessions appearing without restart, bad drops rejected, 5,000 files."""

from __future__ import annotations

import asyncio
import time
import zipfile
from pathlib import Path
from typing import Any

from PySide6.QtCore import QMimeData, QTimer, QUrl

from storage import Archive
from tests.conftest import shared_data
from tests.storage.export_factory import linear_conversations, write_chatgpt_export
from tests.ui.conftest import listed, run_async, simulate_drop, until
from ui.dialogs.report import ResultDialog
from ui.models import DocumentRoles, HitRoles
from ui.widgets.main_window import MainWindow

A003 = "chat_session_20250402_183000_000000_a003"
PHRASE = "round pegs in the square holes"


def files_mime(*paths: Path) -> QMimeData:
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    return mime


def report_rows(win: MainWindow) -> list[tuple[str, str, str]]:
    dialog = win.last_dialog
    assert isinstance(dialog, ResultDialog)
    return [(r.name, r.status, r.detail) for r in dialog.model.rows]


async def search_for(win: MainWindow, text: str) -> list[Any]:
    panel = win.search_panel
    win.show_search()
    panel.mode.setCurrentIndex(0)  # keyword: what the files say, word for word
    panel.query.setText(text)
    panel.run_now()
    assert panel.task is not None
    await panel.task
    return [panel.model.index(r, 0).data(HitRoles.RECORD) for r in range(panel.model.rowCount())]


def test_drop_real_document_on_window_and_on_session(window: MainWindow, qloop: Any,
                                                      sample_copy: Path) -> None:
    doc = shared_data("docs", "crazyones.txt")
    md = shared_data("docs", "pypdf-history.md")

    async def scenario() -> None:
        await window.open_archive(sample_copy)
        await window.tasks.wait_idle(timeout=30)
        before = window.sidebar.documents.rowCount()
        # onto the window: the user's library
        assert simulate_drop(window, files_mime(doc)) == (True, True)
        await until(lambda: window.sidebar.documents.rowCount() == before + 1, timeout=30)
        await window.tasks.wait_idle(timeout=30)
        assert report_rows(window)[0][:2] == (str(doc), "ingested")
        names = [window.sidebar.documents.index(r, 0).data(DocumentRoles.NAME)
                 for r in range(window.sidebar.documents.rowCount())]
        assert "crazyones.txt" in names
        hits = await search_for(window, f'"{PHRASE}"')
        assert hits and hits[0].kind == "document" and hits[0].session_id is None
        # the same file again: a duplicate, said per file
        assert simulate_drop(window, files_mime(doc)) == (True, True)
        await until(lambda: not window.jobs.busy and report_rows(window)[0][1] == "duplicate",
                    timeout=30)
        # onto an open session: attached to it
        assert await window.open_session(A003)
        target = window.conversation.view.viewport()
        assert simulate_drop(target, files_mime(md)) == (True, True)
        await until(lambda: window.details.documents.rowCount() >= 1, timeout=30)
        await window.tasks.wait_idle(timeout=30)
        attached = await window.archive.list_documents("ada", A003)
        assert any(d.original_name == "pypdf-history.md" for d in attached)
        hits = await search_for(window, "pypdf")
        assert any(h.kind == "document" and h.session_id == A003 for h in hits)

    run_async(qloop, scenario(), timeout=90)
    assert window.errors == []


def test_non_file_drops_are_rejected(window: MainWindow, qloop: Any, sample_copy: Path) -> None:
    async def scenario() -> None:
        await window.open_archive(sample_copy)
        await window.tasks.wait_idle(timeout=30)
        text = QMimeData()
        text.setText("just some text")
        web = QMimeData()
        web.setUrls([QUrl("https://example.com/a.pdf")])
        for target in (window, window.sidebar.document_view.viewport(),
                       window.conversation.view.viewport()):
            assert simulate_drop(target, text) == (False, False)
            assert simulate_drop(target, web) == (False, False)
        assert not window.tasks.running("ingest")

    run_async(qloop, scenario())


def test_import_sample_export_shows_sessions_and_report(window: MainWindow, qloop: Any,
                                                        sample_copy: Path) -> None:
    export = shared_data("exports", "chatgpt", "chatgpt-tree.json")

    async def scenario() -> None:
        await window.open_archive(sample_copy)
        await window.tasks.wait_idle(timeout=30)
        before = set(listed(window))
        window.choose_import()  # File → Import…: a non-modal file dialog
        dialog = window.last_dialog
        dialog.fileSelected.emit(str(export))  # what choosing the file does
        await until(lambda: isinstance(window.last_dialog, ResultDialog), timeout=30)
        await window.tasks.wait_idle(timeout=30)
        new = set(listed(window)) - before
        assert new, "the imported sessions are listed without a restart"
        report = window.last_dialog
        assert "imported" in report.summary.text() and "messages added" in report.summary.text()
        assert {r.status for r in report.model.rows} <= {"imported", "updated", "ignored"}
        assert len([r for r in report.model.rows if r.status == "imported"]) == len(new)
        # again: nothing new, said so (skipped/unchanged), not an error box
        await window.import_path(str(export))
        await window.tasks.wait_idle(timeout=30)
        assert set(listed(window)) - before == new

    run_async(qloop, scenario(), timeout=60)


def test_import_of_a_non_export_is_a_message(window: MainWindow, qloop: Any, sample_copy: Path,
                                             tmp_path: Path) -> None:
    junk = tmp_path / "notes.json"
    junk.write_text('{"hello": "world"}')

    async def scenario() -> None:
        await window.open_archive(sample_copy)
        window.run("import", window.import_path(str(junk)), "Importing")
        await window.tasks.wait_idle(timeout=30)

    run_async(qloop, scenario())
    assert window.errors and "notes.json" in window.errors[-1]


def test_dropping_5000_files_stays_responsive(window: MainWindow, qloop: Any, sample_copy: Path,
                                              tmp_path: Path) -> None:
    """5,000 files in one drop: progress, the loop keeps ticking, one report row per file.
    Most are empty (refused at once): storing 5,000 real files takes the storage minutes
    (fsyncs per file), which measures the disk, not the window."""
    folder = tmp_path / "many"
    folder.mkdir()
    paths = []
    for n in range(5000):
        path = folder / f"note-{n:04d}.txt"
        path.write_text(f"note number {n}: zebra{n} quartz\n" if n % 100 == 0 else "")
        paths.append(path)
    gaps: list[float] = []

    async def scenario() -> None:
        await window.open_archive(sample_copy)
        await window.tasks.wait_idle(timeout=30)
        last = [time.perf_counter()]

        def tick() -> None:
            now = time.perf_counter()
            gaps.append(now - last[0])
            last[0] = now

        timer = QTimer()
        timer.setInterval(10)
        timer.timeout.connect(tick)
        timer.start()
        try:
            assert simulate_drop(window.sidebar.document_view.viewport(),
                                 files_mime(*paths)) == (True, True)
            await until(lambda: window.jobs.isVisibleTo(window), timeout=10)
            await until(lambda: isinstance(window.last_dialog, ResultDialog), timeout=120)
        finally:
            timer.stop()
        await window.tasks.wait_idle(timeout=60)

    run_async(qloop, scenario(), timeout=200)
    rows = report_rows(window)
    assert len(rows) == len(paths)
    statuses = [status for _name, status, _ in rows]
    assert statuses.count("ingested") == 50 and statuses.count("failed") == 4950
    assert all(detail for _n, status, detail in rows if status == "failed")  # says why
    assert window.sidebar.documents.rowCount() >= 50
    # responsive: the GUI loop kept ticking while the files were read, stored and indexed
    assert len(gaps) > 20
    assert max(gaps) < 0.5, f"event loop stalled {max(gaps) * 1000:.0f} ms"


def test_folder_with_symlink_loop(window: MainWindow, qloop: Any, sample_copy: Path,
                                  tmp_path: Path) -> None:
    folder = tmp_path / "loop"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "a.txt").write_text("alpha in a loop")
    (folder / "sub" / "back").symlink_to(folder, target_is_directory=True)
    (folder / "self").symlink_to(folder / "sub", target_is_directory=True)

    async def scenario() -> None:
        await window.open_archive(sample_copy)
        await window.tasks.wait_idle(timeout=30)
        assert simulate_drop(window, files_mime(folder)) == (True, True)
        await until(lambda: isinstance(window.last_dialog, ResultDialog), timeout=30)
        await window.tasks.wait_idle(timeout=30)

    run_async(qloop, scenario(), timeout=60)
    rows = report_rows(window)
    ingested = [r for r in rows if r[1] == "ingested"]
    assert [Path(r[0]).name for r in ingested] == ["a.txt"]  # once, not once per loop
    assert any(r[1] == "skipped" and "loop" in r[2] for r in rows)


def test_cancel_ingest_keeps_finished_and_reports(window: MainWindow, qloop: Any,
                                                  sample_copy: Path, tmp_path: Path) -> None:
    paths = []
    for n in range(400):
        path = tmp_path / f"c{n:03d}.txt"
        path.write_text(f"cancel test {n}")
        paths.append(path)

    async def scenario() -> None:
        await window.open_archive(sample_copy)
        await window.tasks.wait_idle(timeout=30)
        window.ingest([str(p) for p in paths], None)
        await until(lambda: window.jobs.busy, timeout=30)
        window.jobs.cancel_button.click()  # the storing loop has just begun
        await until(lambda: isinstance(window.last_dialog, ResultDialog), timeout=30)
        await window.tasks.wait_idle(timeout=30)
        await asyncio.sleep(0)

    run_async(qloop, scenario(), timeout=60)
    dialog = window.last_dialog
    assert isinstance(dialog, ResultDialog) and "Cancelled" in dialog.summary.text()
    assert dialog.model.rowCount() < len(paths)
    assert window.errors == []


def test_dropping_exports_on_the_window_imports_them(window: MainWindow, qloop: Any,
                                                     sample_copy: Path, tmp_path: Path) -> None:
    """A ChatGPT export dropped on the window is imported (in the worker process) with its
    report; a plain JSON file beside it is a document; an unsafe ZIP is refused with why."""
    export = shared_data("exports", "chatgpt", "chatgpt-tree.json")
    plain = tmp_path / "settings.json"
    plain.write_text('{"theme": "dark", "font_size": 14}')
    unsafe = tmp_path / "evil.zip"
    with zipfile.ZipFile(unsafe, "w") as zf:
        zf.writestr("../../outside.json", "[]")

    async def scenario() -> None:
        await window.open_archive(sample_copy)
        await window.tasks.wait_idle(timeout=30)
        before = set(listed(window))
        docs_before = window.sidebar.documents.rowCount()
        assert simulate_drop(window, files_mime(export, plain)) == (True, True)
        await until(lambda: isinstance(window.last_dialog, ResultDialog)
                    and report_rows(window)[0][:2] == (str(plain), "ingested"), timeout=60)
        await window.tasks.wait_idle(timeout=60)
        new = set(listed(window)) - before
        assert new, "the dropped export's conversations are listed without a restart"
        assert window.sidebar.documents.rowCount() == docs_before + 1  # settings.json
        # indexed by the worker: found at once, in one of the new sessions
        hits = await search_for(window, '"brings you here today"')
        assert hits and {h.session_id for h in hits} <= new
        # the unsafe ZIP: an error naming it, nothing imported or stored
        errors = len(window.errors)
        assert simulate_drop(window, files_mime(unsafe)) == (True, True)
        await until(lambda: len(window.errors) > errors, timeout=30)
        await window.tasks.wait_idle(timeout=30)
        assert "evil.zip" in window.errors[-1] and "zip-slip" in window.errors[-1]
        assert set(listed(window)) - before == new
        assert window.sidebar.documents.rowCount() == docs_before + 1

    run_async(qloop, scenario(), timeout=120)


def test_a_write_by_another_process_during_an_import_shows_up_after_it(
        window: MainWindow, qloop: Any, sample_copy: Path, tmp_path: Path) -> None:
    """While our worker imports, the poll does not compare listings (the worker's batches say
    what changed); what another process wrote meanwhile appears after the import."""
    export = tmp_path / "conversations.json"
    write_chatgpt_export(export, linear_conversations(300, 20))

    async def scenario() -> None:
        await window.open_archive(sample_copy)
        await window.tasks.wait_idle(timeout=30)
        window.run("import", window.import_path(str(export)), "Importing")
        await until(lambda: window.jobs.busy, timeout=10)
        other = await Archive.open(sample_copy)  # another process, as far as the window knows
        created = await other.create_session("ada", "Written during the import")
        assert window.jobs.busy, "the import ended before the other write: make it longer"
        await until(lambda: not window.jobs.busy, timeout=120)
        await until(lambda: created.session_id in listed(window), timeout=15)
        await window.tasks.wait_idle(timeout=60)

    run_async(qloop, scenario(), timeout=240)
    assert len(listed(window)) >= 3 + 1  # the sample's sessions and the other's
