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


#: The default fusion of hybrid search (chosen on scripts/retrieval_bench.py; see
#: docs/retrieval.md).
DEFAULT = FusionOptions("convex", 0.3)
