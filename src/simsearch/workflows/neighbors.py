"""The top-k neighbours of every row of an index (a k-nearest-neighbour table).

Each row's neighbours are ``similar`` of that row in the same mode: rows are ranked by
:func:`simsearch.retrieval.rank.rank` with the rows themselves as the queries
(``Query(docs=...)``), in blocks of rows, so the dense scores of a block are one matrix
product (the exact scan) or graph searches (an ``--ann`` index), and memory stays bounded
whatever the corpus size. The tests check ``neighbors == similar`` row by row per mode.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from simsearch.errors import InvalidParameter, SimsearchError
from simsearch.store import index as store

if TYPE_CHECKING:
    import pandas as pd

    from simsearch.searcher import Searcher

ProgressFn = Callable[[int, int], None]
#: Query rows ranked per call of :func:`~simsearch.retrieval.rank.rank`.
BLOCK_ROWS = 256


@dataclass(frozen=True)
class NeighborsOptions:
    """What to compute for :func:`neighbors`.

    Attributes:
        k: neighbours per row (clamped to the other non-empty rows).
        show: source columns to add for each row and each of its neighbours.
        rows: the 0-based source rows to list (default every row); their neighbours
            are still searched among all rows.
        mode: ``"hybrid"``, ``"dense"``, ``"lexical"`` or None, the default of
            ``similar`` (hybrid when the index has a lexical index).
        exact: the exact scan even when the index has an ANN index (as ``similar``).
        block_rows: query rows ranked at once.
        dense_weight, fusion: hybrid fusion overrides (None: the index's stored
            setting, else the default).
    """

    k: int = 10
    show: tuple[str, ...] = ()
    rows: tuple[int, ...] | None = None
    mode: str | None = None
    exact: bool = False
    block_rows: int = BLOCK_ROWS
    dense_weight: float | None = None
    fusion: str | None = None


def neighbor_rankings(
    index: store.Index | Searcher,
    options: NeighborsOptions,
    rows: np.ndarray,
    on_progress: ProgressFn | None = None,
) -> tuple[str, list[Any]]:
    """The ranking of each of ``rows`` (itself left out), exactly ``similar``'s.

    Returns:
        ``(mode, rankings)``: the mode run and one
        :class:`~simsearch.retrieval.modes.Ranked` per row (fewer than ``k`` entries for
        a row with fewer candidates, e.g. lexical mode).

    Raises:
        InvalidParameter: ``k < 1``, a mode the index cannot run.
    """
    from simsearch.retrieval.rank import Query, rank
    from simsearch.search import search_options
    from simsearch.searcher import of

    search = search_options(options.mode, dense_weight=options.dense_weight,
                            fusion=options.fusion)
    parts = of(index).parts(search.mode, options.exact)
    mode = parts.mode(search.mode)
    out: list[Any] = []
    step = max(1, options.block_rows)
    for start in range(0, len(rows), step):
        block = np.asarray(rows[start : start + step], np.int64)
        out += rank(parts, Query(docs=block), options.k, search)
        if on_progress is not None:
            on_progress(start + len(block), len(rows))
    return mode, out


def neighbors_frame(
    index: store.Index | Searcher,
    options: NeighborsOptions = NeighborsOptions(),
    on_progress: ProgressFn | None = None,
) -> pd.DataFrame:
    """The neighbour table of an opened index: one row per listed source row.

    Columns: ``row``, the ``show`` columns of that row, then for each rank ``r`` in
    ``1..k``: ``neighbor_r_row``, ``neighbor_r_similarity`` (cosine similarity of the
    row vectors), in hybrid and lexical mode ``neighbor_r_score`` (the mode's score, by
    which neighbours are ordered), and ``neighbor_r_<col>`` for each ``show`` column. A
    row with fewer neighbours (lexical mode: rows sharing no term) has row -1 and an
    empty similarity at the ranks it lacks.

    Raises:
        InvalidParameter: ``k < 1``, a row out of range, a mode the index cannot run,
            or a ``show`` column that is not in the source (the error names the parameter).
        SimsearchError: fewer than 2 documents.
    """
    import pandas as pd

    from simsearch.searcher import of

    opened = of(index)
    index = opened.index
    rows = _check(index, options)
    mode, ranked = neighbor_rankings(opened, options, rows, on_progress)
    width = max([len(r.rows) for r in ranked] + [0])
    indices = np.full((len(rows), width), -1, dtype=np.int64)
    sims = np.full((len(rows), width), np.nan, dtype=np.float32)
    scores = np.full((len(rows), width), np.nan, dtype=np.float32)
    for i, one in enumerate(ranked):
        indices[i, : len(one.rows)] = one.rows
        sims[i, : len(one.rows)] = one.similarity
        scores[i, : len(one.rows)] = one.scores
    frame = pd.DataFrame({"row": rows})
    values = _column_values(index, options.show, rows, indices)
    for col in options.show:
        frame[col] = values[col][rows]
    parts = {}
    for r in range(width):
        parts[f"neighbor_{r + 1}_row"] = indices[:, r]
        parts[f"neighbor_{r + 1}_similarity"] = sims[:, r]
        if mode != "dense":
            parts[f"neighbor_{r + 1}_score"] = scores[:, r]
        for col in options.show:
            parts[f"neighbor_{r + 1}_{col}"] = values[col][indices[:, r]]
    return pd.concat([frame, pd.DataFrame(parts)], axis=1)


def _check(index: store.Index, options: NeighborsOptions) -> np.ndarray:
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
    return rows.astype(np.int64)


def _column_values(
    index: store.Index, show: Sequence[str], rows: np.ndarray, indices: np.ndarray
) -> dict[str, np.ndarray]:
    """For each ``show`` column, an ``(n_docs,)`` object array holding the values of the
    rows that appear (others None), read once from the index's rows file."""
    if not show:
        return {}
    needed = np.union1d(rows, indices[indices >= 0])
    records = index.rows(needed.tolist())
    out = {}
    for col in show:
        values = np.full(index.n_docs + 1, None, dtype=object)  # [-1]: no neighbour
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
    mode: str | None = None,
) -> pd.DataFrame:
    """Notebook API: the ``k`` nearest rows of every row (or of ``rows``), one line each:
    each row's ``simsearch.similar(row, k, mode=mode)``.

    Example:
        >>> simsearch.neighbors(5, show="title").head()  # doctest: +SKIP

    Returns:
        A DataFrame (see :func:`neighbors_frame`); write it with
        ``simsearch.tables.write.write_frame(frame, "neighbours.xlsx")``.

    Raises:
        SimsearchError: no index, ``k < 1``, unknown ``show`` column, row out of range,
            a mode the index cannot run.
    """
    columns = (show,) if isinstance(show, str) else tuple(show)
    options = NeighborsOptions(
        k=k, show=columns, rows=None if rows is None else tuple(rows), mode=mode
    )
    from simsearch.searcher import cached

    return neighbors_frame(cached(root, name), options)
