"""Brute-force reference rankings for tests/test_combinations.py.

Everything here is recomputed from an index's stored arrays (the search matrix and the
window map) or from the texts themselves, with numpy, :mod:`bm25s` and the fusion that
``docs/retrieval.md`` documents, never through simsearch's ranking code:

* dense, query: cosine similarity of the query vector with every window, a row scoring
  as its best window (the default aggregate ``max``);
* dense, ``similar``: cosine similarity of row centroids (the mean of a row's window
  vectors, L2-normalised; with one vector per row, the row vector itself);
* lexical: BM25 (``bm25s``, k1 1.5, b 0.75, the "lucene" method) over the Kiwi terms of
  :func:`simsearch.text.kiwi.tokenize`; ``similar`` queries with the document's unique
  terms, in order of first occurrence;
* hybrid: a convex combination, ``w * minmax(dense) + (1 - w) * minmax(bm25)``, each list
  min-max normalised over its own top ``depth`` candidates (a row missing from a list gets
  0 from it), ``w`` the dense weight the index recorded at build time (metadata section
  ``lexical``, the label-free estimate of docs/retrieval.md) and ``depth = max(100, k)``,
  ranking the union of both lists.

Rules every mode shares: the candidates are the rows the filter keeps, less the empty
rows (no text) and the query document of ``similar``; lexical candidates must share a
term (BM25 > 0); equal scores rank by ascending row.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

DEPTH = 100


def unit(x: np.ndarray) -> np.ndarray:
    """Rows of ``x`` L2-normalised (a zero row stays zero)."""
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


def ranked(scores: np.ndarray, candidates: np.ndarray, k: int) -> np.ndarray:
    """The ``k`` best candidate rows by score, ties by ascending row (int64)."""
    rows = np.flatnonzero(candidates)
    order = np.lexsort((rows, -scores[rows].astype(np.float64)))
    return rows[order][:k]


def minmax(values: np.ndarray) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    if not len(values):
        return values
    lo, hi = values.min(), values.max()
    return np.ones_like(values) if hi - lo <= 1e-12 else (values - lo) / (hi - lo)


@dataclass
class Expected:
    """The reference answer for one query: rows best first, their scores in the mode's
    unit, their dense similarities (NaN in lexical mode) and the full score vector
    (``-inf`` outside the candidates) for judging near-ties."""

    rows: np.ndarray
    scores: np.ndarray
    similarity: np.ndarray
    all_scores: np.ndarray


class Reference:
    """Brute force over one built index (opened with :func:`simsearch.load_index`).

    Args:
        index: the opened index (its search matrix and window map are read).
        texts: the document texts in row order, from the test's own source table.
        years: ``(n_rows,)`` the ``year`` column of the source table.
    """

    def __init__(self, index, texts: list[str], years: np.ndarray):
        import bm25s

        from simsearch.text.kiwi import tokenize

        self.n_rows = len(texts)
        self.texts = texts
        self.years = np.asarray(years)
        self.vectors = np.asarray(index.embeddings, dtype=np.float32)
        self.offsets = window_offsets(index, self.n_rows)
        self.window_rows = np.repeat(np.arange(self.n_rows), np.diff(self.offsets))
        self.centroids = unit(np.add.reduceat(self.vectors, self.offsets[:-1], axis=0))
        self.nonempty = np.array([bool(t.strip()) for t in texts])
        self.terms = tokenize(texts)
        self.bm25 = bm25s.BM25(k1=1.5, b=0.75, method="lucene")
        self.bm25.index([list(t) for t in self.terms], show_progress=False)
        # The weight is per index (estimated at build); the fusion method stays convex.
        lexical = index.meta.lexical
        assert lexical.fusion == "convex", lexical.fusion
        self.dense_weight = float(lexical.dense_weight)

    @property
    def n_windows(self) -> int:
        return len(self.vectors)

    def allowed(self, where: str | None) -> np.ndarray:
        """The rows the test's one filter keeps (``year >= 2006``), as a bool mask."""
        if where is None:
            return np.ones(self.n_rows, dtype=bool)
        assert where.replace(" ", "") == "year>=2006", where
        return self.years >= 2006

    # ------------------------------------------------------------------ scores
    def dense_query(self, vector: np.ndarray) -> np.ndarray:
        """``(n_rows,)`` best-window cosine similarity of every row to a unit vector."""
        per_window = self.vectors @ np.asarray(vector, dtype=np.float32)
        return np.maximum.reduceat(per_window, self.offsets[:-1]).astype(np.float32)

    def dense_similar(self, doc: int) -> np.ndarray:
        """``(n_rows,)`` centroid cosine similarity of every row to row ``doc``."""
        return (self.centroids @ self.centroids[doc]).astype(np.float32)

    def lexical(self, terms: list[str]) -> np.ndarray:
        """``(n_rows,)`` BM25 of every row for the query ``terms`` (bm25s itself)."""
        known = [t for t in terms if t in self.bm25.vocab_dict]
        if not known:
            return np.zeros(self.n_rows, dtype=np.float32)
        return np.asarray(self.bm25.get_scores(known), dtype=np.float32)

    def doc_terms(self, doc: int) -> list[str]:
        return list(dict.fromkeys(self.terms[doc]))

    # ----------------------------------------------------------------- rankings
    def expected(
        self, mode: str, dense: np.ndarray, lex: np.ndarray, candidates: np.ndarray, k: int
    ) -> Expected:
        """The ranking of ``mode`` (hybrid, dense or lexical) over the candidate rows."""
        nan = np.full(self.n_rows, np.nan, dtype=np.float32)
        if mode == "dense":
            rows = ranked(dense, candidates, k)
            return Expected(rows, dense[rows], dense[rows], np.where(candidates, dense, -np.inf))
        lexical_candidates = candidates & (lex > 0)
        if mode == "lexical":
            rows = ranked(lex, lexical_candidates, k)
            full = np.where(lexical_candidates, lex, -np.inf)
            return Expected(rows, lex[rows], nan[rows], full)
        assert mode == "hybrid", mode
        depth = max(DEPTH, k)
        dense_rows = ranked(dense, candidates, depth)
        lex_rows = ranked(lex, lexical_candidates, depth)
        fused = np.zeros(self.n_rows, dtype=np.float64)
        fused[dense_rows] += self.dense_weight * minmax(dense[dense_rows])
        fused[lex_rows] += (1 - self.dense_weight) * minmax(lex[lex_rows])
        union = np.zeros(self.n_rows, dtype=bool)
        union[dense_rows] = union[lex_rows] = True
        rows = ranked(fused, union, k)
        full = np.where(union, fused, -np.inf)
        return Expected(rows, fused[rows], dense[rows], full)

    def similar(self, doc: int, mode: str, where: str | None, k: int) -> Expected:
        candidates = self.allowed(where) & self.nonempty
        candidates[doc] = False
        return self.expected(
            mode, self.dense_similar(doc), self.lexical(self.doc_terms(doc)), candidates, k
        )

    def query(
        self, vector: np.ndarray, terms: list[str], mode: str, where: str | None, k: int
    ) -> Expected:
        candidates = self.allowed(where) & self.nonempty
        return self.expected(mode, self.dense_query(vector), self.lexical(terms), candidates, k)


def window_offsets(index, n_rows: int) -> np.ndarray:
    """``(n_rows + 1,)`` CSR offsets of each row's vectors, read from the index's stored
    window map (``windows-G.npy``: row, start, end per vector); one vector per row when
    the index has none."""
    files = index.meta.files
    if "windows" not in files:
        assert len(index.embeddings) == n_rows
        return np.arange(n_rows + 1, dtype=np.int64)
    window_map = np.load(index.file("windows"))
    rows = np.asarray(window_map[:, 0], dtype=np.int64)
    assert len(rows) == len(index.embeddings) and np.all(np.diff(rows) >= 0)
    return np.searchsorted(rows, np.arange(n_rows + 1)).astype(np.int64)


def window_texts(index, texts: list[str]) -> list[str] | None:
    """The text of each stored vector (a window's characters), or None without windows."""
    if "windows" not in index.meta.files:
        return None
    window_map = np.load(index.file("windows"))
    return [texts[r][s:e] for r, s, e in window_map.tolist()]


def read_json_hits(stdout: str) -> list[dict]:
    """The hits of ``--format json`` output."""
    return json.loads(stdout)
