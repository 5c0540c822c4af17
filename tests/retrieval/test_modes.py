"""Search modes (dense over windows, lexical, hybrid) with a row filter applied before
ranking, pinned against brute force on small arrays."""

from __future__ import annotations

import numpy as np
import pytest

from simsearch.errors import InvalidParameter
from simsearch.retrieval import bm25 as lexical
from simsearch.retrieval import dense as window_ranking
from simsearch.retrieval import fusion
from simsearch.retrieval import modes as retrieval
from simsearch.retrieval.dense_index import DenseParts, ExactDense
from simsearch.retrieval.parts import row_vectors_of
from simsearch.retrieval.rank import Parts, Query, rank
from simsearch.retrieval.rowfilter import RowFilter

TEXTS = [
    "리튬 이차전지 음극재 실리콘",
    "리튬 금속 전지 전해질",
    "콘크리트 균열 보수 박테리아",
    "자율주행 라이다 센서 융합",
    "디스플레이 유기 발광 잉크젯",
    "반도체 웨이퍼 세정",
    "리튬 전지 분리막 코팅",
    "콘크리트 양생 온도 센서",
]


@pytest.fixture(scope="module")
def retriever():
    rng = np.random.default_rng(3)
    counts = rng.integers(1, 4, size=len(TEXTS))
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    emb = rng.normal(size=(offsets[-1], 8)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    lex = lexical.LexicalIndex.build(lexical.tokenize(TEXTS))
    return retrieval.Retriever(emb, offsets, lex)


def parts_of(retriever) -> Parts:
    rows = row_vectors_of(retriever.embeddings, retriever.offsets)
    return Parts(retriever, ExactDense(DenseParts(retriever.embeddings, retriever.offsets, rows)))


def search(retriever, vectors, terms, k, options, allowed=None):
    allow = None if allowed is None else RowFilter(allowed)
    return rank(parts_of(retriever), Query(vectors=vectors, terms=terms), k, options, allow)


def similar(retriever, doc, k, options=None):
    return rank(parts_of(retriever), Query(docs=np.array([doc])), k, options)[0]


def _query(retriever, seed=5):
    q = np.random.default_rng(seed).normal(size=(1, 8)).astype(np.float32)
    return q / np.linalg.norm(q)


def test_default_mode_is_hybrid_and_missing_parts_are_refused(retriever):
    assert retriever.mode(None) == "hybrid"
    dense_only = retrieval.Retriever(retriever.embeddings, retriever.offsets, None)
    assert dense_only.mode(None) == "dense"
    with pytest.raises(ValueError, match="needs a lexical index"):
        dense_only.mode("hybrid")
    with pytest.raises(ValueError, match="mode must be one of"):
        retrieval.SearchOptions(mode="sparse")


def test_dense_mode_equals_window_ranking(retriever):
    q = _query(retriever)
    [ranked] = search(retriever, q, None, 4, retrieval.SearchOptions("dense"))
    window_scores = q @ retriever.embeddings.T
    row_scores = window_ranking.aggregate(window_scores, retriever.offsets)[0]
    want = np.argsort(-row_scores, kind="stable")[:4]
    np.testing.assert_array_equal(ranked.rows, want)
    off = retriever.offsets
    best = [off[r] + int(np.argmax(window_scores[0, off[r] : off[r + 1]])) for r in want]
    np.testing.assert_array_equal(ranked.windows, best)


def test_hybrid_equals_fusing_the_two_full_rankings(retriever):
    q = _query(retriever)
    terms = lexical.tokenize(["리튬 전지"])
    for method in fusion.FUSIONS:
        options = retrieval.SearchOptions(fusion=fusion.FusionOptions(method, 0.4))
        [ranked] = search(retriever, q, terms, 3, options)
        # Brute force: every row's dense and BM25 score, fused, sorted.
        row_sims = window_ranking.aggregate(q @ retriever.embeddings.T, retriever.offsets)[0]
        bm25 = retriever.lexical.scores(terms[0])
        d_rows = np.argsort(-row_sims, kind="stable")
        l_rows = [r for r in np.argsort(-bm25, kind="stable") if bm25[r] > 0]
        fused = fusion.fuse((d_rows, row_sims[d_rows]), (np.array(l_rows), bm25[l_rows]),
                            len(TEXTS), options.fusion)
        np.testing.assert_array_equal(ranked.rows, np.argsort(-fused, kind="stable")[:3])


def test_filter_applies_before_ranking_in_every_mode(retriever):
    q = _query(retriever)
    terms = lexical.tokenize(["리튬 전지 콘크리트"])
    allowed = np.zeros(len(TEXTS), dtype=bool)
    allowed[[2, 5, 6, 7]] = True
    for mode in retrieval.MODES:
        [ranked] = search(retriever, q, terms, 3, retrieval.SearchOptions(mode), allowed)
        assert set(ranked.rows.tolist()) <= {2, 5, 6, 7}
        # Lexical returns only rows sharing a term (2, 6, 7); dense and hybrid fill k.
        assert len(ranked.rows) == 3
    [lex] = search(retriever, None, terms, 8, retrieval.SearchOptions("lexical"), allowed)
    assert sorted(lex.rows.tolist()) == [2, 6, 7] and np.isnan(lex.similarity).all()


def test_similar_modes(retriever):
    for mode in ("dense", "hybrid"):
        ranked = similar(retriever, 0, 3, retrieval.SearchOptions(mode))
        assert 0 not in ranked.rows.tolist() and len(ranked.rows) == 3
    lex = similar(retriever, 0, 5, retrieval.SearchOptions("lexical"))
    assert set(lex.rows.tolist()) == {1, 6}  # only the other lithium documents share a term
    with pytest.raises(InvalidParameter, match="at least 1"):
        similar(retriever, 0, 0)
