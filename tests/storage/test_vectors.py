"""The numpy vector index on its own: recall against exact search, tombstones, corruption."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import numpy as np
import orjson
import pytest

from storage.search import vectors
from storage.search.fulltext import IndexCorruptError
from storage.search.vectors import EmbedderInfo, VectorIndex

INFO = EmbedderInfo("test", "hash", 256)


def unit(rng: np.random.Generator, n: int) -> np.ndarray:
    x = rng.standard_normal((n, 256)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.mark.slow
def test_recall_at_10_against_exact_search_on_100k_random_vectors(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    data = unit(rng, 100_000)
    index = VectorIndex(tmp_path, INFO)
    for start in range(0, len(data), 25_000):  # several segments, as incremental indexing makes
        index.add([f"k{i}" for i in range(start, start + 25_000)],
                  [f"g{i % 50}" for i in range(start, start + 25_000)],
                  data[start : start + 25_000])
    index.commit()
    index = VectorIndex(tmp_path, INFO)
    recalls = []
    for _ in range(100):
        query = unit(rng, 1)[0]
        truth = set(np.argsort(-(data @ query))[:10])
        found = {int(key[1:]) for key, _ in index.search(query, 10)}
        recalls.append(len(found & truth) / 10)
    recall = float(np.mean(recalls))
    print(f"recall@10 = {recall:.3f} over 100 queries")
    # Random vectors are the hardest case for 1-bit codes (real embeddings cluster).
    assert recall >= 0.95


def test_small_index_is_exact(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    data = unit(rng, 3000)
    index = VectorIndex(tmp_path, INFO)
    index.add([f"k{i}" for i in range(3000)], ["g"] * 3000, data)
    index.commit()
    query = data[17]
    results = index.search(query, 5)
    assert results[0][0] == "k17" and results[0][1] == pytest.approx(1.0, abs=1e-2)
    truth = [f"k{i}" for i in np.argsort(-(data @ query))[:5]]
    assert [k for k, _ in results] == truth


@pytest.mark.parametrize("chunk", [16_384, 7])  # compaction reads and writes blocks of rows
def test_tombstones_compaction_and_reopen(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk: int
) -> None:
    from storage.search import vectors

    monkeypatch.setattr(vectors, "WRITE_CHUNK", chunk)
    rng = np.random.default_rng(2)
    data = unit(rng, 200)
    index = VectorIndex(tmp_path, INFO)
    index.add([f"a{i}" for i in range(100)], ["ga"] * 100, data[:100])
    index.add([f"b{i}" for i in range(100)], ["gb"] * 100, data[100:])
    index.add(["zero"], ["gz"], np.zeros((1, 256), np.float32))  # no content: not indexed
    index.commit()
    assert index.count == 200
    index.delete_groups(["ga"])
    index.commit()
    reopened = VectorIndex(tmp_path, INFO)
    assert reopened.count == 100
    assert all(k.startswith("b") for k, _ in reopened.search(data[5], 20))
    reopened.delete_groups(["gb"])  # every vector deleted: nothing found, no error
    assert reopened.search(data[5], 20) == []
    assert reopened.search(data[5], 20, exact=True) == []
    reopened = VectorIndex(tmp_path, INFO)  # the deletion was not committed
    reopened.compact_if_needed()  # half the rows are tombstones: rewritten
    reopened.commit()
    assert len(reopened.segments) == 1 and reopened.segments[0].count == 100
    merged = reopened.segments[0]
    rows = np.arange(100)
    kept = [int(k[1:]) for k in merged.keys(rows)]
    assert sorted(kept) == list(range(100))  # the b rows, each once, with its own vector
    assert np.array_equal(merged.read_vectors(rows), data[100:][kept].astype(np.float16))
    assert sorted(p.name for p in tmp_path.iterdir() if "del" in p.name) == []


def test_another_embedder_is_never_mixed_in(tmp_path: Path) -> None:
    index = VectorIndex(tmp_path, INFO)
    index.add(["k"], ["g"], unit(np.random.default_rng(3), 1))
    index.commit()
    with pytest.raises(IndexCorruptError, match="vector spaces never mix"):
        VectorIndex(tmp_path, EmbedderInfo("other", "hash2", 256))


@pytest.mark.parametrize("ext", ["vec.npy", "bits.npy", "mag.npy", "scale.npy", "step.npy"])
def test_truncated_segment_is_detected(tmp_path: Path, ext: str) -> None:
    index = VectorIndex(tmp_path, INFO)
    index.add([f"k{i}" for i in range(50)], ["g"] * 50, unit(np.random.default_rng(4), 50))
    index.commit()
    victim = next(tmp_path.glob(f"*.{ext}"))
    victim.write_bytes(victim.read_bytes()[:200])
    with pytest.raises(IndexCorruptError, match="seg"):
        VectorIndex(tmp_path, INFO)


@pytest.mark.parametrize("segments", [1, 3])
def test_an_index_searched_by_several_threads_finds_what_one_thread_finds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, segments: int
) -> None:
    """Large indexes are scanned by several threads, each taking whole segments or ranges of
    rows; each segment's ranges share one histogram, so the shortlist is the same rows and
    so are the results, tombstones included."""
    from storage.search import vectors

    rng = np.random.default_rng(5)
    data = unit(rng, 60_000)
    index = VectorIndex(tmp_path, INFO)
    size = 60_000 // segments
    for start in range(0, 60_000, size):
        rows = range(start, start + size)
        index.add([f"k{i}" for i in rows], [f"g{i % 7}" for i in rows], data[start : start + size])
        index.commit()  # a segment each
    assert len(index.segments) == segments
    index.delete_groups(["g3"])  # a tombstone in every range
    index.commit()
    queries = [unit(rng, 1)[0] for _ in range(20)] + [data[11], data[59_998]]
    for exact in (False, True):
        monkeypatch.setattr(vectors, "PARALLEL_ROWS", 10**9)
        one = [index.search(q, 10, exact=exact) for q in queries]
        monkeypatch.setattr(vectors, "PARALLEL_ROWS", 1_000)
        monkeypatch.setattr(vectors.os, "cpu_count", lambda: 3)  # three threads, two in the pool
        groups = vectors._split(index.segments, range(segments))
        assert [[(p.number, p.lo, p.hi) for p in g] for g in groups] == (
            [[(0, 0, 20_000)], [(0, 20_000, 40_000)], [(0, 40_000, 60_000)]]
            if segments == 1
            else [[(0, 0, 20_000)], [(1, 0, 20_000)], [(2, 0, 20_000)]]
        )
        several = [index.search(q, 10, exact=exact) for q in queries]
        assert [[k for k, _ in r] for r in several] == [[k for k, _ in r] for r in one]
        for r_several, r_one in zip(several, one, strict=True):
            assert [s for _, s in r_several] == pytest.approx([s for _, s in r_one], abs=1e-6)
        assert not any(int(k[1:]) % 7 == 3 for r in several for k, _ in r)
    assert index.search(data[11], 1)[0][0] == "k11"


def test_segments_are_dealt_to_threads_by_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    """Seven full segments and a small one (what indexing 1,000,000 messages leaves) give two
    threads about half the rows each; one big segment is cut in two."""
    from storage.search import vectors

    class Sized:
        def __init__(self, count: int) -> None:
            self.count = count

    monkeypatch.setattr(vectors.os, "cpu_count", lambda: 2)
    sizes = [131_072] * 7 + [82_501]
    groups = vectors._split([Sized(n) for n in sizes], range(8))  # type: ignore[misc]
    loads = sorted(sum(p.hi - p.lo for p in g) for g in groups)
    assert len(groups) == 2 and sum(loads) == sum(sizes)
    assert loads[1] - loads[0] <= 131_072 - 82_501
    assert sorted(p.number for g in groups for p in g) == list(range(8))
    whole = vectors._split([Sized(1_000_000)], [0])
    assert [[(p.lo, p.hi) for p in g] for g in whole] == [[(0, 500_000)], [(500_000, 1_000_000)]]
    assert len(vectors._split([Sized(200_000)], [0])) == 1  # too small to share


def test_a_failing_part_fails_the_search_after_every_part_has_stopped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from storage.search import vectors

    finished = []

    def part(p: vectors._Part) -> int:
        if p.lo > 0:
            import time

            time.sleep(0.05)
            finished.append((p.lo, p.hi))
            return 1
        raise OSError("unreadable page")

    parts = [[vectors._Part(0, None, 0, 5)], [vectors._Part(0, None, 5, 10)]]  # type: ignore[arg-type]
    with pytest.raises(OSError, match="unreadable page"):
        vectors._each(part, parts)
    assert finished == [(5, 10)]  # the pool's part had ended before the error came out


# Python 3.12+ warns of forking a process with threads: forking one is what this tests.
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_a_forked_child_searches_in_parts_with_its_own_threads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The parent's scan threads do not exist in a forked child: it must not wait for them."""
    import os
    import select
    import signal

    from storage.search import vectors

    monkeypatch.setattr(vectors, "PARALLEL_ROWS", 1_000)
    monkeypatch.setattr(vectors.os, "cpu_count", lambda: 2)
    rng = np.random.default_rng(6)
    data = unit(rng, 30_000)
    index = VectorIndex(tmp_path, INFO)
    index.add([f"k{i}" for i in range(30_000)], ["g"] * 30_000, data)
    index.commit()
    assert index.search(data[7], 1)[0][0] == "k7"  # the parent's pool now has threads
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child reports through the pipe
        try:
            os.write(write, index.search(data[29_001], 1)[0][0].encode())
        finally:
            os._exit(0)
    os.close(write)
    got = b""
    try:
        # Without its own threads the child would wait forever: give it 30 s.
        ready = select.select([read], [], [], 30)[0]
        if ready:
            got = os.read(read, 100)
    finally:
        os.close(read)
        if not got:
            os.kill(child, signal.SIGKILL)
        os.waitpid(child, 0)
    assert got == b"k29001"


def test_reranked_rows_are_read_from_the_file_and_a_short_file_is_reported(
    tmp_path: Path,
) -> None:
    rng = np.random.default_rng(8)
    data = unit(rng, 25_000)
    index = VectorIndex(tmp_path, INFO)
    index.add([f"k{i}" for i in range(25_000)], ["g"] * 25_000, data)
    index.commit()
    segment = index.segments[0]
    rows = np.array([0, 3, 17, 24_999])
    assert np.array_equal(segment.read_vectors(rows), np.asarray(segment.vectors[rows]))
    assert index.search(data[24_999], 1)[0][0] == "k24999"
    vec = tmp_path / f"{segment.name}.vec.npy"
    with open(vec, "r+b") as fh:  # cut off after the index was opened
        fh.truncate(vec.stat().st_size - 256 * 2 * 10)
    with pytest.raises(IndexCorruptError, match="ends before row 24999"):
        segment.read_vectors(rows)


def _committed(tmp_path: Path, n: int = 5_000) -> tuple[VectorIndex, np.ndarray]:
    data = unit(np.random.default_rng(12), n)
    index = VectorIndex(tmp_path, INFO)
    index.add([f"k{i}" for i in range(n)], ["g"] * n, data)
    index.commit()
    return index, data


@pytest.mark.parametrize("uncached", [set(), {3, 17}, "all"])
def test_reads_the_page_cache_lacks_are_hinted_then_made_together(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, uncached: set[int] | str
) -> None:
    """A read that would wait for the disk (RWF_NOWAIT fails) is announced to the kernel with
    every other such read (POSIX_FADV_WILLNEED) before any of them is made."""
    if vectors._NOWAIT is None:
        pytest.skip("this system has no RWF_NOWAIT reads (not Linux)")
    index, _data = _committed(tmp_path)
    segment = index.segments[0]
    width, base = 256 * 2, int(segment.vectors.offset)
    rows = np.array([0, 3, 17, 4_999])
    missing = set(rows.tolist()) if uncached == "all" else uncached
    events: list[tuple[str, int]] = []
    real_preadv = os.preadv

    def preadv(fd: int, buffers: list[memoryview], offset: int, flags: int = 0) -> int:
        row = (offset - base) // width
        if flags & vectors._NOWAIT:
            events.append(("try", row))
            if row in missing:
                raise BlockingIOError(11, "Resource temporarily unavailable")
        else:
            events.append(("read", row))
        return real_preadv(fd, buffers, offset, flags)

    def fadvise(fd: int, offset: int, length: int, advice: int) -> None:
        assert advice == os.POSIX_FADV_WILLNEED and length == width
        events.append(("hint", (offset - base) // width))

    monkeypatch.setattr(vectors.os, "preadv", preadv)
    monkeypatch.setattr(vectors.os, "posix_fadvise", fadvise)
    assert np.array_equal(segment.read_vectors(rows), np.asarray(segment.vectors[rows]))
    order = sorted(missing)
    hints = [("hint", r) for r in order] if len(order) > 1 else []
    assert events == [("try", r) for r in rows.tolist()] + hints + [("read", r) for r in order]


def test_a_file_system_without_nowait_reads_gets_plain_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """tmpfs refuses RWF_NOWAIT (EOPNOTSUPP): the segment stops trying, and gives no hints."""
    if vectors._NOWAIT is None:
        pytest.skip("this system has no RWF_NOWAIT reads (not Linux)")
    index, data = _committed(tmp_path)
    segment = index.segments[0]
    tries: list[int] = []
    real_preadv = os.preadv

    def preadv(fd: int, buffers: list[memoryview], offset: int, flags: int = 0) -> int:
        if flags & vectors._NOWAIT:
            tries.append(offset)
            raise OSError(errno.EOPNOTSUPP, "Operation not supported")
        return real_preadv(fd, buffers, offset, flags)

    def fadvise(fd: int, offset: int, length: int, advice: int) -> None:
        raise AssertionError("no hint where reads cannot fail fast")

    monkeypatch.setattr(vectors.os, "preadv", preadv)
    monkeypatch.setattr(vectors.os, "posix_fadvise", fadvise)
    rows = np.array([5, 6, 4_000])
    for _ in range(2):
        assert np.array_equal(segment.read_vectors(rows), data[rows].astype(np.float16))
    assert len(tries) == 1 and segment._nowait is None
    assert index.search(data[4_000], 1)[0][0] == "k4000"


def test_reads_are_right_without_the_page_cache_and_without_nowait_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not hasattr(os, "posix_fadvise"):
        pytest.skip("this system cannot take files out of the page cache (posix_fadvise)")
    index, data = _committed(tmp_path)
    rows = np.arange(0, 5_000, 37)
    segment = index.segments[0]
    # As stored (float16 of unit rows), not read through the map: mapped pages stay cached.
    want = data[rows].astype(np.float16)
    for file in tmp_path.iterdir():  # out of the page cache, as after the archive sat idle
        fd = os.open(file, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)
    assert np.array_equal(segment.read_vectors(rows), want)
    assert index.search(data[4_321], 3)[0][0] == "k4321"
    assert segment.some_keys([4_999, 0, 77]) == ["k4999", "k0", "k77"]
    monkeypatch.setattr(segment, "_nowait", None)  # a system without them: plain reads
    assert np.array_equal(segment.read_vectors(rows), want)
    assert segment.some_keys([12]) == ["k12"]


def test_a_key_file_cut_under_an_open_index_is_reported(tmp_path: Path) -> None:
    index, _data = _committed(tmp_path)
    segment = index.segments[0]
    keys = tmp_path / f"{segment.name}.keys.npy"
    with open(keys, "r+b") as fh:
        fh.truncate(keys.stat().st_size - 20)
    assert segment.some_keys([0, 1]) == ["k0", "k1"]
    with pytest.raises(IndexCorruptError, match="ends before key 4999"):
        segment.some_keys([0, 4_999])


def test_a_key_that_is_not_utf8_is_reported_with_its_row(tmp_path: Path) -> None:
    index, _data = _committed(tmp_path)
    segment = index.segments[0]
    with open(tmp_path / f"{segment.name}.keys.npy", "r+b") as fh:
        fh.seek(int(segment.key_blob.offset) + int(segment.key_offsets[3]))
        fh.write(b"\xff")
    assert segment.some_keys([2, 4]) == ["k2", "k4"]
    with pytest.raises(IndexCorruptError, match="key 3 is not UTF-8"):
        segment.some_keys([2, 3])


def test_two_bit_codes_decode_to_the_nearest_level_and_estimate_cosines(tmp_path: Path) -> None:
    """The byte table turns a sign byte and a magnitude byte into the codes of 8 coordinates
    (first coordinate in the highest bit), and the scored estimates follow the true cosines."""
    from storage.search import vectors

    rng = np.random.default_rng(11)
    data = unit(rng, 5_000)
    mean = data.mean(axis=0)
    sd = data.std(axis=0)
    signs, large, scale = vectors.two_bit_codes(data - mean, sd)
    index = (signs.view(np.uint8).astype(np.uint16) << 8) | large.view(np.uint8)
    codes = np.take(vectors._CODES, index).view(np.int8)
    centred = data - mean
    expected = np.where(centred > 0, 1, -1) * np.where(
        np.abs(centred) > 2 * vectors.STEP * sd, 3, 1
    )
    assert np.array_equal(codes, expected)
    # Each row's scale fits its codes to it better than any other scale would.
    levels = codes * (vectors.STEP * sd)
    error = np.linalg.norm(centred - scale[:, None] * levels, axis=1)
    for other in (0.9, 1.1):
        assert (error <= np.linalg.norm(centred - other * scale[:, None] * levels, axis=1)).all()

    built = VectorIndex(tmp_path, INFO)
    built.add([f"k{i}" for i in range(5_000)], ["g"] * 5_000, data)
    built.commit()
    segment = built.segments[0]
    query = unit(rng, 1)[0]
    rows = np.arange(5_000)
    estimate = vectors._rough(segment, rows, query)
    truth = data @ query
    assert np.corrcoef(estimate, truth)[0, 1] > 0.9
    assert float(np.abs(estimate - truth).mean()) < 0.03


@pytest.mark.parametrize("dim", [64, 100, 300, 768])
def test_dimensions_that_are_not_a_multiple_of_64(tmp_path: Path, dim: int) -> None:
    """The codes' last word is padded with zeros, and padding must weigh nothing; Hamming
    distances go up to the dimensions (768 dimensions: far past 256)."""
    rng = np.random.default_rng(dim)
    x = rng.standard_normal((30_000, dim)).astype(np.float32)
    data = x / np.linalg.norm(x, axis=1, keepdims=True)
    info = EmbedderInfo("test", "hash", dim)
    index = VectorIndex(tmp_path, info)
    index.add([f"k{i}" for i in range(30_000)], ["g"] * 30_000, data)
    index.commit()
    index = VectorIndex(tmp_path, info)
    for row in (0, 12_345, 29_999):
        key, score = index.search(data[row], 1)[0]
        assert key == f"k{row}" and score == pytest.approx(1.0, abs=1e-2)
    query = data[7] + 0.5 * data[8]
    query /= np.linalg.norm(query)
    truth = [f"k{i}" for i in np.argsort(-(data @ query))[:10]]
    assert [k for k, _ in index.search(query, 10, exact=True)] == truth
    found = [k for k, _ in index.search(query, 10)]  # through the shortlist
    assert len(found) == 10 and found[0] == "k7" and "k8" in found


def test_an_index_of_the_old_format_is_rebuilt_not_misread(tmp_path: Path) -> None:
    index = VectorIndex(tmp_path, INFO)
    index.add(["k"], ["g"], unit(np.random.default_rng(12), 1))
    index.commit()
    manifest_path = tmp_path / "manifest.json"
    manifest = orjson.loads(manifest_path.read_bytes())
    del manifest["format"]  # as the int8 index of earlier versions wrote it
    manifest_path.write_bytes(orjson.dumps(manifest))
    with pytest.raises(IndexCorruptError, match=r"vector index format 1, this version .* reads 2"):
        VectorIndex(tmp_path, INFO)


def test_rows_are_stored_as_unit_vectors_and_non_finite_rows_are_skipped(tmp_path: Path) -> None:
    """One huge row would make its segment's mean and codes inf or NaN, and every row of
    the segment unfindable."""
    rng = np.random.default_rng(13)
    data = unit(rng, 1_000)
    given = data.copy()
    given[7] *= 1e6
    given[8] = np.nan
    given[9, 3] = np.inf
    index = VectorIndex(tmp_path, INFO)
    index.add([f"k{i}" for i in range(1_000)], ["g"] * 1_000, given)
    index.commit()
    assert index.count == 998  # the huge row kept, as a unit vector
    segment = index.segments[0]
    assert np.isfinite(segment.mean).all() and np.isfinite(segment.step).all()
    for row in (3, 7, 500):
        key, score = index.search(data[row], 1)[0]
        assert key == f"k{row}" and score == pytest.approx(1.0, abs=1e-2)
    assert np.allclose(segment.read_vectors(np.array([7])), data[7], atol=1e-3)
    assert segment.read_block(5, 5).shape == (0, 256)


def test_each_file_has_a_checksum_and_a_flipped_bit_is_found(tmp_path: Path) -> None:
    """A search reads a few rows, never whole files: a flipped bit in a float16 row or a
    code changed rankings silently. The manifest records each file's CRC-32 as written
    (the tombstone file's too, as it is replaced), and checksum_problems compares."""
    index, data = _committed(tmp_path, 300)
    index.add([f"x{i}" for i in range(50)], ["gx"] * 50, data[:50])
    index.commit()  # a second segment
    index.delete_groups(["gx"])
    index.commit()
    reopened = VectorIndex(tmp_path, INFO)
    first, second = reopened.segments
    assert set(first.checksums) == {f"{first.name}.{ext}" for ext in vectors._FILES}
    assert second.deleted_file in second.checksums
    assert reopened.checksum_problems() == []
    for victim in (f"{first.name}.vec.npy", f"{first.name}.bits.npy", second.deleted_file):
        path = tmp_path / victim
        original = path.read_bytes()
        flipped = bytearray(original)
        flipped[len(flipped) - 7] ^= 0x04  # in the data, past the .npy header
        path.write_bytes(bytes(flipped))
        assert VectorIndex(tmp_path, INFO).checksum_problems() == [
            f"vector index file {victim} does not match its checksum (its content changed)"
        ]
        path.write_bytes(original)
    (tmp_path / f"{first.name}.mag.npy").unlink()
    (problem,) = reopened.checksum_problems()  # opened before: the file is gone since
    assert problem.startswith(f"vector index file {first.name}.mag.npy cannot be read:")


@pytest.mark.parametrize("crc32", [[1], {"seg000000.vec.npy": "12"}, {"../x": 1}])
def test_checksums_recorded_wrongly_are_reported(tmp_path: Path, crc32: object) -> None:
    _committed(tmp_path, 10)
    path = tmp_path / "manifest.json"
    manifest = orjson.loads(path.read_bytes())
    manifest["segments"][0]["crc32"] = crc32
    path.write_bytes(orjson.dumps(manifest))
    with pytest.raises(IndexCorruptError, match="records segment seg000000's checksums wrongly"):
        VectorIndex(tmp_path, INFO)


def test_an_index_written_without_checksums_is_read_and_not_checked(tmp_path: Path) -> None:
    """Segments written before checksums were recorded: nothing to compare, no problem."""
    _committed(tmp_path, 10)
    path = tmp_path / "manifest.json"
    manifest = orjson.loads(path.read_bytes())
    del manifest["segments"][0]["crc32"]
    path.write_bytes(orjson.dumps(manifest))
    index = VectorIndex(tmp_path, INFO)
    assert index.segments[0].checksums == {} and index.checksum_problems() == []
    index.add(["k"], ["g"], unit(np.random.default_rng(5), 1))
    index.commit()
    assert [bool(s.checksums) for s in VectorIndex(tmp_path, INFO).segments] == [False, True]
