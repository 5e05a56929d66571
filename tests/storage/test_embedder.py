"""The packaged model2vec embedder, its offline loading, and the fallback."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from storage.search.embedder import (
    MODEL_DIR,
    EmbedderLoadError,
    HashingEmbedder,
    Model2VecEmbedder,
    load_embedder,
)

PARAPHRASES = [
    ("How do I bake sourdough bread at home?", "What is a good recipe for homemade sourdough?"),
    ("The stock market fell sharply today", "Shares dropped a lot on Wall Street this afternoon"),
    ("My laptop battery drains too fast", "The notebook's battery runs out very quickly"),
    ("Where can I park my car near the station?", "Is there parking close to the train station?"),
    ("What's the weather like in Paris tomorrow?", "Will it rain in Paris tomorrow?"),
]


@pytest.fixture(scope="module")
def model() -> Model2VecEmbedder:
    return Model2VecEmbedder()


def test_loads_from_the_package_with_the_network_blocked() -> None:
    code = (
        "import socket\n"
        "def refuse(*a, **k): raise OSError('network access attempted')\n"
        "socket.socket.connect = refuse\n"
        "socket.create_connection = refuse\n"
        "from storage.search.embedder import Model2VecEmbedder\n"
        "e = Model2VecEmbedder()\n"
        "print(e.name, e.dim, e.encode(['hello world']).shape)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, cwd=Path(__file__).resolve().parents[2],
                         env={"PATH": "/usr/bin:/bin", "HOME": "/nonexistent"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["model2vec:potion-base-8M", "256", "(1,", "256)"]


def test_golden_cosines(model: Model2VecEmbedder) -> None:
    golden = [(PARAPHRASES[0], 0.7115), (PARAPHRASES[1], 0.4971),
              ((PARAPHRASES[0][0], PARAPHRASES[1][0]), 0.1025)]
    for (a, b), expected in golden:
        v = model.encode([a, b])
        assert float(v[0] @ v[1]) == pytest.approx(expected, abs=2e-3)


def test_paraphrases_rank_above_unrelated(model: Model2VecEmbedder) -> None:
    left = model.encode([a for a, _ in PARAPHRASES])
    right = model.encode([b for _, b in PARAPHRASES])
    similarity = left @ right.T
    for i in range(len(PARAPHRASES)):
        others = np.delete(similarity[i], i)
        assert similarity[i, i] > others.max(), PARAPHRASES[i]


def test_unit_rows_and_zero_rows_for_no_content(model: Model2VecEmbedder) -> None:
    vectors = model.encode(["a sentence", "", "😀🎉", "   "])
    norms = np.linalg.norm(vectors, axis=1)
    assert norms[0] == pytest.approx(1.0, abs=1e-3)
    assert list(norms[1:]) == [0.0, 0.0, 0.0]
    assert vectors.dtype == np.float32
    assert model.encode([]).shape == (0, 256)


def test_altered_model_is_refused_and_the_fallback_says_so(tmp_path: Path) -> None:
    broken = tmp_path / "potion-base-8M"
    shutil.copytree(MODEL_DIR, broken)
    data = bytearray((broken / "model.safetensors").read_bytes())
    data[-1] ^= 0xFF
    (broken / "model.safetensors").write_bytes(bytes(data))
    with pytest.raises(EmbedderLoadError, match="sha256"):
        Model2VecEmbedder(broken)
    fallback = load_embedder(folder=broken)
    assert isinstance(fallback, HashingEmbedder)
    assert fallback.degraded and "fallback" in fallback.degraded


def test_hashing_embedder_is_deterministic_across_processes() -> None:
    code = ("from storage.search.embedder import HashingEmbedder\n"
            "print(HashingEmbedder().encode(['reproducible text']).tobytes().hex()[:64])")
    runs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           check=True, cwd=Path(__file__).resolve().parents[2],
                           env={"PATH": "/usr/bin:/bin", "PYTHONHASHSEED": seed}).stdout
            for seed in ("1", "2")}
    assert len(runs) == 1
    vectors = HashingEmbedder().encode(["hello world", "hello there", "zzz"])
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2]
