"""Bad input, table-driven: every case exits 2 with one line naming the problem, no
traceback, and the index already on disk survives untouched."""

from __future__ import annotations

import json
import shutil
import zipfile

import numpy as np
import pandas as pd
import pytest
from conftest import run_cli
from typer.testing import CliRunner

from simsearch.cli import app


@pytest.fixture(scope="module")
def project(tmp_path_factory, tiny_model):
    """A directory with good and bad input files and a built index."""
    root = tmp_path_factory.mktemp("bad-input")
    frame = pd.DataFrame(
        {
            "id": range(12),
            "text": [f"문서 {i} 배터리 음극재" for i in range(12)],
            "number": [i * 1.5 for i in range(12)],
            "blank": [""] * 12,
            "long": ["가나다라 " * 400] + ["짧은 문장"] * 11,
        }
    )
    frame.to_csv(root / "docs.csv", index=False)
    frame.to_excel(root / "docs.xlsx", index=False, sheet_name="main")
    (root / "empty.csv").write_bytes(b"")
    (root / "folder.csv").mkdir()
    (root / "notes.docx").write_bytes(b"PK")
    (root / "fake.xlsx").write_text("id,text\n1,a\n")  # CSV renamed to .xlsx
    # An encrypted workbook is an OLE compound file, not a zip: same signature.
    (root / "locked.xlsx").write_bytes(bytes.fromhex("D0CF11E0A1B11AE1") + b"\0" * 504)
    with zipfile.ZipFile(root / "corrupt.xlsx", "w") as archive:
        archive.writestr("[Content_Types].xml", "<broken")
    runner = CliRunner()
    result = runner.invoke(
        app,
        [
            "index",
            str(root / "docs.csv"),
            "-c",
            "text",
            "-m",
            tiny_model,
            "--index",
            str(root / "idx"),
            "-q",
        ],
    )
    assert result.exit_code == 0, result.output
    return root


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def one_line_exit_2(result, expected):
    assert result.exit_code == 2, (result.exit_code, result.output)
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert expected in lines[0], lines[0]
    assert "Traceback" not in result.output


CASES = [
    ("missing file", ["index", "{p}/nope.csv", "-c", "text"], "file not found"),
    ("directory", ["index", "{p}/folder.csv", "-c", "text"], "is a directory"),
    ("empty file", ["index", "{p}/empty.csv", "-c", "text"], "is empty (0 bytes)"),
    ("unsupported", ["index", "{p}/notes.docx", "-c", "text"], "unsupported file type '.docx'"),
    ("csv named xlsx", ["index", "{p}/fake.xlsx", "-c", "text"], "not a readable .xlsx"),
    ("password-protected", ["index", "{p}/locked.xlsx", "-c", "text"], "password-protected"),
    ("corrupt xlsx", ["index", "{p}/corrupt.xlsx", "-c", "text"], "cannot read"),
    ("unknown sheet", ["index", "{p}/docs.xlsx", "-c", "text", "--sheet", "x"], "no sheet 'x'"),
    ("unknown column", ["index", "{p}/docs.csv", "-c", "claims"], "'id', 'text', 'number'"),
    ("all-empty column", ["index", "{p}/docs.csv", "-c", "blank"], "empty in every row"),
    (
        "bad batch size",
        ["index", "{p}/docs.csv", "-c", "text", "--batch-size", "0"],
        "--batch-size must be at least 1",
    ),
    ("doc negative", ["similar", "--doc", "-3"], "--doc -3 is out of range"),
    ("doc past end", ["similar", "--doc", "12"], "rows 0 to 11"),
    ("k zero", ["similar", "--doc", "0", "--k", "0"], "--k must be at least 1"),
    (
        "other model",
        ["similar", "--doc", "0", "--model", "sentence-transformers/other"],
        "the index was built with",
    ),
    ("empty query", ["query", " "], "query 1 is empty"),
    ("query file missing", ["query", "--file", "{p}/none.txt"], "query file not found"),
    ("no index", ["similar", "--doc", "0", "--index", "{p}/nowhere"], "run 'simsearch index"),
    ("index is a file", ["similar", "--doc", "0", "--index", "{p}/docs.csv"], "is a file"),
]


@pytest.mark.parametrize("args,expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input(project, args, expected):
    args = [a.format(p=project) for a in args]
    if args[0] in ("similar", "query") and "--index" not in args:
        args += ["--index", str(project / "idx")]
    if args[0] == "index":
        args += ["--index", str(project / "scratch")]
    one_line_exit_2(invoke(*args), expected)
    assert (project / "idx" / "default" / "meta.json").exists()


def damaged_copy(project, tmp_path, damage):
    target = tmp_path / "idx"
    shutil.copytree(project / "idx", target)
    index_dir = target / "default"
    meta = json.loads((index_dir / "meta.json").read_text())
    damage(index_dir, meta)
    return target


@pytest.mark.parametrize(
    "damage,expected",
    [
        (
            lambda d, m: (d / m["files"]["embeddings"]["name"]).write_bytes(
                (d / m["files"]["embeddings"]["name"]).read_bytes()[:-100]
            ),
            "has ",
        ),
        (
            lambda d, m: (d / m["files"]["embeddings"]["name"]).write_bytes(
                b"not a numpy file at all"
            ),
            "damaged",
        ),
        (lambda d, m: (d / "meta.json").unlink(), "meta.json is missing"),
        (lambda d, m: (d / "meta.json").write_text("{"), "meta.json is unreadable"),
        (lambda d, m: (d / m["files"]["rows"]["name"]).unlink(), "is missing"),
        (
            lambda d, m: np.save(
                d / m["files"]["embeddings"]["name"], np.zeros((12, 32), dtype=np.float64)[:, :16]
            ),
            "damaged",
        ),
    ],
    ids=["truncated-npy", "corrupt-npy", "no-meta", "bad-meta", "missing-rows", "wrong-shape"],
)
def test_damaged_index_is_refused_with_rebuild_hint(project, tmp_path, damage, expected):
    target = damaged_copy(project, tmp_path, damage)
    result = invoke("similar", "--doc", "0", "--index", target)
    one_line_exit_2(result, expected)
    assert "--rebuild" in result.stderr


def test_bit_flip_is_caught_by_verify_and_not_reused(project, tmp_path, tiny_model):
    def flip(d, m):
        path = d / m["files"]["embeddings"]["name"]
        data = bytearray(path.read_bytes())
        data[-5] ^= 0xFF
        path.write_bytes(bytes(data))

    target = damaged_copy(project, tmp_path, flip)
    one_line_exit_2(invoke("info", "--verify", "--index", target), "fails its sha256 check")
    result = invoke(
        "index", project / "docs.csv", "-c", "text", "-m", tiny_model, "--index", target, "-q"
    )
    assert result.exit_code == 0
    assert "ignoring the previous index" in result.stderr and "encoded 12" in result.stderr


@pytest.mark.slow
def test_numbers_long_cells_and_k_clamp_succeed_with_a_notice(project, tiny_model, tmp_path):
    # Real subprocesses: the notices must reach a real stderr exactly once, with no
    # library warning beside them.
    numbers = run_cli(
        "index",
        "docs.csv",
        "-c",
        "number",
        "-m",
        tiny_model,
        "--index",
        str(tmp_path / "n"),
        "-q",
        cwd=project,
    )
    assert numbers.returncode == 0, numbers.stderr
    out = run_cli(
        "similar",
        "--doc",
        "1",
        "--k",
        "2",
        "-f",
        "json",
        "--index",
        str(tmp_path / "n"),
        cwd=project,
    )
    assert {h["text"] for h in json.loads(out.stdout)} <= {str(i * 1.5) for i in range(12)}

    long = run_cli(
        "index",
        "docs.csv",
        "-c",
        "long",
        "-m",
        tiny_model,
        "--index",
        str(tmp_path / "l"),
        "-q",
        "--chunking",
        "none",  # the truncation notice; windows are tested in test_retrieval_index.py
        "--no-lexical",
        cwd=project,
    )
    assert long.returncode == 0, long.stderr
    lines = long.stderr.strip().splitlines()
    # Besides the notice and the summary: at most the one-time ONNX export line (first,
    # when the default onnx backend exports the model before encoding).
    notices = [line for line in lines if not line.startswith("exported ")]
    assert len(lines) - len(notices) <= 1, long.stderr
    assert notices[0] == (
        "1 texts are longer than the model's max sequence length and were truncated when encoded"
    )
    assert notices[-1].startswith("Indexed 12 documents"), long.stderr
    assert len(notices) == 2, long.stderr

    clamped = run_cli(
        "similar",
        "--doc",
        "0",
        "--k",
        "50",
        "-f",
        "json",
        "--index",
        str(project / "idx"),
        cwd=project,
    )
    assert clamped.returncode == 0
    assert "--k 50 is more than the 11 documents available" in clamped.stderr
    assert len(json.loads(clamped.stdout)) == 11
