"""Cross-encoder reranking (``--rerank``): the first stage's top hits reordered by a real
(tiny, built here) ``CrossEncoder``, checked against its own scores computed by hand."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from conftest import run_cli

import simsearch
from simsearch.errors import InvalidParameter
from simsearch.retrieval.rerank import RerankOptions, rerank_rows, rerank_with
from simsearch.search import search_options, similar_hits

N_DOCS = 40
WORDS = "가나다라마바사아자차카타파하"


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    """An index of 40 Korean rows over random unit embeddings (no model: similar only)."""
    cwd = tmp_path_factory.mktemp("rerank")
    rng = np.random.default_rng(3)
    emb = rng.standard_normal((N_DOCS, 16)).astype(np.float32)
    texts = [f"문서 {i} " + WORDS[i % 14] * (i % 5 + 1) + " " + WORDS[(3 * i) % 14]
             for i in range(N_DOCS)]
    pd.DataFrame({"n": range(N_DOCS), "text": texts}).to_csv(cwd / "docs.csv", index=False)
    np.save(cwd / "emb.npy", emb)
    simsearch.build_index(cwd / "docs.csv", "text", embeddings=cwd / "emb.npy", model="none",
                          root=cwd / "idx")
    return cwd, texts


def _by_hand(model_dir: str, query: str, texts: list[str]) -> np.ndarray:
    from sentence_transformers import CrossEncoder

    return np.asarray(CrossEncoder(model_dir).predict([[query, t] for t in texts]), np.float64)


@pytest.mark.parametrize("mode", ["dense", "hybrid"])
def test_hits_are_reordered_by_the_cross_encoder(imported, tiny_cross_encoder, mode):
    cwd, texts = imported
    index = simsearch.load_index(cwd / "idx")
    first = similar_hits(index, 3, 20, options=search_options(mode))
    got = rerank_with(first, [texts[3]], RerankOptions(tiny_cross_encoder, depth=20), k=5)
    scores = _by_hand(tiny_cross_encoder, texts[3], [h.text for h in first])
    order = np.argsort(-scores, kind="stable")[:5]
    assert [h.row for h in got] == [first[i].row for i in order]
    assert [h.rank for h in got] == [1, 2, 3, 4, 5]
    np.testing.assert_allclose([h.rerank_score for h in got], scores[order], atol=1e-5)
    # The first stage's score stays beside the reranker's.
    assert [h.score for h in got] == [first[i].score for i in order]
    flat = got[0].flat(())
    assert list(flat)[list(flat).index("score") + 1] == "rerank_score"
    assert got[0].to_json()["rerank_score"] == pytest.approx(scores[order[0]])


def test_only_the_top_depth_is_reranked_and_rows_alike(imported, tiny_cross_encoder):
    cwd, texts = imported
    index = simsearch.load_index(cwd / "idx")
    first = similar_hits(index, 5, 30, options=search_options("dense"))
    got = rerank_with(first, [texts[5]], RerankOptions(tiny_cross_encoder, depth=8), k=3)
    top8 = {h.row for h in first[:8]}
    assert {h.row for h in got} <= top8 and len(got) == 3
    # k above the depth raises the depth to k.
    more = rerank_with(first, [texts[5]], RerankOptions(tiny_cross_encoder, depth=2), k=6)
    assert sorted(h.row for h in more) == sorted(h.row for h in first[:6])
    from simsearch.encoding.cross_encoder import load_reranker

    options = RerankOptions(tiny_cross_encoder, depth=8)
    rows = rerank_rows([np.array([h.row for h in first])], [texts[5]], texts,
                       load_reranker(tiny_cross_encoder), options)
    assert rows[0][:3].tolist() == [h.row for h in got]


def test_eval_reranks_before_scoring(imported, tiny_cross_encoder, tmp_path):
    from simsearch.retrieval.parts import open_parts
    from simsearch.retrieval.rank import Query, rank
    from simsearch.science.evaluate import evaluate_index, retrieval_metrics

    cwd, texts = imported
    queries = [texts[i].split()[2] for i in (0, 7, 12)]
    relevant = [0, 7, 12]
    pairs = tmp_path / "pairs.csv"
    pd.DataFrame({"query": queries, "relevant": relevant}).to_csv(pairs, index=False)
    search = (search_options("lexical"), "auto")
    options = RerankOptions(tiny_cross_encoder, depth=15)
    record = evaluate_index(pairs, cwd / "idx" / "default", search=search, rerank=options)
    assert record["rerank"] == tiny_cross_encoder and record["rerank_depth"] == 15
    index = simsearch.load_index(cwd / "idx")
    from simsearch.retrieval import bm25

    found = rank(open_parts(index), Query(terms=bm25.tokenize(queries)), 15,
                 search_options("lexical"))
    by_hand = []
    for q, one in zip(queries, found):
        scores = _by_hand(tiny_cross_encoder, q, [texts[r] for r in one.rows])
        by_hand.append(one.rows[np.argsort(-scores, kind="stable")])
    expected = retrieval_metrics(by_hand, [{r} for r in relevant])
    assert record["mrr@10"] == pytest.approx(expected["mrr@10"])


def test_bad_reranker_options(tmp_path):
    from simsearch.encoding.cross_encoder import load_reranker, model_location

    with pytest.raises(InvalidParameter, match="at least 1, got 0") as error:
        RerankOptions("m", depth=0).check()
    assert error.value.param == "rerank_depth"
    with pytest.raises(InvalidParameter, match="no such model directory"):
        model_location(str(tmp_path / "none"))
    with pytest.raises(InvalidParameter, match="is empty"):
        RerankOptions(" ").check()
    (tmp_path / "empty").mkdir()
    with pytest.raises(InvalidParameter, match="cannot load .* as a cross-encoder") as error:
        load_reranker(str(tmp_path / "empty"))
    assert "\n" not in str(error.value)


@pytest.mark.slow
def test_cli_similar_rerank(imported, tiny_cross_encoder):
    cwd, _ = imported
    result = run_cli("similar", "--doc", "3", "--k", "4", "--rerank", tiny_cross_encoder,
                     "--rerank-depth", "12", "-f", "json", "--index", "idx", cwd=cwd)
    assert result.returncode == 0, result.stderr
    hits = json.loads(result.stdout)
    assert len(hits) == 4 and [h["rank"] for h in hits] == [1, 2, 3, 4]
    scores = [h["rerank_score"] for h in hits]
    assert scores == sorted(scores, reverse=True) and all("score" in h for h in hits)
    table = run_cli("similar", "--doc", "3", "--k", "2", "--rerank", tiny_cross_encoder,
                    "--index", "idx", cwd=cwd)
    assert table.returncode == 0 and "rerank" in table.stdout


@pytest.mark.parametrize("args,message", [
    (["--rerank-depth", "0", "--rerank", "m"], "--rerank-depth must be at least 1, got 0"),
    (["--rerank", "./no-such-dir"], "--rerank ./no-such-dir: no such model directory"),
])
def test_cli_bad_rerank_is_one_line_exit_2(imported, args, message):
    cwd, _ = imported
    result = run_cli("similar", "--doc", "1", *args, "--index", "idx", cwd=cwd)
    assert result.returncode == 2
    assert result.stderr.strip() == f"Error: {message}"


def test_serve_reranks_with_the_model_loaded_once(imported, tiny_cross_encoder):
    from conftest import require

    require("fastapi", "serve")
    from fastapi.testclient import TestClient

    from simsearch.workflows.serve import ServeOptions, create_app

    cwd, texts = imported
    index = simsearch.load_index(cwd / "idx")
    app = create_app(index, ServeOptions(rerank=tiny_cross_encoder, rerank_depth=10))
    client = TestClient(app, base_url="http://127.0.0.1")
    got = client.get("/api/similar/3", params={"k": 3})
    assert got.status_code == 200, got.text
    first = similar_hits(index, 3, 10)
    expected = rerank_with(first, [texts[3]], RerankOptions(tiny_cross_encoder, depth=10), k=3)
    assert [h["row"] for h in got.json()] == [h.row for h in expected]
    assert [h["rerank_score"] for h in got.json()] == pytest.approx(
        [h.rerank_score for h in expected], abs=1e-5)
    with pytest.raises(InvalidParameter, match="rerank-depth|rerank_depth"):
        create_app(index, ServeOptions(rerank=tiny_cross_encoder, rerank_depth=0))


def test_batch_queries_rerank_like_single_queries(imported, tiny_cross_encoder, tmp_path):
    from simsearch.search import query_hits
    from simsearch.workflows.batch import QueryTableOptions, batch_hits, read_query_rows

    cwd, texts = imported
    index = simsearch.load_index(cwd / "idx")
    path = tmp_path / "new.csv"
    pd.DataFrame({"q": [texts[i].split(" ", 2)[2] for i in (1, 8, 20)]}).to_csv(path, index=False)
    rows = read_query_rows(path, QueryTableOptions("q"))
    lexical = search_options("lexical")
    options = RerankOptions(tiny_cross_encoder, depth=10)
    hits = batch_hits(index, rows, 10, options=lexical, block=2)
    got = rerank_with(hits, rows.texts, options, k=3)
    for q, text in enumerate(rows.texts):
        alone = rerank_with(query_hits(index, [text], 10, options=lexical), [text], options, k=3)
        mine = [h for h in got if h.query_index == q]
        assert [h.row for h in mine] == [h.row for h in alone]
        assert all(h.query_row == q for h in mine)
