"""The one ranking entry point, pinned against brute force: numpy cosine, exact top-k
with equal scores by ascending row, over {rows, windows} x {ExactDense, AnnDense} x
{no filter, a filter}, with empty rows that must never come back."""

from __future__ import annotations

import numpy as np
import pytest

from simsearch.errors import InvalidParameter, SimsearchError
from simsearch.retrieval import bm25 as lexical
from simsearch.retrieval import fusion
from simsearch.retrieval.dense_index import AnnDense, DenseParts, ExactDense
from simsearch.retrieval.modes import Retriever, SearchOptions
from simsearch.retrieval.parts import row_vectors_of
from simsearch.retrieval.rank import Parts, Query, rank
from simsearch.retrieval.rowfilter import RowFilter

N_ROWS = 600
DIM = 32
K = 10
EMPTY = np.arange(5, N_ROWS, 97)  # rows without text: zero vectors, no terms
WORDS = [f"w{i}" for i in range(40)]


def clustered(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((30, DIM)) / np.sqrt(DIM) + 0.4 / np.sqrt(DIM)
    x = centres[rng.integers(30, size=n)] + rng.standard_normal((n, DIM)) * 0.6 / np.sqrt(DIM)
    x = x.astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def make_terms(seed: int = 2) -> list[list[str]]:
    rng = np.random.default_rng(seed)
    terms = [list(rng.choice(WORDS, size=rng.integers(2, 7))) for _ in range(N_ROWS)]
    for r in EMPTY:
        terms[r] = []
    return terms


def layout(windows: bool) -> tuple[np.ndarray, np.ndarray]:
    """``(vectors, offsets)``: one vector per row, or 1-4 windows per row."""
    rng = np.random.default_rng(1)
    counts = rng.integers(1, 5, size=N_ROWS) if windows else np.ones(N_ROWS, np.int64)
    counts[EMPTY] = 1
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    vectors = clustered(int(offsets[-1]), seed=3)
    for r in EMPTY:
        vectors[offsets[r] : offsets[r + 1]] = 0.0
    return vectors, offsets


def make_parts(windows: bool, ann: bool, tmp_path) -> Parts:
    vectors, offsets = layout(windows)
    rows = row_vectors_of(vectors, offsets) if windows else vectors
    dense_parts = DenseParts(vectors, offsets, rows)
    dense = ExactDense(dense_parts)
    if ann:
        from simsearch.retrieval.ann import AnnIndex, AnnOptions, build_ann, require_usearch

        try:
            require_usearch()
        except SimsearchError:
            pytest.skip("usearch is not installed")
        section = build_ann(vectors, tmp_path / "ann.usearch", AnnOptions(threads=1))
        dense = AnnDense(dense_parts, AnnIndex.open(tmp_path / "ann.usearch", section))
    window_map = None
    if windows:
        groups = np.repeat(np.arange(N_ROWS), np.diff(offsets))
        window_map = np.stack([groups, groups * 0, groups * 0 + 1], axis=1)
    lex = lexical.LexicalIndex.build(make_terms())
    nonempty = RowFilter(~RowFilter.of_rows(EMPTY, N_ROWS).mask)
    return Parts(Retriever(vectors, offsets, lex, window_map), dense, nonempty)


def brute_rows(vectors, offsets, query, how="max"):
    """Row scores by looping over rows (max or mean of its windows' cosines)."""
    out = np.empty(len(offsets) - 1, dtype=np.float32)
    for r in range(len(out)):
        s = vectors[offsets[r] : offsets[r + 1]] @ query
        out[r] = s.max() if how == "max" else s.mean()
    return out


def brute_top(scores, k, allowed):
    """Exact top-k, equal scores by ascending row, over the allowed rows."""
    rows = np.flatnonzero(allowed)
    order = np.lexsort((rows, -scores[rows]))[:k]
    return rows[order], scores[rows][order]


def recall(found, truth) -> float:
    return len(set(found.tolist()) & set(truth.tolist())) / len(truth)


@pytest.fixture(scope="module", params=[(False, False), (True, False), (False, True), (True, True)],
                ids=["rows-exact", "windows-exact", "rows-ann", "windows-ann"])
def parts(request, tmp_path_factory):
    windows, ann = request.param
    return make_parts(windows, ann, tmp_path_factory.mktemp("rank")), ann


@pytest.mark.parametrize("filtered", [False, True], ids=["all", "filter"])
def test_dense_query_equals_brute_force(parts, filtered):
    parts, ann = parts
    vectors, offsets = parts.dense.parts.vectors, parts.dense.parts.offsets
    allow = RowFilter.of_rows(np.arange(0, N_ROWS, 3), N_ROWS) if filtered else None
    allowed = parts.nonempty.mask & (True if allow is None else allow.mask)
    queries = clustered(20, seed=9)
    found = rank(parts, Query(vectors=queries), K, SearchOptions("dense"), allow)
    recalls = []
    for q, one in zip(queries, found):
        truth, truth_scores = brute_top(brute_rows(vectors, offsets, q), K, allowed)
        assert len(one.rows) == K and allowed[one.rows].all()
        assert not set(one.rows.tolist()) & set(EMPTY.tolist())
        # Scores are exact even through the ANN (rescored), best first.
        np.testing.assert_allclose(one.scores, brute_rows(vectors, offsets, q)[one.rows],
                                   atol=1e-5)
        if ann:
            recalls.append(recall(one.rows, truth))
        else:
            assert one.rows.tolist() == truth.tolist()
            np.testing.assert_allclose(one.scores, truth_scores, atol=1e-6)
    if ann:
        assert np.mean(recalls) >= 0.95


@pytest.mark.parametrize("filtered", [False, True], ids=["all", "filter"])
def test_similar_uses_row_vectors_and_leaves_the_document_out(parts, filtered):
    parts, ann = parts
    rows = parts.dense.parts.row_vectors
    allow = RowFilter.of_rows(np.arange(1, N_ROWS, 2), N_ROWS) if filtered else None
    recalls = []
    for doc in (0, 7, 301):
        found = rank(parts, Query(docs=np.array([doc])), K, SearchOptions("dense"), allow)[0]
        allowed = parts.nonempty.mask.copy() & (True if allow is None else allow.mask)
        allowed[doc] = False
        truth, _ = brute_top(rows @ rows[doc], K, allowed)
        assert doc not in found.rows.tolist() and allowed[found.rows].all()
        np.testing.assert_allclose(found.similarity, rows[found.rows] @ rows[doc], atol=1e-5)
        if ann:
            recalls.append(recall(found.rows, truth))
        else:
            assert found.rows.tolist() == truth.tolist()
    if ann:
        assert np.mean(recalls) >= 0.95


def test_hybrid_fuses_dense_and_bm25_top_lists(parts):
    parts, ann = parts
    vectors, offsets = parts.dense.parts.vectors, parts.dense.parts.offsets
    q = clustered(1, seed=11)[0]
    terms = ["w1", "w2", "w3"]
    options = SearchOptions("hybrid", fusion=fusion.DEFAULT)
    [got] = rank(parts, Query(vectors=q[None, :], terms=[terms]), K, options)
    allowed = parts.nonempty.mask
    depth = max(options.fusion.depth, K)
    dense = brute_top(brute_rows(vectors, offsets, q), depth, allowed)
    bm25 = parts.retriever.lexical.scores(terms)
    lex = brute_top(bm25, depth, allowed & (bm25 > 0))
    fused = fusion.fuse(dense, lex, N_ROWS, options.fusion)
    candidate = np.zeros(N_ROWS, bool)
    candidate[dense[0]] = candidate[lex[0]] = True
    truth, _ = brute_top(fused, K, candidate)
    if ann:
        assert recall(got.rows, truth) >= 0.8
    else:
        assert got.rows.tolist() == truth.tolist()
    assert not set(got.rows.tolist()) & set(EMPTY.tolist())


@pytest.mark.parametrize("stored,weight,method,want", [
    (None, None, None, fusion.DEFAULT),
    (fusion.FusionOptions("rrf", 0.8), None, None, fusion.FusionOptions("rrf", 0.8)),
    (fusion.FusionOptions("rrf", 0.8), 0.1, None, fusion.FusionOptions("rrf", 0.1)),
    (None, 0.9, "rrf", fusion.FusionOptions("rrf", 0.9)),
])
def test_hybrid_uses_the_stored_fusion_unless_overridden(stored, weight, method, want):
    """The index's stored fusion (``eval --tune``) applies when the call names none; a
    call's weight or method replaces its part of it."""
    import dataclasses

    base = make_parts(False, False, None)
    parts = dataclasses.replace(base, fusion=stored)
    q = clustered(1, seed=5)[0]
    query = Query(vectors=q[None, :], terms=[["w1", "w2"]])
    options = SearchOptions("hybrid", dense_weight=weight, fusion_method=method)
    [got] = rank(parts, query, K, options)
    [truth] = rank(base, query, K, SearchOptions("hybrid", fusion=want))
    assert got.rows.tolist() == truth.rows.tolist()
    np.testing.assert_allclose(got.scores, truth.scores)


def test_lexical_returns_only_rows_sharing_a_term():
    parts = make_parts(False, False, None)
    [got] = rank(parts, Query(terms=[["w4"]]), 1000, SearchOptions("lexical"))
    bm25 = parts.retriever.lexical.scores(["w4"])
    truth, _ = brute_top(bm25, 1000, bm25 > 0)
    assert got.rows.tolist() == truth.tolist()
    assert np.isnan(got.similarity).all()


def test_k_threshold_and_clamping_are_checked_once():
    parts = make_parts(True, False, None)
    q = Query(vectors=clustered(1, seed=4))
    notes = []
    with pytest.raises(InvalidParameter, match="at least 1"):
        rank(parts, q, 0, SearchOptions("dense"))
    with pytest.raises(InvalidParameter, match="between -1 and 1"):
        rank(parts, q, 5, SearchOptions("dense"), min_similarity=2.0)
    with pytest.raises(InvalidParameter, match="lexical mode"):
        rank(parts, Query(terms=[["w1"]]), 5, SearchOptions("lexical"), min_similarity=0.1)
    allow = RowFilter.of_rows([1, 2, 3, 5], N_ROWS)  # row 5 is empty
    [got] = rank(parts, q, 10, SearchOptions("dense"), allow, log=notes.append)
    assert sorted(got.rows.tolist()) == [1, 2, 3]
    assert "3 documents matching the filter" in str(notes[0])
    [above] = rank(parts, q, None, SearchOptions("dense"), min_similarity=0.5)
    scores = brute_rows(parts.dense.parts.vectors, parts.dense.parts.offsets, q.vectors[0])
    assert sorted(above.rows.tolist()) == sorted(
        r for r in np.flatnonzero(scores >= 0.5).tolist() if r not in EMPTY
    )


def test_equal_scores_come_in_ascending_row_order():
    vectors = np.zeros((6, 4), np.float32)
    vectors[:, 0] = 1.0  # every row the same direction
    offsets = np.arange(7, dtype=np.int64)
    parts = Parts(Retriever(vectors, offsets), ExactDense(DenseParts(vectors, offsets, vectors)))
    [got] = rank(parts, Query(vectors=vectors[:1]), 4, SearchOptions("dense"))
    assert got.rows.tolist() == [0, 1, 2, 3]
    [got] = rank(parts, Query(docs=np.array([2])), 3, SearchOptions("dense"))
    assert got.rows.tolist() == [0, 1, 3]
