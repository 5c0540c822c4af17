"""Two clean ``--ann`` builds of the same matrix give the same graph and the same dense
top-10s (issue 18 A10): vectors are inserted by one thread, as usearch's fixed-seed level
generator then makes the graph a function of the matrix alone."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from conftest import missing_extra

from simsearch.errors import SimsearchError
from simsearch.retrieval.ann import AnnIndex, AnnOptions, build_ann, require_usearch
from simsearch.retrieval.dense_index import AnnDense, DenseParts

pytestmark = pytest.mark.extra

try:  # through simsearch: it loads onnxruntime before usearch (the other order crashes)
    require_usearch()
except SimsearchError:
    missing_extra("usearch", "ann")


def clustered(n: int, dim: int = 32, seed: int = 0, clusters: int = 60) -> np.ndarray:
    """Unit vectors in clusters that share a mean direction (like real embeddings)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, dim)) / np.sqrt(dim) + 0.5 / np.sqrt(dim)
    x = centres[rng.integers(clusters, size=n)] + rng.standard_normal((n, dim)) * 0.6 / np.sqrt(dim)
    x = x.astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def top10(path, section, matrix, queries) -> np.ndarray:
    ann = AnnIndex.open(path, section)
    parts = DenseParts(matrix, np.arange(len(matrix) + 1, dtype=np.int64), matrix)
    found = AnnDense(parts, ann).search(queries, 10, None, None, "max")
    return np.stack([rows for rows, _ in found])


@pytest.mark.slow
def test_two_clean_ann_builds_are_identical(tmp_path):
    """20,000 vectors, in the blocks the build streams: with several threads inserting,
    two builds differed in their file and in dense top-10s; now they are the same."""
    matrix = clustered(20_000)
    queries = clustered(300, seed=1)
    files, answers = [], []
    for attempt in ("a", "b"):
        path = tmp_path / f"{attempt}.usearch"
        section = build_ann(matrix, path)  # the build's default options
        files.append(hashlib.sha256(path.read_bytes()).hexdigest())
        answers.append(top10(path, section, matrix, queries))
    assert files[0] == files[1]
    np.testing.assert_array_equal(answers[0], answers[1])


def test_build_threads_is_checked():
    with pytest.raises(SimsearchError, match="build_threads must be 0"):
        AnnOptions(build_threads=-1).check()
    assert AnnOptions().build_threads == 1
