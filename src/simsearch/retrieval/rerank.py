"""A second stage: a cross-encoder reorders the first stage's top hits (``--rerank``).

The first stage (dense, lexical or hybrid, :func:`simsearch.retrieval.rank.rank`) returns
its top :attr:`RerankOptions.depth` rows per query; the cross-encoder
(:mod:`simsearch.encoding.cross_encoder`) scores each (query text, row text) pair, in
batches, and the hits are reordered by that score (ties: the first stage's order), the
top ``k`` kept. Each hit keeps its first-stage ``score`` and gains ``rerank_score``.
The reranker is a query-time choice: the index is not changed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from simsearch.errors import InvalidParameter
from simsearch.retrieval.hit import Hit

#: First-stage hits reranked per query by default.
DEFAULT_DEPTH = 50


@dataclass(frozen=True)
class RerankOptions:
    """The second stage.

    Attributes:
        model: a ``CrossEncoder`` hub id or local directory.
        depth: first-stage hits reranked per query (at least ``k``: a larger ``k``
            raises it to ``k``).
        batch_size: pairs scored per forward pass.
    """

    model: str
    depth: int = DEFAULT_DEPTH
    batch_size: int = 32

    def check(self) -> None:
        """Raises InvalidParameter for an empty model name, or a depth or batch size
        below 1."""
        if not self.model.strip():
            raise InvalidParameter(
                "rerank", "{name} is empty: give a hub id or a model directory"
            )
        for param, value in (("rerank_depth", self.depth), ("batch_size", self.batch_size)):
            if value < 1:
                raise InvalidParameter(param, f"{{name}} must be at least 1, got {value}")

    def first_k(self, k: int | None) -> int | None:
        """How many hits the first stage returns for a final ``k`` (None: every row
        above a similarity threshold, all of them reranked)."""
        return None if k is None else max(k, self.depth)


def rerank_with(
    hits: Sequence[Hit],
    queries: Sequence[str],
    options: RerankOptions,
    k: int | None,
    device: str | None = None,
    reranker: Any = None,
) -> list[Hit]:
    """:func:`rerank` with the cross-encoder ``options.model`` loaded here (or
    ``reranker``, one loaded earlier by
    :func:`~simsearch.encoding.cross_encoder.load_reranker`, so a server loads it once).

    Raises:
        InvalidParameter: a bad depth, or a model that does not load (``rerank``).
    """
    options.check()
    if reranker is None:
        from simsearch.encoding.cross_encoder import load_reranker

        reranker = load_reranker(options.model, device)
    return rerank(hits, queries, reranker, k, options)


def rerank(
    hits: Sequence[Hit],
    queries: Sequence[str],
    reranker: Any,
    k: int | None,
    options: RerankOptions,
) -> list[Hit]:
    """Reorder each query's first ``options.depth`` hits by the cross-encoder.

    Args:
        hits: first-stage hits, grouped by ``query_index`` (None: one query, 0), in rank
            order within each group.
        queries: the text of each query (``queries[query_index]``).
        reranker: :class:`~simsearch.encoding.cross_encoder.Reranker` (``score(pairs,
            batch_size)``).
        k: hits kept per query (None: all reranked ones).
        options: depth and batch size.

    Returns:
        per query, up to ``k`` hits ordered by ``rerank_score`` (descending; ties keep
        the first-stage order), ``rank`` renumbered from 1; groups in input order.
    """
    options.check()
    groups: dict[int, list[Hit]] = {}
    for hit in hits:
        groups.setdefault(hit.query_index or 0, []).append(hit)
    depth = max(options.depth, k or 0)
    chosen = {q: group[:depth] for q, group in groups.items()}
    pairs = [(queries[q], hit.text) for q, group in chosen.items() for hit in group]
    scores = reranker.score(pairs, options.batch_size).tolist()
    out: list[Hit] = []
    at = 0
    for group in chosen.values():
        mine = np.asarray(scores[at : at + len(group)], dtype=np.float64)
        at += len(group)
        order = np.argsort(-mine, kind="stable")[: len(group) if k is None else k]
        out += [
            dataclasses.replace(group[i], rank=r, rerank_score=float(mine[i]))
            for r, i in enumerate(order.tolist(), start=1)
        ]
    return out


def rerank_rows(
    rows: Sequence[np.ndarray],
    queries: Sequence[str],
    texts: Sequence[str],
    reranker: Any,
    options: RerankOptions,
) -> list[np.ndarray]:
    """:func:`rerank` on bare rankings (``eval``): each query's first ``options.depth``
    rows reordered by the cross-encoder's score of (query, ``texts[row]``), ties in the
    first-stage order; rows past the depth are dropped.

    Args:
        rows: per query, int rows best first; queries: their texts; texts: every
            row's text (``index.texts``).

    Returns:
        per query, ``(min(len(rows[q]), depth),)`` int64 rows.
    """
    options.check()
    chosen = [np.asarray(r, np.int64)[: options.depth] for r in rows]
    pairs = [(queries[q], texts[int(r)]) for q, one in enumerate(chosen) for r in one]
    scores = reranker.score(pairs, options.batch_size)
    out, at = [], 0
    for one in chosen:
        mine = scores[at : at + len(one)]
        at += len(one)
        out.append(one[np.argsort(-mine.astype(np.float64), kind="stable")])
    return out
