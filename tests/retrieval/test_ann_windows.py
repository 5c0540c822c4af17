"""``--ann`` on a windowed index (the default chunking): ``similar`` and ``query`` search
the HNSW graph over the window vectors (calls counted, not mocked), keep hybrid search,
and reach recall@10 >= 0.95 against the exact scan."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from simsearch.build import build_index
from simsearch.errors import SimsearchError
from simsearch.retrieval.ann import require_usearch
from simsearch.retrieval.dense_index import AnnDense
from simsearch.retrieval.modes import SearchOptions
from simsearch.retrieval.parts import open_parts
from simsearch.retrieval.rank import Query, rank
from simsearch.search import query_hits, search_options, similar_hits
from simsearch.store.index import load_index

try:  # through simsearch: it loads onnxruntime before usearch (the other order crashes)
    require_usearch()
except SimsearchError:
    pytest.skip("usearch is not installed (pip install -e '.[ann]')", allow_module_level=True)

WORDS = (
    "리튬", "전지", "음극재", "실리콘", "콘크리트", "균열",
    "보수", "박테리아", "자율주행", "라이다", "센서", "융합",
    "디스플레이", "유기", "발광", "잉크젯", "반도체", "웨이퍼",
    "세정", "분리막", "코팅", "전해질", "멤브레인", "필터",
)
N_ROWS = 160


@pytest.fixture(scope="module")
def ann_windows(tmp_path_factory, tiny_model):
    """160 rows, a third of them long enough to be split into windows, one empty, built
    with ``ann=True`` (and the lexical index, as by default)."""
    rng = np.random.default_rng(0)
    texts = []
    for i in range(N_ROWS):
        sentences = 12 if i % 3 == 0 else 1
        texts.append(" ".join(
            " ".join(rng.choice(WORDS, size=8)) + "." for _ in range(sentences)
        ))
    texts[9] = ""
    directory = tmp_path_factory.mktemp("ann-windows")
    source = directory / "docs.csv"
    pd.DataFrame({"id": range(N_ROWS), "text": texts}).to_csv(source, index=False)
    build_index(source, "text", model=tiny_model, root=directory / "idx", ann=True)
    index = load_index(directory / "idx")
    assert "windows" in index.meta.files and "ann" in index.meta.files
    assert index.embeddings.shape[0] > N_ROWS  # the graph holds window vectors
    return index


@pytest.fixture
def small_graph(monkeypatch, ann_windows):
    """On an index this small the graph would hand over to the exact scan (it is cheaper
    below :data:`~simsearch.retrieval.dense_index.EXACT_SHARE` of the vectors): allow the
    graph at any share and rescore only 2 candidates per result, so it really answers."""
    from simsearch.retrieval import ann, dense_index

    monkeypatch.setattr(dense_index, "EXACT_SHARE", 1.0)
    graph = ann.open_for(ann_windows)
    monkeypatch.setattr(graph, "options", ann.AnnOptions(oversample=2, threads=1))
    return graph


@pytest.fixture
def ann_calls(monkeypatch, small_graph):
    """Counts the calls of AnnDense.search and of the graph search below it (the real
    methods run)."""
    calls = {"dense": 0, "graph": 0}
    search, candidates = AnnDense.search, type(small_graph).candidates

    def counted_search(self, *args, **kwargs):
        calls["dense"] += 1
        return search(self, *args, **kwargs)

    def counted_candidates(self, *args, **kwargs):
        calls["graph"] += 1
        return candidates(self, *args, **kwargs)

    monkeypatch.setattr(AnnDense, "search", counted_search)
    monkeypatch.setattr(type(small_graph), "candidates", counted_candidates)
    return calls


def test_similar_and_query_use_the_ann_over_windows_and_stay_hybrid(ann_windows, ann_calls):
    hits = similar_hits(ann_windows, 3, 5, options=search_options("dense"))
    assert ann_calls["dense"] == 1 and ann_calls["graph"] >= 1
    assert {h.mode for h in hits} == {"dense"}
    hits = query_hits(ann_windows, ["리튬 전지 실리콘"], 5, options=search_options("dense"))
    assert ann_calls["dense"] == 2 and ann_calls["graph"] >= 2
    # The default mode stays hybrid on an --ann index: dense candidates from the ANN.
    for hits in (similar_hits(ann_windows, 3, 5), query_hits(ann_windows, ["리튬 전지"], 5)):
        assert {h.mode for h in hits} == {"hybrid"}
    assert ann_calls["dense"] == 4
    before = dict(ann_calls)
    similar_hits(ann_windows, 3, 5, exact=True)
    query_hits(ann_windows, ["리튬 전지"], 5, exact=True)
    assert ann_calls == before  # --exact scans every vector instead
    for hit in similar_hits(ann_windows, 9, 20) + similar_hits(ann_windows, 3, 20):
        assert hit.row != 9 and hit.text.strip()  # the empty row is never a result


def _tie_aware_recall(found, truth_scores, k):
    """Share of the ANN's rows that score at least the exact k-th score (ties count)."""
    kth = truth_scores[min(k, len(truth_scores)) - 1]
    return np.mean(found >= kth - 1e-6)


def test_ann_recall_at_10_against_exact(ann_windows, ann_calls):
    ann, exact = open_parts(ann_windows), open_parts(ann_windows, exact=True)
    assert isinstance(ann.dense, AnnDense)
    dense = SearchOptions("dense")
    recalls = []
    docs = np.arange(0, N_ROWS, 7)
    for query in (Query(docs=docs), Query(vectors=np.asarray(ann_windows.embeddings[::23]))):
        for got, want in zip(rank(ann, query, 10, dense), rank(exact, query, 10, dense)):
            recalls.append(_tie_aware_recall(got.scores, want.scores, 10))
            # Rescoring is exact: the scores shown are those of the exact scan.
            common = np.intersect1d(got.rows, want.rows)
            a = dict(zip(got.rows.tolist(), got.scores.tolist()))
            b = dict(zip(want.rows.tolist(), want.scores.tolist()))
            assert all(abs(a[r] - b[r]) < 1e-5 for r in common.tolist())
    assert np.mean(recalls) >= 0.95
    assert ann_calls["graph"] >= len(recalls)  # the graph answered, not the fallback
