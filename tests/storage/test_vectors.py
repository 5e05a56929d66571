"""The numpy vector index on its own: recall against exact search, tombstones, corruption."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

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


def test_tombstones_compaction_and_reopen(tmp_path: Path) -> None:
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
    reopened.compact_if_needed()  # half the rows are tombstones: rewritten
    reopened.commit()
    assert len(reopened.segments) == 1 and reopened.segments[0].count == 100
    assert sorted(p.name for p in tmp_path.iterdir() if "del" in p.name) == []


def test_another_embedder_is_never_mixed_in(tmp_path: Path) -> None:
    index = VectorIndex(tmp_path, INFO)
    index.add(["k"], ["g"], unit(np.random.default_rng(3), 1))
    index.commit()
    with pytest.raises(IndexCorruptError, match="vector spaces never mix"):
        VectorIndex(tmp_path, EmbedderInfo("other", "hash2", 256))


def test_truncated_segment_is_detected(tmp_path: Path) -> None:
    index = VectorIndex(tmp_path, INFO)
    index.add([f"k{i}" for i in range(50)], ["g"] * 50, unit(np.random.default_rng(4), 50))
    index.commit()
    victim = next(tmp_path.glob("*.i8.npy"))
    victim.write_bytes(victim.read_bytes()[:200])
    with pytest.raises(IndexCorruptError, match="seg"):
        VectorIndex(tmp_path, INFO)


def test_a_segment_searched_in_parts_finds_what_one_part_finds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Large segments are scanned in parts on several threads; the parts share one histogram,
    so they shortlist the same rows and the results are the same, tombstones included."""
    from storage.search import vectors

    rng = np.random.default_rng(5)
    data = unit(rng, 60_000)
    index = VectorIndex(tmp_path, INFO)
    index.add([f"k{i}" for i in range(60_000)], [f"g{i % 7}" for i in range(60_000)], data)
    index.commit()
    index.delete_groups(["g3"])  # a tombstone in every part
    index.commit()
    queries = [unit(rng, 1)[0] for _ in range(20)] + [data[11], data[59_998]]
    for exact in (False, True):
        monkeypatch.setattr(vectors, "PARALLEL_ROWS", 10**9)
        one = [index.search(q, 10, exact=exact) for q in queries]
        monkeypatch.setattr(vectors, "PARALLEL_ROWS", 1_000)
        monkeypatch.setattr(vectors.os, "cpu_count", lambda: 3)  # three parts, two in the pool
        assert vectors._parts(60_000) == [(0, 20_000), (20_000, 40_000), (40_000, 60_000)]
        parts = [index.search(q, 10, exact=exact) for q in queries]
        assert [[k for k, _ in r] for r in parts] == [[k for k, _ in r] for r in one]
        for r_parts, r_one in zip(parts, one, strict=True):
            assert [s for _, s in r_parts] == pytest.approx([s for _, s in r_one], abs=1e-6)
        assert not any(int(k[1:]) % 7 == 3 for r in parts for k, _ in r)
    assert index.search(data[11], 1)[0][0] == "k11"


def test_a_failing_part_fails_the_search_after_every_part_has_stopped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from storage.search import vectors

    monkeypatch.setattr(vectors.os, "cpu_count", lambda: 2)
    finished = []

    def part(bounds: tuple[int, int]) -> int:
        if bounds[0] > 0:
            import time

            time.sleep(0.05)
            finished.append(bounds)
            return 1
        raise OSError("unreadable page")

    with pytest.raises(OSError, match="unreadable page"):
        vectors._each(part, [(0, 5), (5, 10)])
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
