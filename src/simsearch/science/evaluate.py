"""Model evaluation: STS correlation on scored pairs, and retrieval metrics against an index.

STS follows the convention of Reimers & Gurevych 2019 (Sentence-BERT) and the KorSTS paper
(Ham et al. 2020): Spearman and Pearson correlation between the cosine similarity of the two
sentence embeddings and the gold score, reported x 100, computed with ``scipy.stats``
(the same definitions as sentence-transformers' ``EmbeddingSimilarityEvaluator``; cosine
similarities are taken in float64 so near-ties do not depend on summation order).
Retrieval metrics follow BEIR / ``InformationRetrievalEvaluator`` (see
:func:`retrieval_metrics`).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from simsearch.encoding.sbert import encode, load_model
from simsearch.errors import InvalidParameter, SimsearchError

if TYPE_CHECKING:
    from simsearch.transforms.flow import EmbeddingFlow
    from simsearch.transforms.whitening import Whitening

STS_COLUMNS = ["model", "spearman", "pearson", "pairs", "encode_seconds"]


def model_label(model: str | Any) -> str:
    """A short display name for a model argument (its string, or the loaded model's type)."""
    if isinstance(model, str):
        return model
    return type(model).__name__


@dataclass
class StsEmbeddings:
    """The embeddings an STS score was computed from (for independent checks).

    ``emb1``/``emb2`` are (pairs, dim) float32, L2-normalised (whitened when asked);
    ``cosine`` is (pairs,) float64 (products of float32 are exact in float64, so the
    value hardly depends on summation order); ``scores`` the gold scores (pairs,) float64.
    """

    emb1: np.ndarray
    emb2: np.ndarray
    cosine: np.ndarray
    scores: np.ndarray


def sts_correlations(cosine: np.ndarray, scores: np.ndarray) -> tuple[float, float]:
    """(Spearman, Pearson) x 100 of predicted similarities against gold scores (scipy.stats)."""
    from scipy.stats import pearsonr, spearmanr

    if np.std(cosine) == 0 or np.std(scores) == 0:
        raise SimsearchError(
            "All similarities or all gold scores are equal: correlation undefined."
        )
    return float(spearmanr(scores, cosine)[0] * 100), float(pearsonr(scores, cosine)[0] * 100)


def embed_sts_pairs(
    model: Any,
    pairs: pd.DataFrame,
    batch_size: int = 64,
    whitening: Whitening | EmbeddingFlow | None = None,
) -> StsEmbeddings:
    """Encode both sides of ``pairs`` (columns sentence1, sentence2, score) once.

    Each unique sentence is encoded a single time; with ``whitening`` (a fitted
    :class:`~simsearch.transforms.whitening.Whitening` or
    :class:`~simsearch.transforms.flow.EmbeddingFlow`)
    the embeddings are mapped (and re-normalised) before the cosine is taken.
    """
    texts = list(dict.fromkeys([*pairs["sentence1"], *pairs["sentence2"]]))
    emb = encode(model, texts, batch_size=batch_size)
    if whitening is not None:
        emb = whitening.apply(emb)
    row = {text: i for i, text in enumerate(texts)}
    emb1 = emb[[row[t] for t in pairs["sentence1"]]]
    emb2 = emb[[row[t] for t in pairs["sentence2"]]]
    cosine = np.einsum("ij,ij->i", emb1.astype(np.float64), emb2.astype(np.float64))
    return StsEmbeddings(emb1, emb2, cosine, pairs["score"].to_numpy(dtype=np.float64))


def evaluate_sts(
    models: Sequence[Any] | Any,
    pairs: pd.DataFrame | Path | str,
    batch_size: int = 64,
    whiten: bool | str | Path = False,
    whiten_dim: int | None = None,
    limit: int | None = None,
    flow: bool | str | Path = False,
) -> pd.DataFrame:
    """Score one or several models on scored sentence pairs.

    Args:
        models: model names/directories (str) or loaded SentenceTransformer objects.
        pairs: DataFrame with sentence1, sentence2, score, or a KorSTS-format file path.
        whiten: False; True to fit BERT-whitening (Su et al. 2021) on the eval sentences
            themselves; or a path to a corpus file whose texts the whitening is fitted on.
        whiten_dim: keep this many whitened dimensions (None: all).
        limit: use only the first ``limit`` pairs (quick checks).
        flow: like ``whiten`` but with BERT-flow (Li et al. 2020, :mod:`simsearch.transforms.flow`);
            the two exclude each other.

    Returns:
        DataFrame, one row per model, columns ``model``, ``spearman``, ``pearson`` (cosine
        similarity vs gold, x 100), ``pairs`` (int), ``encode_seconds`` (wall clock, s).

    Raises:
        SimsearchError: unreadable pairs file or model, or both ``whiten`` and ``flow``.
    """
    from simsearch.tables.labeled import read_sts_pairs

    if whiten and flow:
        raise InvalidParameter("flow", "{name} and whitening exclude each other: pick one")

    if not isinstance(pairs, pd.DataFrame):
        pairs = read_sts_pairs(pairs)
    if limit:
        pairs = pairs.head(limit)
    if isinstance(models, (str, Path)) or not isinstance(models, Sequence):
        models = [models]
    rows = []
    for model_arg in models:
        model = load_model(str(model_arg) if isinstance(model_arg, Path) else model_arg)
        start = time.perf_counter()
        transform = _fit_transform(model, pairs, batch_size, whiten, whiten_dim, flow)
        emb = embed_sts_pairs(model, pairs, batch_size=batch_size, whitening=transform)
        seconds = time.perf_counter() - start
        spearman, pearson = sts_correlations(emb.cosine, emb.scores)
        name = model_label(model_arg)
        if whiten:
            name += f" +whiten{'' if whiten_dim is None else f'({whiten_dim})'}"
        elif flow:
            name += " +flow"
        rows.append([name, spearman, pearson, len(pairs), seconds])
    return pd.DataFrame(rows, columns=STS_COLUMNS)


def _fit_transform(
    model: Any,
    pairs: pd.DataFrame,
    batch_size: int,
    whiten: bool | str | Path,
    whiten_dim: int | None,
    flow: bool | str | Path,
) -> Whitening | EmbeddingFlow | None:
    """Whitening or flow fitted on the eval sentences (``True``) or a corpus file's texts."""
    wanted = whiten or flow
    if not wanted:
        return None
    from simsearch.tables.labeled import read_texts

    if wanted is True:
        fit_texts = list(dict.fromkeys([*pairs["sentence1"], *pairs["sentence2"]]))
    else:
        fit_texts = read_texts(wanted)
    emb = encode(model, fit_texts, batch_size=batch_size)
    if whiten:
        from simsearch.transforms.whitening import fit_whitening

        return fit_whitening(emb, whiten_dim)
    from simsearch.transforms.flow import fit_flow

    return fit_flow(emb)


RETRIEVAL_KS = (1, 5, 10)


def retrieval_metrics(ranked: np.ndarray, relevant: Sequence[set[int]]) -> dict[str, float]:
    """Recall@1/5/10, MRR@10 and nDCG@10 (binary relevance), averaged over queries, x 100.

    Args:
        ranked: (m, >=10 or fewer) int array, document rows per query, best first.
        relevant: m sets of relevant document rows.

    Definitions (as in BEIR / sentence-transformers' InformationRetrievalEvaluator):
    recall@k = |relevant in top k| / |relevant|; MRR@10 = 1 / rank of the first relevant
    document in the top 10 (0 if none); nDCG@10 = DCG@10 / ideal DCG@10 with gain 1 and
    discount 1 / log2(rank + 1).
    """
    if len(ranked) != len(relevant) or not len(relevant):
        raise SimsearchError("Retrieval evaluation needs one relevant set per query (>= 1 query).")
    sums = {f"recall@{k}": 0.0 for k in RETRIEVAL_KS} | {"mrr@10": 0.0, "ndcg@10": 0.0}
    discounts = 1.0 / np.log2(np.arange(2, 12))
    for row, rel in zip(ranked, relevant, strict=True):
        hits = np.array([int(d) in rel for d in row[:10]], dtype=bool)
        for k in RETRIEVAL_KS:
            sums[f"recall@{k}"] += hits[:k].sum() / len(rel)
        first = np.flatnonzero(hits)
        sums["mrr@10"] += 1.0 / (first[0] + 1) if len(first) else 0.0
        ideal = discounts[: min(len(rel), 10)].sum()
        sums["ndcg@10"] += float((discounts[: len(hits)] * hits).sum() / ideal)
    return {name: 100.0 * value / len(relevant) for name, value in sums.items()}


def read_retrieval_pairs(
    path: Path | str, texts: Sequence[str], query: str = "query", relevant: str = "relevant"
) -> tuple[list[str], list[set[int]]]:
    """Read (query, relevant document) rows; several rows with one query add relevant docs.

    ``relevant`` holds a 0-based document row of the index, or a document text (every row
    with exactly that text is relevant).

    Raises:
        SimsearchError: missing column, row out of range, or a text not in the index.
    """
    from simsearch.tables.labeled import read_table, require_columns

    df = read_table(path)
    require_columns(df, {"query_column": query, "relevant_column": relevant}, path)
    df = df[[query, relevant]].dropna()
    rows_of: dict[str, list[int]] = {}
    for i, text in enumerate(texts):
        rows_of.setdefault(text.strip(), []).append(i)
    wanted: dict[str, set[int]] = {}
    for q, rel in zip(df[query].astype(str), df[relevant], strict=True):
        wanted.setdefault(q.strip(), set()).update(_relevant_rows(rel, rows_of, len(texts), path))
    if not wanted:
        raise SimsearchError(f"{path}: no (query, relevant) rows.")
    return list(wanted), list(wanted.values())


def _relevant_rows(value: Any, rows_of: dict[str, list[int]], n_docs: int, path: Any) -> list[int]:
    text = str(value).strip()
    if isinstance(value, (int, np.integer)) or text.isdigit():
        row = int(text)
        if not 0 <= row < n_docs:
            raise SimsearchError(
                f"{path}: relevant row {row} is outside the index (rows 0 to {n_docs - 1})."
            )
        return [row]
    if text not in rows_of:
        raise SimsearchError(
            f"{path}: relevant text {text[:60]!r} is not a document of the index; "
            "give its row number or the exact text."
        )
    return rows_of[text]


def evaluate_retrieval(  # noqa: PLR0913 - filter, windows and mode options of eval
    model: Any,
    queries: Sequence[str],
    relevant: Sequence[set[int]],
    parts: Any,
    whitening: Whitening | EmbeddingFlow | None = None,
    batch_size: int = 64,
    allow: Any = None,
    *,
    options: Any = None,
    rerank: Any = None,
) -> dict[str, float]:
    """Encode ``queries`` with ``model`` and rank the index through
    :func:`simsearch.retrieval.rank.rank`, exactly as ``query`` does (its ANN when the
    parts have one, empty rows never ranked), then score the top 10.

    Args:
        parts: :class:`~simsearch.retrieval.rank.Parts` of the index
            (:func:`simsearch.retrieval.parts.open_parts`).
        whitening: the index's transform (whitening or flow), applied to the query
            embeddings the same way.
        allow: optional :class:`~simsearch.retrieval.rowfilter.RowFilter`: only these rows
            are ranked, and the caller has already limited ``relevant`` to them.
        options: :class:`~simsearch.retrieval.modes.SearchOptions` (mode, aggregate).
        rerank: ``(RerankOptions, reranker, texts)``: a cross-encoder reorders each
            query's top ``depth`` rows (:func:`simsearch.retrieval.rerank.rerank_rows`,
            ``texts`` the index's row texts) before the top 10 are scored.

    Returns:
        dict with recall@1, recall@5, recall@10, mrr@10, ndcg@10 (x 100), queries (count)
        and encode_seconds.
    """
    from simsearch.retrieval.modes import SearchOptions
    from simsearch.retrieval.rank import Query, rank

    options = options or SearchOptions()
    start = time.perf_counter()
    mode = parts.mode(options.mode)
    q = None
    if mode != "lexical":
        q = encode(load_model(model), list(queries), batch_size=batch_size)
        if whitening is not None:
            q = whitening.apply(q)
    seconds = time.perf_counter() - start
    terms = None
    if mode != "dense":
        from simsearch.retrieval import bm25 as lexical

        terms = lexical.tokenize(list(queries))
    depth = 10 if rerank is None else max(10, rerank[0].depth)
    found = [one.rows for one in rank(parts, Query(vectors=q, terms=terms), depth, options, allow)]
    if rerank is not None:
        from simsearch.retrieval.rerank import rerank_rows

        second, reranker, texts = rerank
        found = rerank_rows(found, list(queries), texts, reranker, second)
    return retrieval_metrics(found, relevant) | {
        "queries": len(queries),
        "encode_seconds": seconds,
    }


def evaluate_index(  # noqa: PLR0913 - the options of eval --index
    path: Path | str,
    index_path: Path | str,
    model: str | None = None,
    query_column: str = "query",
    relevant_column: str = "relevant",
    batch_size: int = 64,
    where: str | None = None,
    search: Any = None,
    rerank: Any = None,
) -> dict[str, Any]:
    """Retrieval metrics of ``(query, relevant)`` rows of ``path`` against an index
    (its directory or its root), encoding the queries with the index's model (or
    ``model``) and its whitening or flow.

    ``where`` (an SQL condition over the source columns, :mod:`simsearch.retrieval.filters`)
    evaluates within the matching rows: only they are ranked, relevant rows outside
    are dropped, and a query left with no relevant row is left out (``skipped``).


    Args:
        search: ``(options, chunking)``: :class:`~simsearch.retrieval.modes.SearchOptions`
            (mode, aggregate) and ``"auto"`` (the index's windows) or ``"none"`` (each
            row's first window only: the truncation of an index without windows).
        rerank: :class:`~simsearch.retrieval.rerank.RerankOptions`: the first stage's
            top ``depth`` rows of each query reordered by this cross-encoder (recorded
            as ``rerank``).

    Returns:
        ``{"model": ..., "mode": ..., "chunking": ...}`` plus
        :func:`evaluate_retrieval`'s metrics (and, with ``where``, ``documents``: matching
        rows, ``skipped``: queries left out).

    Raises:
        SimsearchError: no index, unreadable pairs, bad columns or rows, a bad filter,
            or no query with a relevant row inside the filter.
    """
    from simsearch.retrieval.filters import index_rows
    from simsearch.store.index import open_path
    from simsearch.transforms import load_transform

    index = open_path(index_path)
    name = model or index.model
    queries, relevant = read_retrieval_pairs(path, index.texts, query_column, relevant_column)
    from simsearch.retrieval.rowfilter import RowFilter
    from simsearch.search import search_options
    from simsearch.searcher import Searcher

    options, chunking = search or (search_options(), "auto")
    parts = Searcher(index).parts(options.mode)
    if chunking == "none":
        parts = parts.first_windows()
    mode = parts.mode(options.mode)
    allowed = index_rows(index, where)
    extra: dict[str, Any] = {}
    if allowed is not None:
        inside = set(allowed.tolist())
        kept = [(q, rel & inside) for q, rel in zip(queries, relevant, strict=True) if rel & inside]
        if not kept:
            raise InvalidParameter(
                "where", f"no query has a relevant document among the rows {{name}} {where!r} keeps"
            )
        extra = {"documents": len(allowed), "skipped": len(queries) - len(kept)}
        queries, relevant = [q for q, _ in kept], [rel for _, rel in kept]
    allow = None if allowed is None else RowFilter.of_rows(allowed, index.n_docs)
    second = None
    if rerank is not None:
        from simsearch.encoding.cross_encoder import load_reranker

        rerank.check()
        second = (rerank, load_reranker(rerank.model), index.texts)
        extra = {"rerank": rerank.model, "rerank_depth": rerank.depth} | extra
    metrics = evaluate_retrieval(
        name, queries, relevant, parts, load_transform(index), batch_size, allow, options=options,
        rerank=second,
    )
    return {"model": name, "mode": mode, "chunking": chunking} | metrics | extra
