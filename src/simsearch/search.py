"""Searching an index: documents similar to a document, or to a query text.

The ``*_hits`` functions return plain dicts and never import pandas or torch beyond
what they need, so the CLI's ``similar`` starts in a fraction of a second; the public
:func:`similar` and :func:`query` wrap them into pandas DataFrames for notebooks.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from simsearch import index as store
from simsearch.errors import InvalidParameter, ParamNote, SimsearchError
from simsearch.ranking import top_k

if TYPE_CHECKING:
    import pandas as pd

LogFn = Callable[[str], None]
Hit = dict[str, Any]


def _quiet(_msg: str) -> None:
    pass


def check_k(k: int, index: store.Index, exclude_self: bool, log: LogFn) -> int:
    """``k`` clamped to the number of candidate documents (saying so through ``log``).

    Raises:
        InvalidParameter: ``k < 1``.
    """
    if k < 1:
        raise InvalidParameter("k", f"{{name}} must be at least 1, got {k}")
    available = index.n_docs - (1 if exclude_self else 0)
    if k > available:
        log(
            ParamNote(
                "k",
                f"{{name}} {k} is more than the {available:,} documents available; "
                f"showing {available:,}",
            )
        )
        return max(available, 0)
    return k


def check_doc(doc: int, index: store.Index) -> None:
    """Raises InvalidParameter unless ``0 <= doc < n_docs``."""
    if not 0 <= doc < index.n_docs:
        raise InvalidParameter(
            "doc",
            f"{{name}} {doc} is out of range: the index has {index.n_docs:,} documents "
            f"(rows 0 to {index.n_docs - 1:,})",
        )


def _hits(
    index: store.Index,
    indices: Sequence[np.ndarray],
    sims: Sequence[np.ndarray],
    queries: Sequence[str] | None = None,
) -> list[Hit]:
    """Turn ranking arrays (one per query) into result dicts, reading only the rows that
    are shown."""
    positions = sorted({int(i) for ids in indices for i in ids})
    records = dict(zip(positions, index.rows(positions)))
    column = index.column
    hits: list[Hit] = []
    for q, (row_ids, row_sims) in enumerate(zip(indices, sims)):
        for rank, (row, sim) in enumerate(zip(row_ids.tolist(), row_sims.tolist()), start=1):
            record = records[row]
            hit: Hit = {}
            if queries is not None:
                hit["query_index"] = q
                hit["query"] = queries[q]
            text = record.get(column)
            hit.update(
                rank=rank,
                row=row,
                cosine_distance=1.0 - sim,
                similarity=sim,
                text="" if text is None else str(text),
                columns=record,
            )
            hits.append(hit)
    return hits


def check_min_similarity(min_similarity: float | None) -> None:
    """Raises InvalidParameter unless ``min_similarity`` is None or in ``[-1, 1]``."""
    if min_similarity is not None and not -1.0 <= min_similarity <= 1.0:
        raise InvalidParameter(
            "min_similarity",
            f"{{name}} is a cosine similarity between -1 and 1, got {min_similarity}",
        )


def rank(
    index: store.Index,
    queries: np.ndarray,
    k: int | None,
    min_similarity: float | None = None,
    exclude: np.ndarray | None = None,
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Exact top-k (:func:`simsearch.ranking.top_k`) with empty documents left out and an
    optional similarity threshold.

    Empty documents are zero rows of the search matrix (whitened ones too), so their
    similarity to everything is exactly 0: ``n_empty`` extra candidates are fetched and
    the zero rows among them dropped, so they never rank, not even above documents of
    negative similarity.

    Args:
        index: an opened index.
        queries: ``(n_queries, dim)`` float32, L2-normalised.
        k: at most this many results per query; None: no limit (every document at or
            above ``min_similarity``).
        min_similarity: keep only results with cosine similarity ``>=`` this.
        exclude: as in :func:`simsearch.ranking.top_k`.

    Returns:
        ``(indices, similarities)``: per query, an int64 array of rows and a float32
        array of similarities, most similar first (possibly fewer than ``k``).
    """
    queries = np.atleast_2d(queries)
    n_empty = index.meta.n_empty
    want = index.n_docs if k is None else k
    if want < 1:  # e.g. a one-document index asked for documents other than itself
        return [np.empty(0, np.int64)] * len(queries), [np.empty(0, np.float32)] * len(queries)
    indices, sims = top_k(index.embeddings, queries, min(want + n_empty, index.n_docs), exclude)
    kept_ids, kept_sims = [], []
    for row_ids, row_sims in zip(indices, sims):
        keep = np.ones(len(row_ids), dtype=bool)
        if n_empty:
            zero = row_sims == 0.0
            if zero.any():
                rows = np.asarray(index.embeddings[np.sort(row_ids[zero])])
                empty = set(np.sort(row_ids[zero])[~rows.any(axis=1)].tolist())
                keep &= np.array([int(r) not in empty for r in row_ids])
        if min_similarity is not None:
            keep &= row_sims >= np.float32(min_similarity)
        kept_ids.append(row_ids[keep][:want])
        kept_sims.append(row_sims[keep][:want])
    return kept_ids, kept_sims


def similar_hits(
    index: store.Index,
    doc: int,
    k: int | None = 10,
    include_self: bool = False,
    log: LogFn = _quiet,
    min_similarity: float | None = None,
) -> list[Hit]:
    """The ``k`` documents nearest to document ``doc`` by cosine distance.

    Args:
        index: an opened index (:func:`simsearch.index.load_index`).
        doc: 0-based row of the query document.
        k: number of results (clamped to the corpus size); None with ``min_similarity``:
            every document at or above it.
        include_self: keep ``doc`` itself in the list (it ranks first at distance 0),
            exactly like the notebook's ``cosine_distances(...)[doc].argsort()[:k]``.
        log: receives one-line notices (k clamped, empty query document).
        min_similarity: keep only documents with cosine similarity ``>=`` this.

    Returns:
        Up to ``k`` dicts with keys ``rank`` (1-based), ``row`` (0-based), ``cosine_distance``,
        ``similarity``, ``text`` and ``columns`` (the whole source row), nearest first.

    Raises:
        SimsearchError: ``doc`` out of range or ``k < 1``.
    """
    check_doc(doc, index)
    k = _limit(k, min_similarity, index, exclude_self=not include_self, log=log)
    if k == 0:  # a one-document index has no other document to return
        return []
    query = np.asarray(index.embeddings[doc], dtype=np.float32)
    if not query.any():
        log(f"document {doc} is empty, so every cosine distance to it is 1")
    exclude = None if include_self else np.array([doc])
    indices, sims = rank(index, query, k, min_similarity, exclude=exclude)
    return _hits(index, indices, sims)


def _limit(
    k: int | None, min_similarity: float | None, index: store.Index, exclude_self: bool, log: LogFn
) -> int | None:
    """``k`` checked; None (no limit) only with a threshold."""
    check_min_similarity(min_similarity)
    if k is None:
        return None if min_similarity is not None else check_k(10, index, exclude_self, log)
    return check_k(k, index, exclude_self=exclude_self, log=log)


def encode_queries(
    index: store.Index,
    texts: Sequence[str],
    device: str | None = None,
    batch_size: int = 32,
    encoder: Any = None,
    log: LogFn | None = None,
) -> np.ndarray:
    """Encode query texts with the model recorded in the index (never another one).

    On the CPU this runs the model's ONNX export when ``index`` made one (no torch
    import: a cold query takes well under 2 s), else sentence-transformers; see
    :func:`simsearch.encoders.query_encoder`.

    A whitened index (``index --whiten``) or one with a flow (``index --flow``) applies
    its stored transform to the queries, exactly as to the documents (the flow runs in
    onnxruntime, so the ONNX query path still imports no torch). ``encoder``: one made
    earlier by :func:`~simsearch.encoders.query_encoder` for this index, so a long-running
    caller (``simsearch serve``) loads the model once.

    Returns:
        ``(len(texts), dim)`` float32, L2-normalised, ``dim`` the index's search dimension.

    Raises:
        SimsearchError: the model cannot be loaded or its dimension differs from the index.
    """
    from simsearch.encoders import query_encoder

    encoder = encoder if encoder is not None else query_encoder(index, device, log)
    vectors = encoder.encode(texts, batch_size)
    if vectors.shape[1] != index.meta.dim:
        raise SimsearchError(
            f"model {index.model} makes {vectors.shape[1]}-d embeddings but the index holds "
            f"{index.meta.dim}-d ones; rebuild the index with 'simsearch index --rebuild'"
        )
    transform = index.transform()
    return vectors if transform is None else transform.apply(vectors)


def query_hits(
    index: store.Index,
    texts: Sequence[str],
    k: int | None = 10,
    device: str | None = None,
    batch_size: int = 32,
    log: LogFn = _quiet,
    min_similarity: float | None = None,
    encoder: Any = None,
) -> list[Hit]:
    """The ``k`` documents nearest to each query text (the model loads once for all;
    ``encoder`` as in :func:`encode_queries`); ``k`` and ``min_similarity`` as in
    :func:`similar_hits`.

    Returns:
        Up to ``len(texts) * k`` dicts as in :func:`similar_hits`, plus ``query_index`` and
        ``query``, grouped by query in input order.

    Raises:
        SimsearchError: no query text, an empty query, ``k < 1``, or a model problem.
    """
    texts = list(texts)
    if not texts:
        raise SimsearchError("no query given; give at least one query text")
    for i, text in enumerate(texts):
        if not text.strip():
            raise SimsearchError(f"query {i + 1} is empty; give some text to search for")
    check_min_similarity(min_similarity)
    vectors = encode_queries(index, texts, device, batch_size, encoder, log)  # model problems first
    k = _limit(k, min_similarity, index, exclude_self=False, log=log)
    indices, sims = rank(index, vectors, k, min_similarity)
    return _hits(index, indices, sims, queries=texts)


def hits_frame(hits: list[Hit]) -> pd.DataFrame:
    """Results as a DataFrame: the source columns plus ``row``, ``rank``,
    ``cosine_distance``, ``similarity`` (and ``query`` for query results)."""
    import pandas as pd

    rows = []
    for hit in hits:
        row = dict(hit["columns"])
        if "query" in hit:
            row["query"] = hit["query"]
        row.update(
            row=hit["row"],
            rank=hit["rank"],
            cosine_distance=hit["cosine_distance"],
            similarity=hit["similarity"],
        )
        rows.append(row)
    return pd.DataFrame(rows)


def similar(
    doc: int,
    k: int | None = 10,
    *,
    root: str | os.PathLike = store.DEFAULT_ROOT,
    name: str = store.DEFAULT_NAME,
    include_self: bool = False,
    min_similarity: float | None = None,
) -> pd.DataFrame:
    """Notebook API: the ``k`` documents most similar to row ``doc`` of the indexed file.

    Example:
        >>> simsearch.similar(0, k=5)  # doctest: +SKIP

    Args:
        k: at most this many rows; None with ``min_similarity``: no limit.
        min_similarity: keep only rows with cosine similarity ``>=`` this.

    Returns:
        A DataFrame of up to ``k`` rows, nearest first (see :func:`hits_frame`).

    Raises:
        SimsearchError: no index, ``doc`` out of range, ``k < 1``, a threshold outside
            ``[-1, 1]``.
    """
    index = store.load_index(root, name)
    return hits_frame(similar_hits(index, doc, k, include_self, min_similarity=min_similarity))


def query(
    text: str | Sequence[str],
    k: int = 10,
    *,
    root: str | os.PathLike = store.DEFAULT_ROOT,
    name: str = store.DEFAULT_NAME,
    device: str | None = None,
    min_similarity: float | None = None,
) -> pd.DataFrame:
    """Notebook API: the ``k`` documents most similar to a query text (or to each of
    several), encoded with the index's own model.

    Returns:
        A DataFrame of ``k`` rows per query with a ``query`` column (see :func:`hits_frame`).

    Raises:
        SimsearchError: no index, empty query, ``k < 1``, model problems.
    """
    texts = [text] if isinstance(text, str) else list(text)
    index = store.load_index(root, name)
    return hits_frame(query_hits(index, texts, k, device=device, min_similarity=min_similarity))
