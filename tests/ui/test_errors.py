"""Errors a user can act on, shown non-modally while the app keeps running: another process
holding a session's lock, a full disk (nothing half-written)."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtWidgets import QMessageBox

import storage.files
from storage import Archive
from storage.worker import run_here
from tests.conftest import shared_data
from tests.ui.conftest import run_async
from ui.widgets.main_window import MainWindow

A003 = "chat_session_20250402_183000_000000_a003"
HOLDER = """
import sys, filelock
lock = filelock.FileLock(sys.argv[1], thread_local=False)
lock.acquire()
print("locked", flush=True)
sys.stdin.readline()
lock.release()
"""


def test_session_locked_by_another_process(window: MainWindow, qloop: Any,
                                           sample_copy: Path) -> None:
    lock_file = sample_copy / ".locks" / "sessions" / "ada" / f"{A003}.lock"
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(lock_file)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"

        async def scenario() -> None:
            quick = {"storage": {"lock_timeout": "0.5"}}
            archive = await Archive.open(sample_copy, overrides=quick)
            await window.set_archive(archive)
            await window.tasks.wait_idle(timeout=30)
            assert await window.open_session(A003)
            window.run("write", window.update_session(window.session, title="Renamed"),
                       "Renaming")
            await window.tasks.wait_idle(timeout=10)

        run_async(qloop, scenario(), timeout=40)
        assert window.errors and "locked by another process" in window.errors[-1]
        assert str(lock_file) in window.errors[-1]  # names the lock
        box = window.last_dialog
        assert isinstance(box, QMessageBox) and box.isVisible() and not box.isModal()
        assert "Wait for the other program" in box.informativeText()
    finally:
        holder.communicate("\n", timeout=10)

    async def again() -> None:  # the app kept running: once the lock is free, it works
        await window.update_session(window.session, title="Renamed")

    run_async(qloop, again())
    assert window.session is not None and window.session.title == "Renamed"


def test_disk_full_says_so_and_writes_nothing_half(window: MainWindow, qloop: Any,
                                                   sample_copy: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    doc = shared_data("docs", "crazyones.txt")
    session_json = sample_copy / "users" / "ada" / A003 / "session.json"
    library = sample_copy / "users" / "ada" / "documents"

    def listing(folder: Path) -> list[str]:
        return sorted(p.name for p in folder.iterdir()) if folder.exists() else []

    async def scenario() -> None:
        await window.open_archive(sample_copy)
        await window.tasks.wait_idle(timeout=30)
        assert await window.open_session(A003)
        before_json = session_json.read_bytes()
        before_docs = listing(library)
        real_write = os.write

        def full(fd: int, data: Any) -> int:
            real_write(fd, bytes(data)[: len(data) // 2])  # part of it landed, then no space
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr(storage.files.os, "write", full)
        # The fake full disk is in this process: the drop's job must run here too.
        window.job_runner = run_here
        window.run("write", window.update_session(window.session, title="Never saved"),
                   "Renaming")
        await window.tasks.wait_idle(timeout=10)
        assert session_json.read_bytes() == before_json
        assert not [p for p in session_json.parent.iterdir() if ".tmp" in p.name]
        assert window.errors and window.errors[-1].startswith("The disk is full")
        window.ingest([str(doc)], None)
        await window.tasks.wait_idle(timeout=30)
        assert listing(library) == before_docs  # no original, text or record half-stored
        monkeypatch.undo()

    run_async(qloop, scenario(), timeout=60)
    assert len(window.errors) == 2  # the rename, then the drop
    assert all(e.startswith("The disk is full") for e in window.errors)
    box = window.last_dialog
    assert isinstance(box, QMessageBox) and not box.isModal()
    assert window.isVisible()
