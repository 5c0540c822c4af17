"""Ranking rows by their windows: aggregation of window scores, exact top-k over rows with a
row filter, and a document-to-document score over windows for ``similar``.

Windows come from :mod:`simsearch.text.windows`: ``window_emb`` is ``(n_windows, dim)`` float32
with L2-normalised rows, stored in row order, and ``offsets`` is the ``(n_rows + 1,)`` CSR
map (row ``r`` owns windows ``offsets[r]:offsets[r + 1]``, at least one each). An index
without windows is the special case ``offsets = arange(n_rows + 1)``, and then every result
equals :func:`simsearch.retrieval.topk.top_k`.

Aggregation (``how``):

* ``"max"`` (default): a row scores as its best window (MaxP in Dai & Callan, "Deeper Text
  Understanding for IR with Contextual Neural Language Modeling", SIGIR 2019, where the
  best passage beat the first passage and the sum for long documents);
* ``"mean"``: the mean of its windows' scores.

Filters: ``allowed`` is an optional ``(n_rows,)`` bool mask applied BEFORE selection, so
``k`` results come back whenever ``k`` rows are allowed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simsearch.retrieval.topk import BLOCK_BYTES, _select

AGGREGATES = ("max", "mean")
#: Document-to-document scores over windows (see :func:`document_scores`).
DOC_SCORES = ("best_match", "centroid", "best_pair")


@dataclass(frozen=True)
class RowRanking:
    """Top-k rows per query.

    Attributes:
        rows: ``(n_queries, k)`` int64 rows, best first (ties by ascending row).
        scores: ``(n_queries, k)`` float32 aggregated cosine similarities.
        windows: ``(n_queries, k)`` int64, the best-scoring window of each row (global
            window number), for showing what matched.
    """

    rows: np.ndarray
    scores: np.ndarray
    windows: np.ndarray


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


def best_windows(window_scores: np.ndarray, offsets: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """For each ``rows[q, j]``, the global number of its best-scoring window for query ``q``.

    Args:
        window_scores: ``(m, n_windows)`` float32; rows: ``(m, k)`` int.

    Returns:
        ``(m, k)`` int64 window numbers.
    """
    out = np.empty(rows.shape, dtype=np.int64)
    for q in range(rows.shape[0]):
        for j, r in enumerate(rows[q]):
            a, b = offsets[r], offsets[r + 1]
            out[q, j] = a + int(np.argmax(window_scores[q, a:b]))
    return out


def _mask(scores: np.ndarray, allowed: np.ndarray | None, exclude: np.ndarray | None) -> None:
    """Set disallowed rows (and each query's excluded row, ``-1`` for none) to ``-inf``."""
    if allowed is not None:
        scores[:, ~allowed] = -np.inf
    if exclude is not None:
        exclude = np.asarray(exclude)
        keep = exclude >= 0
        scores[np.arange(len(exclude))[keep], exclude[keep]] = -np.inf


def candidates(n_rows: int, allowed: np.ndarray | None, exclude_any: bool) -> int:
    """How many rows a query can return (allowed rows, less one when excluding itself)."""
    n = n_rows if allowed is None else int(np.count_nonzero(allowed))
    return max(n - (1 if exclude_any else 0), 0)


def top_k_rows(
    window_emb: np.ndarray,
    offsets: np.ndarray,
    queries: np.ndarray,
    k: int,
    how: str = "max",
    allowed: np.ndarray | None = None,
    exclude: np.ndarray | None = None,
    block_bytes: int = BLOCK_BYTES,
) -> RowRanking:
    """Exact top-k rows by aggregated window cosine similarity.

    Args:
        window_emb: ``(n_windows, dim)`` float32, L2-normalised (a memmap is fine).
        offsets: ``(n_rows + 1,)`` int64 CSR window map.
        queries: ``(m, dim)`` or ``(dim,)`` float32, L2-normalised.
        k: results per query; clamped to the number of candidate rows.
        how: ``"max"`` or ``"mean"`` (see the module docstring).
        allowed: optional ``(n_rows,)`` bool row filter, applied before selection.
        exclude: optional ``(m,)`` int, a row to leave out per query (``-1`` for none).
        block_bytes: memory bound for one block of window scores.

    Returns:
        :class:`RowRanking`.

    Raises:
        ValueError: ``k < 1``, mismatched dimensions, unknown ``how``.
    """
    queries = np.atleast_2d(np.asarray(queries, dtype=np.float32))
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    if queries.shape[1] != window_emb.shape[1]:
        raise ValueError(
            f"query dimension {queries.shape[1]} != embedding dimension {window_emb.shape[1]}"
        )
    n_rows = len(offsets) - 1
    exclude_any = exclude is not None and bool(np.any(np.asarray(exclude) >= 0))
    k = min(k, candidates(n_rows, allowed, exclude_any))
    m = queries.shape[0]
    rows = np.empty((m, k), dtype=np.int64)
    scores = np.empty((m, k), dtype=np.float32)
    windows = np.empty((m, k), dtype=np.int64)
    if k <= 0:
        return RowRanking(rows, scores, windows)
    step = max(1, block_bytes // (4 * max(window_emb.shape[0], 1)))
    for a in range(0, m, step):
        window_scores = queries[a : a + step] @ window_emb.T
        row_scores = aggregate(window_scores, offsets, how)
        if row_scores is window_scores:
            row_scores = row_scores.copy()
        _mask(row_scores, allowed, None if exclude is None else np.asarray(exclude)[a : a + step])
        idx, sims = _select(row_scores, k)
        rows[a : a + len(idx)] = idx
        scores[a : a + len(idx)] = sims
        windows[a : a + len(idx)] = best_windows(window_scores, offsets, idx)
    return RowRanking(rows, scores, windows)


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


def top_k_similar(
    window_emb: np.ndarray,
    offsets: np.ndarray,
    doc: int,
    k: int,
    method: str = "centroid",
    allowed: np.ndarray | None = None,
    include_self: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` rows most similar to row ``doc`` by :func:`document_scores`.

    Returns:
        ``(rows, scores)``: ``(k,)`` int64 and ``(k,)`` float32, best first.
    """
    scores = document_scores(window_emb, offsets, doc, method)[None, :].copy()
    _mask(scores, allowed, None if include_self else np.array([doc]))
    k = min(k, candidates(len(offsets) - 1, allowed, not include_self))
    if k <= 0:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32)
    idx, sims = _select(scores, k)
    return idx[0], sims[0]
