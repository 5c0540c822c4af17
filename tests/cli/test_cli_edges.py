"""Edges of the command line (issue 18, A10 and B1): bad ports and empty model names
are one line with exit code 2; the results table gives the text a fair share of an
80-column terminal and wraps it at word boundaries; a pipe gets one line per hit."""

from __future__ import annotations

import io

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
    emb = rng.standard_normal((12, 8)).astype(np.float32)
    frame = pd.DataFrame(
        {"title": [f"제목 {i}" for i in range(12)], "text": [f"문서 {i} 본문" for i in range(12)]}
    )
    frame.to_excel(workdir / "src.xlsx", index=False)
    np.save(workdir / "e.npy", emb)
    simsearch.build_index(workdir / "src.xlsx", "text", embeddings=workdir / "e.npy", model="x")
    return workdir


def _one_error_line(result, *words: str) -> None:
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    for word in words:
        assert word in lines[0], lines[0]


@pytest.mark.parametrize("port", ["99999", "-1", "0", "65536"])
def test_a_port_out_of_range_is_one_line(app, indexed, port):
    _one_error_line(CliRunner().invoke(app, ["serve", "--port", port]), "--port", "65535")


@pytest.mark.parametrize(
    "args",
    [
        ["index", "src.xlsx", "-c", "text", "-m", ""],
        ["index", "src.xlsx", "-c", "text", "-m", "  "],
        ["similar", "--doc", "0", "-m", ""],
        ["eval", "pairs.csv", "-m", "x", "-m", ""],
        ["train", "--method", "simcse", "-o", "out", "-m", ""],
    ],
)
def test_an_empty_model_name_is_one_line(app, indexed, args):
    before = sorted(p.name for p in indexed.iterdir())
    _one_error_line(CliRunner().invoke(app, args), "--model is empty")
    assert sorted(p.name for p in indexed.iterdir()) == before


WORDS = [
    "콘크리트",
    "구조물의",
    "균열",
    "보수를",
    "위한",
    "고강도",
    "모르타르",
    "조성물",
    "및",
    "그",
    "시공",
    "방법",
]


def _hits(n: int = 5):
    from simsearch.retrieval.hit import Hit

    text = " ".join(WORDS * 6)
    return [
        Hit(
            rank=i + 1,
            row=10 * i,
            score=0.9 - i / 10,
            mode="dense",
            similarity=0.9 - i / 10,
            cosine_distance=0.1 + i / 10,
            text=text,
            matched_text=text,
            columns={"title": f"고강도 콘크리트 보수 공법 제{i}호"},
            query="콘크리트 보수",
            query_index=0,
        )
        for i in range(n)
    ]


def _console(terminal: bool):
    from rich.console import Console

    return Console(
        file=io.StringIO(), width=80, force_terminal=terminal, color_system=None, soft_wrap=False
    )


def test_the_table_at_80_columns_wraps_korean_at_word_boundaries(monkeypatch):
    from simsearch.cli.render import write_table

    console = _console(terminal=True)
    write_table(_hits(), ["title"], console=console)
    out = console.file.getvalue()
    lines = out.splitlines()
    assert max(len(line) for line in lines) <= 80
    words = set(out.split())
    assert set(WORDS) <= words, "a Korean word was cut across lines"
    assert {"콘크", "리트"}.isdisjoint(words)
    # The text takes at least half the width: 5 hits of 78 words fit in few lines.
    assert len(lines) < 5 * 30, len(lines)


def test_a_pipe_gets_one_tab_separated_line_per_hit(monkeypatch):
    from simsearch.cli.render import write_table

    monkeypatch.delenv("COLUMNS", raising=False)
    console = _console(terminal=False)
    hits = _hits()
    write_table(hits, ["title"], console=console)
    lines = console.file.getvalue().splitlines()
    assert len(lines) == 1 + len(hits)
    header = lines[0].split("\t")
    assert header == [
        "query_index",
        "query",
        "rank",
        "row",
        "similarity",
        "score",
        "mode",
        "title",
        "text",
    ]
    for hit, line in zip(hits, lines[1:]):
        cells = line.split("\t")
        assert len(cells) == len(header)
        assert int(cells[3]) == hit.row and cells[-1] == hit.text
        assert cells[-2] == hit.columns["title"]


def test_similar_through_a_pipe_prints_lines(app, indexed, monkeypatch):
    monkeypatch.delenv("COLUMNS", raising=False)
    result = CliRunner().invoke(app, ["similar", "--doc", "0", "--k", "3", "--show", "title"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == 4 and all(line.count("\t") == 6 for line in lines)
    assert [line.split("\t")[1] for line in lines[1:]] == [
        str(r) for r in simsearch.similar(0, k=3)["row"]
    ]
