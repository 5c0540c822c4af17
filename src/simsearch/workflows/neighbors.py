"""The top-k neighbours of every row of an index (a k-nearest-neighbour table).

All rows are ranked against the whole matrix in blocks of rows: each block is one
matrix product and one partial selection (:func:`simsearch.retrieval.topk.top_k`), so memory
stays bounded by ``block_bytes`` whatever the corpus size, and there is no Python loop
over rows. Each row's neighbours equal ``simsearch.similar(row, k)`` (the row itself
left out), which the tests check row by row.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from simsearch.errors import InvalidParameter, SimsearchError
from simsearch.retrieval.topk import BLOCK_BYTES, top_k
from simsearch.store import index as store

if TYPE_CHECKING:
    import pandas as pd

ProgressFn = Callable[[int, int], None]


@dataclass(frozen=True)
class NeighborsOptions:
    """What to compute for :func:`neighbors`.

    Attributes:
        k: neighbours per row (clamped to ``n_docs - 1``).
        show: source columns to add for each row and each of its neighbours.
        rows: the 0-based source rows to list (default every row); their neighbours
            are still searched among all rows.
        block_bytes: memory bound for one block of scores (see :func:`top_k`).
    """

    k: int = 10
    show: tuple[str, ...] = ()
    rows: tuple[int, ...] | None = None
    block_bytes: int = BLOCK_BYTES


def neighbor_arrays(
    embeddings: np.ndarray,
    k: int,
    rows: np.ndarray | None = None,
    block_bytes: int = BLOCK_BYTES,
    on_progress: ProgressFn | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` most similar other rows of each row, exactly (brute force).

    Args:
        embeddings: ``(n_docs, dim)`` float32, L2-normalised (a memmap is fine).
        k: neighbours per row, at least 1; clamped to ``n_docs - 1``.
        rows: ``(m,)`` int rows to rank (default ``arange(n_docs)``).
        block_bytes: bound on one ``(rows_in_block, n_docs)`` float32 score block.
        on_progress: called as ``on_progress(rows_done, m)`` after each block.

    Returns:
        ``(indices, similarities)``: ``(m, k)`` int64 neighbour rows and ``(m, k)``
        float32 cosine similarities, most similar first, ties by ascending row; a row is
        never its own neighbour.

    Raises:
        ValueError: ``k < 1``, or a row out of range.
    """
    n_docs = embeddings.shape[0]
    rows = np.arange(n_docs) if rows is None else np.asarray(rows, dtype=np.int64)
    if rows.size and (rows.min() < 0 or rows.max() >= n_docs):
        raise ValueError(f"rows must lie in 0..{n_docs - 1}")
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    k = min(k, n_docs - 1)
    indices = np.empty((len(rows), k), dtype=np.int64)
    sims = np.empty((len(rows), k), dtype=np.float32)
    # One block per top_k call (top_k would split further otherwise), so progress
    # advances once per matrix product.
    step = max(1, block_bytes // (4 * max(n_docs, 1)))
    for start in range(0, len(rows), step):
        block = rows[start : start + step]
        queries = np.asarray(embeddings[block], dtype=np.float32)
        idx, sim = top_k(embeddings, queries, k, exclude=block, block_bytes=block_bytes)
        indices[start : start + len(block)] = idx
        sims[start : start + len(block)] = sim
        if on_progress is not None:
            on_progress(start + len(block), len(rows))
    return indices, sims


def neighbors_frame(
    index: store.Index,
    options: NeighborsOptions = NeighborsOptions(),
    on_progress: ProgressFn | None = None,
) -> pd.DataFrame:
    """The neighbour table of an opened index: one row per listed source row.

    Columns: ``row``, the ``show`` columns of that row, then for each rank ``r`` in
    ``1..k``: ``neighbor_r_row``, ``neighbor_r_similarity`` (cosine similarity) and
    ``neighbor_r_<col>`` for each ``show`` column.

    Raises:
        InvalidParameter: ``k < 1``, a row out of range, or a ``show`` column that is
            not in the source (the error names the parameter).
        SimsearchError: fewer than 2 documents.
    """
    import pandas as pd

    k, rows = _check(index, options)
    matrix = index.row_embeddings()  # one vector per row, also when rows are windows
    indices, sims = neighbor_arrays(matrix, k, rows, options.block_bytes, on_progress)
    frame = pd.DataFrame({"row": rows})
    values = _column_values(index, options.show, rows, indices)
    for col in options.show:
        frame[col] = values[col][rows]
    parts = {}
    for r in range(indices.shape[1]):
        parts[f"neighbor_{r + 1}_row"] = indices[:, r]
        parts[f"neighbor_{r + 1}_similarity"] = sims[:, r]
        for col in options.show:
            parts[f"neighbor_{r + 1}_{col}"] = values[col][indices[:, r]]
    return pd.concat([frame, pd.DataFrame(parts)], axis=1)


def _check(index: store.Index, options: NeighborsOptions) -> tuple[int, np.ndarray]:
    if options.k < 1:
        raise InvalidParameter("k", f"{{name}} must be at least 1, got {options.k}")
    if index.n_docs < 2:
        raise SimsearchError("the index has fewer than 2 documents; there are no neighbours")
    index.meta.check_columns(options.show)
    rows = np.arange(index.n_docs) if options.rows is None else np.asarray(options.rows)
    bad = rows[(rows < 0) | (rows >= index.n_docs)]
    if bad.size:
        raise InvalidParameter(
            "rows",
            f"row {int(bad[0])} in {{name}} is out of range: the index has "
            f"{index.n_docs:,} documents (rows 0 to {index.n_docs - 1:,})",
        )
    return min(options.k, index.n_docs - 1), rows.astype(np.int64)


def _column_values(
    index: store.Index, show: Sequence[str], rows: np.ndarray, indices: np.ndarray
) -> dict[str, np.ndarray]:
    """For each ``show`` column, an ``(n_docs,)`` object array holding the values of the
    rows that appear (others None), read once from the index's rows file."""
    if not show:
        return {}
    needed = np.union1d(rows, indices.ravel())
    records = index.rows(needed.tolist())
    out = {}
    for col in show:
        values = np.full(index.n_docs, None, dtype=object)
        values[needed] = [r.get(col) for r in records]
        out[col] = values
    return out


def neighbors(
    k: int = 10,
    *,
    show: str | Sequence[str] = (),
    rows: Sequence[int] | None = None,
    root: str | os.PathLike = store.DEFAULT_ROOT,
    name: str = store.DEFAULT_NAME,
) -> pd.DataFrame:
    """Notebook API: the ``k`` nearest rows of every row (or of ``rows``), one line each.

    Example:
        >>> simsearch.neighbors(5, show="title").head()  # doctest: +SKIP

    Returns:
        A DataFrame (see :func:`neighbors_frame`); write it with
        ``simsearch.tables.write.write_frame(frame, "neighbours.xlsx")``.

    Raises:
        SimsearchError: no index, ``k < 1``, unknown ``show`` column, row out of range.
    """
    columns = (show,) if isinstance(show, str) else tuple(show)
    options = NeighborsOptions(k=k, show=columns, rows=None if rows is None else tuple(rows))
    return neighbors_frame(store.load_index(root, name), options)
