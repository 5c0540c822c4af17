"""Rows scored by their windows: aggregation of window scores (the row score of a query)
and document-to-document scores over windows (``similar`` uses ``centroid``, stored as
row vectors; the others are measured in ``scripts/retrieval_bench.py``). Ranking itself
is :mod:`simsearch.retrieval.dense_index` and :func:`simsearch.retrieval.rank.rank`.

Windows come from :mod:`simsearch.text.windows`: ``window_emb`` is ``(n_windows, dim)`` float32
with L2-normalised rows, stored in row order, and ``offsets`` is the ``(n_rows + 1,)`` CSR
map (row ``r`` owns windows ``offsets[r]:offsets[r + 1]``, at least one each). An index
without windows is the special case ``offsets = arange(n_rows + 1)``.

Aggregation (``how``):

* ``"max"`` (default): a row scores as its best window (MaxP in Dai & Callan, "Deeper Text
  Understanding for IR with Contextual Neural Language Modeling", SIGIR 2019, where the
  best passage beat the first passage and the sum for long documents);
* ``"mean"``: the mean of its windows' scores.
"""

from __future__ import annotations

import numpy as np

AGGREGATES = ("max", "mean")
#: Document-to-document scores over windows (see :func:`document_scores`).
DOC_SCORES = ("best_match", "centroid", "best_pair")


def aggregate(window_scores: np.ndarray, offsets: np.ndarray, how: str = "max") -> np.ndarray:
    """Row scores from window scores.

    Args:
        window_scores: ``(m, n_windows)`` float32.
        offsets: ``(n_rows + 1,)`` int64 CSR window map.
        how: ``"max"`` or ``"mean"``.

    Returns:
        ``(m, n_rows)`` float32.

    Raises:
        ValueError: unknown ``how``.
    """
    if how not in AGGREGATES:
        raise ValueError(f"aggregate must be one of {', '.join(AGGREGATES)}, got {how!r}")
    window_scores = np.atleast_2d(window_scores)
    if len(offsets) - 1 == window_scores.shape[1]:  # one window per row: nothing to do
        return window_scores
    starts = offsets[:-1]
    if how == "max":
        return np.maximum.reduceat(window_scores, starts, axis=1)
    sums = np.add.reduceat(window_scores, starts, axis=1)
    return (sums / np.diff(offsets).astype(np.float32)).astype(np.float32)


def document_scores(
    window_emb: np.ndarray, offsets: np.ndarray, doc: int, method: str = "centroid"
) -> np.ndarray:
    """Similarity of row ``doc`` to every row, computed over their windows.

    Methods (``A`` = the windows of ``doc``, ``B`` = those of another row, cosine ``s``):

    * ``"best_match"``: symmetric mean of best matches, ``(mean_a max_b s + mean_b max_a
      s) / 2`` (the greedy-matching average of BERTScore, Zhang et al. 2020, at window
      level): every part of each document must find a counterpart in the other;
    * ``"centroid"``: cosine of the two mean window vectors (mean of windows);
    * ``"best_pair"``: ``max_{a,b} s`` (the single most similar pair of windows).

    With one window per row all three equal the plain cosine similarity.

    Returns:
        ``(n_rows,)`` float32.

    Raises:
        ValueError: unknown ``method``.
    """
    if method not in DOC_SCORES:
        raise ValueError(f"document score must be one of {', '.join(DOC_SCORES)}, got {method!r}")
    own = np.asarray(window_emb[offsets[doc] : offsets[doc + 1]], dtype=np.float32)
    if method == "centroid":
        centroids = np.add.reduceat(np.asarray(window_emb), offsets[:-1], axis=0)
        centroids /= np.maximum(np.linalg.norm(centroids, axis=1, keepdims=True), 1e-12)
        mine = own.mean(axis=0)
        mine /= max(float(np.linalg.norm(mine)), 1e-12)
        return (centroids @ mine).astype(np.float32)
    sims = own @ np.asarray(window_emb).T  # (w_doc, n_windows)
    forward = np.maximum.reduceat(sims, offsets[:-1], axis=1)  # (w_doc, n_rows)
    if method == "best_pair":
        return forward.max(axis=0).astype(np.float32)
    backward = sims.max(axis=0)  # (n_windows,): each window's best match in doc
    backward_mean = np.add.reduceat(backward, offsets[:-1]) / np.diff(offsets)
    return ((forward.mean(axis=0) + backward_mean) / 2).astype(np.float32)
