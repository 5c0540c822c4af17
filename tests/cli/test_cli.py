"""The installed console script, run as a user runs it (subprocesses)."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pandas as pd
import pytest
from conftest import run_cli


@pytest.fixture(scope="module")
def indexed(tmp_path_factory, tiny_model):
    """A directory with docs.csv indexed by the tiny model via the CLI."""
    cwd = tmp_path_factory.mktemp("cli")
    texts = [f"문서 {i} " + "가나다라마바사아자차카타파하"[i % 14] * (i % 5 + 1) for i in range(30)]
    texts[4] = ""
    pd.DataFrame(
        {"number": range(100, 130), "title": [f"t{i}" for i in range(30)], "abstract": texts}
    ).to_csv(cwd / "docs.csv", index=False)
    result = run_cli("index", "docs.csv", "--column", "abstract", "--model", tiny_model, cwd=cwd)
    assert result.returncode == 0, result.stderr
    assert "Indexed 30 documents x 32 dims" in result.stderr
    assert "1 empty document kept" in result.stderr
    return cwd


def test_index_again_reuses_the_cache(indexed, tiny_model):
    result = run_cli("index", "docs.csv", "-c", "abstract", "--model", tiny_model, cwd=indexed)
    assert result.returncode == 0
    assert "up to date" in result.stderr and "nothing re-encoded" in result.stderr


def test_similar_json_equals_numpy_on_the_cached_matrix(indexed):
    result = run_cli(
        "similar", "--doc", "3", "--k", "5", "--format", "json", "--mode", "dense", cwd=indexed
    )
    assert result.returncode == 0, result.stderr
    hits = json.loads(result.stdout)
    meta = json.loads((indexed / ".simsearch" / "default" / "meta.json").read_text())
    emb = np.load(indexed / ".simsearch" / "default" / meta["files"]["embeddings"]["name"])
    distances = 1.0 - emb @ emb[3]
    distances[3] = np.inf  # left out by default
    expected = np.argsort(distances, kind="stable")[:5]
    assert [h["row"] for h in hits] == expected.tolist()
    assert [h["rank"] for h in hits] == [1, 2, 3, 4, 5]
    np.testing.assert_allclose([h["cosine_distance"] for h in hits], distances[expected], atol=1e-6)
    for hit in hits:
        assert set(hit) >= {"rank", "row", "cosine_distance", "similarity", "text"}
        assert hit["similarity"] == pytest.approx(1 - hit["cosine_distance"])
    source = pd.read_csv(indexed / "docs.csv", keep_default_na=False)
    assert [h["text"] for h in hits] == source["abstract"].iloc[expected].tolist()


def test_include_self_ranks_the_document_first(indexed):
    result = run_cli(
        "similar", "--doc", "3", "--k", "3", "--include-self", "-f", "json", "--mode", "dense",
        cwd=indexed,
    )
    hits = json.loads(result.stdout)
    assert hits[0]["row"] == 3 and hits[0]["cosine_distance"] == pytest.approx(0, abs=1e-6)


def test_table_and_csv_output(indexed):
    table = run_cli("similar", "--doc", "0", "--k", "3", "--show", "title,number", cwd=indexed)
    assert table.returncode == 0
    assert "rank" in table.stdout and "title" in table.stdout and "문서" in table.stdout
    out = run_cli("similar", "--doc", "0", "--k", "3", "-f", "csv", "--show", "title", cwd=indexed)
    rows = list(csv.DictReader(io.StringIO(out.stdout)))
    assert len(rows) == 3
    # One hit, one shape: the CSV carries score, mode and the matched text (issue 17).
    assert list(rows[0]) == [
        "rank", "row", "cosine_distance", "similarity", "score", "mode", "matched_text",
        "matched_terms", "title", "text",
    ]
    assert [float(r["score"]) for r in rows] == sorted((float(r["score"]) for r in rows),
                                                       reverse=True)


def test_query_several_at_once_from_stdin(indexed):
    result = run_cli(
        "query",
        "--file",
        "-",
        "--k",
        "2",
        "-f",
        "json",
        cwd=indexed,
        stdin="문서 가가\n\n문서 하하하\n",
    )
    assert result.returncode == 0, result.stderr
    hits = json.loads(result.stdout)
    assert [h["query_index"] for h in hits] == [0, 0, 1, 1]
    assert hits[2]["query"] == "문서 하하하"


@pytest.mark.parametrize(
    "args,message",
    [
        (["index", "nope.xlsx", "--column", "a"], "file not found: nope.xlsx"),
        (["index", "docs.txt.bak", "--column", "a"], "unsupported file type"),
        (["index", "docs.csv", "--column", "claims"], "no column 'claims'"),
        (
            ["index", "docs.csv", "--column", "abstract", "--model", "./no-such-dir"],
            "model directory not found",
        ),
        (
            ["index", "docs.csv", "--column", "abstract", "--model", "nobody/no-such-model"],
            "cannot load model 'nobody/no-such-model'",
        ),
        (["similar", "--doc", "30"], "--doc 30 is out of range"),
        (["similar", "--doc", "-1"], "--doc -1 is out of range"),
        (["similar", "--doc", "0", "--k", "0"], "--k must be at least 1"),
        (["similar", "--doc", "0", "--show", "nope"], "no column 'nope' to --show"),
        (["similar", "--doc", "0", "--format", "xml"], "unknown --format 'xml'"),
        (["similar", "--doc", "0", "--index", "elsewhere"], "run 'simsearch index"),
        (["query"], "no query given"),
    ],
)
def test_bad_input_is_one_line_exit_2(indexed, args, message):
    (indexed / "docs.txt.bak").write_text("x")
    result = run_cli(*args, cwd=indexed)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr
    assert "Traceback" not in result.stderr
    assert (indexed / ".simsearch" / "default" / "meta.json").exists()


def test_typer_registers_exactly_the_commands_of_the_registry():
    """The typer app, the fast lane and docs/cli.md all read ``cli.commands.COMMANDS``;
    the app must register every name there and nothing else."""
    import typer

    from simsearch.cli import app
    from simsearch.cli.commands import COMMANDS

    assert set(typer.main.get_command(app).commands) == set(COMMANDS)


@pytest.mark.parametrize("name", ["show", "similar", "query", "list", "info"])
def test_every_fast_command_is_parsed_by_the_fast_lane(name):
    """``show`` was declared fast but missing from the old command table, so the fast
    lane never parsed it."""
    from simsearch.cli.commands import COMMANDS
    from simsearch.cli.fast import parse

    assert COMMANDS[name].fast
    args = {"show": ["--doc", "3"], "similar": ["--doc", "3"], "query": ["battery"]}
    assert parse(name, args.get(name, [])) is not None


def test_parsing_a_fast_command_imports_neither_typer_nor_heavy_libraries():
    """The fast lane exists to skip typer's import: reading the registry and parsing
    every fast command must not pull typer, click, torch or pandas in."""
    import subprocess
    import sys

    from conftest import cli_env

    code = (
        "import sys\n"
        "from simsearch.cli.commands import COMMANDS\n"
        "from simsearch.cli.fast import parse\n"
        "args = {'similar': ['--doc', '1'], 'show': ['--doc', '1'], 'query': ['x']}\n"
        "for name, entry in COMMANDS.items():\n"
        "    if entry.fast:\n"
        "        assert parse(name, args.get(name, [])) is not None, name\n"
        "heavy = {'typer', 'click', 'torch', 'pandas', 'rich'} & set(sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=cli_env(), timeout=120
    )
    assert done.returncode == 0, done.stderr


def test_help_shows_the_default_model_and_no_type_on_flags():
    from typer.testing import CliRunner

    from simsearch.cli import app
    from simsearch.encoding.sbert import DEFAULT_MODEL

    result = CliRunner().invoke(app, ["index", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert f"[default: {DEFAULT_MODEL}" in result.output
    assert "<bool>" not in result.output
    assert "--rebuild" in result.output


def test_console_script_entry_point_is_the_cli_main():
    """pyproject's ``simsearch`` script names a callable that exists: the same ``main``
    every CLI test runs through ``python -m simsearch``."""
    import importlib

    import tomllib
    from conftest import REPO

    scripts = tomllib.loads((REPO / "pyproject.toml").read_text("utf-8"))["project"]["scripts"]
    module, _, attr = scripts["simsearch"].partition(":")
    from simsearch.cli import main

    assert getattr(importlib.import_module(module), attr) is main


def test_every_documented_format_is_honoured_and_others_refused(indexed):
    info = run_cli("info", "-f", "json", cwd=indexed)
    assert info.returncode == 0 and json.loads(info.stdout)["rows"] > 0
    for args in (["info", "-f", "csv"], ["list", "--format", "json"], ["eval", "x", "-f", "csv"]):
        refused = run_cli(*args, cwd=indexed)
        assert refused.returncode == 2, (args, refused.stderr)


@pytest.mark.slow  # one CLI run per output format (about 5 s)
def test_one_hit_one_shape_in_every_output(indexed):
    """Table, JSON, CSV and .xlsx carry the same fields, score, mode and the matched
    text included (issue 17); rank 1 has the highest score."""
    from simsearch.retrieval.hit import FLAT_FIELDS

    args = ("similar", "--doc", "0", "--k", "4", "--show", "title")
    hits = json.loads(run_cli(*args, "-f", "json", cwd=indexed).stdout)
    assert {"score", "mode", "matched_text", "matched_terms"} <= set(hits[0])
    assert run_cli(*args, "-o", "res.csv", cwd=indexed).returncode == 0
    assert run_cli(*args, "-o", "res.xlsx", cwd=indexed).returncode == 0
    table = run_cli(*args, cwd=indexed).stdout
    assert "score" in table and f"mode: {hits[0]['mode']}" in table
    csv_frame = pd.read_csv(indexed / "res.csv", keep_default_na=False)
    xlsx_frame = pd.read_excel(indexed / "res.xlsx")
    for frame in (csv_frame, xlsx_frame):
        assert list(frame.columns[: len(FLAT_FIELDS)]) == list(FLAT_FIELDS)
        assert frame["row"].tolist() == [h["row"] for h in hits]
        assert frame["mode"].tolist() == [h["mode"] for h in hits]
        np.testing.assert_allclose(frame["score"], [h["score"] for h in hits], rtol=1e-6)
        assert frame["score"].is_monotonic_decreasing
        assert frame["matched_text"].tolist() == [h["matched_text"] for h in hits]
