"""Issue 18 A3: ``--ann`` with ``--where`` when the query document is outside the filter
returns as many rows as the exact scan, and the same ones (an index built with
``ann=True`` from imported vectors, no model)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from simsearch.build import build_index
from simsearch.errors import SimsearchError
from simsearch.retrieval.ann import require_usearch
from simsearch.retrieval.dense_index import AnnDense
from simsearch.search import similar_hits
from simsearch.store.index import load_index

try:  # through simsearch: it loads onnxruntime before usearch (the other order crashes)
    require_usearch()
except SimsearchError:
    pytest.skip("usearch is not installed (pip install -e '.[ann]')", allow_module_level=True)

N_ROWS = 200


@pytest.fixture(scope="module")
def ann_index(tmp_path_factory):
    """200 rows in 20 clusters of imported 16-dim vectors, one vector per row, with HNSW."""
    rng = np.random.default_rng(1)
    centres = rng.normal(size=(20, 16))
    vectors = centres[np.arange(N_ROWS) % 20] + 0.3 * rng.normal(size=(N_ROWS, 16))
    directory = tmp_path_factory.mktemp("where-ann")
    np.save(directory / "vectors.npy", vectors.astype(np.float32))
    source = directory / "docs.csv"
    texts = [f"document {i}" for i in range(N_ROWS)]
    pd.DataFrame({"id": range(N_ROWS), "text": texts}).to_csv(source, index=False)
    build_index(source, "text", root=directory / "idx", embeddings=directory / "vectors.npy",
                chunking="none", lexical=False, ann=True)
    index = load_index(directory / "idx")
    assert "ann" in index.meta.files
    return index


@pytest.fixture
def graph_answers(monkeypatch):
    """Let the graph answer at any share of the vectors (on 200 rows the exact scan is
    cheaper and would answer), and count the graph's answers."""
    from simsearch.retrieval import dense_index

    monkeypatch.setattr(dense_index, "EXACT_SHARE", 1.0)
    answered = {"graph": 0}
    one = AnnDense._one

    def counted(self, *args, **kwargs):
        found = one(self, *args, **kwargs)
        answered["graph"] += found is not None
        return found

    monkeypatch.setattr(AnnDense, "_one", counted)
    return answered


def rows(index, doc, k, where, exact):
    return [h.row for h in similar_hits(index, doc, k=k, where=where, exact=exact)]


def test_the_reported_case_ann_equals_exact(ann_index):
    # doc 9 is outside the filter; two rows match, so k=3 gives both.
    exact = rows(ann_index, 9, 3, "id in (6, 8)", exact=True)
    assert sorted(exact) == [6, 8]
    assert rows(ann_index, 9, 3, "id in (6, 8)", exact=False) == exact


@pytest.mark.parametrize("doc", [3, 4])  # outside, then inside the filter
@pytest.mark.parametrize("k", [1, 3])  # (k + 1) * oversample 10 * 2 < 100 allowed rows
def test_the_graph_with_a_filter_returns_k_rows_like_the_exact_scan(
    ann_index, graph_answers, doc, k
):
    where = "id % 2 = 0"  # a number: typed from the CSV (A4)
    exact = rows(ann_index, doc, k, where, exact=True)
    assert len(exact) == k and doc not in exact
    assert rows(ann_index, doc, k, where, exact=False) == exact
    assert graph_answers["graph"] == 1  # the graph answered, not the exact fallback
