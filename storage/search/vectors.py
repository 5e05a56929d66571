"""The vector index: append-only numpy segments in ``.index/vectors/``.

A segment holds each unit vector twice: as a 2-bit code of the vector minus the segment's mean
(in memory: 64 bytes a vector at 256 dimensions, kept as two bit planes, the signs and whether
each coordinate is large for its dimension, with a scale per vector) and as float16 (on disk),
plus the keys and the groups they belong to. A search scans the sign plane with
``np.bitwise_count`` for a shortlist by Hamming distance in each segment, estimates the
shortlists' cosines from their 2-bit codes (in memory: no page of a file is touched), and
re-ranks the best three hundred of the whole index from float16 (read by row). An index of a
quarter million rows or more is searched by one thread per core. Small indexes skip the
shortlist.
Deleting a group (a session reindexed, a document removed) marks its vectors in a tombstone
mask; compaction rewrites segments.

The manifest records the embedder's name, model hash and dimension: another embedder means a
rebuild, never mixed vector spaces. It also records the CRC-32 of each segment file as written,
which ``verify`` compares (:meth:`VectorIndex.checksum_problems`): a search reads a few rows,
so a flipped bit would otherwise change rankings unseen.
"""

from __future__ import annotations

import errno
import itertools
import logging
import mmap
import os
import re
import secrets
import threading
import weakref
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from tokenize import TokenError
from typing import Any, TypeVar

import numpy as np
import orjson

from storage.files import atomic_write
from storage.search.fulltext import IndexCorruptError

log = logging.getLogger(__name__)
# What numpy raises for a .npy file it cannot read: EOFError for an empty one; SyntaxError,
# tokenize's TokenError, TypeError or KeyError for a garbled header (it is a Python literal).
_UNREADABLE = (OSError, ValueError, EOFError, SyntaxError, TokenError, TypeError, KeyError)

T = TypeVar("T")

EXACT_BELOW = 20_000  # vectors: below this every row's 2-bit code is scored, no shortlist
# Rows whose 2-bit codes are scored after the Hamming scan: 12% of the index, within these
# bounds. 1-bit codes rank random 256-d vectors worst of all (12% keeps recall@10 >= 0.95 on
# 100,000 of them, see tests/storage/test_vectors.py); real embeddings reach 0.95 at ~2,000
# rows even among 1,000,000 (benchmarks/bench_search.py), so large indexes stop at
# SHORTLIST_MAX.
SHORTLIST_MIN = 8_000
SHORTLIST_MAX = 12_000
SHORTLIST_FRACTION = 0.12
# Candidates re-ranked from float16, by their 2-bit estimates. On the 1,000,000-message
# benchmark corpus (12,000 rows shortlisted, 97.7% of the true top 10 among them), the best
# 100 estimates held 96.4% of the true top 10, 200 held 97.5%, 300 all 97.7%; of 100,000
# random vectors (the test's), recall@10 was 0.919, 0.953 and 0.964 (500: 0.966).
RERANK = 300
# preadv's flag for a read that fails rather than wait for the disk (Linux); None elsewhere.
_NOWAIT: int | None = getattr(os, "RWF_NOWAIT", None) if hasattr(os, "posix_fadvise") else None
_NO_NOWAIT = {errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS}  # what a file system without says
# The 2-bit code of a coordinate x (minus the segment's mean) of a dimension whose standard
# deviation is sd: -3, -1, 1 or 3 steps of STEP * sd, the edges at 0 and +-2 steps (the uniform
# 4-level quantizer with the least error for a normal distribution). Each vector's codes are
# scaled to fit it best (least squares): its "scale".
STEP = 0.498
# How far a stored row's squared length may be from 1: rows are stored as unit vectors
# (VectorIndex.add; within 1e-3 of it), float16 rounding moves it by 8e-4 at most (100,000
# random rows of 4 to 1,024 dimensions). Bytes garbled in a .vec.npy made cosines of 860.
UNIT_TOLERANCE = 0.01
MAX_SEGMENTS = 8
FORMAT = 2  # of the segment files: 2, 2-bit codes (1 held int8 copies)
SEGMENT_ROWS = 131_072  # vectors queued before a segment is written
WRITE_CHUNK = 16_384  # rows converted at a time while a segment is written
_SEGMENT_NAME = re.compile(r"seg\d{6,}")  # names from the manifest become file names
_DELETED_NAME = re.compile(r"seg\d{6,}\.del\d{6,}\.npy")
_FILES = (
    "vec.npy",
    "scale.npy",
    "mean.npy",
    "step.npy",
    "bits.npy",
    "mag.npy",
    "gidx.npy",
    "groups.json",
    "koff.npy",
    "keys.npy",
)


@dataclass(frozen=True)
class EmbedderInfo:
    name: str
    model_hash: str
    dim: int

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "model_hash": self.model_hash, "dim": self.dim}


def _save_npy(path: Path, array: np.ndarray) -> None:
    import io

    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    atomic_write(path, buffer.getvalue())


def file_crc(path: Path) -> int:
    """The CRC-32 of a file's content (zlib's: ~6 GB/s here, so the 580 MB of a
    1,000,000-vector index are checked in a fraction of a second from the page cache)."""
    crc = 0
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            crc = zlib.crc32(block, crc)
    return crc


def _open_npy(path: Path, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
    """A new .npy file filled in place (through a memory map), for arrays too big to build
    in memory first; unreferenced until the manifest names it."""
    return np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=shape)


def _close_npy(array: np.ndarray) -> None:
    array.flush()  # type: ignore[attr-defined]
    mapped = getattr(array, "_mmap", None)
    with open(array.filename, "rb+") as fh:  # type: ignore[attr-defined]
        os.fsync(fh.fileno())
    if mapped is not None:
        mapped.close()


def sign_codes(vectors: np.ndarray) -> np.ndarray:
    """Pack the signs of each row into uint64 words."""
    return _pack(vectors > 0)


def _pack(flags: np.ndarray) -> np.ndarray:
    """Each row of booleans packed into uint64 words (the first column in the first byte's
    highest bit; the last word padded with zeros)."""
    packed = np.packbits(flags, axis=1)
    pad = (-packed.shape[1]) % 8
    if pad:
        packed = np.pad(packed, ((0, 0), (0, pad)))
    return np.ascontiguousarray(packed).view(np.uint64)


def two_bit_codes(centred: np.ndarray, sd: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The 2-bit codes of rows minus their segment's mean: the sign plane, the magnitude plane
    (packed as :func:`sign_codes`) and each row's scale, which makes ``scale * codes * STEP *
    sd`` the closest such multiple of the codes to the row."""
    step = STEP * sd
    large = np.abs(centred) > 2 * step
    levels = np.where(centred > 0, 1.0, -1.0).astype(np.float32) * np.where(large, 3.0, 1.0)
    levels *= step
    fit = np.einsum("ij,ij->i", centred, levels)
    norm = np.einsum("ij,ij->i", levels, levels)
    scale = np.divide(fit, norm, out=np.zeros_like(fit), where=norm > 0)
    return _pack(centred > 0), _pack(large), scale.astype(np.float32)


def _code_table() -> np.ndarray:
    """The codes of 8 coordinates (int8: -3, -1, 1 or 3) for each pair of a sign byte and a
    magnitude byte, as one uint64 each: index ``sign << 8 | magnitude``."""
    bits = (np.arange(256)[:, None] >> (7 - np.arange(8))) & 1  # (byte, bit): first bit high
    sign = (2 * bits - 1)[:, None, :]
    size = (1 + 2 * bits)[None, :, :]
    return np.ascontiguousarray((sign * size).astype(np.int8)).view(np.uint64).reshape(-1)


_CODES = _code_table()


class Segment:
    def __init__(
        self,
        folder: Path,
        name: str,
        count: int,
        deleted: str | None,
        checksums: dict[str, int] | None = None,
    ) -> None:
        """``checksums``: the CRC-32 of each of its files, by file name, as written (none
        for a segment written before they were recorded)."""
        self.folder = folder
        self.name = name
        self.count = count
        self.deleted_file = deleted
        self.checksums = dict(checksums or {})
        try:
            # Searches read float16 rows with pread (below); the map is for compaction.
            self.vectors = np.load(folder / f"{name}.vec.npy", mmap_mode="r")
            mapped = getattr(self.vectors, "_mmap", None)
            if mapped is not None and hasattr(mmap, "MADV_RANDOM"):
                mapped.madvise(mmap.MADV_RANDOM)
            self.scale = np.load(folder / f"{name}.scale.npy")
            self.mean = np.load(folder / f"{name}.mean.npy")
            self.step = np.load(folder / f"{name}.step.npy")
            codes = np.load(folder / f"{name}.bits.npy")
            large = np.load(folder / f"{name}.mag.npy")
            # Column-major in memory: one contiguous uint64 array per 64 dimensions.
            self.columns = [np.ascontiguousarray(c) for c in codes.T]
            self.magnitude = [np.ascontiguousarray(c) for c in large.T]
            self.group_index = np.load(folder / f"{name}.gidx.npy")
            self.groups: list[str] = orjson.loads((folder / f"{name}.groups.json").read_bytes())
            if not isinstance(self.groups, list) or not all(
                isinstance(g, str) for g in self.groups
            ):
                raise ValueError(f"{name}.groups.json is not a list of group names")
            self.key_offsets = np.load(folder / f"{name}.koff.npy")
            self.key_blob = np.load(folder / f"{name}.keys.npy", mmap_mode="r")
            # The float16 rows are read through a descriptor of the file this view opened:
            # another process that rebuilds the index writes a new file of the same name.
            self._vec_fd = os.open(folder / f"{name}.vec.npy", os.O_RDONLY)
            weakref.finalize(self, os.close, self._vec_fd)
            # So are the keys (the map only tells their size): a page fault on a map brings
            # in its neighbours too, and a hundred searches had made the key files resident
            # whole (40 MB at 1,000,000 rows).
            self._keys_fd = os.open(folder / f"{name}.keys.npy", os.O_RDONLY)
            weakref.finalize(self, os.close, self._keys_fd)
            # Reads that fail rather than wait for the disk (see _read_scattered), until the
            # file system says it has none.
            self._nowait = _NOWAIT
            self.deleted = np.load(folder / deleted) if deleted else np.zeros(count, dtype=bool)
        except _UNREADABLE as exc:
            raise IndexCorruptError(f"vector segment {name} in {folder}: {exc}") from exc
        shapes = {
            len(self.vectors),
            len(self.scale),
            len(codes),
            len(large),
            len(self.group_index),
            len(self.deleted),
            len(self.key_offsets) - 1,
        }
        if shapes != {count}:
            raise IndexCorruptError(
                f"vector segment {name} in {folder} is incomplete: files hold {sorted(shapes)} "
                f"rows, the manifest says {count}"
            )
        dim = self.vectors.shape[1] if self.vectors.ndim == 2 else -1
        if (
            self.mean.shape != (dim,)
            or self.step.shape != (dim,)
            or codes.shape[1:] != large.shape[1:]
            or codes.shape[1:] != ((dim + 63) // 64,)
        ):
            raise IndexCorruptError(
                f"vector segment {name} in {folder} is inconsistent: its files are of "
                f"{dim}, {self.mean.shape}, {self.step.shape}, {codes.shape[1:]} and "
                f"{large.shape[1:]} dimensions (or words)"
            )
        if count and (
            int(self.group_index.min()) < 0
            or int(self.group_index.max()) >= len(self.groups)
            or int(self.key_offsets[-1]) > len(self.key_blob)
        ):
            raise IndexCorruptError(
                f"vector segment {name} in {folder} is inconsistent: its group numbers or key "
                "offsets point past its group and key files"
            )

    def check_mapped(self) -> None:
        """Raise IndexCorruptError if a memory-mapped file (float16 rows, keys) is shorter than
        when it was opened: reading a page past a file's end kills the process (SIGBUS),
        so a file cut by something else while the archive is open must be found first.
        (The size is the mapped file's own, not that of a file since put in its place.)"""
        for array, ext in ((self.vectors, "vec.npy"), (self.key_blob, "keys.npy")):
            mapped = getattr(array, "_mmap", None)
            if mapped is None:
                continue
            want = int(array.offset) + array.nbytes
            try:
                size = mapped.size()
            except OSError as exc:
                raise IndexCorruptError(f"vector segment {self.name}: {exc}") from exc
            if size < want:
                raise IndexCorruptError(
                    f"{self.folder / f'{self.name}.{ext}'} was cut to {size:,} bytes while "
                    f"open (it holds {want:,})"
                )

    def _read(
        self, fd: int, ext: str, buffer: memoryview, offset: int, what: str, number: int
    ) -> None:
        """Fill ``buffer`` from the segment's ``ext`` file (open as ``fd``) at ``offset``;
        IndexCorruptError if the file cannot be read or ends before ``what`` ``number`` (the
        row or key the reader wanted; formatted only then: reads are on the search's path)."""
        try:
            got = os.preadv(fd, [buffer], offset)
        except OSError as exc:
            raise IndexCorruptError(f"vector segment {self.name} in {self.folder}: {exc}") from exc
        if got != len(buffer):
            raise IndexCorruptError(
                f"{self.folder / f'{self.name}.{ext}'} ends before {what} {number}"
            )

    def _read_scattered(
        self, fd: int, ext: str, reads: list[tuple[memoryview, int, int]], what: str
    ) -> None:
        """Fill each (buffer, offset, number) of ``reads`` as :meth:`_read` does, the reads
        that would wait for the disk all at once.

        Each read is first tried without waiting (``RWF_NOWAIT``: it fails at once if the
        page cache lacks the data). The kernel is then told of every read that failed
        (``POSIX_FADV_WILLNEED`` starts reading its pages in the background) before they are
        made again, waiting. So the disk serves them side by side instead of one after
        another: after the archive sat idle this machine kind's kernel has paged the index
        out, and a semantic search at 1,000,000 vectors then spent 41 ms in its 300 reads,
        one after another. With the page cache warm this adds nothing: every read succeeds
        the first time."""
        missed = reads
        flag = self._nowait
        if flag is not None:
            missed = []
            for read in reads:
                buffer, offset, _number = read
                try:
                    got = os.preadv(fd, [buffer], offset, flag)
                except BlockingIOError:  # not in the page cache
                    got = -1
                except OSError as exc:
                    if exc.errno not in _NO_NOWAIT:
                        got = -1  # the read that waits comes next, and reports the error
                    else:
                        # A file system without such reads (tmpfs, some network file
                        # systems): plain reads from now on, without hints.
                        log.debug("vector segment %s: no RWF_NOWAIT reads: %s", self.name, exc)
                        self._nowait = None
                        missed = reads
                        break
                if got != len(buffer):  # not all cached (or past the end: the next read says)
                    missed.append(read)
            if len(missed) > 1 and self._nowait is not None:
                try:
                    for buffer, offset, _number in missed:
                        os.posix_fadvise(fd, offset, len(buffer), os.POSIX_FADV_WILLNEED)
                except OSError as exc:  # only a hint: the reads below are made all the same
                    log.debug("vector segment %s: read-ahead hint refused: %s", self.name, exc)
        for buffer, offset, number in missed:
            self._read(fd, ext, buffer, offset, what, number)

    def read_vectors(self, rows: np.ndarray) -> np.ndarray:
        """The float16 vectors of ``rows``, read from the file rather than its memory map: for
        the rows a search re-ranks, a read each costs less than a page fault each and the
        release of the map's pages after (which took 0.15 ms on this machine kind however
        little of the map was touched), and the pages stay out of the process."""
        dim = self.vectors.shape[1]
        width = dim * 2
        out = np.empty((len(rows), dim), dtype=np.float16)
        buffer = out.view(np.uint8).reshape(-1).data
        offset = int(self.vectors.offset)  # the .npy header
        self._read_scattered(
            self._vec_fd,
            "vec.npy",
            [
                (buffer[i * width : (i + 1) * width], offset + row * width, row)
                for i, row in enumerate(rows.tolist())
            ],
            "row",
        )
        return out

    def read_block(self, lo: int, hi: int) -> np.ndarray:
        """The float16 vectors of rows [lo, hi), read from the file in one call."""
        dim = self.vectors.shape[1]
        out = np.empty((hi - lo, dim), dtype=np.float16)
        if out.size:
            offset = int(self.vectors.offset) + lo * dim * 2
            self._read(self._vec_fd, "vec.npy", out.data.cast("B"), offset, "row", hi)
        return out

    def check_unit(self, rows: np.ndarray, vectors: np.ndarray) -> None:
        """Raise IndexCorruptError unless ``vectors`` (``rows`` as float32) are unit vectors,
        as every row is stored: a search reads a few rows of a .vec.npy, and bytes garbled in
        it gave cosines far outside [-1, 1] (NaN fails too), ranked first. Only verify reads
        whole files (a checksum at every search would read 512 MB at 1,000,000 vectors)."""
        squares = np.einsum("ij,ij->i", vectors, vectors)  # 9 µs for the 300 a search reads
        bad = ~(np.abs(squares - 1) <= UNIT_TOLERANCE)
        if bad.any():
            i = int(np.argmax(bad))
            raise IndexCorruptError(
                f"{self.folder / f'{self.name}.vec.npy'} is damaged: row {int(rows[i])} "
                f"is of length {float(np.sqrt(squares[i])):.4g}, not 1"
            )

    def _key_span(self, row: int) -> tuple[int, int]:
        """Where the key of ``row`` is in the key file's data; IndexCorruptError if its
        offsets are not in order within the file (a garbled .koff.npy made a search ask for
        a buffer of exabytes, or of a negative size)."""
        start, end = int(self.key_offsets[row]), int(self.key_offsets[row + 1])
        if not 0 <= start <= end <= len(self.key_blob):
            raise IndexCorruptError(
                f"{self.folder / f'{self.name}.koff.npy'} is damaged: key {row} is at "
                f"[{start:,}, {end:,}), outside the {len(self.key_blob):,} bytes of its keys"
            )
        return start, end

    def _key_bytes(self, start: int, end: int, row: int) -> bytes:
        """Bytes [start, end) of the key file's data, up to the key of ``row``."""
        buffer = bytearray(end - start)
        offset = int(self.key_blob.offset) + start
        self._read(self._keys_fd, "keys.npy", memoryview(buffer), offset, "key", row)
        return bytes(buffer)

    def keys(self, rows: np.ndarray) -> list[str]:
        """The keys of ``rows``, the key file read once (for compaction: every row)."""
        offsets = self.key_offsets
        end = int(offsets[-1])
        if offsets[0] != 0 or end > len(self.key_blob) or (np.diff(offsets) < 0).any():
            raise IndexCorruptError(
                f"{self.folder / f'{self.name}.koff.npy'} is damaged: its key offsets are "
                f"not in order within the {len(self.key_blob):,} bytes of its keys"
            )
        blob = self._key_bytes(0, end, len(offsets) - 2)
        try:
            return [blob[offsets[r] : offsets[r + 1]].decode() for r in rows.tolist()]
        except UnicodeDecodeError as exc:
            raise IndexCorruptError(f"vector segment {self.name}: a key is not UTF-8") from exc

    def some_keys(self, rows: Sequence[int]) -> list[str]:
        """The keys of a few ``rows`` (a search's hits), each read on its own."""
        base = int(self.key_blob.offset)
        spans = [self._key_span(r) for r in rows]
        buffers = [bytearray(end - start) for start, end in spans]
        self._read_scattered(
            self._keys_fd,
            "keys.npy",
            [
                (memoryview(buffer), base + start, r)
                for buffer, (start, _end), r in zip(buffers, spans, rows, strict=True)
            ],
            "key",
        )
        keys = []
        for buffer, r in zip(buffers, rows, strict=True):
            try:
                keys.append(buffer.decode())
            except UnicodeDecodeError as exc:
                raise IndexCorruptError(
                    f"vector segment {self.name}: key {r} is not UTF-8"
                ) from exc
        return keys

    @property
    def live(self) -> int:
        return int(self.count - self.deleted.sum())


class VectorIndex:
    def __init__(self, folder: Path, embedder: EmbedderInfo) -> None:
        self.folder = folder
        self.embedder = embedder
        folder.mkdir(parents=True, exist_ok=True)
        self.manifest_path = folder / "manifest.json"
        self.segments: list[Segment] = []
        self.next_id = 0
        # A token the manifest gets at every commit: a commit checks that the manifest on disk
        # is still the one this view was read from (or made), so a process working from a
        # stale view (another process rebuilt the index meanwhile) never writes a manifest
        # that names the other's segment files as its own.
        self.generation: str | None = None
        self._queue: list[tuple[list[str], list[str], np.ndarray]] = []
        self._queued = 0
        if self.manifest_path.exists():
            try:
                manifest = orjson.loads(self.manifest_path.read_bytes())
            except (orjson.JSONDecodeError, OSError) as exc:
                raise IndexCorruptError(f"{self.manifest_path}: {exc}") from exc
            if not isinstance(manifest, dict):
                raise IndexCorruptError(f"{self.manifest_path} is not a JSON object")
            if manifest.get("format", 1) != FORMAT:
                raise IndexCorruptError(
                    f"{self.manifest_path} is of vector index format "
                    f"{manifest.get('format', 1)!r}, this version of Flatchat reads {FORMAT}: "
                    "rebuilding"
                )
            if manifest.get("embedder") != embedder.to_dict():
                raise IndexCorruptError(
                    f"vector index was built with {manifest.get('embedder')}, not "
                    f"{embedder.to_dict()}: rebuilding so vector spaces never mix"
                )
            generation = manifest.get("generation")
            self.generation = generation if isinstance(generation, str) else None
            try:
                self.next_id = int(manifest.get("next_id", 0))
                entries = [
                    (str(e["name"]), int(e["count"]), e.get("deleted"), e.get("crc32", {}))
                    for e in manifest.get("segments", [])
                ]
            except (TypeError, ValueError, KeyError, AttributeError) as exc:
                raise IndexCorruptError(
                    f"{self.manifest_path} lists segments wrongly: {exc}"
                ) from exc
            for name, count, deleted, checksums in entries:
                if not _SEGMENT_NAME.fullmatch(name) or not (
                    deleted is None
                    or (isinstance(deleted, str) and _DELETED_NAME.fullmatch(deleted))
                ):
                    raise IndexCorruptError(
                        f"{self.manifest_path} names a segment file wrongly: {name!r}, {deleted!r}"
                    )
                files = {f"{name}.{ext}" for ext in _FILES} | {deleted}
                if not isinstance(checksums, dict) or not all(
                    f in files and type(c) is int for f, c in checksums.items()
                ):
                    raise IndexCorruptError(
                        f"{self.manifest_path} records segment {name}'s checksums wrongly: "
                        f"{str(checksums)[:120]}"
                    )
                self.segments.append(Segment(folder, name, count, deleted, checksums))

    @property
    def count(self) -> int:
        return sum(s.live for s in self.segments)

    # ----------------------------------------------------------------- writing
    def add(self, keys: Sequence[str], groups: Sequence[str], vectors: np.ndarray) -> None:
        """Queue vectors for the next segment (written when SEGMENT_ROWS are queued, or at
        :meth:`commit`; not visible before the commit). Rows are stored as unit vectors (an
        embedder's are already); zero rows (no content) and rows that are not finite are
        skipped: one such row would make its segment's mean and codes NaN."""
        if not len(vectors):
            return
        norms = np.linalg.norm(vectors.astype(np.float32), axis=1)
        keep = np.isfinite(norms) & (norms > 0.5)
        if not keep.any():
            return
        norms[np.abs(norms - 1) < 1e-3] = 1  # an embedder's rows: stored as they are
        self._queue.append(
            (
                [k for k, ok in zip(keys, keep, strict=True) if ok],
                [g for g, ok in zip(groups, keep, strict=True) if ok],
                (vectors[keep] / norms[keep, None]).astype(np.float16),
            )
        )
        self._queued += int(keep.sum())
        if self._queued >= SEGMENT_ROWS:
            self._write_queue()

    def _write_queue(self) -> None:
        if not self._queue:
            return
        keys = [k for batch in self._queue for k in batch[0]]
        groups = [g for batch in self._queue for g in batch[1]]
        parts = [batch[2] for batch in self._queue]
        self._queue, self._queued = [], 0
        self._write_segment(keys, groups, lambda: iter(parts))

    def _write_segment(
        self,
        keys: Sequence[str],
        groups: Sequence[str],
        chunks: Callable[[], Iterator[np.ndarray]],
    ) -> None:
        """Write a segment from float16 row chunks (``chunks`` is called twice: once for the
        mean, once to write), chunk by chunk into the files, so memory stays bounded."""
        name = f"seg{self.next_id:06d}"
        while (self.folder / f"{name}.vec.npy").exists():  # another view's (never overwritten)
            self.next_id += 1
            name = f"seg{self.next_id:06d}"
        self.next_id += 1
        rows = len(keys)
        dim = self.embedder.dim
        total = np.zeros(dim, dtype=np.float64)
        squares = np.zeros(dim, dtype=np.float64)
        for chunk in chunks():
            full = chunk.astype(np.float64)
            total += full.sum(axis=0)
            squares += np.einsum("ij,ij->j", full, full)
        mean64 = total / max(rows, 1)
        mean = mean64.astype(np.float32)
        sd = np.sqrt(np.maximum(squares / max(rows, 1) - mean64 * mean64, 0.0)).astype(np.float32)
        words = (dim + 63) // 64
        vec = _open_npy(self.folder / f"{name}.vec.npy", (rows, dim), np.float16)
        bits = _open_npy(self.folder / f"{name}.bits.npy", (rows, words), np.uint64)
        mag = _open_npy(self.folder / f"{name}.mag.npy", (rows, words), np.uint64)
        scale = np.zeros(rows, dtype=np.float32)
        start = 0
        for chunk in chunks():
            for first in range(0, len(chunk), WRITE_CHUNK):
                part = chunk[first : first + WRITE_CHUNK]
                stop = start + len(part)
                vec[start:stop] = part
                signs, large, fit = two_bit_codes(part.astype(np.float32) - mean, sd)
                bits[start:stop] = signs
                mag[start:stop] = large
                scale[start:stop] = fit
                start = stop
        for array in (vec, bits, mag):
            _close_npy(array)
        table = list(dict.fromkeys(groups))
        position = {g: i for i, g in enumerate(table)}
        encoded = [k.encode() for k in keys]
        offsets = np.zeros(rows + 1, dtype=np.int64)
        offsets[1:] = np.cumsum([len(k) for k in encoded])
        _save_npy(self.folder / f"{name}.scale.npy", scale)
        _save_npy(self.folder / f"{name}.mean.npy", mean)
        _save_npy(self.folder / f"{name}.step.npy", (STEP * sd).astype(np.float32))
        _save_npy(
            self.folder / f"{name}.gidx.npy",
            np.array([position[g] for g in groups], dtype=np.int32),
        )
        atomic_write(self.folder / f"{name}.groups.json", orjson.dumps(table))
        _save_npy(self.folder / f"{name}.koff.npy", offsets)
        _save_npy(
            self.folder / f"{name}.keys.npy",
            np.frombuffer(b"".join(encoded) or b"\0", dtype=np.uint8),
        )
        checksums = {f"{name}.{ext}": file_crc(self.folder / f"{name}.{ext}") for ext in _FILES}
        self.segments.append(Segment(self.folder, name, rows, None, checksums))

    def delete_groups(self, groups: Iterable[str]) -> None:
        wanted = set(groups)
        if not wanted:
            return
        for n, (keys, gs, vectors) in enumerate(self._queue):
            alive = [g not in wanted for g in gs]
            if not all(alive):
                mask = np.array(alive, dtype=bool)
                self._queue[n] = (
                    [k for k, a in zip(keys, alive, strict=True) if a],
                    [g for g, a in zip(gs, alive, strict=True) if a],
                    vectors[mask],
                )
        self._queued = sum(len(batch[0]) for batch in self._queue)
        for segment in self.segments:
            hits = [i for i, g in enumerate(segment.groups) if g in wanted]
            if not hits:
                continue
            mask = segment.deleted | np.isin(segment.group_index, hits)
            if mask.sum() == segment.deleted.sum():
                continue
            name = f"{segment.name}.del{self.next_id:06d}.npy"
            self.next_id += 1
            _save_npy(self.folder / name, mask)
            segment.checksums.pop(segment.deleted_file or "", None)
            segment.checksums[name] = file_crc(self.folder / name)
            segment.deleted = mask
            segment.deleted_file = name

    def compact_if_needed(self) -> None:
        """Merge segments when there are many or when a third of the rows are tombstones."""
        dead = sum(s.count - s.live for s in self.segments)
        total = sum(s.count for s in self.segments)
        if len(self.segments) <= MAX_SEGMENTS and (total == 0 or dead * 3 < total):
            return
        old = self.segments
        keys: list[str] = []
        groups: list[str] = []
        for segment in old:
            alive = np.flatnonzero(~segment.deleted)
            keys.extend(segment.keys(alive))
            groups.extend(segment.groups[int(segment.group_index[i])] for i in alive)

        checked = False  # chunks() is read twice: its rows are checked the first time

        def chunks() -> Iterator[np.ndarray]:
            # The live rows, read from the files a block at a time (not through their maps,
            # which would keep every page read resident in this process).
            nonlocal checked
            for segment in old:
                for lo in range(0, segment.count, WRITE_CHUNK):
                    hi = min(lo + WRITE_CHUNK, segment.count)
                    live = ~segment.deleted[lo:hi]
                    if live.any():
                        rows = segment.read_block(lo, hi)[live]
                        if not checked:
                            # A damaged row copied into the new segment would get a checksum
                            # of its own: verify would not find it again (6 ms a block).
                            rows32 = rows.astype(np.float32)
                            segment.check_unit(np.flatnonzero(live) + lo, rows32)
                        yield rows
            checked = True

        self.segments = []
        if keys:
            self._write_segment(keys, groups, chunks)

    def commit(self) -> None:
        """Write the queued vectors and the manifest. The caller holds the index lock."""
        on_disk = self._generation_on_disk()
        if on_disk != self.generation:
            raise IndexCorruptError(
                f"{self.manifest_path} was replaced by another process since this one read it "
                "(the index was rebuilt meanwhile): rebuilding"
            )
        self._write_queue()
        self.generation = secrets.token_hex(8)
        manifest = {
            "format": FORMAT,
            "embedder": self.embedder.to_dict(),
            "generation": self.generation,
            "next_id": self.next_id,
            "segments": [
                {"name": s.name, "count": s.count, "deleted": s.deleted_file, "crc32": s.checksums}
                for s in self.segments
            ],
        }
        atomic_write(self.manifest_path, orjson.dumps(manifest, option=orjson.OPT_INDENT_2))
        self._collect_garbage()

    def checksum_problems(self) -> list[str]:
        """Each file of the committed segments whose content no longer matches the checksum
        recorded when it was written (a flipped bit in a float16 row or a code would change
        rankings silently: searches do not read whole files, so only this finds it). The
        caller holds the index lock: a compaction deletes files."""
        problems = []
        for segment in self.segments:
            for file, crc in segment.checksums.items():
                try:
                    found = file_crc(self.folder / file)
                except OSError as exc:
                    problems.append(f"vector index file {file} cannot be read: {exc}")
                    continue
                if found != crc:
                    problems.append(
                        f"vector index file {file} does not match its checksum "
                        "(its content changed)"
                    )
        return problems

    def _generation_on_disk(self) -> str | None:
        try:
            manifest = orjson.loads(self.manifest_path.read_bytes())
        except FileNotFoundError:
            return None
        except (orjson.JSONDecodeError, OSError) as exc:
            raise IndexCorruptError(f"{self.manifest_path}: {exc}") from exc
        generation = manifest.get("generation") if isinstance(manifest, dict) else None
        return generation if isinstance(generation, str) else None

    def _collect_garbage(self) -> None:
        live = {"manifest.json"}
        for s in self.segments:
            live |= {f"{s.name}.{ext}" for ext in _FILES}
            if s.deleted_file:
                live.add(s.deleted_file)
        for name in os.listdir(self.folder):
            if name not in live and not name.startswith("."):
                (self.folder / name).unlink(missing_ok=True)

    # ----------------------------------------------------------------- searching
    def search(
        self,
        query: np.ndarray,
        k: int,
        shortlist: int | None = None,
        exact: bool = False,
        allow: Callable[[str], bool] | None = None,
    ) -> list[tuple[str, float]]:
        """The ``k`` nearest live vectors to the unit vector ``query``: (key, cosine).

        ``shortlist``: rows whose 2-bit codes are scored after the Hamming scan, shared among
        the segments by their size (default: a fraction of the index); ``exact``: score every
        row from float16 instead. The best :data:`RERANK` (or ``k``) of all segments by those
        scores (estimates of the cosine, comparable across segments) are re-ranked from
        float16. ``allow``: only rows of the groups it accepts (a user, a session, a kind of
        source) are searched, however few: the rest count as deleted."""
        if k <= 0 or not self.segments or float(np.linalg.norm(query)) < 0.5:
            return []
        q = query.astype(np.float32)
        if allow is None:
            skip = [s.deleted for s in self.segments]
        else:
            skip = []
            for s in self.segments:
                accepted = np.fromiter(map(allow, s.groups), dtype=bool, count=len(s.groups))
                skip.append(s.deleted | ~accepted[s.group_index] if s.count else s.deleted)
        searched = [s.count - int(gone.sum()) for s, gone in zip(self.segments, skip, strict=True)]
        total = sum(searched)
        how = "exact" if exact else "all" if total <= EXACT_BELOW else "shortlist"
        if shortlist is None:
            shortlist = min(SHORTLIST_MAX, max(SHORTLIST_MIN, int(total * SHORTLIST_FRACTION)))
        keep = max(k, RERANK)
        shares = {
            n: max(keep, shortlist * rows // max(total, 1))
            for n, rows in enumerate(searched)
            if rows
        }
        if not shares:  # every vector deleted (or of groups not allowed)
            return []
        for segment in self.segments:
            segment.check_mapped()
        found: list[tuple[float, int, int]] = []
        numbers, rows, rough = _candidates(self.segments, skip, shares, q, how)
        if len(rows) > keep:
            best = np.argpartition(-rough, keep)[:keep]
            numbers, rows = numbers[best], rows[best]
        for number in np.unique(numbers):
            segment = self.segments[int(number)]
            mine = np.sort(rows[numbers == number])  # read in file order
            stored = segment.read_vectors(mine).astype(np.float32)
            segment.check_unit(mine, stored)
            fine = stored @ q
            found.extend(
                (float(score), int(number), int(row)) for score, row in zip(fine, mine, strict=True)
            )
        found.sort(key=lambda t: -t[0])
        top = found[:k]
        keys: dict[tuple[int, int], str] = {}  # (segment, row) -> key, read segment by segment
        for number in {n for _, n, _ in top}:
            theirs = [row for _, n, row in top if n == number]
            for row, key in zip(theirs, self.segments[number].some_keys(theirs), strict=True):
                keys[number, row] = key
        return [(keys[n, row], score) for score, n, row in top]


# ----------------------------------------------------------------------- the scan
# An index of PARALLEL_ROWS or more is searched by one thread per core (at most SCAN_THREADS):
# the Hamming scan, the shortlist and its 2-bit scoring are numpy calls that release the GIL.
# Each thread takes whole segments or, of a segment bigger than its share, a range of rows.
# The threads meet twice: to add up each segment's histogram of distances (so its shortlist is
# the rows one thread would pick) and to join their rows. On this machine kind (2 cores), one
# 1,000,000-row segment took 15.3 ms p50 in one thread and 11.8 in two.
PARALLEL_ROWS = 262_144
SCAN_THREADS = 4
ROUGH_BLOCK = 4_096  # rows scored at a time: their codes as float32 stay in cache
EXACT_BLOCK = 2_048  # rows read from float16 at a time by an exact search (1 MB: the
# float32 copy stays in cache; at 1M rows 16,384 took 562-586 ms, 4,096 342-355, 1,024 314-333)

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


@dataclass(frozen=True, slots=True)
class _Part:
    number: int  # the segment's place in the index
    segment: Segment
    lo: int  # its rows [lo, hi)
    hi: int


def _scan_pool() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(SCAN_THREADS - 1, thread_name_prefix="flatchat-scan")
        return _pool


def _forget_pool() -> None:
    """In a forked child: the parent's pool threads do not exist here (a part given to them
    would never run) and its lock may have been held at the fork; the child makes its own."""
    global _pool, _pool_lock
    _pool, _pool_lock = None, threading.Lock()


os.register_at_fork(after_in_child=_forget_pool)


def _threads(rows: int) -> int:
    return 1 if rows < PARALLEL_ROWS else max(1, min(SCAN_THREADS, os.cpu_count() or 1))


def _split(segments: list[Segment], numbers: Iterable[int]) -> list[list[_Part]]:
    """The segments ``numbers`` as one list of parts per thread, each about as many rows: a
    segment bigger than a thread's share is cut into equal ranges, and the parts are dealt
    largest first to the thread with the fewest rows so far."""
    chosen = [(n, segments[n]) for n in numbers]
    rows = sum(s.count for _, s in chosen)
    threads = _threads(rows)
    share = -(-rows // threads)
    pieces: list[_Part] = []
    for n, segment in chosen:
        cuts = -(-segment.count // share)
        bounds = [segment.count * i // cuts for i in range(cuts + 1)]
        pieces.extend(_Part(n, segment, lo, hi) for lo, hi in itertools.pairwise(bounds))
    groups: list[list[_Part]] = [[] for _ in range(threads)]
    loads = [0] * threads
    for piece in sorted(pieces, key=lambda p: p.lo - p.hi):
        least = loads.index(min(loads))
        groups[least].append(piece)
        loads[least] += piece.hi - piece.lo
    return [g for g in groups if g]


def _each(fn: Callable[[_Part], T], groups: list[list[_Part]]) -> list[tuple[_Part, T]]:
    """``fn`` of every part: the first group's in this thread, the others' in the pool."""

    def run(group: list[_Part]) -> list[tuple[_Part, T]]:
        return [(part, fn(part)) for part in group]

    if len(groups) == 1:
        return run(groups[0])
    futures = [_scan_pool().submit(run, group) for group in groups[1:]]
    try:
        done = run(groups[0])
    finally:
        wait(futures)  # they write into arrays this call owns: none may outlive it
    for future in futures:
        done.extend(future.result())
    return done


def _rough(segment: Segment, rows: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Estimated cosines of ``rows`` (ascending) from their 2-bit codes, a block at a time:
    each row's codes (-3, -1, 1, 3) are looked up 8 coordinates at a time from its sign and
    magnitude bytes, then scored against the query weighted by each dimension's step."""
    words = len(segment.columns)
    weights = np.zeros(words * 64, dtype=np.float32)
    weights[: len(q)] = q * segment.step  # padding coordinates weigh nothing
    out = np.empty(len(rows), dtype=np.float32)
    for start in range(0, len(rows), ROUGH_BLOCK):
        block = rows[start : start + ROUGH_BLOCK]
        signs = np.empty((len(block), words), dtype=np.uint64)
        large = np.empty((len(block), words), dtype=np.uint64)
        for w in range(words):
            np.take(segment.columns[w], block, out=signs[:, w])
            np.take(segment.magnitude[w], block, out=large[:, w])
        index = signs.view(np.uint8).astype(np.uint16)
        index <<= 8
        index |= large.view(np.uint8)
        codes = np.take(_CODES, index).view(np.int8)
        out[start : start + len(block)] = codes.astype(np.float32) @ weights
    out *= segment.scale[rows]
    out += float(q @ segment.mean)
    return out


def _exact(segment: Segment, rows: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Cosines of ``rows`` (ascending) from float16, read a block of the file at a time."""
    out = np.empty(len(rows), dtype=np.float32)
    if not len(rows):
        return out
    done = 0
    first, last = int(rows[0]), int(rows[-1]) + 1
    for lo in range(first, last, EXACT_BLOCK):
        hi = min(lo + EXACT_BLOCK, last)
        stop = int(np.searchsorted(rows, hi))
        wanted = rows[done:stop] - lo
        if len(wanted):
            out[done:stop] = segment.read_block(lo, hi)[wanted].astype(np.float32) @ q
        done = stop
    return out


def _candidates(
    segments: list[Segment],
    skip: list[np.ndarray],
    shares: dict[int, int],
    q: np.ndarray,
    how: str,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The rows worth a float16 look: their segments' numbers, the rows, their scores.
    ``skip``: each segment's rows not to search (deleted, or filtered out); ``shares``: how
    many rows to shortlist in each segment searched; ``how``: "shortlist" (the Hamming scan,
    then 2-bit scores of the shortlist), "all" (2-bit scores of every row) or "exact"
    (float16 cosines of every row)."""
    groups = _split(segments, shares)
    if how != "shortlist":
        score = _exact if how == "exact" else _rough

        def every(part: _Part) -> tuple[np.ndarray, np.ndarray]:
            rows = np.flatnonzero(~skip[part.number][part.lo : part.hi]) + part.lo
            return rows, score(part.segment, rows, q)

        return _join(_each(every, groups))
    distances = {n: np.empty(segments[n].count, dtype=np.uint16) for n in shares}
    words = {n: sign_codes((q - segments[n].mean)[None, :])[0] for n in shares}

    def scan(part: _Part) -> np.ndarray:
        # Word by word over the column-major codes, summed in uint16: a third of the time
        # of a row-wise sum over (N, words). Every step writes into the same buffers: a new
        # 8 MB array per word at 1,000,000 rows is fresh memory the kernel must fault in, and
        # the scan took 6.2 ms that way against 4.0 (timeit, random codes).
        lo, hi, segment = part.lo, part.hi, part.segment
        width = len(segment.columns) * 64  # the largest distance
        mine = distances[part.number][lo:hi]
        mine.fill(0)
        xor = np.empty(hi - lo, dtype=np.uint64)
        bits = np.empty(hi - lo, dtype=np.uint8)
        for word, column in zip(words[part.number], segment.columns, strict=True):
            np.bitwise_xor(column[lo:hi], word, out=xor)
            np.bitwise_count(xor, out=bits)
            np.add(mine, bits, out=mine)
        mine[skip[part.number][lo:hi]] = np.iinfo(np.uint16).max
        return np.bincount(mine, minlength=width + 1)[: width + 1]  # deleted rows: past it

    # Each segment's shortlist by its histogram of distances (a count per distance, 0 to the
    # dimensions rounded up to 64) instead of a partition: every row at or under the
    # distance where the count reaches its share.
    # (Distances are to each segment's own mean: they compare within a segment only.)
    counts: dict[int, np.ndarray] = {}
    for part, histogram in _each(scan, groups):
        counts[part.number] = counts.get(part.number, 0) + histogram
    cutoffs = {n: int(np.searchsorted(np.cumsum(c), shares[n])) for n, c in counts.items()}

    def select(part: _Part) -> tuple[np.ndarray, np.ndarray]:
        near = distances[part.number][part.lo : part.hi] <= cutoffs[part.number]
        rows = np.flatnonzero(near) + part.lo
        return rows, _rough(part.segment, rows, q)

    return _join(_each(select, groups))


def _join(
    done: list[tuple[_Part, tuple[np.ndarray, np.ndarray]]],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if not done:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32)
    numbers = np.concatenate([np.full(len(rows), p.number) for p, (rows, _) in done])
    rows = np.concatenate([rows for _, (rows, _) in done])
    rough = np.concatenate([rough for _, (_, rough) in done])
    return numbers, rows, rough
