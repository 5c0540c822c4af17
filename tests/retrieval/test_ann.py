"""Approximate search (simsearch.retrieval.ann): usearch HNSW over int8 with exact rescoring,
pinned against brute force: plain, with a row filter, with windows, excluding a row,
with empty rows, and without usearch installed."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from conftest import missing_extra

from simsearch.errors import SimsearchError
from simsearch.retrieval.ann import (
    AnnIndex,
    AnnOptions,
    build_ann,
    encode_for_index,
    require_usearch,
)
from simsearch.retrieval.dense_index import AnnDense, DenseParts, ExactDense
from simsearch.retrieval.rowfilter import RowFilter
from simsearch.retrieval.topk import top_k

pytestmark = pytest.mark.extra

try:  # through simsearch: it loads onnxruntime before usearch (the other order crashes)
    require_usearch()
except SimsearchError:
    missing_extra("usearch", "ann")


K = 10


def dense_parts(vectors, groups=None, n_rows=None) -> DenseParts:
    """One vector per row, or the window vectors of rows ``groups`` (sorted)."""
    if groups is None:
        offsets = np.arange(len(vectors) + 1, dtype=np.int64)
        return DenseParts(vectors, offsets, vectors)
    offsets = np.concatenate([[0], np.cumsum(np.bincount(groups, minlength=n_rows))])
    return DenseParts(vectors, offsets.astype(np.int64), vectors[offsets[:-1]])


def search(index, vectors, queries, k, exclude=None, allowed=None, groups=None,  # noqa: PLR0913
           n_rows=None, exact=False):
    """:class:`AnnDense` (or :class:`ExactDense`) answers as ``(m, k')`` arrays."""
    parts = dense_parts(vectors, groups, n_rows)
    dense = ExactDense(parts) if exact else AnnDense(parts, index)
    allow = None
    if allowed is not None:
        allowed = np.asarray(allowed)
        allow = RowFilter(allowed) if allowed.dtype == bool else RowFilter.of_rows(
            allowed, parts.n_rows)
    queries = np.atleast_2d(queries)
    found = dense.search(queries, k, allow, exclude, "max")
    return np.stack([f[0] for f in found]), np.stack([f[1] for f in found])


def clustered(n: int, dim: int = 64, seed: int = 0, clusters: int = 60) -> np.ndarray:
    """Unit vectors in clusters that share a mean direction (like real embeddings)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, dim)) / np.sqrt(dim) + 0.5 / np.sqrt(dim)
    x = centres[rng.integers(clusters, size=n)] + rng.standard_normal((n, dim)) * 0.6 / np.sqrt(dim)
    x = x.astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """4,000 document vectors on disk (memory-mapped), 60 of them empty (zero rows),
    its ANN index opened memory-mapped, and 40 queries."""
    root = tmp_path_factory.mktemp("ann")
    matrix = clustered(4000)
    matrix[::67] = 0.0  # empty documents
    np.save(root / "emb.npy", matrix)
    emb = np.load(root / "emb.npy", mmap_mode="r")
    section = build_ann(emb, root / "ann.usearch", AnnOptions(threads=1))
    ann = AnnIndex.open(root / "ann.usearch", section)
    queries = clustered(40, seed=1)
    return emb, ann, section, queries


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    return np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found.tolist(), truth.tolist())])


def test_section_describes_the_index(corpus):
    emb, ann, section, _ = corpus
    n_empty = int((np.abs(np.asarray(emb)).max(axis=1) == 0).sum())
    assert section.n_vectors == len(emb) - n_empty == ann.n_vectors
    assert section.n_skipped == n_empty
    assert section.dtype == "i8" and section.library == "usearch"
    # int8 storage: 1 byte per dimension plus the graph, far below float32's 4 per dimension.
    assert section.bytes_per_vector < 4 * emb.shape[1] + 8 * 16 * 2


def test_matches_the_exact_scan_with_exact_similarities(corpus):
    emb, ann, _, queries = corpus
    found, sims = search(ann, emb, queries, K)
    truth, truth_sims = top_k(emb, queries, K)
    assert recall(found, truth) >= 0.95
    # Rescoring is exact: every similarity shown is the float32 cosine of that row.
    expected = np.einsum("qd,qkd->qk", queries, np.asarray(emb)[found])
    np.testing.assert_allclose(sims, expected, atol=1e-6)
    assert (np.diff(sims, axis=1) <= 1e-7).all()
    # Where both found the same rows, the order is the exact order.
    same = (found == truth).all(axis=1)
    assert same.mean() >= 0.8
    np.testing.assert_allclose(sims[same], truth_sims[same], atol=1e-6)


def test_exclude_leaves_out_the_query_document(corpus):
    emb, ann, _, _ = corpus
    doc = 5
    found, _ = search(ann, emb, emb[doc], K, exclude=np.array([doc]))
    truth, _ = top_k(emb, emb[doc], K, exclude=np.array([doc]))
    assert doc not in found[0] and len(found[0]) == K
    assert recall(found, truth) >= 0.9


@pytest.mark.parametrize("share", [0.3, 0.02])
def test_filter_returns_k_allowed_rows_like_the_filtered_exact_scan(corpus, share):
    emb, ann, _, queries = corpus
    rng = np.random.default_rng(3)
    allowed = rng.random(len(emb)) < share
    found, sims = search(ann, emb, queries, K, allowed=allowed)
    assert found.shape == (len(queries), K)
    assert allowed[found].all()
    truth = search(None, emb, queries, K, allowed=allowed, exact=True)[0]
    # Brute force over the allowed rows, written out here.
    rows = np.flatnonzero(allowed)
    brute = rows[np.argsort(-(np.asarray(emb)[rows] @ queries.T), axis=0, kind="stable")[:K].T]
    assert recall(truth, brute) == 1.0
    assert recall(found, truth) >= 0.95


def test_filter_with_fewer_allowed_rows_than_k_returns_them_all(corpus):
    emb, ann, _, queries = corpus
    found, _ = search(ann, emb, queries[:3], K, allowed=np.array([7, 300, 2999]))
    assert found.shape == (3, 3)
    assert sorted(found[0].tolist()) == [7, 300, 2999]


def test_k_beyond_the_non_empty_rows_falls_back_to_the_exact_scan(tmp_path):
    matrix = clustered(60, seed=4)
    matrix[10:30] = 0.0  # 20 empty documents: the graph holds 40 vectors
    section = build_ann(matrix, tmp_path / "a.usearch", AnnOptions(threads=1))
    assert section.n_vectors == 40
    ann = AnnIndex.open(tmp_path / "a.usearch", section)
    found, sims = search(ann, matrix, matrix[0], 50)
    truth, truth_sims = top_k(matrix, matrix[0], 50)
    assert found.tolist() == truth.tolist()
    np.testing.assert_allclose(sims, truth_sims, atol=1e-6)


def test_windows_rank_rows_by_their_best_window(tmp_path):
    """Many window vectors per row: k distinct rows, each scored by its best window."""
    rng = np.random.default_rng(5)
    n_rows = 800
    per_row = rng.integers(1, 6, size=n_rows)
    groups = np.repeat(np.arange(n_rows), per_row)
    windows = clustered(len(groups), seed=6)
    section = build_ann(windows, tmp_path / "w.usearch", AnnOptions(threads=1))
    ann = AnnIndex.open(tmp_path / "w.usearch", section)
    queries = clustered(30, seed=7)
    found, sims = search(ann, windows, queries, K, groups=groups, n_rows=n_rows)
    assert found.shape == (30, K)
    assert all(len(set(r)) == K for r in found.tolist())
    # Brute force: best window per row, written out with np.maximum.at.
    best = np.full((30, n_rows), -np.inf, dtype=np.float32)
    for q in range(30):
        np.maximum.at(best[q], groups, windows @ queries[q])
    truth = np.argsort(-best, axis=1, kind="stable")[:, :K]
    assert recall(found, truth) >= 0.95
    np.testing.assert_allclose(sims, np.take_along_axis(best, found, axis=1), atol=1e-6)
    # With a filter too: only allowed rows, still k of them.
    allowed = np.zeros(n_rows, dtype=bool)
    allowed[::4] = True
    found, _ = search(ann, windows, queries, K, groups=groups, n_rows=n_rows,
                      allowed=allowed)
    assert found.shape == (30, K) and allowed[found].all()
    truth = np.argsort(-np.where(allowed, best, -np.inf), axis=1, kind="stable")[:, :K]
    assert recall(found, truth) >= 0.95


def test_int8_absmax_scaling_uses_the_whole_int8_range():
    x = clustered(5, dim=768)
    scaled = encode_for_index(x, "i8")
    assert np.allclose(np.abs(scaled).max(axis=1), 1.0)  # usearch stores round(127 * x)
    cos = (x @ x.T) / np.outer(np.linalg.norm(x, axis=1), np.linalg.norm(x, axis=1))
    cos_scaled = (scaled @ scaled.T) / np.outer(
        np.linalg.norm(scaled, axis=1), np.linalg.norm(scaled, axis=1)
    )
    np.testing.assert_allclose(cos, cos_scaled, atol=1e-6)  # same cosines, same ranking


def test_binary_vectors_search_with_heavier_rescoring(tmp_path):
    matrix = clustered(3000, seed=8)
    options = AnnOptions(dtype="b1", oversample=20, threads=1)
    section = build_ann(matrix, tmp_path / "b.usearch", options)
    assert section.metric == "hamming" and section.bytes_per_vector < matrix.shape[1] * 4
    ann = AnnIndex.open(tmp_path / "b.usearch", section)
    queries = clustered(20, seed=9)
    found, _ = search(ann, matrix, queries, K)
    # Sign bits lose much more than int8 (0.6 measured here): binary needs heavy rescoring.
    assert recall(found, top_k(matrix, queries, K)[0]) >= 0.5


def test_bad_options_and_missing_files_raise_one_clear_error(tmp_path):
    with pytest.raises(SimsearchError, match="dtype must be one of i8, b1, f16"):
        build_ann(clustered(10), tmp_path / "x.usearch", AnnOptions(dtype="i4"))
    with pytest.raises(SimsearchError, match="oversample must be at least 1"):
        AnnOptions(oversample=0).check()
    with pytest.raises(SimsearchError, match=r"is missing\); rebuild"):
        AnnIndex.open(tmp_path / "nothing.usearch")


def test_without_usearch_the_error_says_how_to_install(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "usearch", None)  # what an absent package looks like
    with pytest.raises(SimsearchError, match=r"pip install -e \"\.\[ann\]\""):
        build_ann(clustered(10), tmp_path / "x.usearch")
