"""Search modes over one corpus: dense (rows or windows), lexical (BM25 over Kiwi terms)
and hybrid (the two rankings fused): their options, the retriever's parts and the
ranked result. Ranking itself is :func:`simsearch.retrieval.rank.rank`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simsearch.retrieval import dense as window_ranking
from simsearch.retrieval import fusion
from simsearch.retrieval.bm25 import LexicalIndex

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
        fusion: how hybrid fuses (method, dense weight, depth); ``None``: the index's
            stored settings (``eval --tune``), else :data:`fusion.DEFAULT`.
        dense_weight, fusion_method: override the weight or the method of whichever
            fusion applies (``--dense-weight``, ``--fusion``).
    """

    mode: str | None = None
    aggregate: str = "max"
    doc_score: str = "centroid"
    fusion: fusion.FusionOptions | None = None
    dense_weight: float | None = None
    fusion_method: str | None = None

    def __post_init__(self) -> None:
        if self.mode is not None and self.mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if self.aggregate not in window_ranking.AGGREGATES:
            raise ValueError(
                f"aggregate must be one of {', '.join(window_ranking.AGGREGATES)}, "
                f"got {self.aggregate!r}"
            )

    def fusion_for(self, stored: fusion.FusionOptions | None) -> fusion.FusionOptions:
        """The fusion to run: :attr:`fusion`, else ``stored`` (the index's), else
        :data:`fusion.DEFAULT`, with :attr:`dense_weight` / :attr:`fusion_method` put in.

        Raises:
            ValueError: an override out of range (see :class:`fusion.FusionOptions`).
        """
        from dataclasses import replace

        chosen = self.fusion or stored or fusion.DEFAULT
        if self.dense_weight is not None:
            chosen = replace(chosen, dense_weight=float(self.dense_weight))
        if self.fusion_method is not None:
            chosen = replace(chosen, method=self.fusion_method)
        return chosen


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
