"""The dense-index protocol: top-k rows by cosine similarity, over rows or windows.

Two implementations answer the same :meth:`DenseIndex.search` contract:

* :class:`ExactDense` scans every vector (one matrix product per block of queries);
* :class:`AnnDense` asks the usearch HNSW graph (:mod:`simsearch.retrieval.ann`, built over
  the same vectors: rows, or windows when long documents were split) for candidate
  vectors, groups them to rows, and rescores those rows *exactly*, widening the search
  until ``k`` allowed rows are found and falling back to the exact scan when the graph
  cannot deliver them (a very selective filter).

Row scores (``how``): ``"max"`` (a row scores as its best window), ``"mean"`` (the mean
of its windows' scores; see :mod:`simsearch.retrieval.dense`) or ``"row"`` (the cosine
with the row vector, the L2-normalised mean of the row's windows: the score of
``similar``). Over one vector per row all three are the plain cosine similarity.
Selection is :func:`simsearch.retrieval.topk.select`: equal scores by ascending row.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Protocol

import numpy as np

from simsearch.retrieval.dense import aggregate
from simsearch.retrieval.rowfilter import RowFilter
from simsearch.retrieval.topk import BLOCK_BYTES, select

HOWS = ("max", "mean", "row")
Top = tuple[np.ndarray, np.ndarray]


@dataclass
class DenseParts:
    """The dense vectors of an index.

    Attributes:
        vectors: ``(n_vectors, dim)`` float32 L2-normalised search vectors, one per window
            (one per row when nothing was split); a memmap is fine.
        offsets: ``(n_rows + 1,)`` int64 CSR map, row ``r`` owns vectors
            ``offsets[r]:offsets[r + 1]``.
        row_vectors: ``(n_rows, dim)`` float32 L2-normalised row vectors (the mean of a
            row's windows; ``vectors`` itself without windows); zero for an empty row.
    """

    vectors: np.ndarray
    offsets: np.ndarray
    row_vectors: np.ndarray

    @property
    def n_rows(self) -> int:
        return len(self.offsets) - 1

    @property
    def windowed(self) -> bool:
        return self.vectors.shape[0] != self.n_rows

    @cached_property
    def groups(self) -> np.ndarray:
        """``(n_vectors,)`` int64: the row of each vector."""
        return np.repeat(np.arange(self.n_rows, dtype=np.int64), np.diff(self.offsets))

    def scores_all(self, queries: np.ndarray, how: str) -> np.ndarray:
        """``(m, n_rows)`` float32 row scores of every row (a fresh array)."""
        if how == "row" or not self.windowed:
            return np.atleast_2d(queries) @ np.asarray(self.row_vectors).T
        return np.asarray(aggregate(queries @ np.asarray(self.vectors).T, self.offsets, how))

    def scores_of(self, query: np.ndarray, rows: np.ndarray, how: str) -> np.ndarray:
        """``(len(rows),)`` float32 exact scores of ``rows`` (any order) for one query."""
        if how == "row" or not self.windowed:
            return np.asarray(self.row_vectors[rows], np.float32) @ query
        starts, ends = self.offsets[rows], self.offsets[rows + 1]
        lengths = ends - starts
        ids = np.repeat(ends - np.cumsum(lengths), lengths) + np.arange(int(lengths.sum()))
        window_scores = np.asarray(self.vectors[ids], np.float32) @ query
        cuts = np.concatenate(([0], np.cumsum(lengths)[:-1]))
        if how == "max":
            return np.maximum.reduceat(window_scores, cuts).astype(np.float32)
        return (np.add.reduceat(window_scores, cuts) / lengths).astype(np.float32)


class DenseIndex(Protocol):
    """Top-k rows by a dense score (see the module docstring)."""

    parts: DenseParts

    def search(
        self,
        queries: np.ndarray,
        k: int,
        allow: RowFilter | None,
        exclude: np.ndarray | None,
        how: str,
    ) -> list[Top]:
        """Per query, the ``k`` best allowed rows (``k >= 1``; fewer when fewer are allowed).

        Args:
            queries: ``(m, dim)`` float32, L2-normalised.
            allow: rows that may be returned (None: all).
            exclude: ``(m,)`` int64, one more row to leave out per query (-1: none).
            how: ``"max"``, ``"mean"`` or ``"row"``.

        Returns:
            ``m`` pairs ``(rows, scores)``, best first, equal scores by ascending row.
        """
        ...


def _excluded(exclude: np.ndarray | None, m: int) -> np.ndarray:
    return np.full(m, -1, np.int64) if exclude is None else np.asarray(exclude, np.int64)


@dataclass
class ExactDense:
    """The exact scan: every vector scored, in blocks of queries bounded by ``block_bytes``."""

    parts: DenseParts
    block_bytes: int = BLOCK_BYTES

    def search(self, queries, k, allow, exclude, how) -> list[Top]:
        queries = np.atleast_2d(np.asarray(queries, np.float32))
        drop = _excluded(exclude, len(queries))
        width = self.parts.vectors.shape[0] + self.parts.n_rows
        step = max(1, self.block_bytes // (4 * max(width, 1)))
        out: list[Top] = []
        for a in range(0, len(queries), step):
            scores = self.parts.scores_all(queries[a : a + step], how)
            if allow is not None:
                scores[:, ~allow.mask] = -np.inf
            block = drop[a : a + step]
            keep = block >= 0
            scores[np.flatnonzero(keep), block[keep]] = -np.inf
            out.extend(select(scores, k))
        return out


#: Candidates rescored per query at least, whatever ``k``.
MIN_CANDIDATES = 32
#: Past this share of the allowed vectors, the exact scan is cheaper than the graph.
EXACT_SHARE = 0.25


@dataclass
class AnnDense:
    """Graph candidates (usearch HNSW over the same vectors), grouped to rows and
    rescored exactly; the exact scan for what the graph cannot deliver.

    Attributes:
        parts: the dense vectors.
        ann: an opened :class:`simsearch.retrieval.ann.AnnIndex` over ``parts.vectors``
            (keys are vector numbers; empty rows are not in the graph).
    """

    parts: DenseParts
    ann: Any

    def search(self, queries, k, allow, exclude, how) -> list[Top]:
        queries = np.atleast_2d(np.asarray(queries, np.float32))
        drop = _excluded(exclude, len(queries))
        exact = ExactDense(self.parts)
        n_allowed = self.parts.n_rows if allow is None else allow.count
        per_row = self.parts.vectors.shape[0] / max(self.parts.n_rows, 1)
        widen = max(per_row, 1.0) * self.parts.n_rows / max(n_allowed, 1)
        limit = EXACT_SHARE * self.parts.vectors.shape[0] * n_allowed / max(self.parts.n_rows, 1)
        out = []
        for query, ex in zip(queries, drop):
            found = self._one(query, k, allow, int(ex), how, widen, limit)
            if found is None:
                found = exact.search(query[None, :], k, allow, np.array([ex]), how)[0]
            out.append(found)
        return out

    def _one(self, query, k, allow, exclude, how, widen, limit) -> Top | None:
        """Top-k from the graph, or None when the exact scan must answer."""
        count = max(MIN_CANDIDATES, math.ceil((k + 1) * self.ann.options.oversample * widen))
        # A zero query (an empty document) has no direction: the exact order answers.
        while query.any() and count < limit:
            keys = self.ann.candidates(query[None, :], count)[0]
            rows = np.unique(self.parts.groups[keys])
            if allow is not None:
                rows = rows[allow.mask[rows]]
            rows = rows[rows != exclude]
            if len(rows) >= k:
                scores = self.parts.scores_of(query, rows, how)
                order = np.lexsort((rows, -scores))[:k]
                return rows[order], scores[order].astype(np.float32)
            if len(keys) < count:
                return None  # the graph holds no more vectors
            count *= 4
        return None
