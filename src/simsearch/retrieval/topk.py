"""Exact top-k ranking by cosine similarity over an L2-normalised embedding matrix.

For unit vectors, cosine similarity is the dot product and cosine distance (as in
scikit-learn's ``cosine_distances``) is ``1 - similarity``, so ranking by ascending
distance equals ranking by descending dot product. The notebook recipe
(``cosine_distances`` + a full ``argsort``) costs O(n log n) per query and a float64
copy of the scores; here each block of queries is one matrix product followed by
``np.argpartition`` (O(n)), then only the k winners are sorted.
"""

from __future__ import annotations

import numpy as np

#: Upper bound on the (queries x documents) float32 score block held at once: 256 MiB.
BLOCK_BYTES = 256 * 1024 * 1024


def top_k(
    embeddings: np.ndarray,
    queries: np.ndarray,
    k: int,
    exclude: np.ndarray | None = None,
    block_bytes: int = BLOCK_BYTES,
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` documents with the highest cosine similarity to each query, exactly.

    Args:
        embeddings: ``(n_docs, dim)`` float32, L2-normalised rows (a memmap is fine).
        queries: ``(n_queries, dim)`` or ``(dim,)`` float32, L2-normalised.
        k: results per query; clamped to the number of candidate documents.
        exclude: optional ``(n_queries,)`` int array: a document row to leave out for
            each query (``-1`` for none), e.g. the query document itself.
        block_bytes: memory bound for one block of scores; queries are processed in
            blocks of ``block_bytes // (4 * n_docs)`` rows (at least one).

    Returns:
        ``(indices, similarities)``: ``(n_queries, k)`` int64 document rows and
        ``(n_queries, k)`` float32 cosine similarities, most similar first; equal
        scores are ordered by ascending row.

    Raises:
        ValueError: ``k < 1`` or mismatched dimensions.
    """
    queries = np.atleast_2d(np.asarray(queries, dtype=np.float32))
    n_docs = embeddings.shape[0]
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    if queries.shape[1] != embeddings.shape[1]:
        raise ValueError(
            f"query dimension {queries.shape[1]} != embedding dimension {embeddings.shape[1]}"
        )
    n_excluded = 0 if exclude is None else int(np.any(np.asarray(exclude) >= 0))
    k = min(k, n_docs - n_excluded)
    m = queries.shape[0]
    indices = np.empty((m, max(k, 0)), dtype=np.int64)
    scores = np.empty((m, max(k, 0)), dtype=np.float32)
    if k <= 0:
        return indices, scores
    step = max(1, block_bytes // (4 * max(n_docs, 1)))
    for start in range(0, m, step):
        block = queries[start : start + step] @ embeddings.T  # (b, n_docs) float32
        if exclude is not None:
            rows = np.arange(block.shape[0])
            drop = np.asarray(exclude[start : start + step])
            keep = drop >= 0
            block[rows[keep], drop[keep]] = -np.inf
        idx, sims = _select(block, k)
        indices[start : start + len(idx)] = idx
        scores[start : start + len(idx)] = sims
    return indices, scores


def select(scores: np.ndarray, k: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """THE top-k selection of the ranking layer: per row of ``scores``, the ``k`` best
    columns, descending score, equal scores by ascending column; ``-inf`` marks a column
    that may not be returned (filtered out, excluded, an empty row) and never is.

    Args:
        scores: ``(m, n)`` or ``(n,)`` float32.
        k: at most this many per row (``k >= 0``).

    Returns:
        ``m`` pairs ``(rows, scores)``: ``(k',)`` int64 and float32, ``k' <= k``.
    """
    scores = np.atleast_2d(scores)
    k = min(k, scores.shape[1])
    if k <= 0:
        return [(np.empty(0, np.int64), np.empty(0, np.float32))] * scores.shape[0]
    idx, sims = _select(scores, k)
    out = []
    for rows, vals in zip(idx, sims):
        keep = vals > -np.inf
        out.append((rows[keep].astype(np.int64), vals[keep].astype(np.float32)))
    return out


def _select(block: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-k of each row of ``block``: partial selection, then sort the k winners."""
    n = block.shape[1]
    if k < n:
        # O(n): the k largest land in the last k slots (no negated copy of the block).
        part = np.argpartition(block, n - k, axis=1)[:, n - k :]
        _lowest_rows_at_boundary(block, part, k)
    else:
        part = np.broadcast_to(np.arange(n), block.shape).copy()
    sims = np.take_along_axis(block, part, axis=1)
    # Sort the winners by descending score, ties by ascending row (deterministic).
    order = np.lexsort((part, -sims), axis=1)
    return np.take_along_axis(part, order, axis=1), np.take_along_axis(sims, order, axis=1)


def _lowest_rows_at_boundary(block: np.ndarray, part: np.ndarray, k: int) -> None:
    """Make the selection in ``part`` (in place) the same as a full sort by (descending
    score, ascending row): when documents tie with the k-th score and not all of them
    fit, argpartition keeps arbitrary ones; keep the lowest rows instead, so every path
    (one block or many, more candidates or fewer) returns the same documents."""
    chosen = np.take_along_axis(block, part, axis=1)
    kth = chosen.min(axis=1)
    # One comparison pass over the block and a count (no int64 sum over a bool copy):
    # this runs on every warm query, beside a matmul of the same size.
    ties = np.count_nonzero(block == kth[:, None], axis=1)
    selected = np.count_nonzero(chosen == kth[:, None], axis=1)
    for r in np.flatnonzero(ties > selected):
        above = np.flatnonzero(block[r] > kth[r])
        equal = np.flatnonzero(block[r] == kth[r])
        part[r] = np.concatenate([above, equal[: k - len(above)]])
