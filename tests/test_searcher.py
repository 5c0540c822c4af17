"""The reusable searcher (issue 20): ``simsearch.open()``, the warm notebook loop (counted
loads, not timings), a rebuilt index never served stale, and results pinned against the
one-shot path of :mod:`simsearch.search`."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import simsearch
from simsearch import search, searcher
from simsearch.encoding import encoders
from simsearch.errors import SimsearchError
from simsearch.retrieval import parts as ranking_parts
from simsearch.store import index as store

TOPICS = ["배터리 전극 소재", "리튬 이온 전지", "반도체 메모리 소자", "디스플레이 패널",
          "전기 자동차 모터", "태양광 셀 효율", "guitar strings", "piano keys"]


def corpus(n: int, seed: int, prefix: str = "") -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    texts = [
        f"{prefix}{TOPICS[int(rng.integers(len(TOPICS)))]} 관련 문서 {i} "
        + " ".join(TOPICS[int(j)] for j in rng.integers(0, len(TOPICS), 2))
        for i in range(n)
    ]
    texts[5] = ""  # an empty row is never a result
    return pd.DataFrame({"text": texts, "year": [2015 + i % 10 for i in range(n)]})


@pytest.fixture
def built(workdir, tiny_model):
    corpus(60, 0).to_csv("docs.csv", index=False)
    simsearch.build_index("docs.csv", "text", model=tiny_model)
    searcher.forget()
    yield workdir
    searcher.forget()


def counting(monkeypatch, module, name: str) -> list[int]:
    """Wrap ``module.name`` so each call is counted (the real function still runs)."""
    calls = [0]
    real = getattr(module, name)

    def wrapper(*args, **kwargs):
        calls[0] += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, wrapper)
    return calls


def test_a_loop_of_100_queries_is_warm_from_the_second_call(built, monkeypatch):
    loads = counting(monkeypatch, store, "load_index")
    encoders_made = counting(monkeypatch, encoders, "query_encoder")
    parts_opened = counting(monkeypatch, ranking_parts, "open_parts")
    for i in range(100):
        frame = simsearch.query(f"{TOPICS[i % len(TOPICS)]} {i}", k=3)
        assert len(frame) == 3
    for doc in range(10):
        assert len(simsearch.similar(doc, k=3)) == 3
    assert (loads[0], encoders_made[0], parts_opened[0]) == (1, 1, 1)
    simsearch.query("배터리", k=3, mode="dense")  # the hybrid parts serve dense too
    simsearch.query("배터리", k=3, exact=True)
    assert (loads[0], encoders_made[0]) == (1, 1)


def test_a_rebuilt_index_is_opened_again_never_served_stale(built, tiny_model, monkeypatch):
    loads = counting(monkeypatch, store, "load_index")
    first = simsearch.query("배터리 전극", k=5)
    assert all(not t.startswith("새") for t in first["text"])
    corpus(40, 1, prefix="새 ").to_csv("docs.csv", index=False)
    simsearch.build_index("docs.csv", "text", model=tiny_model)
    assert loads[0] == 2  # the query's and the build's (its previous generation)
    second = simsearch.query("배터리 전극", k=5)
    assert all(t.startswith("새") for t in second["text"])
    assert loads[0] == 3
    # The one-shot path, on the index opened afresh.
    expected = search.hits_frame(search.query_hits(store.load_index(), ["배터리 전극"], 5))
    assert second["row"].tolist() == expected["row"].tolist()


def test_a_file_changed_in_place_is_noticed(built):
    opened = searcher.cached()
    assert searcher.cached() is opened
    path = opened.index.file("offsets")
    path.write_bytes(path.read_bytes())  # same bytes, a new modification time
    assert opened.stale()
    assert searcher.cached() is not opened


def hits_key(hits) -> list[tuple]:
    return [(h.query_index, h.row, round(h.score, 6), h.matched_text, tuple(h.matched_terms))
            for h in hits]


@pytest.mark.parametrize("mode", ["hybrid", "dense", "lexical"])
def test_results_equal_the_one_shot_path(built, mode):
    opened = simsearch.open()
    queries = ["배터리 전극", "guitar piano", "반도체 메모리"]
    options = search.search_options(mode)
    for where in (None, "year >= 2020"):
        ours = opened.query_hits(queries, k=7, mode=mode, where=where)
        theirs = search.query_hits(store.load_index(), queries, k=7, options=options,
                                   where=where)
        assert hits_key(ours) == hits_key(theirs)
        for doc in (0, 3, 17):
            ours = opened.similar_hits(doc, k=5, mode=mode, where=where)
            theirs = search.similar_hits(store.load_index(), doc, 5, options=options,
                                         where=where)
            assert hits_key(ours) == hits_key(theirs)
    frame = opened.query(queries, k=4, mode=mode)
    one_shot = search.query_hits(store.load_index(), queries, 4, options=options)
    pd.testing.assert_frame_equal(frame, search.hits_frame(one_shot))


def test_open_by_directory_and_errors(built):
    by_path = simsearch.open(index=built / ".simsearch" / "default")
    assert by_path.index.n_docs == 60
    assert len(by_path.query(["배터리", "피아노"], k=2)) == 4
    with pytest.raises(SimsearchError, match="empty"):
        by_path.query(["배터리", " "], k=2)
    with pytest.raises(SimsearchError):
        simsearch.open(root=built / "nowhere")
    with pytest.raises(SimsearchError):
        simsearch.query("배터리", root=built / "nowhere")


def test_shared_terms_equal_the_terms_read_from_each_row(built):
    """The per-term postings lookup (the warm path) against each row's own terms."""
    from simsearch.retrieval.matches import shared_terms

    lexical = simsearch.open().parts().retriever.lexical
    vocab = sorted(lexical.vocab)
    rng = np.random.default_rng(3)
    for _ in range(20):
        terms = [vocab[int(i)] for i in rng.integers(0, len(vocab), 6)] + ["없는말"]
        rows = [int(r) for r in rng.choice(60, 8, replace=False)]
        (got,) = shared_terms(lexical, [terms], [rows])
        own = lexical.rows_terms(rows)
        assert got == {r: [t for t in dict.fromkeys(terms) if t in own[r]] for r in rows}
