"""Exact top-k ranking equals the notebook recipe (cosine_distances + argsort)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics.pairwise import cosine_distances

from simsearch.retrieval.topk import top_k


def unit_rows(n: int, dim: int, seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def notebook_top_k(emb: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    return cosine_distances(queries, emb).argsort(axis=1)[:, :k]


@pytest.mark.parametrize("n,dim,k", [(1000, 64, 10), (257, 16, 1), (50, 8, 50)])
def test_top_k_equals_notebook_recipe(n, dim, k):
    emb = unit_rows(n, dim, seed=n)
    queries = unit_rows(7, dim, seed=n + 1)
    indices, sims = top_k(emb, queries, k)
    assert indices.shape == (7, k) and indices.dtype == np.int64
    assert sims.dtype == np.float32
    np.testing.assert_array_equal(indices, notebook_top_k(emb, queries, k))
    distances = cosine_distances(queries, emb)
    expected = np.take_along_axis(distances, indices, axis=1)
    np.testing.assert_allclose(1.0 - sims, expected, atol=1e-5)
    assert np.all(np.diff(sims, axis=1) <= 0), "results must be nearest first"


def test_blocked_queries_equal_one_block():
    emb = unit_rows(3000, 32, seed=1)
    queries = unit_rows(100, 32, seed=2)
    whole = top_k(emb, queries, 5)
    # 4 * 3000 * 3 bytes -> blocks of 3 queries: many matrix products, same answer.
    blocked = top_k(emb, queries, 5, block_bytes=4 * 3000 * 3)
    np.testing.assert_array_equal(whole[0], blocked[0])
    np.testing.assert_allclose(whole[1], blocked[1], atol=1e-6)  # BLAS blocking rounds


def test_exclude_leaves_the_query_document_out():
    emb = unit_rows(200, 16, seed=3)
    indices, _ = top_k(emb, emb[[5, 9]], 10, exclude=np.array([5, 9]))
    assert 5 not in indices[0] and 9 not in indices[1]
    included, _ = top_k(emb, emb[[5]], 11)
    assert included[0, 0] == 5  # itself, distance 0
    np.testing.assert_array_equal(indices[0], included[0, 1:])


def test_k_is_clamped_and_ties_are_ordered_by_row():
    emb = np.zeros((6, 4), dtype=np.float32)
    emb[:, 0] = 1.0  # six identical documents: all tie
    indices, sims = top_k(emb, emb[0], 100)
    assert indices.shape == (1, 6)
    assert indices[0].tolist() == [0, 1, 2, 3, 4, 5]
    np.testing.assert_allclose(sims, 1.0)


def test_rejects_bad_k_and_dimensions():
    emb = unit_rows(10, 4, seed=0)
    with pytest.raises(ValueError):
        top_k(emb, emb[0], 0)
    with pytest.raises(ValueError):
        top_k(emb, np.ones(5, dtype=np.float32), 3)
