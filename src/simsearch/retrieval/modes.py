"""Search modes over one corpus: dense (rows or windows), lexical (BM25 over Kiwi terms)
and hybrid (the two rankings fused), for a query and for ``similar``.

This is the ranking core below the index store: it takes arrays and a
:class:`~simsearch.retrieval.bm25.LexicalIndex` and returns rows, so a notebook, the CLI and the
benchmark share it. A row filter (``allowed``, ``(n_rows,)`` bool) is applied before
every ranking, so ``k`` rows come back whenever ``k`` rows are allowed (dense and hybrid;
lexical returns only rows that share a term with the query).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from simsearch.retrieval import dense as window_ranking
from simsearch.retrieval import fusion
from simsearch.retrieval.bm25 import LexicalIndex, top_k_scores

MODES = ("hybrid", "dense", "lexical")


@dataclass(frozen=True)
class SearchOptions:
    """How rows are ranked.

    Attributes:
        mode: ``"hybrid"``, ``"dense"``, ``"lexical"``, or ``None`` for hybrid when the
            index has both parts, else the part it has.
        aggregate: window scores to a row score for queries, ``"max"`` or ``"mean"``.
        doc_score: document-to-document score over windows for ``similar``
            (see :func:`simsearch.retrieval.dense.document_scores`); ``centroid`` (mean
            of windows) measured at least as good as the mean of best matches on the
            sample patents with three models (docs/retrieval.md), and is cheaper.
        fusion: how hybrid fuses (method, dense weight, depth).
    """

    mode: str | None = None
    aggregate: str = "max"
    doc_score: str = "centroid"
    fusion: fusion.FusionOptions = field(default_factory=fusion.FusionOptions)

    def __post_init__(self) -> None:
        if self.mode is not None and self.mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if self.aggregate not in window_ranking.AGGREGATES:
            raise ValueError(
                f"aggregate must be one of {', '.join(window_ranking.AGGREGATES)}, "
                f"got {self.aggregate!r}"
            )


@dataclass
class Retriever:
    """The searchable parts of an index.

    Attributes:
        embeddings: ``(n_windows, dim)`` float32 L2-normalised search vectors (one per row
            when the index has no windows), or ``None`` for a lexical-only retriever.
        offsets: ``(n_rows + 1,)`` int64 window map (``arange(n_rows + 1)`` without windows).
        lexical: the BM25 index, or ``None``.
        window_map: ``(n_windows, 3)`` int64 row/start/end of each window, or ``None``
            when every row is one window.
    """

    embeddings: np.ndarray | None
    offsets: np.ndarray
    lexical: LexicalIndex | None = None
    window_map: np.ndarray | None = None

    @property
    def n_rows(self) -> int:
        return len(self.offsets) - 1

    def first_windows(self) -> Retriever:
        """The same retriever with each row's first window only: what a model that
        truncates its input sees (``chunking none`` on an index with windows)."""
        if self.embeddings is None or self.window_map is None:
            return self
        first = self.offsets[:-1]
        emb = np.asarray(self.embeddings[first])
        ident = np.arange(self.n_rows + 1, dtype=np.int64)
        return Retriever(emb, ident, self.lexical, np.asarray(self.window_map[first]))

    def row_windows(self, row: int, text: str) -> list[tuple[int, int]]:
        """Character ranges of ``row``'s windows (the whole text when it was not split)."""
        if self.window_map is None:
            return [(0, len(text))]
        a, b = self.offsets[row], self.offsets[row + 1]
        return [(int(s), int(e)) for _, s, e in np.asarray(self.window_map[a:b])]

    def mode(self, wanted: str | None) -> str:
        """The mode to run: ``wanted``, or the default for the parts present.

        Raises:
            ValueError: the mode needs a part this index lacks.
        """
        return resolve_mode(wanted, self.embeddings is not None, self.lexical is not None)


def resolve_mode(wanted: str | None, has_dense: bool, has_lexical: bool) -> str:
    """The mode to run: ``wanted``, or hybrid when both parts exist, else the one there is.

    Raises:
        ValueError: the mode needs a part the index lacks.
    """
    if wanted is None:
        if has_dense and has_lexical:
            return "hybrid"
        return "dense" if has_dense else "lexical"
    if wanted in ("hybrid", "lexical") and not has_lexical:
        raise ValueError(f"{wanted} search needs a lexical index, and this index has none")
    if wanted in ("hybrid", "dense") and not has_dense:
        raise ValueError(f"{wanted} search needs embeddings, and this index has none")
    return wanted


@dataclass(frozen=True)
class Ranked:
    """The top rows for one query.

    Attributes:
        rows: ``(k,)`` int64, best first.
        scores: ``(k,)`` float32 in the mode's own unit: cosine similarity (dense), BM25
            (lexical), fused score (hybrid).
        similarity: ``(k,)`` float32 aggregated cosine similarity of each row (NaN when no
            query vector was given, e.g. lexical mode).
        windows: ``(k,)`` int64 best-matching window of each row by cosine (-1 when no
            query vector was given).
    """

    rows: np.ndarray
    scores: np.ndarray
    similarity: np.ndarray
    windows: np.ndarray


def _dense_detail(
    retriever: Retriever, vector: np.ndarray | None, rows: np.ndarray, how: str
) -> tuple[np.ndarray, np.ndarray]:
    """Aggregated cosine similarity and best window of the given rows for one vector."""
    sims = np.full(len(rows), np.nan, dtype=np.float32)
    windows = np.full(len(rows), -1, dtype=np.int64)
    if vector is None or retriever.embeddings is None:
        return sims, windows
    off = retriever.offsets
    for j, r in enumerate(rows.tolist()):
        scores = np.asarray(retriever.embeddings[off[r] : off[r + 1]]) @ vector
        windows[j] = off[r] + int(np.argmax(scores))
        sims[j] = scores.max() if how == "max" else scores.mean()
    return sims, windows


def _finish(
    retriever: Retriever, rows: np.ndarray, scores: np.ndarray, vector, how: str
) -> Ranked:
    sims, windows = _dense_detail(retriever, vector, rows, how)
    return Ranked(rows, scores.astype(np.float32), sims, windows)


def search(
    retriever: Retriever,
    vectors: np.ndarray | None,
    terms: list[list[str]] | None,
    k: int,
    options: SearchOptions = SearchOptions(),
    allowed: np.ndarray | None = None,
) -> list[Ranked]:
    """Top-k rows for each query.

    Args:
        retriever: the index parts.
        vectors: ``(m, dim)`` float32 L2-normalised query embeddings (needed by dense and
            hybrid; ``None`` in lexical mode, so no model is loaded).
        terms: ``m`` lists of query terms (:func:`simsearch.retrieval.bm25.tokenize`; needed by
            lexical and hybrid).
        k: results per query.
        options: mode, aggregation, fusion.
        allowed: optional ``(n_rows,)`` bool row filter, applied before ranking.

    Returns:
        ``m`` :class:`Ranked`, one per query.

    Raises:
        ValueError: ``k < 1``, or the mode needs a part that is missing.
    """
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    mode = retriever.mode(options.mode)
    n_queries = len(vectors) if vectors is not None else len(terms or [])
    out = []
    dense_top = None
    depth = max(options.fusion.depth, k)
    if mode != "lexical":
        dense_top = window_ranking.top_k_rows(
            retriever.embeddings, retriever.offsets, vectors,
            k if mode == "dense" else depth, how=options.aggregate, allowed=allowed,
        )
    for q in range(n_queries):
        vector = None if vectors is None else vectors[q]
        if mode == "dense":
            out.append(Ranked(dense_top.rows[q], dense_top.scores[q], dense_top.scores[q],
                              dense_top.windows[q]))
            continue
        lex_scores = retriever.lexical.scores(terms[q])
        if mode == "lexical":
            rows, scores = top_k_scores(lex_scores, k, allowed)
            out.append(_finish(retriever, rows, scores, vector, options.aggregate))
            continue
        lex = top_k_scores(lex_scores, depth, allowed)
        dense = (dense_top.rows[q], dense_top.scores[q])
        rows, scores = _fused_top(dense, lex, retriever.n_rows, k, options)
        out.append(_finish(retriever, rows, scores, vector, options.aggregate))
    return out


def _fused_top(dense, lexical, n_rows: int, k: int, options: SearchOptions):
    """Top-k of the fused scores over the rows of either list. Every candidate counts,
    also one whose fused score is 0 (the last of the dense list with no BM25 score), so
    ``k`` rows come back whenever the dense list holds ``k``."""
    fused = fusion.fuse(dense, lexical, n_rows, options.fusion)
    candidate = np.zeros(n_rows, dtype=bool)
    candidate[np.asarray(dense[0], dtype=np.int64)] = True
    candidate[np.asarray(lexical[0], dtype=np.int64)] = True
    fused[~candidate] = -np.inf
    return top_k_scores(fused, k, positive_only=False)


def similar(
    retriever: Retriever,
    doc: int,
    k: int,
    options: SearchOptions = SearchOptions(),
    allowed: np.ndarray | None = None,
    include_self: bool = False,
    doc_terms: list[str] | None = None,
) -> Ranked:
    """Top-k rows most similar to row ``doc``.

    ``doc_terms``: the document's lexical terms (default: read from the lexical index,
    which must then hold its terms).

    Dense: :func:`simsearch.retrieval.dense.document_scores` with ``options.doc_score``.
    Lexical: BM25 with the document's own unique terms as the query. Hybrid: both fused.

    Returns:
        :class:`Ranked`; ``windows`` holds each hit's window closest to any window of
        ``doc`` (dense and hybrid).

    Raises:
        ValueError: ``k < 1``, ``doc`` out of range, or the mode needs a missing part.
    """
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    if not 0 <= doc < retriever.n_rows:
        raise ValueError(f"doc {doc} is out of range (0 to {retriever.n_rows - 1})")
    mode = retriever.mode(options.mode)
    depth = max(options.fusion.depth, k)
    dense = lex = None
    if mode != "lexical":
        dense = window_ranking.top_k_similar(
            retriever.embeddings, retriever.offsets, doc, k if mode == "dense" else depth,
            options.doc_score, allowed=allowed, include_self=include_self,
        )
    if mode != "dense":
        if doc_terms is None:
            doc_terms = retriever.lexical.document_terms(doc)
        scores = retriever.lexical.scores(doc_terms)
        lex = top_k_scores(scores, k if mode == "lexical" else depth, allowed,
                           exclude=None if include_self else doc)
    if mode == "dense":
        rows, scores = dense
    elif mode == "lexical":
        rows, scores = lex
    else:
        rows, scores = _fused_top(dense, lex, retriever.n_rows, k, options)
    sims, windows = _similar_detail(retriever, doc, rows)
    return Ranked(rows, scores.astype(np.float32), sims, windows)


def _similar_detail(retriever: Retriever, doc: int, rows: np.ndarray):
    """Cosine similarity of the mean window vectors (the dense ``similar`` score) and each
    row's window closest to any window of ``doc``."""
    sims = np.full(len(rows), np.nan, dtype=np.float32)
    windows = np.full(len(rows), -1, dtype=np.int64)
    if retriever.embeddings is None:
        return sims, windows
    off = retriever.offsets
    own = np.asarray(retriever.embeddings[off[doc] : off[doc + 1]])
    mine = _unit(own.mean(axis=0))
    for j, r in enumerate(rows.tolist()):
        theirs = np.asarray(retriever.embeddings[off[r] : off[r + 1]])
        windows[j] = off[r] + int(np.argmax((theirs @ own.T).max(axis=1)))
        sims[j] = float(_unit(theirs.mean(axis=0)) @ mine)
    return sims, windows


def _unit(vector: np.ndarray) -> np.ndarray:
    return vector / max(float(np.linalg.norm(vector)), 1e-12)
