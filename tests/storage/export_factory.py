"""Synthetic chat exports for import tests and ``benchmarks/bench_import.py``, written as the
real apps write them (field names and nesting of a 2024-2025 ChatGPT ``conversations.json``)."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

BASE_TIME = 1_700_000_000.0


def chatgpt_node(
    node_id: str,
    parent: str | None,
    role: str,
    text: str,
    when: float | None,
    children: list[str] | None = None,
) -> dict[str, Any]:
    return {
        "id": node_id,
        "message": {
            "id": node_id,
            "author": {"role": role, "name": None, "metadata": {}},
            "create_time": when,
            "update_time": None,
            "content": {"content_type": "text", "parts": [text]},
            "status": "finished_successfully",
            "end_turn": role == "assistant" or None,
            "weight": 1.0,
            "metadata": {"model_slug": "gpt-4o"} if role == "assistant" else {},
            "recipient": "all",
            "channel": None,
        },
        "parent": parent,
        "children": children if children is not None else [],
    }


def chatgpt_conversation(
    conv_id: str, title: str, parents: list[int | None], current: int, *, start: float = BASE_TIME
) -> dict[str, Any]:
    """A conversation whose node ``i`` (``m<i>``) hangs from ``parents[i]`` (None: the root
    node ``root``, which has no message, as in real exports)."""
    mapping: dict[str, Any] = {
        "root": {"id": "root", "message": None, "parent": None, "children": []}
    }
    for i, parent in enumerate(parents):
        parent_id = "root" if parent is None else f"m{parent}"
        role = "user" if i % 2 == 0 else "assistant"
        mapping[f"m{i}"] = chatgpt_node(
            f"m{i}", parent_id, role, f"{title} message {i}", start + i
        )
        mapping[parent_id]["children"].append(f"m{i}")
    return {
        "title": title,
        "create_time": start,
        "update_time": start + len(parents),
        "mapping": mapping,
        "moderation_results": [],
        "current_node": f"m{current}",
        "plugin_ids": None,
        "conversation_id": conv_id,
        "conversation_template_id": None,
        "gizmo_id": None,
        "is_archived": False,
        "safe_urls": [],
        "default_model_slug": "gpt-4o",
        "id": conv_id,
    }


def linear_conversations(count: int, messages: int, seed: int = 1) -> Iterator[dict[str, Any]]:
    """``count`` conversations of ``messages`` messages each (one regenerated reply in every
    tenth conversation, so some have two branches)."""
    rng = random.Random(seed)
    for n in range(count):
        parents: list[int | None] = [None, *range(messages - 1)]
        current = messages - 1
        if n % 10 == 0 and messages >= 3:
            parents.append(messages - 3)  # a second answer to the last-but-one question
            current = messages
        words = " ".join(rng.choice(WORDS) for _ in range(12))
        yield chatgpt_conversation(
            f"0000{n:08d}-0000-4000-8000-{n:012d}",
            f"Conversation {n}: {words[:30]}",
            parents,
            current,
            start=BASE_TIME + n * 1000,
        )


def write_chatgpt_export(path: Path, conversations: Iterator[dict[str, Any]]) -> int:
    """Stream conversations into a ``conversations.json``; returns the bytes written."""
    size = 0
    with open(path, "wb") as fh:
        fh.write(b"[")
        for i, conv in enumerate(conversations):
            data = (b",\n" if i else b"\n") + orjson.dumps(conv)
            fh.write(data)
            size += len(data)
        fh.write(b"\n]\n")
    return size + 4


WORDS = [
    "engine", "analytical", "lovelace", "babbage", "numbers", "cards", "loom", "pattern",
    "operation", "variable", "memory", "store", "mill", "result", "bernoulli", "sequence",
]  # fmt: skip
