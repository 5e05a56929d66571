"""Text embedders for semantic search.

The default is model2vec's potion-base-8M (256 dimensions), shipped in the package under
``resources/models/potion-base-8M/`` and loaded from there only: no hub download, ever. When it
cannot load, a deterministic hashed character-n-gram embedder takes over and the search results
say semantic search is degraded.
"""

from __future__ import annotations

import hashlib
import logging
import os
import unicodedata
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

log = logging.getLogger(__name__)

MODEL_DIR = Path(__file__).resolve().parents[2] / "resources" / "models" / "potion-base-8M"
MAX_CHARS = 4000  # longer texts are cut: the mean of static embeddings saturates anyway
HASH_DIM = 256


class Embedder(Protocol):
    name: str
    model_hash: str
    dim: int
    degraded: str | None  # why semantic search is weaker than it should be, if it is

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """float32 array (len(texts), dim): unit rows, or zero rows for texts with no content."""
        ...


class EmbedderLoadError(RuntimeError):
    """The packaged model is missing, incomplete or altered."""


def _normalize(vectors: np.ndarray) -> np.ndarray:
    vectors = vectors.astype(np.float32, copy=False)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(norms > 1e-6, vectors / norms, 0.0)
    return out.astype(np.float32)


def _verify_manifest(folder: Path) -> str:
    """Check every file against SHA256SUMS; return the model file's hash."""
    manifest = folder / "SHA256SUMS"
    if not manifest.exists():
        raise EmbedderLoadError(f"{manifest} is missing")
    hashes = {}
    for line in manifest.read_text().splitlines():
        digest, _, name = line.partition("  ")
        path = folder / name
        if not path.exists():
            raise EmbedderLoadError(f"{path} is missing")
        actual = hashlib.sha256(path.read_bytes()).hexdigest()
        if actual != digest:
            raise EmbedderLoadError(f"{path} has sha256 {actual}, expected {digest}")
        hashes[name] = digest
    if "model.safetensors" not in hashes:
        raise EmbedderLoadError(f"{manifest} does not list model.safetensors")
    return hashes["model.safetensors"]


CAST_ROWS = 2048  # rows of the embedding table converted per step (~4 ms each)


class Model2VecEmbedder:
    """potion-base-8M through model2vec's StaticModel, from the packaged folder only."""

    degraded: str | None = None

    def __init__(self, folder: Path = MODEL_DIR, batch_size: int = 1024) -> None:
        self.model_hash = _verify_manifest(folder)
        # Belt and braces: even a bug in a path check must not reach for the network.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from model2vec import StaticModel

        try:
            self._model = StaticModel.from_pretrained(str(folder))
        except Exception as exc:  # any failure inside model2vec means "cannot load"
            raise EmbedderLoadError(f"model2vec could not load {folder}: {exc}") from exc
        # Pooling over a float32 table is ~1.7x faster than over the float16 one shipped
        # (30 MB in memory instead of 15; identical vectors). Converted a slice at a time:
        # one 7.5M-element cast holds the GIL for ~60 ms, a stall in the window's process.
        half = self._model.embedding
        table = np.empty(half.shape, dtype=np.float32)
        for start in range(0, len(half), CAST_ROWS):
            table[start : start + CAST_ROWS] = half[start : start + CAST_ROWS]
        self._model.embedding = table
        self.name = f"model2vec:{folder.name}"
        self.dim = int(self._model.dim)
        self._batch_size = batch_size

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        clipped = [t[:MAX_CHARS] for t in texts]
        with np.errstate(invalid="ignore", divide="ignore"):
            raw = self._model.encode(
                clipped,
                batch_size=self._batch_size,
                use_multiprocessing=False,
                show_progress_bar=False,
            )
        return _normalize(np.nan_to_num(np.asarray(raw, dtype=np.float32)))


class HashingEmbedder:
    """Character 3-5-grams hashed (crc32, signed) into 256 dimensions: deterministic across
    processes and machines, no model. Finds near-duplicates and shared words, not meaning."""

    name = "hashing-char-ngrams-v1"
    model_hash = "none"
    dim = HASH_DIM

    def __init__(self, degraded: str | None = None) -> None:
        """``degraded``: why semantic search runs on this embedder (default: as chosen)."""
        self.degraded: str | None = degraded or (
            "semantic search uses character n-grams (setting vector.embedder is hashing): "
            "results match spelling, not meaning"
        )

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), np.float32)
        for row, text in enumerate(texts):
            folded = unicodedata.normalize("NFKC", text[:MAX_CHARS]).casefold()
            for word in folded.split():
                if not any(ch.isalnum() for ch in word):
                    continue
                padded = f" {word} "
                for n in (3, 4, 5):
                    for i in range(max(1, len(padded) - n + 1)):
                        h = zlib.crc32(padded[i : i + n].encode())
                        out[row, h % self.dim] += 1.0 if (h >> 16) & 1 else -1.0
        return _normalize(out)


def load_embedder(
    kind: str = "model2vec", batch_size: int = 1024, folder: Path | None = None
) -> Embedder:
    """The configured embedder, or the fallback (logged, and marked degraded) if it fails."""
    if kind == "hashing":
        return HashingEmbedder()
    try:
        return Model2VecEmbedder(folder or MODEL_DIR, batch_size=batch_size)
    except (EmbedderLoadError, OSError, ImportError) as exc:
        log.warning("semantic search degraded: %s", exc)
        return HashingEmbedder(
            "semantic search uses the fallback embedder (character n-grams): the packaged "
            f"model could not be loaded ({exc}), so results match spelling, not meaning"
        )
