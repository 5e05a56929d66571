"""Helpers the ingest tests share: reading back what an ingest wrote, checking the contract."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import zstandard

from storage import Archive


def docs_dir(archive: Archive, user: str, session: str | None = None) -> Path:
    return archive.layout.documents_dir(user, session)


def extracted_text(folder: Path, doc_id: str) -> str:
    if (folder / f"{doc_id}.txt.zst").exists():
        raw = zstandard.ZstdDecompressor().decompress((folder / f"{doc_id}.txt.zst").read_bytes())
        return raw.decode("utf-8")
    return (folder / f"{doc_id}.txt").read_text(encoding="utf-8")


def read_chunks(folder: Path, doc_id: str) -> list[dict[str, Any]]:
    """The chunks of a document, checked against the on-disk contract on the way."""
    text = extracted_text(folder, doc_id)
    lines = (folder / f"{doc_id}.chunks.jsonl").read_text(encoding="utf-8").splitlines()
    chunks = [json.loads(line) for line in lines]
    for n, chunk in enumerate(chunks):
        assert set(chunk) == {"chunk", "start", "end", "page", "line_start", "line_end", "text"}
        assert chunk["chunk"] == n
        assert 0 <= chunk["start"] < chunk["end"] <= len(text)
        assert chunk["text"] == text[chunk["start"] : chunk["end"]]
        assert chunk["page"] is not None or chunk["line_start"] <= chunk["line_end"]
    return chunks


def squash(text: str) -> str:
    return " ".join(text.split())


def chunks_with(chunks: list[dict[str, Any]], phrase: str) -> list[dict[str, Any]]:
    return [c for c in chunks if squash(phrase) in squash(c["text"])]
