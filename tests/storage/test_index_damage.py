"""Index files damaged, lost or replaced (by a crash, a sync tool, a person, another
process with other settings): found, reported, rebuilt from the archive's files, and never
a crash, while the archive stays usable."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import filelock
import numpy as np
import orjson
import pytest

from storage import Archive, IndexUnavailableError, LockTimeoutError, Message
from storage.search import fulltext, indexer
from storage.search.embedder import load_embedder
from storage.search.fulltext import IndexCorruptError
from storage.search.vectors import EmbedderInfo, VectorIndex
from tests.storage.search_support import HASHING, archive_with
from tests.storage.test_index_processes import other_process

pytestmark = pytest.mark.asyncio
TEXTS = {
    "m1": "How do I keep a castle warm in winter?",
    "m2": "Tapestries and big fireplaces kept the great hall warm.",
    "m3": "My cat sleeps on the radiator all afternoon.",
}


async def filled(root: Path) -> Archive:
    archive = await archive_with(root, TEXTS, "Castles")
    assert {h.message_id for h in (await archive.search("warm", "keyword")).hits} == {"m1", "m2"}
    return archive


def segment_file(root: Path, ext: str) -> Path:
    manifest = orjson.loads((root / ".index" / "vectors" / "manifest.json").read_bytes())
    return root / ".index" / "vectors" / f"{manifest['segments'][0]['name']}.{ext}"


async def found_again(root: Path) -> None:
    """A fresh process's view: the damage is reported, the next search rebuilds and finds
    everything, and nothing is reported after."""
    reopened = await Archive.open(root, overrides=HASHING)
    assert reopened.index_problems()
    report = await reopened.verify()
    assert any("search index" in p.problem for p in report.problems)
    keyword = await reopened.search("warm", "keyword")
    assert {h.message_id for h in keyword.hits} == {"m1", "m2"}
    semantic = await reopened.search("castle warm in winter", "semantic")
    assert semantic.hits[0].message_id == "m1"
    assert reopened.index_problems() == []
    await reopened.close()


@pytest.mark.parametrize(
    "ext", ["vec.npy", "scale.npy", "mean.npy", "step.npy", "bits.npy", "mag.npy", "gidx.npy",
            "koff.npy", "keys.npy", "groups.json"]
)
async def test_an_empty_segment_file_is_rebuilt(tmp_path: Path, ext: str) -> None:
    archive = await filled(tmp_path / "a")
    await archive.close()
    segment_file(archive.root, ext).write_bytes(b"")
    await found_again(archive.root)


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("vectors/manifest.json", b"[]"),
        ("vectors/manifest.json", b"null"),
        ("vectors/manifest.json", b'{"segments": [{"name": "../../../x", "count": 1}]}'),
        ("vectors/manifest.json", b'{"segments": [{"count": 3}]}'),
        ("state.json", b"[]"),
        ("state.json", b'{"version": 1, "sources": []}'),
    ],
)
async def test_index_files_of_the_wrong_shape_are_rebuilt(
    tmp_path: Path, name: str, content: bytes
) -> None:
    archive = await filled(tmp_path / "a")
    await archive.close()
    path = archive.root / ".index" / name
    if name.startswith("vectors/") and content.startswith(b"{"):
        manifest = orjson.loads(path.read_bytes())  # a valid header, wrong segments
        manifest["segments"] = orjson.loads(content)["segments"]
        content = orjson.dumps(manifest)
    path.write_bytes(content)
    await found_again(archive.root)
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("lost", ["vectors/manifest.json", "vectors"])
async def test_a_lost_vector_manifest_or_folder_is_found(tmp_path: Path, lost: str) -> None:
    archive = await filled(tmp_path / "a")
    await archive.close()
    path = archive.root / ".index" / lost
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink()
    reopened = await Archive.open(archive.root, overrides=HASHING)
    assert any("vector index holds 0 vectors" in p for p in reopened.index_problems())
    await reopened.close()
    await found_again(archive.root)


async def test_the_index_folder_deleted_under_an_open_archive_is_rebuilt(tmp_path: Path) -> None:
    archive = await filled(tmp_path / "a")
    shutil.rmtree(archive.root / ".index")
    results = await archive.search("warm", "keyword")
    assert {h.message_id for h in results.hits} == {"m1", "m2"}
    assert (archive.root / ".index" / "state.json").exists()  # rebuilt by that search
    session = (await archive.list_sessions("ada"))[0].session_id
    await archive.add_message(
        "ada", session, Message(message_id="m4", role="user", content="warm socks")
    )
    assert {h.message_id for h in (await archive.search("warm", "keyword")).hits} == {
        "m1",
        "m2",
        "m4",
    }
    assert archive.index_problems() == []
    await archive.close()


@pytest.mark.parametrize(
    "pattern", ["*.vec.npy", "*.keys.npy", "fulltext/*.store", "fulltext/*.idx"]
)
async def test_files_cut_under_an_open_archive_are_found_not_fatal(
    tmp_path: Path, pattern: str
) -> None:
    """In a child process: reading a memory-mapped page past a cut file's end is SIGBUS,
    which would take the test run with it."""
    script = textwrap.dedent(
        f"""
        import asyncio, sys
        from pathlib import Path
        sys.path.insert(0, {str(Path(__file__).resolve().parents[2])!r})
        from tests.storage.test_index_damage import filled

        async def main():
            archive = await filled(Path({str(tmp_path / "a")!r}))
            await archive.search("warm", "hybrid")
            index = archive.root / ".index"
            for path in (index / "vectors").glob({pattern!r}) if "fulltext" not in {pattern!r} \\
                    else index.glob({pattern!r}):
                with open(path, "r+b") as f:
                    f.truncate(path.stat().st_size // 2)
            for mode in ("semantic", "keyword", "hybrid"):
                results = await archive.search("castle warm in winter", mode)
                rebuilt = "has been rebuilt" in (results.degraded or "")
                print(mode, results.hits[0].message_id, rebuilt, flush=True)
            print("problems", len(archive.index_problems()))

        asyncio.run(main())
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.split("\n")
    # The first search finds the damage and rebuilds (and says so); the index is whole after.
    assert lines[:3] == ["semantic m1 True", "keyword m1 False", "hybrid m1 False"], done.stdout
    assert lines[3] == "problems 0"


@pytest.mark.parametrize(
    ("ext", "write"),
    [("store", False), ("idx", False), ("term", False), ("pos", False), ("fieldnorm", False),
     ("store", True)],
)
async def test_keyword_files_cut_past_their_first_pages_are_found_not_fatal(
    tmp_path: Path, ext: str, write: bool
) -> None:
    """tantivy maps its files: reading a page past a cut file's new end is SIGBUS, which no
    exception catches. Files of several pages (3,000 messages), each cut to half under an
    open archive: the next search finds the cut before tantivy reads (a child process, so a
    SIGBUS would fail the test, not end the run). ``write``: a message is added after the
    cut, so that search first commits and reloads (tantivy keeps its maps of the segments
    the commit left alone: the cut must be found before the reload too)."""
    script = textwrap.dedent(
        f"""
        import asyncio, sys
        from pathlib import Path
        sys.path.insert(0, {str(Path(__file__).resolve().parents[2])!r})
        from storage import Archive, Message
        from tests.storage.search_support import HASHING

        async def main():
            archive = await Archive.open(Path({str(tmp_path / "a")!r}), create=True,
                                         overrides=HASHING)
            await archive.create_user("ada")
            session = await archive.create_session("ada", "Many")
            await archive.add_messages("ada", session.session_id, [
                Message(message_id=f"m{{i}}", role="user", content=f"note w{{i}}x common words")
                for i in range(3000)
            ])
            assert (await archive.search("common", "keyword")).total == 3000
            cut = 0
            for path in (archive.root / ".index" / "fulltext").glob("*.{ext}"):
                size = path.stat().st_size
                assert size > 8192, (path.name, size)
                with open(path, "r+b") as f:
                    f.truncate(size // 2)
                cut += 1
            assert cut
            if {write!r}:
                await archive.add_message("ada", session.session_id,
                                          Message(role="user", content="one more note"))
            for query in ("common", "w1234x", "w2999x"):
                results = await archive.search(query, "keyword")
                print(query, results.total, "has been rebuilt" in (results.degraded or ""))
            print("problems", len(archive.index_problems()))

        asyncio.run(main())
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, (done.returncode, done.stderr[-3000:])
    assert done.stdout.split("\n")[:4] == [
        "common 3000 True",
        "w1234x 1 False",
        "w2999x 1 False",
        "problems 0",
    ], done.stdout


async def test_processes_with_other_embedders_never_mix_vector_spaces(tmp_path: Path) -> None:
    """Ours embeds with the hashing embedder; another process (the archive's own setting,
    the packaged model) rebuilds the index while ours is open. Our next refresh must not add
    its vectors to the other's segments: it rebuilds in its own space."""
    archive = await filled(tmp_path / "a")
    await archive.search("warm", "semantic")
    assert other_process(archive.root, "search", "semantic", "castle")[0] != "0"
    session = (await archive.list_sessions("ada"))[0].session_id
    texts = {**TEXTS, "m4": "A castle keeps its warmth behind thick stone walls."}
    await archive.add_message(
        "ada", session, Message(message_id="m4", role="user", content=texts["m4"],
                                timestamp=dt.datetime(2025, 1, 1, tzinfo=dt.UTC))
    )
    results = await archive.search("castle warm in winter", "semantic")
    assert results.hits[0].message_id == "m1"
    assert archive.index_problems() == []
    await archive.close()

    hashing = load_embedder("hashing", 64)
    info = EmbedderInfo(hashing.name, hashing.model_hash, hashing.dim)
    index = VectorIndex(tmp_path / "a" / ".index" / "vectors", info)
    # A message's key ends with its line's byte offset in the log.
    (log,) = (tmp_path / "a").glob(f"**/{session}/messages.jsonl")
    data, at, message_at = log.read_bytes(), 0, {}
    for line in data.split(b"\n")[:-1]:
        message_at[str(at)] = orjson.loads(line)["message_id"]
        at += len(line) + 1
    rows = 0
    for segment in index.segments:
        for row in np.flatnonzero(~segment.deleted):
            key = segment.some_keys([int(row)])[0]
            if not key.startswith("m/"):
                continue  # a session's title
            expected = hashing.encode([texts[message_at[key.rsplit("/", 1)[1]]]])[0]
            stored = np.asarray(segment.vectors[row], dtype=np.float32)
            assert float(stored @ expected) > 0.99, key  # every vector in the hashing space
            rows += 1
    assert rows == len(texts)


async def test_a_commit_from_a_stale_view_is_refused(tmp_path: Path) -> None:
    """The last line of defence against mixed or lost segments: a manifest replaced since a
    view read it (another process's commit or rebuild) is never overwritten from that view."""
    info = EmbedderInfo("test", "0", 4)
    first = VectorIndex(tmp_path, info)
    stale = VectorIndex(tmp_path, info)
    first.add(["a/1"], ["a"], np.eye(4, dtype=np.float32)[:1])
    first.commit()
    stale.add(["b/1"], ["b"], np.eye(4, dtype=np.float32)[1:2])
    with pytest.raises(IndexCorruptError, match="replaced by another process"):
        stale.commit()
    fresh = VectorIndex(tmp_path, info)
    assert fresh.segments[0].some_keys([0]) == ["a/1"] and len(fresh.segments) == 1
    fresh.add(["b/1"], ["b"], np.eye(4, dtype=np.float32)[1:2])
    fresh.commit()  # a view read after the commit may commit
    assert VectorIndex(tmp_path, info).count == 2


async def test_an_index_rebuilt_elsewhere_with_other_settings_is_not_searched_as_ours(
    tmp_path: Path,
) -> None:
    """Another archive object (as another process would) rebuilds the index with English
    stemming. Ours neither searches that index with its own analyzer nor, when it next
    writes, indexes only what it wrote into a fresh index: it rebuilds the whole archive
    with its settings."""
    ours = await archive_with(tmp_path / "a", TEXTS, "Castles")
    session = (await ours.list_sessions("ada"))[0].session_id
    other_session = await ours.create_session("ada", "Zoo")
    await ours.add_message(
        "ada", other_session.session_id, Message(message_id="z1", role="user", content="zebra")
    )
    assert (await ours.search("zebra", "keyword")).total == 1
    theirs = await Archive.open(ours.root, overrides={**HASHING, "search": {"stemming": True}})
    assert (await theirs.search("castles kind:message", "keyword")).total == 1
    await theirs.close()
    await ours.add_message(
        "ada", session, Message(message_id="m4", role="user", content="lighthouse keepers")
    )
    assert [h.message_id for h in (await ours.search("zebra", "keyword")).hits] == ["z1"]
    assert [h.message_id for h in (await ours.search("keepers", "keyword")).hits] == ["m4"]
    assert (await ours.search("keeper", "keyword")).total == 0  # no stemming here
    semantic = await ours.search("castle warm in winter", "semantic")
    assert semantic.hits[0].message_id == "m1"
    assert ours.index_problems() == []
    await ours.close()


async def many(root: Path, n: int) -> tuple[Archive, Path]:
    """``n`` messages "msg w<i>x common filler" of ada's, indexed; and their log."""
    archive = await Archive.open(root, create=True, overrides=HASHING)
    await archive.create_user("ada")
    session = await archive.create_session("ada", "Many")
    await archive.add_messages(
        "ada",
        session.session_id,
        [
            Message(message_id=f"m{i:03d}", role="user", content=f"msg w{i:03d}x common filler")
            for i in range(n)
        ],
    )
    assert (await archive.search("common", "keyword")).total == n
    (log,) = root.glob(f"**/{session.session_id}/messages.jsonl")
    return archive, log


async def rebuilt_and_whole(root: Path, n: int) -> None:
    """A fresh process's view of a damaged index: reported without raising, then rebuilt by
    the next search, which finds everything; ``reindex`` works too."""
    reopened = await Archive.open(root, overrides=HASHING)
    assert reopened.index_problems()
    report = await reopened.verify()
    assert any("search index" in p.problem for p in report.problems)
    assert (await reopened.search("common", "keyword")).total == n
    assert reopened.index_problems() == []
    assert (await reopened.reindex()).documents_added == n + 1  # and the title
    await reopened.close()


async def test_a_file_tantivy_panics_on_is_reported_and_rebuilt(tmp_path: Path) -> None:
    """Garbled bytes in the middle of a fast-field file made tantivy panic (pyo3's
    PanicException, not an Exception) in verify, search and reindex alike."""
    archive, _log = await many(tmp_path / "a", 3)
    await archive.close()
    (path,) = (tmp_path / "a" / ".index" / "fulltext").glob("*.fast")
    data = bytearray(path.read_bytes())
    for i in range(len(data) // 3, len(data) // 3 + len(data) // 10):
        data[i] ^= 0x5A
    path.write_bytes(bytes(data))
    await rebuilt_and_whole(tmp_path / "a", 3)


async def test_a_garbled_npy_header_is_reported_and_rebuilt(tmp_path: Path) -> None:
    """numpy reads a .npy header as a Python literal: a garbled one raised tokenize's
    TokenError through verify, search and reindex."""
    archive, _log = await many(tmp_path / "a", 3)
    await archive.close()
    path = segment_file(tmp_path / "a", "scale.npy")
    path.write_bytes(path.read_bytes().replace(b"), }", b"), {", 1))
    await rebuilt_and_whole(tmp_path / "a", 3)


@pytest.mark.parametrize(
    ("entry", "said"),
    [
        (None, "is NoneType, not an object"),
        ({"sig": [], "docs": "x"}, "has docs 'x'"),
        ({"docs": 3}, "has no signature list"),
        ({"sig": [[1]]}, "has no signature list"),
        ({"sig": [None]}, "has no signature list"),
        ({"sig": [["messages.jsonl"]]}, "has no signature list"),
    ],
)
async def test_a_state_entry_of_the_wrong_shape_is_reported_and_rebuilt(
    tmp_path: Path, entry: object, said: str
) -> None:
    archive, _log = await many(tmp_path / "a", 3)
    await archive.close()
    path = tmp_path / "a" / ".index" / "state.json"
    state = orjson.loads(path.read_bytes())
    state["sources"][next(iter(state["sources"]))] = entry
    path.write_bytes(orjson.dumps(state))
    reopened = await Archive.open(tmp_path / "a", overrides=HASHING)
    assert any(said in p for p in reopened.index_problems())
    await reopened.close()
    await rebuilt_and_whole(tmp_path / "a", 3)


@pytest.mark.parametrize("lost", ["fulltext/meta.json", "fulltext"])
async def test_a_lost_keyword_index_is_rebuilt_not_left_empty(tmp_path: Path, lost: str) -> None:
    """A new empty keyword index was made in its place, the state said every source was
    indexed, and keyword search found nothing from then on."""
    archive, _log = await many(tmp_path / "a", 3)
    await archive.close()
    path = tmp_path / "a" / ".index" / lost
    shutil.rmtree(path) if path.is_dir() else path.unlink()
    await rebuilt_and_whole(tmp_path / "a", 3)


async def test_a_log_edited_in_place_past_its_start_is_indexed_whole(tmp_path: Path) -> None:
    """Edited with the same file (inode) kept: only its first 4 KiB were compared before."""
    archive, log = await many(tmp_path / "a", 80)  # 80 lines, about 12 KB
    await archive.close()
    data = log.read_bytes()
    assert data.index(b"w070x") > 8192
    with open(log, "r+b") as f:  # same size
        f.write(data.replace(b"w070x", b"QQQQQ"))
    archive = await Archive.open(tmp_path / "a", overrides=HASHING)
    assert (await archive.search("w070x", "keyword")).total == 0
    assert (await archive.search("QQQQQ", "keyword")).total == 1
    await archive.close()
    lines = log.read_bytes().split(b"\n")
    del lines[50]  # one line deleted in place, and a longer one appended
    longer = lines[0].replace(b"m000", b"mNEW").replace(b"w000x", b"NEWWORD")
    lines.insert(-1, longer.replace(b"filler", b"filler" * 20))
    with open(log, "r+b") as f:
        f.truncate(0)
        f.write(b"\n".join(lines))
    archive = await Archive.open(tmp_path / "a", overrides=HASHING)
    assert (await archive.search("w050x", "keyword")).total == 0
    assert (await archive.search("NEWWORD", "keyword")).total == 1
    assert (await archive.search("common", "keyword", limit=200)).total == 80
    assert archive.index_problems() == []
    await archive.close()


async def test_a_commit_that_fails_on_damaged_files_is_rebuilt(tmp_path: Path) -> None:
    """tantivy's commit failed on the damage (a ValueError) and reached the caller."""
    archive, _log = await many(tmp_path / "a", 3)
    session = (await archive.list_sessions("ada"))[0].session_id
    await archive.close()
    for path in (tmp_path / "a" / ".index" / "fulltext").glob("*.pos"):
        path.unlink()
    archive = await Archive.open(tmp_path / "a", overrides=HASHING)
    await archive.edit_message("ada", session, "m001", content="edited")
    results = await archive.search("common", "keyword")
    assert results.total == 2 and "has been rebuilt" in (results.degraded or "")
    assert (await archive.search("common", "keyword")).degraded is None  # not said again
    assert (await archive.search("edited", "keyword")).total == 1
    await archive.close()


@pytest.mark.parametrize("ext", ["term", "idx", "pos", "store", "fieldnorm", "fast"])
async def test_a_flipped_bit_in_a_keyword_file_is_found_by_verify(tmp_path: Path, ext: str) -> None:
    """tantivy reads without checking its files' checksums (a flipped bit in a term file lost
    hits, silently); verify checks them, and --repair rebuilds."""
    archive, _log = await many(tmp_path / "a", 30)
    (path,) = (tmp_path / "a" / ".index" / "fulltext").glob(f"*.{ext}")
    data = bytearray(path.read_bytes())
    data[len(data) // 3] ^= 0x10
    path.write_bytes(bytes(data))
    problems = archive.index_problems()
    if ext == "fast":  # tantivy may refuse the index (it reads this file at open), or not
        assert len(problems) == 1, problems
        assert "cannot be opened" in problems[0] or path.name in problems[0], problems
    else:
        assert problems == [f"keyword index file {path.name} does not match its checksum "
                            "(its content changed)"]
    report = await archive.verify(repair=True)
    assert any(p.problem.startswith("search index: ") and p.repaired for p in report.problems)
    assert archive.index_problems() == []
    assert (await archive.search("common", "keyword")).total == 30
    await archive.close()


@pytest.mark.parametrize("ext", ["vec.npy", "bits.npy", "keys.npy"])
async def test_a_flipped_bit_in_a_vector_file_is_found_by_verify(tmp_path: Path, ext: str) -> None:
    """A search reads a few float16 rows and keys: a flipped bit changed rankings or keys
    silently. verify compares each file with the checksum recorded as it was written, and
    --repair rebuilds."""
    archive = await filled(tmp_path / "a")
    path = segment_file(archive.root, ext)
    data = bytearray(path.read_bytes())
    data[-3] ^= 0x10  # the last row's data (a .npy header is at the start)
    path.write_bytes(bytes(data))
    assert archive.index_problems() == [
        f"vector index file {path.name} does not match its checksum (its content changed)"
    ]
    report = await archive.verify(repair=True)
    assert any(p.problem.startswith("search index: ") and p.repaired for p in report.problems)
    assert archive.index_problems() == []
    semantic = await archive.search("castle warm in winter", "semantic")
    assert semantic.hits[0].message_id == "m1"
    await archive.close()


@pytest.mark.parametrize("during", ["_problem", "_keyword_problem"])
async def test_verify_sees_one_commit_while_another_process_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, during: str
) -> None:
    """verify read the state, then opened the indexes, then took the index lock for the
    checksums: another process's commit in between (a tombstone file replaced, the old one
    deleted; a vector count moved) was reported as damage, and --repair rebuilt a sound
    index. It now holds the lock throughout: the other process cannot commit meanwhile."""
    archive = await filled(tmp_path / "a")
    await archive.update_settings({"vector": {"embedder": "hashing"}})  # the other's too
    session = (await archive.list_sessions("ada"))[0].session_id
    await archive.edit_message("ada", session, "m3", content="My cat sleeps all day.")
    assert (await archive.search("cat", "keyword")).total == 1  # reindexed: a tombstone file
    check = getattr(indexer.Indexer, during)

    def another_process_writes_meanwhile(self: indexer.Indexer) -> str | None:
        other_process(self.root, "edit", "ada", session, "m3", "My dog sleeps all day.")
        # Its search cannot take the index lock to index its edit: it searches what is there.
        assert other_process(self.root, "search", "keyword", "dog")[0] == "0"
        return check(self)  # type: ignore[no-any-return]

    monkeypatch.setattr(indexer.Indexer, during, another_process_writes_meanwhile)
    assert archive.index_problems() == []
    monkeypatch.setattr(indexer.Indexer, during, check)
    assert other_process(archive.root, "search", "keyword", "dog")[0] == "1"  # indexed now
    assert archive.index_problems() == []
    await archive.close()


async def test_an_index_folder_that_cannot_be_written_is_reported_untouched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Made by another user (as after sudo flatchat): the repair that would rebuild it
    cannot, so nothing is deleted and the error says where and why."""
    archive, _log = await many(tmp_path / "a", 3)
    await archive.close()
    (tmp_path / "a" / ".index" / "state.pending").write_bytes(b"{}")  # asks for a rebuild
    fulltext = tmp_path / "a" / ".index" / "fulltext"
    real_access = os.access

    def access(path: object, mode: int, **kwargs: object) -> bool:
        return Path(str(path)) != fulltext and real_access(path, mode)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "access", access)
    archive = await Archive.open(tmp_path / "a", overrides=HASHING)
    with pytest.raises(IndexUnavailableError, match=r"fulltext cannot be used: Permission denied"):
        await archive.search("common", "keyword")
    assert (tmp_path / "a" / ".index" / "state.json").exists()
    assert list(fulltext.glob("*.store"))
    monkeypatch.setattr(os, "access", real_access)
    assert (await archive.search("common", "keyword")).total == 3
    await archive.close()


async def test_closing_the_archive_closes_the_index_watch(tmp_path: Path) -> None:
    """Each open keyword index watches its folder (an inotify instance: 128 a user)."""
    archive, _log = await many(tmp_path / "a", 3)
    fds = len(os.listdir("/proc/self/fd"))
    for _ in range(20):
        archive = await Archive.open(tmp_path / "a", overrides=HASHING)
        await archive.search("common", "keyword")
        await archive.close()
    assert len(os.listdir("/proc/self/fd")) <= fds + 2  # without gc.collect
    results = await archive.search("common", "keyword")  # a closed archive opens them again
    assert results.total == 3
    await archive.close()


async def test_a_long_log_is_told_edited_by_its_first_and_last_bytes(tmp_path: Path) -> None:
    log = tmp_path / "messages.jsonl"
    line = b'{"message_id": "m", "content": "some text"}\n'
    log.write_bytes(line * (10 * (1 << 20) // len(line)))
    end = log.stat().st_size
    digest = indexer._digest(log, end)
    for at, seen in ((100, True), (end - 1000, True), (5 << 20, False)):  # not the middle
        data = bytearray(log.read_bytes())
        data[at] ^= 0x01
        (tmp_path / "edited.jsonl").write_bytes(bytes(data))
        assert (indexer._digest(tmp_path / "edited.jsonl", end) != digest) is seen, at
    assert indexer._digest(log, end + 1) == ""  # shorter than the offset recorded


async def test_a_long_log_edited_in_its_middle_keeping_its_size_is_indexed_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past the bytes the digest hashes (its first and last 4 MiB, here 1 KiB each), an
    edit in place that kept the log's size was not seen until a reindex."""
    monkeypatch.setattr(indexer, "DIGEST_HEAD", 1024)
    monkeypatch.setattr(indexer, "DIGEST_TAIL", 1024)
    archive, log = await many(tmp_path / "a", 80)  # about 12 KB
    await archive.close()
    data = log.read_bytes()
    at = data.index(b"w040x")
    assert 1024 < at < len(data) - 1024  # hashed by neither end
    await edited_in_place_and_found(tmp_path / "a", log)


async def edited_in_place_and_found(root: Path, log: Path) -> None:
    edit_in_place(log)
    await edit_found(root)


def edit_in_place(log: Path) -> None:
    """Edit the 80-message log of :func:`many` in place ("w040x" becomes "QQQQQ"), keeping
    its size and file, a clock tick later, as another tool would."""
    data = log.read_bytes()
    stat = log.stat()
    with open(log, "r+b") as f:  # same file, same size
        f.write(data.replace(b"w040x", b"QQQQQ"))
    os.utime(log, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))  # a coarse clock's tick
    assert log.stat().st_size == stat.st_size and log.stat().st_ino == stat.st_ino


def append_line(log: Path, text: str) -> None:
    """Another process's message appended to ``log``, straight to the file."""
    with open(log, "ab") as f:
        f.write(Message(message_id="late", role="user", content=text).to_json() + b"\n")


async def written_and_searched(archive: Archive, session: str) -> None:
    """This process writes to the session, and a search indexes what it wrote."""
    await archive.add_messages("ada", session, [Message(role="user", content="ownword")])
    assert (await archive.search("ownword", "keyword")).total == 1


async def edit_found(root: Path) -> None:
    """A fresh process finds :func:`edit_in_place`'s new word and not the old one."""
    archive = await Archive.open(root, overrides=HASHING)
    assert (await archive.search("w040x", "keyword")).total == 0
    assert (await archive.search("QQQQQ", "keyword")).total == 1
    assert (await archive.search("common", "keyword", limit=200)).total == 80
    await archive.close()


async def test_an_edit_in_place_after_a_refresh_that_raced_an_append_is_seen(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The signature a refresh records is its scan's: another process's append between the
    scan and the read left it smaller than what was read, and a later edit in place that
    kept the size looked like growth (resumed, unseen). What the log was when read decides."""
    monkeypatch.setattr(indexer, "DIGEST_HEAD", 1024)
    monkeypatch.setattr(indexer, "DIGEST_TAIL", 1024)
    archive, log = await many(tmp_path / "a", 80)
    session = (await archive.list_sessions("ada"))[0].session_id
    scan = indexer.Indexer.scan

    def racing_scan(self: indexer.Indexer, only: object = None) -> object:
        found = scan(self, only)  # type: ignore[arg-type]
        monkeypatch.setattr(indexer.Indexer, "scan", scan)  # once
        append_line(log, "lateword")  # another process's append, after the scan's stat
        return found

    monkeypatch.setattr(indexer.Indexer, "scan", racing_scan)
    await written_and_searched(archive, session)
    assert (await archive.search("lateword", "keyword")).total == 1
    await archive.close()
    await edited_in_place_and_found(tmp_path / "a", log)


@pytest.mark.parametrize(
    ("digest_ends", "append"),
    [(1024, False), (indexer.DIGEST_HEAD, False), (indexer.DIGEST_HEAD, True)],
)
async def test_an_edit_in_place_while_a_refresh_reads_the_log_is_seen(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, digest_ends: int, append: bool
) -> None:
    """An edit in place (same size, its time moved) made while a refresh read the log's new
    tail: the digest made after the read held it, and the log's state as read was recorded
    after it, so the next refresh resumed and the edit was never indexed. The next refresh
    now reads the log whole (a long one, past the digest's ends, and a short one, also when
    a line was appended meanwhile: a stat cannot tell that from growth alone)."""
    monkeypatch.setattr(indexer, "DIGEST_HEAD", digest_ends)
    monkeypatch.setattr(indexer, "DIGEST_TAIL", digest_ends)
    archive, log = await many(tmp_path / "a", 80)
    session = (await archive.list_sessions("ada"))[0].session_id
    message_docs = indexer.Indexer._message_docs

    def edited_meanwhile(
        self: indexer.Indexer, source: indexer.Source, offset: int, origin: str
    ) -> object:
        monkeypatch.setattr(indexer.Indexer, "_message_docs", message_docs)  # once
        assert offset > 0  # the new tail
        edit_in_place(log)
        made = message_docs(self, source, offset, origin)
        if append:  # and another process's append, after the read
            append_line(log, "late")
        return made

    monkeypatch.setattr(indexer.Indexer, "_message_docs", edited_meanwhile)
    await written_and_searched(archive, session)
    await archive.close()
    await edit_found(tmp_path / "a")


async def test_an_append_undone_on_a_full_disk_does_not_reindex_a_log_the_digest_covers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write cut short by a full disk is cut back off the log (same size, its time moved):
    under 8 MiB the digest tells it is unchanged, so the log is resumed, not read whole and
    embedded again."""
    archive, log = await many(tmp_path / "a", 80)
    await archive.close()
    stat = log.stat()
    fd = os.open(log, os.O_WRONLY | os.O_APPEND)
    os.write(fd, b'{"partial')
    os.ftruncate(fd, stat.st_size)
    os.close(fd)
    os.utime(log, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    reads: list[int] = []
    message_docs = indexer.Indexer._message_docs

    def spy(self: indexer.Indexer, source: indexer.Source, offset: int, origin: str) -> object:
        reads.append(offset)
        return message_docs(self, source, offset, origin)

    monkeypatch.setattr(indexer.Indexer, "_message_docs", spy)
    archive = await Archive.open(tmp_path / "a", overrides=HASHING)
    assert (await archive.search("common", "keyword", limit=200)).total == 80
    assert reads == [stat.st_size]  # resumed at its end: nothing read again
    await archive.close()


async def test_the_index_is_not_checked_while_another_process_writes_and_verify_says_so(
    tmp_path: Path,
) -> None:
    """A commit or a merge replaces files as they are read: with the index lock taken by
    another writer, the index is not checked (it waits for the lock, up to the lock
    timeout), and verify says so, as a warning, where it said nothing (or said "0
    problems" of a damaged index)."""
    archive, _log = await many(tmp_path / "a", 30)
    await archive.close()
    (path,) = (tmp_path / "a" / ".index" / "fulltext").glob("*.term")
    data = bytearray(path.read_bytes())
    data[len(data) // 3] ^= 0x10
    path.write_bytes(bytes(data))
    archive = await Archive.open(
        tmp_path / "a", overrides={**HASHING, "storage": {"lock_timeout": 0.2}}
    )
    with filelock.FileLock(str(tmp_path / "a" / ".locks" / "index.lock")):  # its own flock
        with pytest.raises(LockTimeoutError, match=r"index\.lock within 0\.2 s"):
            archive.index_problems()
        report = await archive.verify(repair=True)
        (problem,) = [p for p in report.problems if "search index" in p.problem]
        assert problem.problem.startswith("search index not checked: archive is locked")
        assert problem.severity == "warning" and not problem.repaired
        assert (await archive.index_status())["checked"] is False
    assert archive.index_problems() != []  # once the lock is free
    assert (await archive.index_status())["checked"] is True
    await archive.close()


async def test_a_full_disk_is_reported_not_rebuilt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """tantivy's writer failing for want of space was read as damage, and the rebuild that
    followed deleted the index (and on a full disk could not make a new one)."""
    archive, _log = await many(tmp_path / "a", 3)
    session = (await archive.list_sessions("ada"))[0].session_id
    await archive.add_messages("ada", session, [Message(role="user", content="banana bread")])
    real = fulltext.writer_heap
    calls = []

    def full_disk(text_bytes: int) -> int:
        calls.append(text_bytes)
        if len(calls) == 1:  # as tantivy words it
            raise ValueError("An IO error occurred: 'No space left on device (os error 28)'")
        return real(text_bytes)

    monkeypatch.setattr(fulltext, "writer_heap", full_disk)
    segments = sorted(p.name for p in (tmp_path / "a" / ".index" / "fulltext").iterdir())
    with pytest.raises(IndexUnavailableError, match="cannot be used: No space left on device"):
        await archive.search("banana", "keyword")
    assert sorted(p.name for p in (tmp_path / "a" / ".index" / "fulltext").iterdir()) == segments
    results = await archive.search("banana", "keyword")  # space again: indexed, not rebuilt
    assert results.total == 1 and results.degraded is None
    assert (await archive.search("common", "keyword")).total == 3
    await archive.close()


async def test_repeated_message_ids_are_two_hits_for_the_window_too(tmp_path: Path) -> None:
    """Each hit names the index's key for it, unique where message ids repeat."""
    archive = await archive_with(tmp_path / "a", {"m1": "pear"})
    session = (await archive.list_sessions("ada"))[0].session_id
    for text in ("apple pie", "apple tart"):
        await archive.add_messages("ada", session, [Message(message_id="dup", role="user",
                                                            content=text)])
    hits = (await archive.search("apple", "keyword")).hits
    assert [h.message_id for h in hits] == ["dup", "dup"]
    assert len({h.key for h in hits}) == 2 and all(h.key for h in hits)
    await archive.close()
