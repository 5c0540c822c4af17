"""Fusion weights learned from labels: ``simsearch eval PAIRS --index DIR --tune``.

The hybrid ranking fuses a dense and a BM25 top list (:mod:`simsearch.retrieval.fusion`).
Which weight suits an index depends on how good its dense model is (docs/retrieval.md):
labelled ``(query, relevant row)`` pairs settle it. For every candidate setting
(method x dense weight) the reciprocal rank @10 of each query is computed once from the
same two top lists (the dense and the lexical ranking run once each, exactly as
:func:`simsearch.retrieval.rank.rank` runs them); then

* ``folds``-fold cross-validation: each fold's setting is the best on the other folds,
  scored on the fold itself; the mean over all queries is the **held-out** MRR@10 that
  is reported (never the training score);
* the setting stored is the best on all pairs, and only when its held-out MRR beats the
  default's (otherwise the default stays, and nothing is written).

Queries are shuffled with a fixed seed before the folds are cut; ties between settings
go to the one closest to the default (:data:`simsearch.retrieval.fusion.DEFAULT`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from simsearch.errors import InvalidParameter

#: Fewer labelled queries than this give a weight chosen by noise (one query moves the
#: MRR of 20 by 5 points); 50-100 give stable choices on the benchmark.
MIN_PAIRS = 20
WEIGHTS = tuple(round(0.1 * i, 1) for i in range(11))


@dataclass(frozen=True)
class TuneOptions:
    """What ``--tune`` searches.

    Attributes:
        methods: fusion methods tried (``convex``, ``rrf``).
        weights: dense weights tried, each in ``[0, 1]``.
        folds: cross-validation folds (at least 2; at most one per query).
        seed: shuffle of the queries before the folds are cut.
        store: write the chosen settings into the index's metadata.
    """

    methods: tuple[str, ...] = ("convex", "rrf")
    weights: tuple[float, ...] = WEIGHTS
    folds: int = 5
    seed: int = 0
    store: bool = True


def settings(options: TuneOptions, default: Any = None) -> list[Any]:
    """The candidate :class:`~simsearch.retrieval.fusion.FusionOptions`, ``default`` first
    (the index's untuned fusion, :func:`untuned`; :data:`~simsearch.retrieval.fusion.DEFAULT`
    when not given)."""
    from simsearch.retrieval.fusion import DEFAULT, FusionOptions

    default = DEFAULT if default is None else default
    out = [default]
    for method in options.methods:
        for weight in options.weights:
            candidate = FusionOptions(method, float(weight))
            if candidate != default:
                out.append(candidate)
    return out


def untuned(meta) -> Any:
    """The fusion an index uses without ``eval --tune``: the dense weight estimated at
    build time (section ``lexical``), else :data:`~simsearch.retrieval.fusion.DEFAULT`;
    tuning must beat this one, not the fixed default, to be stored."""
    from simsearch.retrieval.fusion import DEFAULT, FusionOptions

    lexical = meta.lexical
    if lexical is None:
        return DEFAULT
    return FusionOptions(lexical.fusion, float(lexical.dense_weight))


def reciprocal_ranks(top_lists: list[np.ndarray], relevant: list[set[int]], k: int = 10):
    """``(m,)`` float64: 1 / rank of the first relevant row in each top ``k`` (0: none)."""
    out = np.zeros(len(relevant))
    for q, (rows, rel) in enumerate(zip(top_lists, relevant)):
        for position, row in enumerate(rows[:k].tolist()):
            if row in rel:
                out[q] = 1.0 / (position + 1)
                break
    return out


def setting_scores(dense, lexical, n_rows: int, relevant, candidates) -> np.ndarray:
    """``(n_settings, m)`` reciprocal ranks @10 of each query under each setting.

    Args:
        dense, lexical: ``m`` ``(rows, scores)`` top lists each (best first).
        candidates: :class:`~simsearch.retrieval.fusion.FusionOptions` to score.
    """
    from simsearch.retrieval.rank import _fused

    out = np.zeros((len(candidates), len(relevant)))
    for s, options in enumerate(candidates):
        fused = [_fused(d, lx, n_rows, 10, options)[0] for d, lx in zip(dense, lexical)]
        out[s] = reciprocal_ranks(fused, relevant)
    return out


def cross_validate(scores: np.ndarray, folds: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Held-out reciprocal ranks: each query scored under the setting that is best on
    the folds it is not in (ties: the lowest setting index, i.e. the default first).

    Args:
        scores: ``(n_settings, m)`` from :func:`setting_scores`.

    Returns:
        ``(heldout, chosen)``: ``(m,)`` reciprocal ranks and ``(folds,)`` setting index
        chosen per fold.
    """
    m = scores.shape[1]
    order = np.random.default_rng(seed).permutation(m)
    fold_of = np.empty(m, dtype=np.int64)
    fold_of[order] = np.arange(m) % folds
    heldout = np.zeros(m)
    chosen = np.zeros(folds, dtype=np.int64)
    for f in range(folds):
        train, test = fold_of != f, fold_of == f
        best = int(np.argmax(scores[:, train].mean(axis=1)))  # first max: default wins ties
        chosen[f] = best
        heldout[test] = scores[best, test]
    return heldout, chosen


def tune_fusion(  # noqa: PLR0913 - the keyword options of eval --tune
    path: Path | str,
    index_path: Path | str,
    query_column: str = "query",
    relevant_column: str = "relevant",
    batch_size: int = 64,
    options: TuneOptions = TuneOptions(),
) -> dict[str, Any]:
    """Choose the hybrid fusion of an index from labelled pairs (module docstring).

    Args:
        path: the pairs file (as ``eval --index`` reads it).
        index_path: the index directory (or root).

    Returns:
        ``{"pairs", "folds", "default": {...}, "chosen": {...}, "heldout_mrr",
        "default_mrr", "train_mrr", "stored", "table": [{method, dense_weight,
        mrr}]}`` (MRR@10 x 100; ``table`` is the MRR on all pairs per setting).

    Raises:
        InvalidParameter: fewer than :data:`MIN_PAIRS` queries, fewer than 2 folds, an
            index without both a dense and a lexical part.
        SimsearchError: as :func:`simsearch.science.evaluate.evaluate_index`.
    """
    from simsearch.retrieval.parts import open_parts
    from simsearch.science.evaluate import read_retrieval_pairs
    from simsearch.store.index import open_path

    index = open_path(index_path)
    queries, relevant = read_retrieval_pairs(path, index.texts, query_column, relevant_column)
    if len(queries) < MIN_PAIRS:
        raise InvalidParameter(
            "tune", f"{{name}} needs at least {MIN_PAIRS} labelled queries (50-100 give a "
            f"stable choice); {path} has {len(queries)}"
        )
    if not 2 <= options.folds <= len(queries):
        raise InvalidParameter(
            "folds", f"{{name}} must be 2 to {len(queries)}, got {options.folds}"
        )
    parts = open_parts(index)
    if parts.dense is None or parts.retriever.lexical is None:
        raise InvalidParameter(
            "tune", "{name} tunes hybrid search, which needs an index with both embeddings "
            "and a lexical index"
        )
    dense, lexical = _top_lists(index, parts, queries, batch_size)
    candidates = settings(options, untuned(index.meta))
    scores = setting_scores(dense, lexical, parts.n_rows, relevant, candidates)
    heldout, _ = cross_validate(scores, options.folds, options.seed)
    means = scores.mean(axis=1)
    best = int(np.argmax(means))
    result = {
        "pairs": len(queries),
        "folds": options.folds,
        "default": _setting(candidates[0]),
        "chosen": _setting(candidates[best]),
        "heldout_mrr": 100 * float(heldout.mean()),
        "default_mrr": 100 * float(means[0]),
        "train_mrr": 100 * float(means[best]),
        "table": [_setting(c) | {"mrr": 100 * float(v)} for c, v in zip(candidates, means)],
    }
    improves = result["heldout_mrr"] > result["default_mrr"] and best != 0
    result["stored"] = bool(options.store and improves)
    if result["stored"]:
        store_fusion(index, candidates[best], result)
    return result


def _setting(options) -> dict[str, Any]:
    return {"method": options.method, "dense_weight": options.dense_weight}


def _top_lists(index, parts, queries: list[str], batch_size: int):
    """The dense and the lexical top ``depth`` lists of every query, as ``rank`` runs them."""
    from simsearch.encoding.sbert import encode, load_model
    from simsearch.retrieval import bm25
    from simsearch.retrieval.fusion import DEFAULT
    from simsearch.retrieval.modes import SearchOptions
    from simsearch.retrieval.rank import Query, rank
    from simsearch.transforms import load_transform

    vectors = encode(load_model(index.model), list(queries), batch_size=batch_size)
    transform = load_transform(index)
    if transform is not None:
        vectors = transform.apply(vectors)
    query = Query(vectors=vectors, terms=bm25.tokenize(list(queries)))
    depth = min(DEFAULT.depth, parts.n_rows)
    lists = []
    for mode in ("dense", "lexical"):
        found = rank(parts, query, depth, SearchOptions(mode))
        lists.append([(one.rows, one.scores) for one in found])
    return lists


def store_fusion(index, chosen, result: dict[str, Any]) -> None:
    """Write the chosen fusion into the index's ``meta.json`` (atomically)."""
    from simsearch.store.meta import FusionInfo

    index.meta.with_section(FusionInfo(
        method=chosen.method, dense_weight=float(chosen.dense_weight),
        pairs=int(result["pairs"]), folds=int(result["folds"]),
        heldout_mrr=round(result["heldout_mrr"], 2), default_mrr=round(result["default_mrr"], 2),
    ))
    index.meta.write(index.path)
