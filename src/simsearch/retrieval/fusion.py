"""Fusing a dense and a lexical ranking into one (hybrid search).

Two fusion functions over the same candidate rows:

* reciprocal rank fusion, ``sum_i w_i / (c + rank_i)`` (Cormack, Clarke & Buettcher,
  "Reciprocal Rank Fusion outperforms Condorcet and individual Rank Learning Methods",
  SIGIR 2009; ``c = 60`` there). Rank-only: robust to score scales, but it gives a weak
  ranking the same say as a strong one unless weighted;
* convex combination of normalised scores, ``w * norm(dense) + (1 - w) * norm(bm25)``
  (Bruch, Gai & Ingber, "An Analysis of Fusion Functions for Hybrid Retrieval", ACM TOIS
  2023: it beats RRF in and out of domain and needs few examples to tune ``w``). Each
  score vector is min-max normalised over its own top ``depth`` candidates.

Rankings are cut at ``depth`` rows each (as Elasticsearch's ``rank_window_size``); a row
missing from one list gets nothing from it. Both functions return a dense ``(n_rows,)``
score vector, 0 for rows in neither list, for :func:`simsearch.retrieval.topk.select`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

#: The RRF constant of Cormack et al. 2009.
RRF_K = 60
FUSIONS = ("rrf", "convex")


@dataclass(frozen=True)
class FusionOptions:
    """How hybrid search fuses its two rankings.

    Attributes:
        method: ``"convex"`` or ``"rrf"``.
        dense_weight: weight of the dense ranking in ``[0, 1]``; the lexical one gets
            ``1 - dense_weight`` (for RRF both are multiplied by 2, so 0.5 is plain RRF).
        depth: rows taken from each ranking.
        rrf_k: the RRF constant.
    """

    method: str = "convex"
    dense_weight: float = 0.5
    depth: int = 100
    rrf_k: int = RRF_K

    def __post_init__(self) -> None:
        if self.method not in FUSIONS:
            raise ValueError(f"fusion must be one of {', '.join(FUSIONS)}, got {self.method!r}")
        if not 0.0 <= self.dense_weight <= 1.0:
            raise ValueError(f"dense weight must be in [0, 1], got {self.dense_weight}")
        if self.depth < 1:
            raise ValueError(f"fusion depth must be at least 1, got {self.depth}")


def rrf_scores(
    rankings: Sequence[np.ndarray], n_rows: int, weights: Sequence[float], k: int = RRF_K
) -> np.ndarray:
    """Weighted reciprocal rank fusion.

    Args:
        rankings: lists of rows, best first (``(depth_i,)`` int each).
        n_rows: size of the output vector.
        weights: one weight per ranking.
        k: the RRF constant.

    Returns:
        ``(n_rows,)`` float32 fused scores (0 for rows in no ranking).
    """
    fused = np.zeros(n_rows, dtype=np.float32)
    for rows, weight in zip(rankings, weights):
        rows = np.asarray(rows, dtype=np.int64)
        fused[rows] += weight / (k + np.arange(1, len(rows) + 1, dtype=np.float32))
    return fused


def minmax(scores: np.ndarray) -> np.ndarray:
    """Scores scaled to ``[0, 1]`` by their min and max (all 1 when they are equal)."""
    scores = np.asarray(scores, dtype=np.float32)
    if not len(scores):
        return scores
    lo, hi = float(scores.min()), float(scores.max())
    if hi - lo <= 1e-12:
        return np.ones_like(scores)
    return (scores - lo) / (hi - lo)


def convex_scores(
    rankings: Sequence[tuple[np.ndarray, np.ndarray]], n_rows: int, weights: Sequence[float]
) -> np.ndarray:
    """Convex combination of min-max normalised scores.

    Args:
        rankings: ``(rows, scores)`` pairs, each the top candidates of one retriever.
        n_rows: size of the output vector.
        weights: one weight per ranking (summing to 1).

    Returns:
        ``(n_rows,)`` float32; a row absent from a ranking gets 0 from it (below every
        candidate of that ranking, whose minimum maps to 0 as well).
    """
    fused = np.zeros(n_rows, dtype=np.float32)
    for (rows, scores), weight in zip(rankings, weights):
        fused[np.asarray(rows, dtype=np.int64)] += weight * minmax(scores)
    return fused


def fuse(
    dense: tuple[np.ndarray, np.ndarray],
    lexical: tuple[np.ndarray, np.ndarray],
    n_rows: int,
    options: FusionOptions = FusionOptions(),
) -> np.ndarray:
    """Fuse a dense and a lexical top list (each ``(rows, scores)``, best first).

    Returns:
        ``(n_rows,)`` float32 fused scores; rank rows by it, highest first.
    """
    w = options.dense_weight
    if options.method == "rrf":
        return rrf_scores([dense[0], lexical[0]], n_rows, [2 * w, 2 * (1 - w)], options.rrf_k)
    return convex_scores([dense, lexical], n_rows, [w, 1 - w])


#: The default fusion of hybrid search where no per-index weight was estimated (an index
#: built before the estimate, or one too small for it; see docs/retrieval.md).
DEFAULT = FusionOptions("convex", 0.3)

#: The per-index estimate (:func:`estimated_weight`): pseudo-queries drawn, the neighbours
#: compared, the agreement at which dense gets weight, the slope and the cap of the ramp,
#: and the fewest non-empty rows an estimate is made for.
AGREEMENT_QUERIES = 200
AGREEMENT_K = 10
AGREEMENT_FLOOR = 0.12
AGREEMENT_SLOPE = 3.0
WEIGHT_CAP = 0.6
MIN_ROWS = 50


def agreement(  # noqa: PLR0913 - the two parts of one index and the pseudo-queries
    vectors: np.ndarray,
    owner: np.ndarray,
    lexical_scores,
    picks: np.ndarray,
    terms: Sequence[Sequence[str]],
    k: int = AGREEMENT_K,
) -> float:
    """How often the dense and the lexical part of an index agree on the corpus's own
    sentences: each picked window is a pseudo-query (its vector for dense, its Kiwi terms
    for BM25), its own row is left out, and the overlap of the two top-``k`` lists of the
    other rows (dense: a row's best window; lexical: rows sharing a term) is averaged.

    A dense model that reads the language finds the rows BM25 finds more often: on the
    benchmark of docs/retrieval.md the weak MiniLM models agree on 0.06-0.12 of their
    neighbours, USE-m v3 on 0.16-0.32.

    Args:
        vectors: ``(n_windows, dim)`` float32 L2-normalised window vectors.
        owner: ``(n_windows,)`` int row of each window.
        lexical_scores: ``terms -> (n_rows,)`` BM25 scores (``LexicalIndex.scores``);
            every row has at least one window.
        picks: ``(m,)`` int windows used as pseudo-queries.
        terms: the ``m`` pseudo-queries' Kiwi terms.
        k: neighbours compared.

    Returns:
        The mean overlap in ``[0, 1]`` (0 when ``picks`` is empty).
    """
    from simsearch.retrieval.topk import select

    owner = np.asarray(owner, dtype=np.int64)
    overlaps = []
    for start in range(0, len(picks), 32):
        batch = np.asarray(picks[start : start + 32], dtype=np.int64)
        sims = np.asarray(vectors, np.float32) @ np.asarray(vectors[batch], np.float32).T
        for j, window in enumerate(batch.tolist()):
            lex = np.array(lexical_scores(terms[start + j]), dtype=np.float32)
            lex[lex <= 0] = -np.inf
            lex[owner[window]] = -np.inf
            best = np.full(len(lex), -np.inf, dtype=np.float32)
            np.maximum.at(best, owner, sims[:, j])
            best[owner[window]] = -np.inf
            (dense_rows, _), (lex_rows, _) = select(np.stack([best, lex]), k)
            overlaps.append(len(set(dense_rows.tolist()) & set(lex_rows.tolist())) / k)
    return float(np.mean(overlaps)) if overlaps else 0.0


def estimated_weight(agreement_value: float) -> float:
    """The dense weight for an index whose parts agree this often (:func:`agreement`):
    0 up to :data:`AGREEMENT_FLOOR` (a dense part that mostly disagrees with BM25 only
    moves its near-ties, and costs MRR), then rising by :data:`AGREEMENT_SLOPE` per unit
    of agreement up to :data:`WEIGHT_CAP`. Constants from scripts/retrieval_bench.py:
    every model x task of docs/retrieval.md stays within 0.5 MRR@10 of its better part
    with floors 0.10-0.13 and slopes 2-4."""
    return round(float(np.clip(AGREEMENT_SLOPE * (agreement_value - AGREEMENT_FLOOR), 0.0,
                               WEIGHT_CAP)), 3)


def pseudo_queries(owner: np.ndarray, empty: np.ndarray, seed: int = 0,
                   n: int = AGREEMENT_QUERIES) -> np.ndarray:
    """``(m,)`` int64 windows drawn (seeded, without replacement) from the non-empty
    windows, ``m = min(n, their number)``, ascending."""
    candidates = np.flatnonzero(~np.asarray(empty, dtype=bool))
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(candidates, size=min(n, len(candidates)), replace=False))


def estimate(  # noqa: PLR0913 - the parts of one index
    vectors: np.ndarray,
    offsets: np.ndarray,
    texts: Sequence[str],
    empty: np.ndarray,
    lexical,
    seed: int = 0,
) -> tuple[float, float] | None:
    """The per-index dense weight of hybrid search, estimated without labels at build time.

    Args:
        vectors: ``(n_windows, dim)`` float32 L2-normalised window vectors (rows when no
            row is split).
        offsets: ``(n_rows + 1,)`` int64 window offsets of the rows.
        texts: the ``n_windows`` window texts.
        empty: ``(n_windows,)`` bool, windows with nothing but white space.
        lexical: the :class:`~simsearch.retrieval.bm25.LexicalIndex` of the rows.
        seed: of the pseudo-query draw.

    Returns:
        ``(agreement, dense weight)`` (:func:`agreement`, :func:`estimated_weight`), or
        ``None`` for fewer than :data:`MIN_ROWS` non-empty rows (too few neighbours to
        compare: :data:`DEFAULT` applies).
    """
    from simsearch.retrieval.bm25 import tokenize

    offsets = np.asarray(offsets, dtype=np.int64)
    owner = np.repeat(np.arange(len(offsets) - 1), np.diff(offsets))
    empty = np.asarray(empty, dtype=bool)
    if len(np.unique(owner[~empty])) < MIN_ROWS:
        return None
    picks = pseudo_queries(owner, empty, seed)
    terms = tokenize([texts[j] for j in picks.tolist()])
    value = agreement(vectors, owner, lexical.scores, picks, terms)
    return round(value, 4), estimated_weight(value)
