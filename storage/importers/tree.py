"""Message trees of branched exports: parents-first order, roots, cycles, missing parents."""

from __future__ import annotations

import datetime as dt
import heapq
from collections.abc import Callable
from dataclasses import dataclass

from storage.models import Message


@dataclass(frozen=True)
class TreeResult:
    messages: list[Message]  # parents first, each with its parent_id (None for roots)
    active_leaf_id: str | None
    problems: list[str]


def build_tree(
    messages: list[Message],
    parents: dict[str, str | None],
    current: str | None,
    *,
    root_sentinels: frozenset[str] = frozenset(),
) -> TreeResult:
    """Order ``messages`` (in source order) so every parent precedes its children, earliest
    first among siblings and branches.

    ``parents`` maps a message id to its parent's id (``None`` or a sentinel: a root). A parent
    that is not among the messages makes the message a root, reported. A cycle is broken at its
    first message in source order, which becomes a root, reported. ``current`` names the active
    leaf; if it is missing the newest leaf of the main line is used.
    """
    problems: list[str] = []
    by_id = {m.message_id: m for m in messages}
    index = {m.message_id: i for i, m in enumerate(messages)}
    parent: dict[str, str | None] = {}
    for m in messages:
        p = parents.get(m.message_id)
        if p is not None and p not in by_id:
            if p not in root_sentinels:
                problems.append(
                    f"message {m.message_id!r}: parent {p!r} is missing; kept as a root"
                )
            p = None
        if p == m.message_id:
            problems.append(f"message {m.message_id!r} is its own parent; kept as a root")
            p = None
        parent[m.message_id] = p
    children: dict[str | None, list[str]] = {}
    for m in messages:
        children.setdefault(parent[m.message_id], []).append(m.message_id)

    def key(mid: str) -> tuple[dt.datetime, int]:
        return (by_id[mid].timestamp, index[mid])

    order: list[str] = []
    placed: set[str] = set()

    def drain(start: list[str]) -> None:
        heap = [(*key(mid), mid) for mid in start]
        heapq.heapify(heap)
        while heap:
            *_, mid = heapq.heappop(heap)
            if mid in placed:
                continue  # the message where a cycle was broken, reached again
            order.append(mid)
            placed.add(mid)
            for child in children.get(mid, ()):
                heapq.heappush(heap, (*key(child), child))

    drain(children.get(None, []))
    if len(placed) < len(messages):
        # Whatever is left hangs off a cycle: break each at its first message in source order.
        for m in messages:
            if m.message_id in placed:
                continue
            problems.append(f"message {m.message_id!r} is part of a parent cycle; kept as a root")
            children[parent[m.message_id]].remove(m.message_id)
            parent[m.message_id] = None
            drain([m.message_id])
    ordered = [replace_parent(by_id[mid], parent[mid]) for mid in order]
    leaf = current if current in by_id else None
    if current is not None and leaf is None:
        problems.append(f"active message {current!r} is missing; the newest branch is shown")
    if leaf is None and ordered:
        leaf = _newest_leaf(order, children, key)
    return TreeResult(ordered, leaf, problems)


def _newest_leaf(
    order: list[str],
    children: dict[str | None, list[str]],
    key: Callable[[str], tuple[dt.datetime, int]],
) -> str:
    """Follow the newest child (latest time, then latest in the source) from the first root."""
    node = order[0]
    while kids := children.get(node):
        node = max(kids, key=key)
    return node


def replace_parent(message: Message, parent_id: str | None) -> Message:
    if message.parent_id == parent_id:
        return message
    return message.model_copy(update={"parent_id": parent_id})


def linear_parents(messages: list[Message]) -> dict[str, str | None]:
    """Each message follows the one before it (exports without branches)."""
    result: dict[str, str | None] = {}
    previous: str | None = None
    for m in messages:
        result[m.message_id] = previous
        previous = m.message_id
    return result


def dedupe(messages: list[Message], problems: list[str]) -> list[Message]:
    """Drop repeated message ids (the first wins), reporting them."""
    seen: set[str] = set()
    kept = []
    for m in messages:
        if m.message_id in seen:
            problems.append(f"duplicate message id {m.message_id!r}; the first is kept")
            continue
        seen.add(m.message_id)
        kept.append(m)
    return kept
