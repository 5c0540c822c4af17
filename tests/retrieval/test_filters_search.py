"""--where end to end: the column file written at index time, filtered similar/query/eval
(library, notebook and CLI) pinned against brute force, one-line errors, old indexes."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from conftest import SAMPLE, run_cli

import simsearch
from simsearch.build import build_index
from simsearch.retrieval import filters
from simsearch.search import query_hits, similar_hits
from simsearch.store.index import load_index
from simsearch.store.meta import ColumnFileInfo

WHERE = "year >= 2020 and applicant == '삼성전자'"


@pytest.fixture(scope="module")
def sample_index(tmp_path_factory, tiny_model):
    """The sample patents indexed with the tiny model (in a fresh working directory), one
    vector per row and no lexical index, so dense brute force pins every ranking."""
    cwd = tmp_path_factory.mktemp("where")
    build_index(
        SAMPLE, "abstract", model=tiny_model, root=cwd / ".simsearch", chunking="none",
        lexical=False,
    )
    frame = pd.read_excel(SAMPLE)
    allowed = np.flatnonzero((frame["year"] >= 2020) & (frame["applicant"] == "삼성전자"))
    return cwd, load_index(cwd / ".simsearch"), frame, allowed


def brute_force(emb: np.ndarray, query: np.ndarray, allowed: np.ndarray, k: int, drop=-1):
    """Allowed rows by descending cosine similarity (ties by row), ``drop`` left out."""
    rows = allowed[allowed != drop]
    sims = emb[rows] @ query
    order = np.lexsort((rows, -sims))[:k]
    return rows[order].tolist(), sims[order]


def test_the_build_writes_the_source_columns_and_their_types(sample_index):
    _, index, frame, _ = sample_index
    table = filters.load_columns(index.file(filters.ROLE))
    assert table.columns == list(frame.columns) and table.n_rows == 120
    types = index.meta.get(ColumnFileInfo).types
    assert types["year"] == "int64" and "string" in types["applicant"]


def test_similar_with_a_filter_ranks_only_matching_rows(sample_index):
    _, index, _, allowed = sample_index
    emb = np.asarray(index.embeddings)
    hits = similar_hits(index, 0, k=5, where=WHERE)
    want, sims = brute_force(emb, emb[0], allowed, 5, drop=0)
    assert [h.row for h in hits] == want
    np.testing.assert_allclose([h.similarity for h in hits], sims, rtol=1e-5, atol=1e-6)
    assert all(h.columns["applicant"] == "삼성전자" for h in hits)
    # Before ranking, not after: unfiltered, most of these rows are not in the top 5.
    unfiltered = [h.row for h in similar_hits(index, 0, k=5)]
    assert len(set(unfiltered) & set(want)) < 5


def test_similar_clamps_k_to_the_matching_rows_and_says_so(sample_index):
    _, index, _, allowed = sample_index
    notes: list[str] = []
    hits = similar_hits(index, 1, k=50, where=WHERE, log=notes.append)
    # Row 1 is itself a matching row, and similar leaves it out.
    assert 1 in allowed
    assert sorted(h.row for h in hits) == sorted(set(allowed.tolist()) - {1})
    assert any(f"{len(allowed)} of 120 documents match the filter" in n for n in notes)
    assert any(f"documents matching the filter; showing {len(allowed) - 1}" in n for n in notes)
    assert similar_hits(index, 1, k=5, where="applicant = '없는회사'") == []


def test_query_with_a_filter_equals_brute_force(sample_index, tiny_model):
    from simsearch.encoding.sbert import encode, load_model

    _, index, _, allowed = sample_index
    text = "반도체 웨이퍼 식각"
    hits = query_hits(index, [text], k=4, where=WHERE)
    query = encode(load_model(tiny_model), [text])[0]
    want, _ = brute_force(np.asarray(index.embeddings), query, allowed, 4)
    assert [h.row for h in hits] == want


def test_notebook_keyword_where(sample_index, monkeypatch):
    cwd, _, _, allowed = sample_index
    monkeypatch.chdir(cwd)
    frame = simsearch.similar(0, k=3, where="topic = 'battery' and year <= 2021")
    assert len(frame) == 3
    assert set(frame["topic"]) == {"battery"} and (frame["year"] <= 2021).all()
    with pytest.raises(filters.InvalidFilter, match=r"^where 'yeer > 1': .*\"yeer\" not found"):
        simsearch.similar(0, where="yeer > 1")


@pytest.mark.slow  # several CLI subprocesses (about 6 s)
def test_cli_where_json_and_one_line_errors(sample_index):
    cwd, _, _, allowed = sample_index
    result = run_cli("similar", "--doc", "0", "--k", "3", "--where", WHERE, "-f", "json", cwd=cwd)
    assert result.returncode == 0, result.stderr
    rows = [h["row"] for h in json.loads(result.stdout)]
    assert len(rows) == 3 and set(rows) <= set(allowed.tolist())
    for where, reason in [
        ("yeer >= 2020", 'Binder Error: Referenced column "yeer" not found'),
        ("year >= 2020) UNION SELECT 1 FROM (SELECT 1", "not a single expression"),
    ]:
        result = run_cli("similar", "--doc", "0", "--where", where, cwd=cwd)
        assert result.returncode == 2
        assert result.stdout == ""
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in result.stderr
        assert lines[0].startswith(f"Error: --where {where!r}: {reason}")
        columns = "number, title, abstract, topic, year, applicant"
        assert lines[0].endswith(f"available columns: {columns}")


@pytest.mark.slow  # encodes the pairs (about 4 s)
def test_eval_within_a_filter(sample_index, tiny_model, tmp_path):
    from simsearch.science.evaluate import evaluate_index

    cwd, index, frame, allowed = sample_index
    # Each query is a document's own abstract: relevant is that row.
    rows = [int(allowed[0]), int(allowed[1]), 0]  # row 0 (battery, LG) is outside the filter
    pairs = pd.DataFrame({"query": frame["abstract"][rows].tolist(), "relevant": rows})
    pairs.to_csv(tmp_path / "pairs.csv", index=False)
    record = evaluate_index(tmp_path / "pairs.csv", cwd / ".simsearch", where=WHERE)
    assert record["queries"] == 2 and record["skipped"] == 1
    assert record["documents"] == len(allowed)
    assert record["recall@1"] == 100.0  # an abstract finds itself among the allowed rows
    args = ["eval", str(tmp_path / "pairs.csv"), "--index", str(cwd / ".simsearch")]
    result = run_cli(*args, "--where", "applicant = '없는회사'", cwd=cwd)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "Error: no query has a relevant document among the rows --where "
        "\"applicant = '없는회사'\" keeps"
    )


def test_an_index_without_a_column_file_is_told_to_reindex_and_gains_one(
    sample_index, tmp_path, tiny_model
):
    import shutil

    root = tmp_path / ".simsearch"
    shutil.copytree(sample_index[0] / ".simsearch", root)
    meta_path = root / "default" / "meta.json"
    meta = json.loads(meta_path.read_text())
    (root / "default" / meta["files"].pop("columns")["name"]).unlink()
    meta["sections"].pop("column_file")
    meta_path.write_text(json.dumps(meta))  # as an index built before filters existed
    with pytest.raises(simsearch.SimsearchError, match="no column file to filter on"):
        similar_hits(load_index(root), 0, where="year > 2000")
    report = build_index(
        SAMPLE, "abstract", model=tiny_model, root=root, chunking="none", lexical=False
    )
    assert report.reasons == ["no column file for filters yet"]
    # embeddings reused, not recomputed: the 119 distinct texts of 120 rows, 1 empty
    assert report.encoded == 0 and report.reused == 119
    assert len(similar_hits(load_index(root), 0, k=3, where="year > 2000")) == 3
