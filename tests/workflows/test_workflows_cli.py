"""The analyst commands through Typer: files written, one-line errors with exit code 2,
the user's source file never overwritten."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import simsearch


@pytest.fixture
def app():
    from simsearch.cli.typer_app import app

    return app


@pytest.fixture
def indexed(workdir):
    rng = np.random.default_rng(5)
    emb = rng.standard_normal((30, 8)).astype(np.float32)
    emb[12] = emb[4] * 1.01  # a near-duplicate pair
    frame = pd.DataFrame(
        {"title": [f"제목 {i}" for i in range(30)], "text": [f"문서 {i} 본문" for i in range(30)]}
    )
    frame.to_excel(workdir / "src.xlsx", index=False)
    np.save(workdir / "e.npy", emb)
    simsearch.build_index(workdir / "src.xlsx", "text", embeddings=workdir / "e.npy", model="x")
    return workdir


def test_neighbors_command_writes_xlsx_equal_to_similar(app, indexed):
    result = CliRunner().invoke(app, ["neighbors", "--k", "3", "-o", "nb.xlsx", "--show", "title"])
    assert result.exit_code == 0, result.output
    assert "Wrote the 3 nearest neighbours of 30 rows to nb.xlsx" in result.output
    sheet = pd.read_excel(indexed / "nb.xlsx")
    expected = simsearch.similar(4, k=3)
    assert sheet.loc[4, ["neighbor_1_row", "neighbor_2_row", "neighbor_3_row"]].tolist() == (
        expected["row"].tolist()
    )
    assert sheet.loc[4, "neighbor_1_title"] == "제목 12"


def test_dedup_command_prints_and_writes(app, indexed):
    result = CliRunner().invoke(app, ["dedup", "--threshold", "0.99", "--quiet"])
    assert result.exit_code == 0, result.output
    assert "1 near-duplicate pairs in 1 groups (2 rows) at cosine similarity >= 0.99" in (
        result.output
    )
    result = CliRunner().invoke(app, ["dedup", "-t", "0.99", "-o", "d.csv", "-q"])
    assert result.exit_code == 0, result.output
    pairs = pd.read_csv(indexed / "d-pairs.csv", encoding="utf-8-sig")
    assert pairs[["row_a", "row_b"]].values.tolist() == [[4, 12]]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["neighbors", "-o", "src.xlsx"], "is the indexed source file; choose another"),
        (["neighbors", "-o", "nb.txt"], "--out must end in .xlsx, .csv, .parquet"),
        (["neighbors", "-o", "nb.xlsx", "--k", "0"], "--k must be at least 1"),
        (["neighbors", "-o", "nb.xlsx", "--show", "claims"], "no column 'claims' to --show"),
        (["dedup", "-t", "0"], "--threshold must be a cosine similarity in (0, 1]"),
        (["map", "-o", "map.png"], "--out must end in .html"),
        (["map", "--png", "m.jpg"], "--png must end in .png"),
        (["map", "--column-out", "src.xlsx"], "--column-out src.xlsx is the indexed source file"),
        (["map", "--color", "nope"], "no column 'nope' for --color"),
        (["map", "--hover", "title,x1"], "no column 'x1' for --hover"),
        (["neighbors", "-o", "nb.xlsx", "--name", "nope"], "nope"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_source_intact(app, indexed, args, message):
    before = (indexed / "src.xlsx").read_bytes()
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: ") and message in lines[0]
    assert (indexed / "src.xlsx").read_bytes() == before


def test_dedup_help_states_the_library_default(app):
    from simsearch.workflows.dedup import DEFAULT_THRESHOLD

    result = CliRunner().invoke(app, ["dedup", "--help"], env={"COLUMNS": "200"})
    assert f"(default {DEFAULT_THRESHOLD})" in result.output
