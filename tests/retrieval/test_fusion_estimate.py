"""The label-free per-index dense weight (fusion.agreement / estimated_weight / estimate),
against a brute-force reference, and its place among the index's fusion settings."""

from __future__ import annotations

import numpy as np
import pytest

from simsearch.retrieval import bm25, fusion
from simsearch.retrieval.parts import stored_fusion
from simsearch.store.meta import FusionInfo, LexicalInfo


def _brute_overlap(vectors, owner, lex_scores, window, terms, k):
    """Sorted by hand: dense rows by their best window, lexical rows sharing a term,
    the query's own row left out, ties by ascending row."""
    n_rows = int(owner.max()) + 1
    own = int(owner[window])
    best = {}
    for w, r in enumerate(owner.tolist()):
        s = float(vectors[w] @ vectors[window])
        best[r] = max(best.get(r, -np.inf), s)
    dense = sorted((r for r in range(n_rows) if r != own), key=lambda r: (-best[r], r))[:k]
    scores = lex_scores(terms)
    lexical = sorted((r for r in range(n_rows) if r != own and scores[r] > 0),
                     key=lambda r: (-scores[r], r))[:k]
    return len(set(dense) & set(lexical)) / k


def _corpus(n_rows=60, seed=3):
    rng = np.random.default_rng(seed)
    vocab = [f"w{i}" for i in range(40)]
    terms = [[vocab[j] for j in rng.integers(0, 40, size=rng.integers(1, 6))]
             for _ in range(n_rows)]
    windows_per_row = rng.integers(1, 4, size=n_rows)
    owner = np.repeat(np.arange(n_rows), windows_per_row)
    vectors = rng.normal(size=(len(owner), 8)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return bm25.LexicalIndex.build(terms), terms, owner, vectors


def test_agreement_matches_brute_force():
    index, terms, owner, vectors = _corpus()
    picks = np.array([0, 5, 17, len(owner) - 1])
    q_terms = [terms[owner[p]] for p in picks] + []
    q_terms[2] = ["w_unknown"]  # no lexical neighbour: overlap 0
    got = fusion.agreement(vectors, owner, index.scores, picks, q_terms, k=5)
    want = np.mean([_brute_overlap(vectors, owner, index.scores, int(p), t, 5)
                    for p, t in zip(picks, q_terms)])
    assert got == pytest.approx(want)


def test_agreement_is_one_when_dense_follows_bm25():
    """Vectors that are the rows' BM25 profiles: both parts rank alike."""
    rng = np.random.default_rng(0)
    terms = [[f"t{r}", f"t{r + 1}", f"g{r // 10}"] for r in range(50)]
    index = bm25.LexicalIndex.build(terms)
    onehot = np.zeros((50, len(index.vocab)), np.float32)
    for r, ts in enumerate(terms):
        for t in ts:
            onehot[r, index.vocab[t]] = 1.0
    vectors = onehot / np.linalg.norm(onehot, axis=1, keepdims=True)
    owner = np.arange(50)
    picks = rng.choice(50, 10, replace=False)
    value = fusion.agreement(vectors, owner, index.scores, picks, [terms[p] for p in picks], k=2)
    assert value > 0.5


@pytest.mark.parametrize(("a", "w"), [(0.0, 0.0), (0.12, 0.0), (0.2, 0.24), (0.3, 0.54),
                                      (0.9, fusion.WEIGHT_CAP)])
def test_estimated_weight_ramp(a, w):
    assert fusion.estimated_weight(a) == pytest.approx(w)


def test_pseudo_queries_skip_empty_windows_and_are_seeded():
    owner = np.arange(300)
    empty = np.zeros(300, bool)
    empty[::3] = True
    picks = fusion.pseudo_queries(owner, empty, seed=1)
    assert len(picks) == fusion.AGREEMENT_QUERIES and not empty[picks].any()
    assert np.array_equal(picks, fusion.pseudo_queries(owner, empty, seed=1))
    assert len(fusion.pseudo_queries(owner[:20], empty[:20])) == int((~empty[:20]).sum())


def test_estimate_needs_enough_rows():
    index, terms, owner, vectors = _corpus(n_rows=fusion.MIN_ROWS - 1)
    offsets = np.concatenate([[0], np.cumsum(np.bincount(owner))])
    texts = [" ".join(terms[r]) for r in owner]
    assert fusion.estimate(vectors, offsets, texts, np.zeros(len(owner), bool), index) is None


def test_estimate_on_real_text_is_in_range():
    texts = [f"문서 {i}번은 {'사과' if i % 2 else '배'}와 {i % 7}개의 상자를 설명한다."
             for i in range(60)]
    index = bm25.LexicalIndex.from_texts(texts)
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(60, 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    found = fusion.estimate(vectors, np.arange(61), texts, np.zeros(60, bool), index)
    assert found is not None
    value, weight = found
    assert 0.0 <= value <= 1.0 and weight == fusion.estimated_weight(value)


class _Meta:
    def __init__(self, tuned=None, lexical=None):
        self._tuned, self.lexical = tuned, lexical

    def get(self, kind):
        assert kind is FusionInfo
        return self._tuned


def _lexical(weight):
    return LexicalInfo(analyzer="kiwi", k1=1.5, b=0.75, method="lucene", n_terms=3,
                       fusion="convex", dense_weight=weight)


def test_tuned_settings_win_over_the_estimate():
    tuned = FusionInfo(method="rrf", dense_weight=0.7, pairs=30, folds=5, heldout_mrr=50.0,
                       default_mrr=40.0)
    assert stored_fusion(_Meta(tuned, _lexical(0.0))) == fusion.FusionOptions("rrf", 0.7)
    assert stored_fusion(_Meta(None, _lexical(0.0))) == fusion.FusionOptions("convex", 0.0)
    assert stored_fusion(_Meta(None, None)) is None
