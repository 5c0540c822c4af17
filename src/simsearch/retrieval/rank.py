"""THE ranking entry point: :func:`rank`, used by ``similar``, ``query``, ``neighbors``,
``dedup``, ``eval``, ``serve`` and the notebook API.

One call ranks ``m`` queries (query vectors and/or terms, or documents of the index) in
one mode (dense, lexical, hybrid):

* dense candidates come from the index's :class:`~simsearch.retrieval.dense_index.DenseIndex`
  (the exact scan, or the ANN when the index has one and ``exact`` is off), lexical ones
  from BM25; hybrid fuses the two lists (:mod:`simsearch.retrieval.fusion`) exactly as
  without an ANN;
* every filter is one :class:`~simsearch.retrieval.rowfilter.RowFilter`; the caller's
  ``allow`` is ANDed with the index's non-empty rows here, before any selection, so an
  empty row (no text) is never a result;
* ``k`` (at least 1, clamped to the rows available with a note) and the similarity
  threshold are checked here and nowhere else;
* selection is :func:`simsearch.retrieval.topk.select` (equal scores: ascending row).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from simsearch.errors import InvalidParameter, ParamNote
from simsearch.retrieval import fusion
from simsearch.retrieval.dense_index import DenseIndex
from simsearch.retrieval.modes import Ranked, Retriever, SearchOptions, resolve_mode
from simsearch.retrieval.rowfilter import RowFilter, both, count
from simsearch.retrieval.topk import select

LogFn = Callable[[str], None]


def _quiet(_msg: str) -> None:
    pass


@dataclass
class Parts:
    """What :func:`rank` ranks over.

    Attributes:
        retriever: window map and lexical index (:class:`~simsearch.retrieval.modes.Retriever`).
        dense: the dense index (None for a lexical-only ranking).
        nonempty: the rows that hold text (None: every row does).
        fusion: the index's stored fusion settings (``eval --tune``; None: the default).
    """

    retriever: Retriever
    dense: DenseIndex | None
    nonempty: RowFilter | None = None
    fusion: fusion.FusionOptions | None = None

    @property
    def n_rows(self) -> int:
        return self.retriever.n_rows

    def first_windows(self) -> Parts:
        """The same parts with each row's first window only (what a model that truncates
        its input sees; ``eval --chunking none``), ranked by the exact scan."""
        from simsearch.retrieval.dense_index import DenseParts, ExactDense

        first = self.retriever.first_windows()
        if first is self.retriever or self.dense is None:
            return self
        vectors = first.embeddings
        return Parts(first, ExactDense(DenseParts(vectors, first.offsets, vectors)),
                     self.nonempty, self.fusion)

    def mode(self, wanted: str | None) -> str:
        """The mode to run (hybrid by default when both parts exist).

        Raises:
            InvalidParameter: the mode needs a part this index lacks.
        """
        try:
            return resolve_mode(wanted, self.dense is not None, self.retriever.lexical is not None)
        except ValueError as exc:
            raise InvalidParameter("mode", f"{{name}} {wanted}: {exc}") from None


@dataclass(frozen=True)
class Query:
    """``m`` queries: texts (``vectors`` and/or ``terms``) or documents of the index.

    Attributes:
        vectors: ``(m, dim)`` float32 L2-normalised (dense and hybrid).
        terms: ``m`` term lists (lexical and hybrid).
        docs: ``(m,)`` int64 when the queries are rows of the index (``similar``): dense
            scores compare row vectors, and each row itself is left out unless
            ``include_self``.
        include_self: see ``docs``.
    """

    vectors: np.ndarray | None = None
    terms: Sequence[Sequence[str]] | None = None
    docs: np.ndarray | None = None
    include_self: bool = False

    @property
    def m(self) -> int:
        if self.docs is not None:
            return len(self.docs)
        return len(self.vectors) if self.vectors is not None else len(self.terms or [])

    def exclude(self) -> np.ndarray | None:
        return None if self.docs is None or self.include_self else np.asarray(self.docs, np.int64)


def check_min_similarity(min_similarity: float | None, mode: str | None = None) -> None:
    """Raises InvalidParameter unless ``min_similarity`` is None or in ``[-1, 1]`` (and
    the mode has cosine similarities)."""
    if min_similarity is None:
        return
    if not -1.0 <= min_similarity <= 1.0:
        raise InvalidParameter(
            "min_similarity",
            f"{{name}} is a cosine similarity between -1 and 1, got {min_similarity}",
        )
    if mode == "lexical":
        raise InvalidParameter(
            "min_similarity",
            "{name} needs cosine similarities, which the lexical mode has none of; "
            "use the dense or hybrid mode",
        )


def check_k(k: int | None, min_similarity: float | None, available: int, filtered: bool,
            log: LogFn) -> int:
    """The number of rows to rank: ``k`` clamped to ``available`` (saying so), or all of
    them when ``k`` is None and a threshold is given.

    Raises:
        InvalidParameter: ``k < 1``.
    """
    if k is None and min_similarity is not None:
        return available
    k = 10 if k is None else k
    if k < 1:
        raise InvalidParameter("k", f"{{name}} must be at least 1, got {k}")
    if k > available:
        what = "documents matching the filter" if filtered else "documents available"
        log(ParamNote(
            "k", f"{{name}} {k} is more than the {available:,} {what}; showing {available:,}"
        ))
        return available
    return k


def rank(  # noqa: PLR0913 - the one ranking call
    parts: Parts,
    query: Query,
    k: int | None,
    options: SearchOptions | None = None,
    allow: RowFilter | None = None,
    min_similarity: float | None = None,
    log: LogFn = _quiet,
) -> list[Ranked]:
    """Top-k rows for each query (see the module docstring).

    Args:
        parts: the index parts (:func:`simsearch.retrieval.parts.open_parts`).
        query: the queries.
        k: rows per query; None with ``min_similarity``: every row at or above it.
        options: mode (None: hybrid when the index has a lexical index), aggregate, fusion.
        allow: rows that may be returned (None: all).
        min_similarity: keep only rows with cosine similarity ``>=`` this.
        log: receives the note when ``k`` is clamped.

    Returns:
        ``m`` :class:`~simsearch.retrieval.modes.Ranked`; ``similarity`` is the row's
        cosine similarity (NaN in lexical mode), ``windows`` its best window (-1 there).

    Raises:
        InvalidParameter: ``k < 1``, a threshold outside ``[-1, 1]`` or in lexical mode,
            a mode the index cannot run.
    """
    options = options or SearchOptions()
    mode = parts.mode(options.mode)
    check_min_similarity(min_similarity, mode)
    allow_all = both(allow, parts.nonempty)
    exclude = query.exclude()
    available = count(allow_all, parts.n_rows)
    if exclude is not None and len(exclude):
        available -= int(allow_all is None or allow_all.mask[exclude[0]])
    want = check_k(k, min_similarity, max(available, 0), allow is not None, log)
    if want < 1:
        empty = Ranked(np.empty(0, np.int64), np.empty(0, np.float32),
                       np.empty(0, np.float32), np.empty(0, np.int64))
        return [empty] * query.m
    vectors = _vectors(parts, query, mode)
    how = "row" if query.docs is not None else options.aggregate
    fused_with = options.fusion_for(parts.fusion)
    depth = want if mode != "hybrid" else max(fused_with.depth, want)
    dense = lexical = None
    if mode != "lexical":
        dense = parts.dense.search(vectors, depth, allow_all, exclude, how)
    if mode != "dense":
        lexical = _lexical(parts, query, depth, allow_all, exclude)
    out = []
    for q in range(query.m):
        if mode == "hybrid":
            rows, scores = _fused(dense[q], lexical[q], parts.n_rows, want, fused_with)
        else:
            rows, scores = (dense if mode == "dense" else lexical)[q]
        vector = None if vectors is None else vectors[q]
        doc = None if query.docs is None else int(query.docs[q])
        sims, windows = _detail(parts, vector, doc, rows, how)
        if mode == "dense":
            sims = scores
        ranked = Ranked(rows, scores.astype(np.float32), sims, windows)
        out.append(_at_least(ranked, min_similarity))
    return out


def _vectors(parts: Parts, query: Query, mode: str) -> np.ndarray | None:
    if mode == "lexical":
        return None
    if query.docs is not None:
        return np.asarray(parts.dense.parts.row_vectors[query.docs], np.float32)
    if query.vectors is None:
        raise ValueError(f"{mode} search needs query vectors")
    return np.atleast_2d(np.asarray(query.vectors, np.float32))


def _lexical(parts, query, depth, allow, exclude) -> list[tuple[np.ndarray, np.ndarray]]:
    """BM25 top lists (only rows sharing a term score above 0)."""
    lex = parts.retriever.lexical
    out = []
    for q in range(query.m):
        terms = lex.document_terms(int(query.docs[q])) if query.docs is not None else query.terms[q]
        scores = np.array(lex.scores(terms), dtype=np.float32)
        scores[scores <= 0] = -np.inf
        if allow is not None:
            scores[~allow.mask] = -np.inf
        if exclude is not None:
            scores[exclude[q]] = -np.inf
        out.append(select(scores, depth)[0])
    return out


def _fused(dense, lexical, n_rows: int, k: int, options: fusion.FusionOptions):
    """Top-k of the fused scores over the rows of either list; every candidate counts,
    also one whose fused score is 0, so ``k`` rows come back whenever the dense list
    holds ``k``."""
    fused = fusion.fuse(dense, lexical, n_rows, options)
    candidate = np.zeros(n_rows, dtype=bool)
    candidate[dense[0]] = True
    candidate[lexical[0]] = True
    fused[~candidate] = -np.inf
    return select(fused, k)[0]


def _detail(parts: Parts, vector, doc: int | None, rows: np.ndarray, how: str):
    """Cosine similarity (the dense score of ``how``) and best window of each row:
    for a document, the hit's window closest to any window of ``doc``."""
    sims = np.full(len(rows), np.nan, dtype=np.float32)
    windows = np.full(len(rows), -1, dtype=np.int64)
    if vector is None or parts.dense is None or not len(rows):
        return sims, windows
    dense = parts.dense.parts
    sims = dense.scores_of(vector, rows, how)
    off = dense.offsets
    own = vector[None, :] if doc is None else np.asarray(dense.vectors[off[doc] : off[doc + 1]])
    for j, r in enumerate(rows.tolist()):
        a, b = int(off[r]), int(off[r + 1])
        theirs = np.asarray(dense.vectors[a:b], np.float32)
        windows[j] = a + (0 if b - a == 1 else int(np.argmax((theirs @ own.T).max(axis=1))))
    return sims.astype(np.float32), windows


def _at_least(ranked: Ranked, min_similarity: float | None) -> Ranked:
    if min_similarity is None:
        return ranked
    keep = ranked.similarity >= np.float32(min_similarity)
    return Ranked(ranked.rows[keep], ranked.scores[keep], ranked.similarity[keep],
                  ranked.windows[keep])
