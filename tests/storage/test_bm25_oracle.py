"""Keyword ranking checked against SQLite FTS5's bm25() on a generated corpus.

Both use BM25 with k1=1.2, b=0.75 and the same tokens (lower-cased ASCII words). Their IDF
formulas differ by a constant for a given term (tantivy: ln(1 + (N-n+.5)/(n+.5)); FTS5:
ln((N-n+.5)/(n+.5))), so for a single-term query the scores must be proportional and the
top 10 the same documents in the same order, ties aside. Documents stay under 40 words, where
tantivy stores lengths exactly.
"""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path

import pytest

from storage import Archive, Message

pytestmark = pytest.mark.asyncio

VOCABULARY = [f"w{i:03d}" for i in range(400)]


def corpus(seed: int = 11, n: int = 3000) -> list[str]:
    rng = random.Random(seed)
    weights = [1 / (rank + 1) ** 1.05 for rank in range(len(VOCABULARY))]  # Zipf
    return [" ".join(rng.choices(VOCABULARY, weights, k=rng.randint(3, 30))) for _ in range(n)]


def levels(ranked: list[tuple[str, float]]) -> list[set[str]]:
    """Keys grouped by (rounded) score, best first."""
    groups: list[tuple[float, set[str]]] = []
    for key, score in ranked:
        if groups and abs(groups[-1][0] - score) <= 1e-4 * abs(score):
            groups[-1][1].add(key)
        else:
            groups.append((score, {key}))
    return [g for _, g in groups]


async def test_single_term_top10_matches_fts5_bm25(archive: Archive, tmp_path: Path) -> None:
    texts = corpus()
    await archive.create_user("u")
    sid = (await archive.create_session("u", "corpus")).session_id
    await archive.add_messages("u", sid, [Message(message_id=f"m{i}", role="user", content=t)
                                          for i, t in enumerate(texts)])
    db = sqlite3.connect(tmp_path / "oracle.db")
    db.execute("CREATE VIRTUAL TABLE t USING fts5(body, tokenize='unicode61 remove_diacritics 2')")
    # The session's title is a document too (its words count in every word's statistics).
    db.executemany("INSERT INTO t(rowid, body) VALUES (?, ?)", enumerate([*texts, "corpus"]))
    db.commit()
    document_frequency = {w: sum(1 for t in texts if w in t.split()) for w in VOCABULARY}
    terms = [w for w in VOCABULARY if 5 <= document_frequency[w] <= len(texts) // 4]
    chosen = terms[:: max(1, len(terms) // 25)]
    assert len(chosen) >= 20
    for term in chosen:
        ours = await archive.search(term, "keyword", limit=10)
        mine = [(h.message_id or "", h.score) for h in ours.hits]
        rows = db.execute("SELECT rowid, -bm25(t) FROM t WHERE t MATCH ? "
                          "ORDER BY bm25(t), rowid LIMIT 200", (term,)).fetchall()
        oracle = [(f"m{rowid}", score) for rowid, score in rows]
        assert ours.total == document_frequency[term]
        ratio = mine[0][1] / oracle[0][1]
        oracle_scores = {k: s for k, s in oracle}
        for key, score in mine:
            assert key in oracle_scores, f"{term}: {key} is not in FTS5's results"
            assert score == pytest.approx(oracle_scores[key] * ratio, rel=1e-4), term
        our_levels = levels(mine)
        oracle_levels = levels([(k, s * ratio) for k, s in oracle])
        # Same documents at every score level, in the same order; at the cut-off level a
        # tie may be broken differently, so ours must be among FTS5's tied documents.
        assert our_levels[:-1] == oracle_levels[: len(our_levels) - 1], term
        assert our_levels[-1] <= oracle_levels[len(our_levels) - 1], term
