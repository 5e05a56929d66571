"""Storage calls the GUI relies on: message positions, extracted text, listings that survive a
corrupt session, read-only disks reported as such."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from storage import Archive, InvalidIdError, Message, NotFoundError, ReadOnlyArchiveError
from tests.conftest import shared_data

pytestmark = pytest.mark.asyncio


async def test_find_message_gives_the_page_offset(archive: Archive) -> None:
    await archive.create_user("ada")
    sid = (await archive.create_session("ada", "t")).session_id
    await archive.add_messages("ada", sid, [Message(message_id=f"m{i}", role="user",
                                                    content=f"m{i} mentions m{i + 1}")
                                            for i in range(500)])
    position = await archive.find_message("ada", sid, "m321")
    assert position == 321
    assert (await archive.get_messages("ada", sid, 1, position))[0].message_id == "m321"
    with pytest.raises(NotFoundError, match="message 'nope'"):
        await archive.find_message("ada", sid, "nope")


async def test_find_message_in_a_seed_session_with_persona_copies() -> None:
    archive = await Archive.open(shared_data("seed-archive", "v2", "complex_data"))
    messages = await archive.get_all_messages("markly2", "panel_session_76e50845")
    target = messages[-1].message_id
    assert await archive.find_message("markly2", "panel_session_76e50845", target) == \
        len(messages) - 1


async def test_read_document_text(archive: Archive) -> None:
    await archive.create_user("ada")
    report = await archive.ingest([shared_data("docs", "crazyones.txt")], "ada")
    doc_id = report.files[0].doc_id
    assert doc_id is not None
    text = await archive.read_document_text("ada", doc_id)
    assert text is not None and "round pegs in the square holes" in text
    # As stored, "\r\n" included: a search hit's character offsets index this text.
    (stored,) = archive.root.glob(f"**/{doc_id}.txt")
    stored.write_bytes(b"one\r\ntwo\rthree\n")
    assert await archive.read_document_text("ada", doc_id) == "one\r\ntwo\rthree\n"
    blob = await archive.save_document("ada", b"\x89PNG\r\n\x1a\n" + b"\0" * 20, "pic.png")
    assert await archive.read_document_text("ada", blob.doc_id) is None
    # A scanned PDF: its pages give only white space, "no text found" at ingest, and no text
    # to show (not an empty preview).
    scanned = (await archive.ingest([shared_data("docs", "git.pdf")], "ada")).files[0]
    assert scanned.reason is not None and "no text found" in scanned.reason
    assert scanned.doc_id is not None
    assert await archive.read_document_text("ada", scanned.doc_id) is None


async def test_a_corrupt_session_does_not_hide_the_others(archive: Archive) -> None:
    await archive.create_user("ada")
    good = await archive.create_session("ada", "good")
    bad = await archive.create_session("ada", "bad")
    archive.layout.session_json("ada", bad.session_id).write_text("{oops")
    listed = await archive.list_sessions("ada")
    assert [s.session_id for s in listed] == [good.session_id]
    problems = archive.listing_problems["ada"]
    assert len(problems) == 1 and bad.session_id in problems[0].path


async def test_lock_on_a_read_only_disk_is_a_read_only_error(
        archive: Archive, monkeypatch: pytest.MonkeyPatch) -> None:
    await archive.create_user("ada")
    sid = (await archive.create_session("ada", "t")).session_id
    lock = archive.layout.lock_file("ada", sid)
    lock.unlink()
    real_open = os.open

    def refusing_open(path: str | Path, flags: int, *args: object, **kwargs: object) -> int:
        if str(path) == str(lock):
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        return real_open(path, flags, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "open", refusing_open)
    with pytest.raises(ReadOnlyArchiveError, match="read-only"):
        await archive.add_message("ada", sid, Message(role="user", content="x"))


async def test_update_settings_validates_then_stores(archive: Archive) -> None:
    import orjson

    from storage import SettingsError

    settings = await archive.update_settings({"storage": {"compact_after_days": 7}})
    assert settings.storage.compact_after_days == 7
    assert archive.settings.storage.compact_after_days == 7
    before = archive.layout.archive_json.read_bytes()
    assert orjson.loads(before)["settings"] == {"storage": {"compact_after_days": 7}}
    with pytest.raises(SettingsError, match=r"search\.page_size"):
        await archive.update_settings({"search": {"page_size": 0}})
    assert archive.layout.archive_json.read_bytes() == before
    reopened = await Archive.open(archive.root, environ={})
    assert reopened.settings.storage.compact_after_days == 7


async def test_session_creation_is_atomic_and_heals_an_interrupted_one(archive: Archive) -> None:
    import os
    import socket

    await archive.create_user("ada")
    # An older, interrupted create left an empty folder: taken over, not an error.
    (archive.layout.user_dir("ada") / "imported_1").mkdir()
    session = await archive.create_session("ada", "t", session_id="imported_1")
    assert (await archive.get_session("ada", "imported_1")) == session
    # A create killed before its rename leaves only a hidden staging folder.
    host = socket.gethostname().replace(".", "_").replace("-", "_")[:40]
    dead_pid = 2**22 + 12345
    while True:
        try:
            os.kill(dead_pid, 0)
            dead_pid += 1
        except ProcessLookupError:
            break
    staging = archive.layout.user_dir("ada") / f".s2.{host}-{dead_pid}-abcd1234.tmp"
    staging.mkdir()
    (staging / "session.json").write_text("{}")
    assert [s.session_id for s in await archive.list_sessions("ada")] == ["imported_1"]
    report = await archive.verify()
    assert report.ok and [p.problem.split(" of ")[0] for p in report.problems] == [
        "leftover temp folder"]
    await archive.verify(repair=True)
    assert not staging.exists()


async def test_index_status(archive: Archive) -> None:
    await archive.create_user("ada")
    sid = (await archive.create_session("ada", "t")).session_id
    await archive.add_messages("ada", sid, [Message(role="user", content=f"hello {i}")
                                            for i in range(3)])
    await archive.refresh_index()
    status = await archive.index_status()
    assert status["embedder"] == "model2vec:potion-base-8M" and status["degraded"] is None
    # The three messages and the session's title.
    assert (status["documents"], status["vectors"], status["problems"]) == (4, 4, [])


async def test_ingest_indexing_is_a_stage_of_the_job(archive: Archive) -> None:
    from storage.jobs import JobControl, Progress

    await archive.create_user("ada")
    seen: list[Progress] = []
    control = JobControl("ingest", seen.append)
    await archive.ingest([shared_data("docs", "crazyones.txt")], "ada", control=control)
    assert any(p.current == "making the documents searchable" for p in seen)
    assert (await archive.search('"square holes"', "keyword")).total == 1


async def test_cancelled_import_carries_its_report(archive: Archive) -> None:
    from storage.importers.job import ImportCancelled
    from storage.jobs import JobControl

    await archive.create_user("ada")
    control = JobControl("import", lambda progress: control.cancel())
    with pytest.raises(ImportCancelled) as info:
        await archive.import_archive(shared_data("exports", "chatgpt", "chatgpt-export.json"),
                                     "ada", control=control)
    assert info.value.report.cancelled


async def test_get_sessions_reads_many_in_order_and_leaves_out_deleted(
    chat: tuple[Archive, str, str],
) -> None:
    archive, user, first = chat
    second = (await archive.create_session(user, "Second")).session_id
    third = (await archive.create_session(user, "Third")).session_id
    await archive.delete_session(user, second)
    found = await archive.get_sessions(user, [third, second, first])
    assert [s.session_id for s in found] == [third, first]
    with pytest.raises(InvalidIdError):
        await archive.get_sessions(user, ["../etc"])
