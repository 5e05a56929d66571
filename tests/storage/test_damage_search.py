"""Index files damaged where a search reads them (a keyword segment's positions lost, bytes
garbled in a vector segment's rows or key offsets): the search finds it, says which file,
the index is rebuilt and the search answers as before the damage."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from storage import Archive, Message
from storage.search import fulltext
from storage.search.results import SearchResults
from storage.search.vectors import MAX_SEGMENTS
from storage.search.watch import segment_files
from tests.storage.search_support import HASHING, archive_with

pytestmark = pytest.mark.asyncio
TEXTS = {f"m{i:02d}": f"alpha note w{i:02d}x about castles and winter" for i in range(40)}
TEXTS["cjk"] = "alpha 東京タワーの夜景"
QUERIES = [
    ("alpha", "keyword"),
    ("東京", "keyword"),
    ("castles winter", "semantic"),
    ("alpha castles", "hybrid"),
]


async def settled(root: Path) -> tuple[Archive, dict[tuple[str, str], list[tuple[str, float]]]]:
    """An archive whose index is built, and each query's hits (key, score) on it."""
    archive = await archive_with(root, TEXTS, "Castles")
    return archive, {(q, m): answer(await archive.search(q, m, limit=100)) for q, m in QUERIES}


def answer(results: SearchResults) -> list[tuple[str, float]]:
    return sorted((h.key, round(h.score, 4)) for h in results.hits)


async def answers_as_before(
    archive: Archive,
    before: dict[tuple[str, str], list[tuple[str, float]]],
    said: str,
    first_mode: str,
) -> None:
    """The first search (of ``first_mode``) finds the damage, rebuilds and says so (naming
    ``said``); each answers as before the damage; the index is whole after."""
    first = True
    for (query, mode), expected in sorted(before.items(), key=lambda kv: kv[0][1] != first_mode):
        results = await archive.search(query, mode, limit=100)
        if first:
            assert "has been rebuilt" in (results.degraded or ""), results.degraded
            assert said in (results.degraded or ""), results.degraded
            first = False
        else:
            assert "has been rebuilt" not in (results.degraded or "")
        assert answer(results) == expected, (query, mode)
    assert archive.index_problems() == []


def one(root: Path, pattern: str) -> Path:
    (path,) = (root / ".index").glob(pattern)
    return path


def garble_middle(path: Path, n: int = 32) -> None:
    """``n`` bytes in the middle of ``path`` overwritten in place (same size, same file)."""
    with open(path, "r+b") as fh:
        fh.seek(path.stat().st_size // 2)
        fh.write(bytes((i * 37 + 11) % 256 for i in range(n)))


@pytest.mark.parametrize("when", ["reopened", "open"])
async def test_a_lost_positions_file_is_named_and_rebuilt(tmp_path: Path, when: str) -> None:
    """tantivy opens a segment without its .pos file; every keyword search then raised its
    ValueError ("Failed to open field's positions"), and nothing was rebuilt."""
    archive, before = await settled(tmp_path / "a")
    if when == "reopened":
        await archive.close()
    pos = one(archive.root, "fulltext/*.pos")
    pos.unlink()
    if when == "reopened":
        archive = await Archive.open(archive.root, overrides=HASHING)
    await answers_as_before(archive, before, f"segment files missing: {pos.name}", "keyword")
    await archive.close()


async def test_verify_names_a_lost_positions_file(tmp_path: Path) -> None:
    """verify said "0 problems" with a segment's .pos gone (tantivy opens the segment)."""
    archive, _before = await settled(tmp_path / "a")
    await archive.close()
    pos = one(archive.root, "fulltext/*.pos")
    pos.unlink()
    reopened = await Archive.open(archive.root, overrides=HASHING)
    assert reopened.index_problems() == [f"keyword index file {pos.name} is missing"]
    await reopened.close()


async def test_positions_tantivy_cannot_read_at_a_search_are_rebuilt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Were the lost file not noticed before the search (the check is off here), the
    failure of tantivy's first read of the postings is the index's, not a bare ValueError."""
    archive, before = await settled(tmp_path / "a")
    await archive.close()
    one(archive.root, "fulltext/*.pos").unlink()
    monkeypatch.setattr(fulltext, "missing_files", lambda folder, present: [])
    archive = await Archive.open(archive.root, overrides=HASHING)
    await answers_as_before(archive, before, "positions", "keyword")
    await archive.close()


async def test_missing_files_names_only_segments_meta_json_still_names(tmp_path: Path) -> None:
    """What tantivy writes for a segment is what the check expects; a file of a segment
    that a merge dropped since the files were listed is not missing."""
    archive, _before = await settled(tmp_path / "a")
    await archive.close()
    folder = archive.root / ".index" / "fulltext"
    present = segment_files(folder) or {}
    extensions = {name.partition(".")[2] for name in present}
    assert extensions == set(fulltext.SEGMENT_FILES)
    assert fulltext.missing_files(folder, present) == []
    segment = next(iter(present)).partition(".")[0]
    without = [n for n in present if n != f"{segment}.pos"]
    assert fulltext.missing_files(folder, without) == [f"{segment}.pos"]
    merged_away = "0" * 32  # a segment meta.json does not name
    assert fulltext.missing_files(folder, [*present, f"{merged_away}.idx"]) == []


@pytest.mark.parametrize("when", ["reopened", "open"])
async def test_garbled_vector_rows_are_found_by_a_search_and_rebuilt(
    tmp_path: Path, when: str
) -> None:
    """Bytes garbled in the middle of a .vec.npy (same size): a semantic search ranked the
    damaged row first with a cosine of 860, before and after reopening, and nothing was
    rebuilt (only verify's checksums saw it)."""
    archive, before = await settled(tmp_path / "a")
    if when == "reopened":
        await archive.close()
    vec = one(archive.root, "vectors/*.vec.npy")
    garble_middle(vec)
    if when == "reopened":
        archive = await Archive.open(archive.root, overrides=HASHING)
    await answers_as_before(archive, before, f"{vec.name} is damaged: row ", "semantic")
    await archive.close()


async def test_garbled_key_offsets_are_found_by_a_search_and_rebuilt(tmp_path: Path) -> None:
    """Bytes garbled in the middle of a .koff.npy (read whole when the archive opens): every
    semantic and hybrid search raised MemoryError or ValueError ("negative count")."""
    archive, before = await settled(tmp_path / "a")
    await archive.close()
    koff = one(archive.root, "vectors/*.koff.npy")
    garble_middle(koff)
    archive = await Archive.open(archive.root, overrides=HASHING)
    await answers_as_before(archive, before, f"{koff.name} is damaged: key ", "semantic")
    await archive.close()


async def test_garbled_vector_rows_are_not_compacted_into_a_new_segment(tmp_path: Path) -> None:
    """Compaction copies every live row into a new segment with checksums of its own: a
    garbled row copied so was damage verify could no longer see."""
    archive = await archive_with(tmp_path / "a", {"m0": "castle warm in winter"})
    session = (await archive.list_sessions("ada"))[0].session_id
    manifest = archive.root / ".index" / "vectors" / "manifest.json"
    names: list[str] = []
    for i in range(1, 2 * MAX_SEGMENTS):  # a vector segment per commit, until compaction is due
        await archive.add_message(
            "ada", session, Message(message_id=f"m{i}", role="user", content=f"note {i} warm")
        )
        await archive.search("warm", "keyword")
        names = [s["name"] for s in orjson.loads(manifest.read_bytes())["segments"]]
        if len(names) > MAX_SEGMENTS:
            break
    assert len(names) > MAX_SEGMENTS
    garble_middle(archive.root / ".index" / "vectors" / f"{names[0]}.vec.npy")
    await archive.add_message(
        "ada", session, Message(message_id="last", role="user", content="one more warm note")
    )
    results = await archive.search("castle warm in winter", "semantic")  # compacts first
    assert "has been rebuilt" in (results.degraded or ""), results.degraded
    assert f"{names[0]}.vec.npy is damaged" in (results.degraded or "")
    assert results.hits[0].message_id == "m0"
    assert all(abs(h.score) < 1.01 for h in results.hits)  # cosines (float16 rows)
    assert archive.index_problems() == []
    await archive.close()


async def test_a_sound_index_reopened_is_not_rebuilt(tmp_path: Path) -> None:
    """The checks on the search's path pass a sound index, reopened and searched again."""
    archive, before = await settled(tmp_path / "a")
    await archive.close()
    archive = await Archive.open(archive.root, overrides=HASHING)
    for (query, mode), expected in before.items():
        results = await archive.search(query, mode, limit=100)
        assert "rebuilt" not in (results.degraded or "")
        assert answer(results) == expected
    await archive.close()
