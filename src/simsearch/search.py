"""Searching an index: documents similar to a document, or to a query text.

Both rank through :func:`simsearch.retrieval.rank.rank` (the one ranking layer). The
``*_hits`` functions return :class:`~simsearch.retrieval.hit.Hit` objects and never import
pandas or torch beyond what they need, so the CLI's ``similar`` starts in a fraction of a
second; :func:`hits_frame` makes them a pandas DataFrame. The notebook functions
(``simsearch.similar``, ``simsearch.query``) are in :mod:`simsearch.searcher`, which keeps
the index open between calls and ranks through these same functions.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from simsearch.errors import InvalidParameter, SimsearchError
from simsearch.store import index as store

if TYPE_CHECKING:
    import pandas as pd

    from simsearch.retrieval.hit import Hit

LogFn = Callable[[str], None]


def _quiet(_msg: str) -> None:
    pass


def check_doc(doc: int, index: store.Index) -> None:
    """Raises InvalidParameter unless ``0 <= doc < n_docs``."""
    if not 0 <= doc < index.n_docs:
        raise InvalidParameter(
            "doc",
            f"{{name}} {doc} is out of range: the index has {index.n_docs:,} documents "
            f"(rows 0 to {index.n_docs - 1:,})",
        )


def search_options(
    mode: str | None = None, aggregate: str = "max", dense_weight: float | None = None,
    fusion: str | None = None,
) -> Any:
    """:class:`~simsearch.retrieval.modes.SearchOptions` from keyword values; the fusion is
    the index's stored one (``eval --tune``) or the default, with ``dense_weight``
    (``[0, 1]``) and ``fusion`` (``rrf`` or ``convex``) put in when given.

    Raises:
        InvalidParameter: unknown ``mode``, ``aggregate`` or ``fusion``, a weight outside
            ``[0, 1]``.
    """
    from simsearch.retrieval.dense import AGGREGATES
    from simsearch.retrieval.fusion import FUSIONS
    from simsearch.retrieval.modes import MODES, SearchOptions

    if dense_weight is not None and not 0.0 <= dense_weight <= 1.0:
        raise InvalidParameter(
            "dense_weight", f"{{name}} must be between 0 and 1, got {dense_weight}"
        )
    if fusion is not None and fusion not in FUSIONS:
        raise InvalidParameter(
            "fusion", f"{{name}} must be one of {', '.join(FUSIONS)}, got {fusion!r}"
        )

    if mode is not None and mode not in MODES:
        raise InvalidParameter("mode", f"{{name}} must be one of {', '.join(MODES)}, got {mode!r}")
    if aggregate not in AGGREGATES:
        raise InvalidParameter(
            "aggregate", f"{{name}} must be one of {', '.join(AGGREGATES)}, got {aggregate!r}"
        )
    return SearchOptions(mode=mode, aggregate=aggregate, dense_weight=dense_weight,
                         fusion_method=fusion)


def open_parts(index: store.Index, mode: str | None, exact: bool = False) -> Any:
    """The ranking parts of ``index`` for ``mode`` (the lexical index is read only when
    the mode may use it, so a dense query stays fast); the ANN is used when the index has
    one, unless ``exact``."""
    from simsearch.retrieval.parts import open_parts as open_ranking_parts

    return open_ranking_parts(index, lexical=mode != "dense", exact=exact)


def row_filter(
    index: store.Index, where: str | None, allowed: np.ndarray | None, log: LogFn
) -> Any:
    """The :class:`~simsearch.retrieval.rowfilter.RowFilter` of a ``where`` condition and
    an ``allowed`` ``(n_docs,)`` bool mask (both must allow a row; None: no filter),
    saying through ``log`` how many rows ``where`` keeps.

    Raises:
        InvalidFilter: a bad condition; SimsearchError: no column file.
    """
    from simsearch.retrieval.filters import index_rows
    from simsearch.retrieval.rowfilter import RowFilter, both

    out = None
    if where is not None:
        rows = index_rows(index, where)
        log(f"{len(rows):,} of {index.n_docs:,} documents match the filter")
        out = RowFilter.of_rows(rows, index.n_docs)
    if allowed is not None:
        out = both(out, RowFilter.of_mask(allowed))
    return out


def make_hits(
    index: store.Index,
    parts: Any,
    ranked: Sequence[Any],
    mode: str,
    query_terms: Sequence[Sequence[str] | None],
    queries: Sequence[str] | None = None,
) -> list[Hit]:
    """:class:`~simsearch.retrieval.hit.Hit` objects from rankings, reading only the rows
    that are shown, each with why it matched (:func:`simsearch.retrieval.matches.explain`)."""
    from simsearch.retrieval.hit import Hit as Result
    from simsearch.retrieval.matches import MAX_TERMS, explain, shared_terms

    retriever = parts.retriever
    positions = sorted({int(r) for one in ranked for r in one.rows})
    matched: list[dict[int, list[str]]] = [{} for _ in ranked]
    if retriever.lexical is not None and any(query_terms):
        terms = [t or [] for t in query_terms]
        matched = shared_terms(retriever.lexical, terms, [one.rows for one in ranked])
    records = dict(zip(positions, index.rows(positions)))
    hits: list[Hit] = []
    for q, one in enumerate(ranked):
        for rank, (row, score, sim, window) in enumerate(zip(
            one.rows.tolist(), one.scores.tolist(), one.similarity.tolist(), one.windows.tolist()
        ), start=1):
            record = records[row]
            value = record.get(index.column)
            text = "" if value is None else str(value)
            spans = retriever.row_windows(row, text)
            terms = (matched[q].get(row) or [])[:MAX_TERMS]
            # Show the window holding the matched terms when there are any (what a reader
            # can check), else the best window by cosine.
            best = None if window < 0 or terms else window - int(retriever.offsets[row])
            why = explain(text, spans, best, terms)
            dense = sim == sim  # NaN when no query vector was used (lexical mode)
            hits.append(Result(
                rank=rank, row=row, score=score, mode=mode,
                similarity=sim if dense else None,
                cosine_distance=1.0 - sim if dense else None,
                text=text, matched_text=why.matched_text, matched_terms=why.matched_terms,
                spans=why.spans, columns=record,
                query=None if queries is None else queries[q],
                query_index=None if queries is None else q,
            ))
    return hits


def similar_hits(  # noqa: PLR0913 - keyword options of the notebook and CLI
    index: store.Index,
    doc: int,
    k: int | None = 10,
    include_self: bool = False,
    log: LogFn = _quiet,
    min_similarity: float | None = None,
    where: str | None = None,
    exact: bool = False,
    *,
    options: Any = None,
    allowed: np.ndarray | None = None,
    parts: Any = None,
) -> list[Hit]:
    """The ``k`` documents most similar to document ``doc``, ranked by
    :func:`simsearch.retrieval.rank.rank`.

    Args:
        index: an opened index (:func:`simsearch.store.index.load_index`).
        doc: 0-based row of the query document.
        k: number of results (clamped to the documents available); None with
            ``min_similarity``: every document at or above it.
        include_self: keep ``doc`` itself in the list (it ranks first at distance 0),
            exactly like the notebook's ``cosine_distances(...)[doc].argsort()[:k]``.
        log: receives one-line notices (k clamped, empty query document).
        min_similarity: keep only documents with cosine similarity ``>=`` this.
        where: a filter over the source columns (SQL condition, e.g.
            ``"year >= 2020 and applicant == '삼성전자'"``; see :mod:`simsearch.retrieval.filters`),
            applied before ranking: only matching rows are returned. ``doc`` itself
            need not match.
        exact: scan the whole matrix even when the index has an approximate (ANN) index;
            by default an ANN index is used when present (see :mod:`simsearch.retrieval.ann`).
        options: :func:`search_options` (mode ``hybrid``, ``dense`` or ``lexical``;
            default: hybrid when the index has a lexical index). Dense compares the two
            documents' row vectors (the L2-normalised mean of their windows); lexical
            queries BM25 with the document's own terms.
        allowed: optional ``(n_docs,)`` bool row filter applied before ranking (with
            ``where``: the rows both allow).
        parts: the index's ranking parts opened earlier (:func:`open_parts` for this
            mode and ``exact``; what :class:`simsearch.searcher.Searcher` keeps), else
            opened here.

    Returns:
        up to ``k`` :class:`~simsearch.retrieval.hit.Hit` (``matched_text``: the hit's
        window closest to the document; ``matched_terms``: shared terms, rarest first).
        Empty documents are never results.

    Raises:
        InvalidParameter: ``doc`` out of range, ``k < 1``, a mode the index cannot run,
            or a bad filter (:class:`~simsearch.retrieval.filters.InvalidFilter`).
    """
    from simsearch.retrieval.matches import rarest_first
    from simsearch.retrieval.rank import Query, check_min_similarity, rank

    check_doc(doc, index)
    check_min_similarity(min_similarity)
    allow = row_filter(index, where, allowed, log)
    options = options or search_options()
    parts = parts if parts is not None else open_parts(index, options.mode, exact)
    run = parts.mode(options.mode)
    value = index.rows([doc])[0].get(index.column)
    if not str(value or "").strip():
        log(f"document {doc} is empty, so every cosine distance to it is 1")
    query = Query(docs=np.array([doc], np.int64), include_self=include_self)
    ranked = rank(parts, query, k, options, allow, min_similarity, log)
    terms = None
    if run != "dense" and parts.retriever.lexical is not None:
        # The document's terms come from the BM25 matrix: no Kiwi start-up in similar.
        own = parts.retriever.lexical.document_terms(doc)
        terms = rarest_first(parts.retriever.lexical, own, limit=len(own)) if own else None
    return make_hits(index, parts, ranked, run, [terms])


def encode_queries(
    index: store.Index,
    texts: Sequence[str],
    device: str | None = None,
    batch_size: int = 32,
    encoder: Any = None,
    log: LogFn | None = None,
    transform: Any = False,
) -> np.ndarray:
    """Encode query texts with the model recorded in the index (never another one).

    On the CPU this runs the model's ONNX export when ``index`` made one (no torch
    import: a cold query takes well under 2 s), else sentence-transformers; see
    :func:`simsearch.encoding.encoders.query_encoder`.

    A whitened index (``index --whiten``) or one with a flow (``index --flow``) applies
    its stored transform to the queries, exactly as to the documents (the flow runs in
    onnxruntime, so the ONNX query path still imports no torch). ``encoder``: one made
    earlier by :func:`~simsearch.encoding.encoders.query_encoder` for this index, so a long-running
    caller (``simsearch serve``) loads the model once; ``transform``: the index's
    :func:`~simsearch.transforms.load_transform` loaded earlier (None: no transform;
    the default ``False``: load it here).

    Returns:
        ``(len(texts), dim)`` float32, L2-normalised, ``dim`` the index's search dimension.

    Raises:
        SimsearchError: the model cannot be loaded or its dimension differs from the index.
    """
    from simsearch.encoding.encoders import query_encoder

    encoder = encoder if encoder is not None else query_encoder(index, device, log)
    vectors = encoder.encode(texts, batch_size)
    if vectors.shape[1] != index.meta.dim:
        raise SimsearchError(
            f"model {index.model} makes {vectors.shape[1]}-d embeddings but the index holds "
            f"{index.meta.dim}-d ones; rebuild the index with 'simsearch index --rebuild'"
        )
    if transform is False:
        from simsearch.transforms import load_transform

        transform = load_transform(index)
    return vectors if transform is None else transform.apply(vectors)


def check_texts(texts: Sequence[str]) -> list[str]:
    """``texts`` as a list, checked: at least one, none empty or blank.

    Raises:
        SimsearchError: no query text, or an empty one (named by its 1-based number).
    """
    texts = list(texts)
    if not texts:
        raise SimsearchError("no query given; give at least one query text")
    for i, text in enumerate(texts):
        if not text.strip():
            raise SimsearchError(f"query {i + 1} is empty; give some text to search for")
    return texts


def query_hits(  # noqa: PLR0913 - keyword options of the notebook and CLI query
    index: store.Index,
    texts: Sequence[str],
    k: int | None = 10,
    device: str | None = None,
    batch_size: int = 32,
    log: LogFn = _quiet,
    min_similarity: float | None = None,
    encoder: Any = None,
    where: str | None = None,
    exact: bool = False,
    *,
    options: Any = None,
    allowed: np.ndarray | None = None,
    parts: Any = None,
    transform: Any = False,
) -> list[Hit]:
    """The ``k`` documents nearest to each query text (the model loads once for all;
    ``encoder`` as in :func:`encode_queries`); ``k`` and ``min_similarity`` as in
    :func:`similar_hits`; through the index's ANN index when it has one, unless ``exact``.

    Args:
        options: :func:`search_options`: mode ``hybrid``, ``dense`` or ``lexical``
            (default: hybrid when the index has a lexical index; lexical loads no model)
            and ``aggregate``, a row's score from its windows' cosine similarities:
            ``max`` (its best window) or ``mean``.

    ``where`` and ``allowed`` (a ``(n_docs,)`` bool mask) filter the rows before ranking,
    as in :func:`similar_hits`; ``parts`` as there, ``transform`` as in
    :func:`encode_queries`.

    Returns:
        up to ``len(texts) * k`` :class:`~simsearch.retrieval.hit.Hit` with ``query`` and
        ``query_index``, grouped by query in input order; ``matched_terms`` are the
        query's terms found in the row.

    Raises:
        SimsearchError: no query text, an empty query, ``k < 1``, a bad filter, or a
            model problem.
    """
    texts = check_texts(texts)
    from simsearch.retrieval.rank import Query, check_min_similarity, rank

    check_min_similarity(min_similarity)
    allow = row_filter(index, where, allowed, log)  # a bad filter fails before the model loads
    options = options or search_options()
    parts = parts if parts is not None else open_parts(index, options.mode, exact)
    run = parts.mode(options.mode)
    terms = vectors = None
    if run == "dense":
        vectors = encode_queries(index, texts, device, batch_size, encoder, log, transform)
    else:
        from simsearch.retrieval import bm25 as lexical

        if run == "lexical":
            terms = lexical.tokenize(texts)
        else:  # Kiwi analyses the queries in a thread while the model loads or encodes
            pending = _pool().submit(lexical.tokenize, texts)
            vectors = encode_queries(index, texts, device, batch_size, encoder, log, transform)
            terms = pending.result()
    ranked = rank(parts, Query(vectors=vectors, terms=terms), k, options, allow,
                  min_similarity, log)
    return make_hits(index, parts, ranked, run, terms or [None] * len(texts), queries=texts)


_POOL: list[Any] = []


def _pool() -> Any:
    """The process's one worker thread for query analysis (started once: a warm query
    starts no thread)."""
    if not _POOL:
        from concurrent.futures import ThreadPoolExecutor

        _POOL.append(ThreadPoolExecutor(1, thread_name_prefix="simsearch-kiwi"))
    return _POOL[0]


def hits_frame(hits: list[Hit]) -> pd.DataFrame:
    """Results as a DataFrame: the source columns plus ``row``, ``rank``,
    ``cosine_distance``, ``similarity``, ``score``, ``mode``, ``matched_text``,
    ``matched_terms`` (and ``query`` for query results)."""
    import pandas as pd

    rows = []
    for hit in hits:
        row = dict(hit.columns)
        if hit.query is not None:
            row["query"] = hit.query
        row.update(
            row=hit.row,
            rank=hit.rank,
            cosine_distance=hit.cosine_distance,
            similarity=hit.similarity,
            score=hit.score,
            mode=hit.mode,
            matched_text=hit.matched_text,
            matched_terms=hit.matched_terms,
        )
        rows.append(row)
    return pd.DataFrame(rows)
