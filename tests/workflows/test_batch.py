"""Batch queries from a spreadsheet (``query --file X.xlsx --query-column C``): each row's
hits are ``query``'s hits for its text, carried with the query row's columns."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import run_cli

import simsearch
from simsearch.errors import InvalidParameter, SimsearchError
from simsearch.search import query_hits, search_options
from simsearch.workflows.batch import (
    QueryTableOptions,
    batch_hits,
    is_table,
    read_query_rows,
)

TEXTS = [f"문서 {i} " + "가나다라마바사아자차카타파하"[i % 14] * (i % 5 + 1) for i in range(30)]
QUERIES = ["문서 가가", "", "하하하 문서", "마마 바바", "문서 3 사"]


@pytest.fixture(scope="module")
def batch_dir(tmp_path_factory, tiny_model):
    """An index of 30 Korean rows (tiny model, with BM25) and a query table of 5 rows,
    one with an empty query cell, in .xlsx and .csv."""
    cwd = tmp_path_factory.mktemp("batch")
    pd.DataFrame({"number": range(100, 130), "abstract": TEXTS}).to_csv(
        cwd / "docs.csv", index=False
    )
    simsearch.build_index(cwd / "docs.csv", "abstract", model=tiny_model, root=cwd / "idx")
    queries = pd.DataFrame({"id": [f"A{i}" for i in range(5)], "abstract": QUERIES,
                            "year": [2020, 2021, 2022, 2023, 2024]})
    queries.to_excel(cwd / "new.xlsx", index=False)
    queries.to_csv(cwd / "new.csv", index=False)
    return cwd


@pytest.mark.parametrize("mode", ["hybrid", "dense", "lexical"])
def test_each_row_gets_the_hits_of_query(batch_dir, mode):
    index = simsearch.load_index(batch_dir / "idx")
    rows = read_query_rows(batch_dir / "new.xlsx", QueryTableOptions("abstract"))
    assert rows.rows == [0, 2, 3, 4] and rows.skipped == [1]
    options = search_options(mode)
    seen = []
    hits = batch_hits(index, rows, 4, options=options, block=3,
                      on_progress=lambda done, total: seen.append((done, total)))
    assert seen == [(3, 4), (4, 4)]  # two blocks of at most 3 queries
    for q, (text, row) in enumerate(zip(rows.texts, rows.rows)):
        mine = [h for h in hits if h.query_index == q]
        alone = query_hits(index, [text], 4, options=options)
        assert [h.row for h in mine] == [h.row for h in alone]
        np.testing.assert_allclose([h.score for h in mine], [h.score for h in alone], atol=1e-5)
        assert all(h.query == text and h.query_row == row for h in mine)
        assert mine[0].query_columns == {"id": f"A{row}", "abstract": QUERIES[row],
                                         "year": 2020 + row}
        assert [h.rank for h in mine] == list(range(1, len(mine) + 1))


def test_the_flat_row_keeps_the_query_columns_beside_the_hits():
    from simsearch.retrieval.hit import FLAT_FIELDS, Hit, flat_header

    hit = Hit(rank=1, row=3, score=0.5, mode="dense", similarity=0.5, cosine_distance=0.5,
              text="t", matched_text="t", columns={"abstract": "t"}, query="q", query_index=0,
              query_row=2, query_columns={"abstract": "q", "n": float("nan")})
    flat = hit.flat()
    assert list(flat) == ["query_index", "query", "query_row", "query.abstract", "query.n",
                          *FLAT_FIELDS, "abstract"]
    assert flat["query.abstract"] == "q" and flat["abstract"] == "t" and flat["query.n"] is None
    assert flat_header([hit]) == list(flat)[:-1]
    assert hit.to_json()["query_columns"] == {"abstract": "q", "n": None}


def test_which_files_are_tables():
    assert is_table("new.xlsx", None) and is_table("new.CSV", None)
    assert is_table("queries.txt", "abstract")  # a column: read as a table (TSV)
    assert not is_table("queries.txt", None) and not is_table("-", None)
    assert not is_table(None, None)


def test_query_table_errors(tmp_path):
    path = tmp_path / "q.csv"
    pd.DataFrame({"id": [1, 2], "abstract": ["가", " "]}).to_csv(path, index=False)
    with pytest.raises(InvalidParameter, match="has 2 columns.*'id', 'abstract'") as error:
        read_query_rows(path)
    assert error.value.param == "query_column"
    with pytest.raises(InvalidParameter, match="no column 'nope'"):
        read_query_rows(path, QueryTableOptions("nope"))
    one = tmp_path / "one.csv"
    pd.DataFrame({"question": ["가나", "다라"]}).to_csv(one, index=False)
    assert read_query_rows(one).texts == ["가나", "다라"]  # the only column
    empty = tmp_path / "empty.csv"
    pd.DataFrame({"abstract": [" ", None]}).to_csv(empty, index=False)
    with pytest.raises(SimsearchError, match="empty in every row"):
        read_query_rows(empty, QueryTableOptions("abstract"))


@pytest.mark.slow
@pytest.mark.parametrize("suffix", [".xlsx", ".csv"])
def test_cli_writes_one_row_per_query_row_and_rank(batch_dir, suffix):
    out = batch_dir / f"matches{suffix}"
    result = run_cli("query", "--file", f"new{suffix}", "--query-column", "abstract", "--k", "3",
                     "-o", out.name, "--index", "idx", cwd=batch_dir)
    assert result.returncode == 0, result.stderr
    assert "1 row with an empty 'abstract' skipped" in result.stderr
    got = pd.read_excel(out) if suffix == ".xlsx" else pd.read_csv(out, encoding="utf-8-sig")
    assert len(got) == 4 * 3
    assert got["query_row"].tolist() == [r for r in (0, 2, 3, 4) for _ in range(3)]
    assert got["query.id"].tolist() == [f"A{r}" for r in (0, 2, 3, 4) for _ in range(3)]
    assert got["rank"].tolist() == [1, 2, 3] * 4
    # The hit's own columns keep their names beside the query's (prefixed); the CSV holds
    # the hit's text (and --show columns), the workbook every source column.
    hit_columns = {"abstract", "number"} if suffix == ".xlsx" else {"text"}
    assert {"query.abstract", "query.year", *hit_columns} <= set(got.columns)
    index = simsearch.load_index(batch_dir / "idx")
    alone = query_hits(index, [QUERIES[2]], 3)
    assert got["row"].tolist()[3:6] == [h.row for h in alone]


def test_cli_refuses_table_options_without_a_table(batch_dir):
    result = run_cli("query", "문서", "--sheet", "0", "--index", "idx", cwd=batch_dir)
    assert result.returncode == 2
    assert result.stderr.strip() == "Error: --sheet reads a spreadsheet given with --file"
    result = run_cli("query", "--file", "new.xlsx", "--index", "idx", cwd=batch_dir)
    assert result.returncode == 2 and "name the one holding the queries with --query-column" \
        in result.stderr
