"""Filters (simsearch.retrieval.filters): DuckDB expressions over the index's column file,
pinned against pandas brute force, locked down, and applied before top-k."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import SAMPLE

from simsearch.retrieval import filters
from simsearch.retrieval.dense_index import DenseParts, ExactDense
from simsearch.retrieval.filters import InvalidFilter
from simsearch.retrieval.rowfilter import RowFilter, both
from simsearch.retrieval.topk import BLOCK_BYTES, top_k


@pytest.fixture(scope="module")
def sample_columns(tmp_path_factory):
    """The sample patents' column file and the DataFrame it was written from."""
    frame = pd.read_excel(SAMPLE)
    path = tmp_path_factory.mktemp("cols") / filters.COLUMNS_FILE
    filters.write_columns(frame, path)
    return path, frame


def test_example_filter_selects_exactly_the_matching_rows(sample_columns):
    path, frame = sample_columns
    rows = filters.filter_rows(path, "year >= 2020 and applicant == '삼성전자'")
    expected = np.flatnonzero((frame["year"] >= 2020) & (frame["applicant"] == "삼성전자"))
    assert rows.dtype == np.int64
    assert len(expected) >= 5  # the sample has several such patents
    np.testing.assert_array_equal(rows, expected)
    # An OR / IN / LIKE combination, against pandas.
    rows = filters.filter_rows(path, "topic in ('battery', 'food') or title like '%안테나%'")
    expected = frame["topic"].isin(["battery", "food"]) | frame["title"].str.contains("안테나")
    np.testing.assert_array_equal(rows, np.flatnonzero(expected))


def test_missing_values_never_match_and_mixed_columns_stay_filterable(tmp_path):
    frame = pd.DataFrame({
        "출원인": ["삼성전자", None, "LG전자", "삼성전자"],
        "year": [2021, 2022, None, 2019],
        "code": [1, "A-7", 3.5, None],  # mixed types, as spreadsheets have: stored as text
    })
    path = tmp_path / filters.COLUMNS_FILE
    types = filters.write_columns(frame, path)
    assert list(types) == ["출원인", "year", "code"]
    assert "string" in types["출원인"] and types["year"] == "double"
    assert types["code"] == "string"  # the mixed column, stored as text
    assert filters.load_columns(path).columns == ["출원인", "year", "code"]
    np.testing.assert_array_equal(filters.filter_rows(path, "\"출원인\" = '삼성전자'"), [0, 3])
    np.testing.assert_array_equal(filters.filter_rows(path, "year > 2000"), [0, 1, 3])
    np.testing.assert_array_equal(filters.filter_rows(path, "code = 'A-7'"), [1])
    np.testing.assert_array_equal(filters.filter_rows(path, "year is null"), [2])


def test_a_rewritten_column_file_is_reloaded(tmp_path):
    path = tmp_path / filters.COLUMNS_FILE
    filters.write_columns(pd.DataFrame({"year": [2019, 2020]}), path)
    assert list(filters.filter_rows(path, "year >= 2020")) == [1]
    filters.write_columns(pd.DataFrame({"year": [2021, 2020, 2022]}), path)
    assert list(filters.filter_rows(path, "year >= 2020")) == [0, 1, 2]


@pytest.mark.parametrize(
    ("expression", "reason"),
    [
        ("yeer >= 2020", 'column "yeer" not found'),
        ("year >=", "syntax error"),
        ("year > 'abc'", "Could not convert string 'abc'"),
        ("", "empty"),
        ("1=1; DROP TABLE docs", "syntax error"),
        ("1=1) UNION SELECT 1 FROM (SELECT 1", "not a single expression"),
        ("year > 2000 ORDER BY 1", "syntax error"),
        ("year IN (SELECT 2020)", "subqueries are not allowed"),
        ("EXISTS (SELECT * FROM read_csv('/etc/passwd'))", "subqueries are not allowed"),
        ("read_text('/etc/passwd') IS NOT NULL", "not allowed in a filter"),
    ],
)
def test_bad_expressions_raise_one_line_listing_the_columns(sample_columns, expression, reason):
    path, _ = sample_columns
    with pytest.raises(InvalidFilter) as caught:
        filters.filter_rows(path, expression)
    error = caught.value
    assert reason in error.reason
    assert error.param == "where" and error.expression == expression
    message = str(error)
    assert "\n" not in message
    assert "available columns: number, title, abstract, topic, year, applicant" in message
    assert filters.ROW_COLUMN not in error.columns


def test_a_cast_error_does_not_quote_a_whole_abstract(sample_columns):
    path, frame = sample_columns
    with pytest.raises(InvalidFilter) as caught:
        filters.filter_rows(path, "abstract")  # a text column used as a condition
    assert "to BOOL" in caught.value.reason
    assert len(str(caught.value)) < 400
    assert frame["abstract"][0] not in str(caught.value)


def test_the_connection_reaches_no_files_and_its_settings_are_locked(sample_columns, tmp_path):
    import duckdb

    path, _ = sample_columns
    con = filters.load_columns(path)._connection()
    outside = tmp_path / "secret.csv"
    outside.write_text("a\n1\n")
    some_frame = pd.DataFrame({"x": [1]})  # noqa: F841 - must stay invisible to SQL
    for sql in [
        f"SELECT * FROM read_csv('{outside}')",
        f"COPY (SELECT 1) TO '{tmp_path / 'out.csv'}'",
        f"ATTACH '{tmp_path / 'other.db'}'",
        "INSTALL httpfs",
        "SET enable_external_access = true",
        "SELECT * FROM some_frame",
    ]:
        with pytest.raises(duckdb.Error):
            con.execute(sql)
    assert not (tmp_path / "out.csv").exists() and not (tmp_path / "other.db").exists()
    assert con.execute("SELECT current_setting('enable_external_access')").fetchone()[0] is False


def test_row_filter_rows_mask_and_combination():
    rng = np.random.default_rng(0)
    rows = np.sort(rng.choice(50, 17, replace=False))
    allow = RowFilter.of_rows(rows, 50)
    np.testing.assert_array_equal(allow.rows, rows)
    assert allow.count == 17 and allow.mask.nonzero()[0].tolist() == rows.tolist()
    even = RowFilter.of_mask(np.arange(50) % 2 == 0)
    np.testing.assert_array_equal((allow & even).rows, rows[rows % 2 == 0])
    assert both(None, allow) is allow and both(allow, None) is allow


def _brute_force(emb, queries, k, rows, exclude=None):
    """Top-k by full scores with every disallowed (or excluded) row at -inf."""
    scores = queries @ emb.T
    allowed = RowFilter.of_rows(rows, len(emb)).mask
    scores[:, ~allowed] = -np.inf
    if exclude is not None:
        for q, row in enumerate(exclude):
            if row >= 0:
                scores[q, row] = -np.inf
    k = min(k, int(np.isfinite(scores).sum(axis=1).min()))
    order = np.lexsort((np.broadcast_to(np.arange(len(emb)), scores.shape), -scores), axis=1)
    idx = order[:, :k]
    return idx, np.take_along_axis(scores, idx, axis=1)


def _within(emb, queries, k, rows, exclude=None, block_bytes=BLOCK_BYTES):
    """The exact dense scan restricted to ``rows`` (a RowFilter), as ``(m, k')`` arrays."""
    offsets = np.arange(len(emb) + 1, dtype=np.int64)
    dense = ExactDense(DenseParts(emb, offsets, emb), block_bytes)
    allow = RowFilter.of_rows(rows, len(emb))
    found = dense.search(np.atleast_2d(queries), k, allow, exclude, "max")
    width = min(len(f[0]) for f in found)
    return np.stack([f[0][:width] for f in found]), np.stack([f[1][:width] for f in found])


@pytest.mark.parametrize("block_bytes", [4 * 800, BLOCK_BYTES])
def test_filtered_exact_scan_equals_brute_force_over_the_allowed_rows(block_bytes):
    rng = np.random.default_rng(1)
    emb = rng.standard_normal((400, 16)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    emb[10] = emb[11]  # a tie, ordered by ascending row
    queries = emb[[10, 3, 250]]
    rows = np.sort(rng.choice(400, 60, replace=False))
    rows = np.union1d(rows, [3, 10, 11])
    exclude = np.array([10, 3, -1])  # similar --doc: leave the query document out
    idx, sims = _within(emb, queries, 10, rows, exclude, block_bytes)
    want_idx, want_sims = _brute_force(emb, queries, 10, rows, exclude)
    np.testing.assert_array_equal(idx, want_idx)
    np.testing.assert_allclose(sims, want_sims, rtol=1e-5, atol=1e-6)
    assert idx[0, 0] == 11 and idx.shape == (3, 10)
    # With every row allowed it is ranking.top_k itself.
    all_idx, _ = _within(emb, queries, 10, np.arange(400), block_bytes=block_bytes)
    np.testing.assert_array_equal(all_idx, top_k(emb, queries, 10)[0])


def test_filtered_exact_scan_returns_k_hits_whenever_k_rows_match():
    rng = np.random.default_rng(2)
    emb = rng.standard_normal((1000, 8)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    query = emb[999]
    # The 5 allowed rows are the least similar to the query: a filter applied after an
    # unfiltered top-k would return none of them.
    rows = np.sort(np.argsort(emb @ query)[:5])
    idx, sims = _within(emb, query, 5, rows)
    assert sorted(idx[0]) == list(rows)
    assert np.all(np.diff(sims[0]) <= 0)
    idx, _ = _within(emb, query, 10, rows)  # fewer rows than k
    assert idx.shape == (1, 5)
    idx, _ = _within(emb, query, 10, np.empty(0, np.int64))
    assert idx.shape == (1, 0)
