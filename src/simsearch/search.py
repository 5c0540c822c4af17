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

from simsearch.errors import InvalidParameter, ParamNote, SimsearchError
from simsearch.retrieval import ann
from simsearch.store import index as store

if TYPE_CHECKING:
    import pandas as pd

LogFn = Callable[[str], None]
Hit = dict[str, Any]


def _quiet(_msg: str) -> None:
    pass


def check_k(
    k: int,
    index: store.Index,
    exclude_self: bool,
    log: LogFn,
    allowed: np.ndarray | None = None,
) -> int:
    """``k`` clamped to the number of candidate documents (saying so through ``log``):
    all documents, or the ``allowed`` rows of a filter.

    Raises:
        InvalidParameter: ``k < 1``.
    """
    if k < 1:
        raise InvalidParameter("k", f"{{name}} must be at least 1, got {k}")
    n = index.n_docs if allowed is None else len(allowed)
    available = n - (1 if exclude_self else 0)
    if k > available:
        what = "documents available" if allowed is None else "documents matching the filter"
        log(
            ParamNote(
                "k", f"{{name}} {k} is more than the {available:,} {what}; showing {available:,}"
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
    retriever: Any,
    ranked: Sequence[Any],
    mode: str,
    query_terms: Sequence[Sequence[str] | None],
    queries: Sequence[str] | None = None,
    limit: int | None = None,
    skip_empty: bool = False,
) -> list[Hit]:
    """Turn rankings into result dicts, reading only the rows that are shown, each with
    why it matched (:func:`simsearch.retrieval.matches.explain`). With ``skip_empty`` empty
    documents never rank: the rankings hold up to ``n_empty`` extra rows, and the first
    ``limit`` others are kept."""
    from simsearch.retrieval.matches import MAX_TERMS, explain, shared_terms

    positions = sorted({int(r) for one in ranked for r in one.rows})
    matched: list[dict[int, list[str]]] = [{} for _ in ranked]
    if retriever.lexical is not None and any(query_terms):
        terms = [t or [] for t in query_terms]
        matched = shared_terms(retriever.lexical, terms, [one.rows for one in ranked])
    records = dict(zip(positions, index.rows(positions)))
    column = index.column
    hits: list[Hit] = []
    for q, one in enumerate(ranked):
        rank = 0
        for row, score, sim, window in zip(
            one.rows.tolist(), one.scores.tolist(), one.similarity.tolist(), one.windows.tolist()
        ):
            record = records[row]
            value = record.get(column)
            text = "" if value is None else str(value)
            if (skip_empty and not text.strip()) or (limit is not None and rank >= limit):
                continue
            rank += 1
            hit: Hit = {}
            if queries is not None:
                hit["query_index"] = q
                hit["query"] = queries[q]
            spans = retriever.row_windows(row, text)
            terms = (matched[q].get(row) or [])[:MAX_TERMS]
            # Show the window holding the matched terms when there are any (what a reader
            # can check), else the best window by cosine.
            best = None if window < 0 or terms else window - int(retriever.offsets[row])
            why = explain(text, spans, best, terms)
            dense = sim == sim  # NaN when no query vector was used (lexical mode)
            hit.update(
                rank=rank,
                row=row,
                cosine_distance=1.0 - sim if dense else None,
                similarity=sim if dense else None,
                score=score,
                mode=mode,
                text=text,
                matched_text=why.matched_text,
                matched_terms=why.matched_terms,
                spans=why.spans,
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
    exact: bool = False,
    allowed: np.ndarray | None = None,
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Exact top-k (:func:`simsearch.retrieval.topk.top_k`) with empty documents left out and an
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
        exclude: as in :func:`simsearch.retrieval.topk.top_k`.
        exact: scan the whole matrix even when the index has an ANN index (see
            :func:`simsearch.retrieval.ann.rank`); without a limit ``k`` the scan is always exact.
        allowed: sorted int64 rows of a filter: only they are ranked (before top-k, so
            ``k`` results come back whenever ``k`` allowed rows qualify).

    Returns:
        ``(indices, similarities)``: per query, an int64 array of rows and a float32
        array of similarities, most similar first (possibly fewer than ``k``).
    """
    queries = np.atleast_2d(queries)
    n_empty = index.meta.n_empty
    want = index.n_docs if k is None else k
    if want < 1:  # e.g. a one-document index asked for documents other than itself
        return [np.empty(0, np.int64)] * len(queries), [np.empty(0, np.float32)] * len(queries)
    if allowed is not None and len(allowed) == 0:
        return [np.empty(0, np.int64)] * len(queries), [np.empty(0, np.float32)] * len(queries)
    n = min(want + n_empty, index.n_docs if allowed is None else len(allowed))
    use_ann = not exact and k is not None and "ann" in index.meta.files
    if allowed is None or use_ann:
        indices, sims = ann.rank(
            index, queries, n, exclude=exclude, exact=not use_ann, allowed=allowed
        )
    else:
        from simsearch.retrieval.filters import top_k_within

        indices, sims = top_k_within(index.embeddings, queries, n, allowed, exclude)
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


def search_options(mode: str | None = None, aggregate: str = "max") -> Any:
    """:class:`~simsearch.retrieval.modes.SearchOptions` from keyword values.

    Raises:
        InvalidParameter: unknown ``mode`` or ``aggregate``.
    """
    from simsearch.retrieval.dense import AGGREGATES
    from simsearch.retrieval.fusion import DEFAULT
    from simsearch.retrieval.modes import MODES, SearchOptions

    if mode is not None and mode not in MODES:
        raise InvalidParameter("mode", f"{{name}} must be one of {', '.join(MODES)}, got {mode!r}")
    if aggregate not in AGGREGATES:
        raise InvalidParameter(
            "aggregate", f"{{name}} must be one of {', '.join(AGGREGATES)}, got {aggregate!r}"
        )
    return SearchOptions(mode=mode, aggregate=aggregate, fusion=DEFAULT)


def _open(index: store.Index, options: Any) -> tuple[Any, str]:
    """The index's retriever and the mode to run; the lexical index is read only when
    the mode uses it (a dense query stays as fast as before)."""
    from simsearch.retrieval.modes import resolve_mode

    # An index built for millions of documents (--ann) searches dense by default: the
    # hybrid fusion needs exact dense scores over its candidates, which the ANN avoids.
    wanted = "dense" if options.mode is None and "ann" in index.meta.files else options.mode
    try:
        run = resolve_mode(wanted, True, index.meta.lexical is not None)
    except ValueError as exc:
        raise InvalidParameter("mode", f"{{name}} {options.mode}: {exc}") from None
    return index.retriever(lexical=run != "dense"), run


def _plain_dense(index: store.Index, run: str) -> bool:
    """Dense ranking over one vector per row (no windows): the exact or ANN scan of
    :func:`rank`, with empty documents left out and the similarity threshold."""
    return run == "dense" and "windows" not in index.meta.files


def _as_ranked(indices: Sequence[np.ndarray], sims: Sequence[np.ndarray]) -> list[Any]:
    from simsearch.retrieval.modes import Ranked

    return [Ranked(ids, s, s, ids) for ids, s in zip(indices, sims)]


def _at_least(ranked: list[Any], min_similarity: float | None, run: str) -> list[Any]:
    """Only the rows at or above the cosine-similarity threshold (hybrid and windows)."""
    if min_similarity is None:
        return ranked
    if run == "lexical":
        raise InvalidParameter(
            "min_similarity",
            "{name} needs cosine similarities, which the lexical mode has none of; "
            "use the dense or hybrid mode",
        )
    from simsearch.retrieval.modes import Ranked

    out = []
    for one in ranked:
        keep = one.similarity >= np.float32(min_similarity)
        out.append(
            Ranked(one.rows[keep], one.scores[keep], one.similarity[keep], one.windows[keep])
        )
    return out


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
) -> list[Hit]:
    """The ``k`` documents most similar to document ``doc``.

    Args:
        index: an opened index (:func:`simsearch.store.index.load_index`).
        doc: 0-based row of the query document.
        k: number of results (clamped to the corpus size); None with ``min_similarity``:
            every document at or above it.
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
            documents' mean window vectors (see
            :func:`simsearch.retrieval.dense.document_scores`); lexical queries BM25 with
            the document's own terms.
        allowed: optional ``(n_docs,)`` bool row filter applied before ranking (with
            ``where``: the rows both allow).

    Returns:
        ``k`` dicts with keys ``rank`` (1-based), ``row`` (0-based), ``cosine_distance``,
        ``similarity`` (None in lexical mode), ``score`` (the mode's score), ``mode``,
        ``text``, ``matched_text`` (the hit's window closest to the document),
        ``matched_terms`` (shared terms, rarest first), ``spans`` and ``columns``.

    Raises:
        InvalidParameter: ``doc`` out of range, ``k < 1``, a mode the index cannot run,
            or a bad filter (:class:`~simsearch.retrieval.filters.InvalidFilter`).
    """
    from simsearch.retrieval import modes as retrieval
    from simsearch.retrieval.matches import rarest_first

    check_doc(doc, index)
    rows = _filter_rows(index, where, allowed, log)
    self_candidate = rows is None or bool(np.isin(doc, rows))
    exclude_self = not include_self and self_candidate
    k = _limit(k, min_similarity, index, exclude_self=exclude_self, log=log, allowed=rows)
    if k == 0:  # a one-document index has no other document to return
        return []
    options = options or search_options()
    retriever, run = _open(index, options)
    value = index.rows([doc])[0].get(index.column)
    text = "" if value is None else str(value)
    if not text.strip():
        log(f"document {doc} is empty, so every cosine distance to it is 1")
    if _plain_dense(index, run):
        query = np.asarray(index.embeddings[doc], dtype=np.float32)
        exclude = None if include_self else np.array([doc])
        indices, sims = rank(
            index, query, k, min_similarity, exclude=exclude, exact=exact, allowed=rows
        )
        return _hits(index, retriever, _as_ranked(indices, sims), run, [None])
    # The document's terms come from the BM25 matrix: no Kiwi start-up in similar.
    terms = None if retriever.lexical is None else retriever.lexical.document_terms(doc)
    limit = index.n_docs if rows is None else len(rows)
    want = min((k or limit) + index.meta.n_empty, limit - exclude_self)
    mask = _mask(rows, index.n_docs)
    ranked = retrieval.similar(retriever, doc, want, options, mask, include_self, doc_terms=terms)
    ranked = _at_least([ranked], min_similarity, run)
    shown = rarest_first(retriever.lexical, terms, limit=len(terms)) if terms else None
    return _hits(index, retriever, ranked, run, [shown], limit=k, skip_empty=True)


def _limit(
    k: int | None,
    min_similarity: float | None,
    index: store.Index,
    exclude_self: bool,
    log: LogFn,
    allowed: np.ndarray | None = None,
) -> int | None:
    """``k`` checked (against the ``allowed`` rows of a filter when given); None (no
    limit) only with a threshold."""
    check_min_similarity(min_similarity)
    if k is None and min_similarity is not None:
        return None
    return check_k(10 if k is None else k, index, exclude_self, log, allowed=allowed)


def _filter_rows(
    index: store.Index, where: str | None, allowed: np.ndarray | None, log: LogFn
) -> np.ndarray | None:
    """Sorted int64 rows that both the ``where`` filter and the ``allowed`` bool mask
    keep (None: no filter at all)."""
    rows = _allowed(index, where, log)
    if allowed is None:
        return rows
    kept = np.flatnonzero(np.asarray(allowed, dtype=bool))
    return kept if rows is None else np.intersect1d(rows, kept)


def _mask(rows: np.ndarray | None, n_docs: int) -> np.ndarray | None:
    """``(n_docs,)`` bool mask of ``rows`` (the form the retrieval layer takes)."""
    if rows is None:
        return None
    from simsearch.retrieval.filters import row_mask

    return row_mask(rows, n_docs)


def _allowed(index: store.Index, where: str | None, log: LogFn) -> np.ndarray | None:
    """The rows a filter allows (None: no filter), saying how many through ``log``."""
    if where is None:
        return None
    from simsearch.retrieval.filters import index_rows

    rows = index_rows(index, where)
    log(f"{len(rows):,} of {index.n_docs:,} documents match the filter")
    return rows


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
    :func:`simsearch.encoding.encoders.query_encoder`.

    A whitened index (``index --whiten``) or one with a flow (``index --flow``) applies
    its stored transform to the queries, exactly as to the documents (the flow runs in
    onnxruntime, so the ONNX query path still imports no torch). ``encoder``: one made
    earlier by :func:`~simsearch.encoding.encoders.query_encoder` for this index, so a long-running
    caller (``simsearch serve``) loads the model once.

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
    from simsearch.transforms import load_transform

    transform = load_transform(index)
    return vectors if transform is None else transform.apply(vectors)


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
) -> list[Hit]:
    """The ``k`` documents nearest to each query text (the model loads once for all;
    ``encoder`` as in :func:`encode_queries`); ``k`` and ``min_similarity`` as in
    :func:`similar_hits`; through the index's ANN index when it has one, unless ``exact``.

    Args:
        options: :func:`search_options`: mode ``hybrid``, ``dense`` or ``lexical``
            (default: hybrid when the index has a lexical index; lexical loads no model)
            and ``aggregate``, a row's score from its windows' cosine similarities:
            ``max`` (its best window) or ``mean``.

    A row filter plugs in below: :func:`simsearch.retrieval.modes.search` takes ``allowed``, a
    ``(n_docs,)`` bool mask applied before ranking.

    ``where`` filters the rows before ranking, as in :func:`similar_hits`.

    Returns:
        ``len(texts) * k`` dicts as in :func:`similar_hits`, plus ``query_index`` and
        ``query``, grouped by query in input order; ``matched_terms`` are the query's
        terms found in the row.

    Raises:
        SimsearchError: no query text, an empty query, ``k < 1``, a bad filter, or a
            model problem.
    """
    texts = list(texts)
    if not texts:
        raise SimsearchError("no query given; give at least one query text")
    for i, text in enumerate(texts):
        if not text.strip():
            raise SimsearchError(f"query {i + 1} is empty; give some text to search for")
    from simsearch.retrieval import modes as retrieval

    check_min_similarity(min_similarity)
    rows = _filter_rows(index, where, allowed, log)  # a bad filter fails before the model loads
    options = options or search_options()
    retriever, run = _open(index, options)
    terms = vectors = None
    if run == "dense":
        vectors = encode_queries(index, texts, device, batch_size, encoder, log)  # model first
        k = _limit(k, min_similarity, index, exclude_self=False, log=log, allowed=rows)
        if _plain_dense(index, run):
            indices, sims = rank(index, vectors, k, min_similarity, exact=exact, allowed=rows)
            return _hits(
                index, retriever, _as_ranked(indices, sims), run, [None] * len(texts), texts
            )
    else:
        # Kiwi starts in a thread while the query model loads (both take a moment).
        from concurrent.futures import ThreadPoolExecutor

        from simsearch.retrieval import bm25 as lexical

        with ThreadPoolExecutor(1) as pool:
            pending = pool.submit(lexical.tokenize, texts)
            if run == "hybrid":
                vectors = encode_queries(index, texts, device, batch_size, encoder, log)
            terms = pending.result()
        k = _limit(k, min_similarity, index, exclude_self=False, log=log, allowed=rows)
    limit = index.n_docs if rows is None else len(rows)
    want = min((k or limit) + index.meta.n_empty, limit)
    if want < 1:
        return []
    ranked = retrieval.search(retriever, vectors, terms, want, options, _mask(rows, index.n_docs))
    ranked = _at_least(ranked, min_similarity, run)
    return _hits(
        index, retriever, ranked, run, terms or [None] * len(texts), queries=texts, limit=k,
        skip_empty=True,
    )


def hits_frame(hits: list[Hit]) -> pd.DataFrame:
    """Results as a DataFrame: the source columns plus ``row``, ``rank``,
    ``cosine_distance``, ``similarity``, ``score``, ``mode``, ``matched_text``,
    ``matched_terms`` (and ``query`` for query results)."""
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
            score=hit["score"],
            mode=hit["mode"],
            matched_text=hit["matched_text"],
            matched_terms=hit["matched_terms"],
        )
        rows.append(row)
    return pd.DataFrame(rows)


def similar(  # noqa: PLR0913 - keyword options of the notebook API
    doc: int,
    k: int | None = 10,
    *,
    root: str | os.PathLike = store.DEFAULT_ROOT,
    name: str = store.DEFAULT_NAME,
    include_self: bool = False,
    min_similarity: float | None = None,
    where: str | None = None,
    exact: bool = False,
    mode: str | None = None,
) -> pd.DataFrame:
    """Notebook API: the ``k`` documents most similar to row ``doc`` of the indexed file
    (through the approximate index when the index has one; ``exact=True`` scans all).

    ``where`` keeps only rows matching an SQL condition over the source columns,
    applied before ranking (see :mod:`simsearch.retrieval.filters`).

    Example:
        >>> simsearch.similar(0, k=5, where="year >= 2020")  # doctest: +SKIP

    Args:
        k: at most this many rows; None with ``min_similarity``: no limit.
        min_similarity: keep only rows with cosine similarity ``>=`` this.

    Returns:
        A DataFrame of up to ``k`` rows, nearest first (see :func:`hits_frame`).

    Raises:
        SimsearchError: no index, ``doc`` out of range, ``k < 1``, a threshold outside
            ``[-1, 1]``, a bad filter.
    """
    index = store.load_index(root, name)
    found = similar_hits(
        index, doc, k, include_self, min_similarity=min_similarity, exact=exact,
        where=where, options=search_options(mode),
    )
    return hits_frame(found)


def query(  # noqa: PLR0913 - keyword options of the notebook and CLI
    text: str | Sequence[str],
    k: int = 10,
    *,
    root: str | os.PathLike = store.DEFAULT_ROOT,
    name: str = store.DEFAULT_NAME,
    device: str | None = None,
    min_similarity: float | None = None,
    where: str | None = None,
    exact: bool = False,
    mode: str | None = None,
    aggregate: str = "max",
) -> pd.DataFrame:
    """Notebook API: the ``k`` documents most similar to a query text (or to each of
    several), encoded with the index's own model (through the approximate index when
    the index has one; ``exact=True`` scans all); ``where`` filters rows before
    ranking, as in :func:`similar`.

    Returns:
        A DataFrame of ``k`` rows per query with a ``query`` column (see :func:`hits_frame`).

    Raises:
        SimsearchError: no index, empty query, ``k < 1``, a bad filter, model problems.
    """
    texts = [text] if isinstance(text, str) else list(text)
    index = store.load_index(root, name)
    options = search_options(mode, aggregate)
    found = query_hits(
        index, texts, k, device=device, min_similarity=min_similarity, exact=exact,
        where=where, options=options,
    )
    return hits_frame(found)
