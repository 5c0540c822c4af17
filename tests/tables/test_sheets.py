"""Issue 10: real Korean spreadsheets on first contact, and results that go back to Excel.

Every test builds the file a Korean analyst actually has (cp949 CSV from Korean Excel,
UTF-16 "Unicode text", a workbook with a title row and merged cells, several sheets)
and runs the CLI or the notebook API on it, asserting row numbers and texts.
"""

from __future__ import annotations

import codecs
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import require
from typer.testing import CliRunner

from simsearch.cli import app

ABSTRACTS = [
    "리튬 이차전지용 실리콘 음극재의 부피 팽창을 억제하는 방법",
    "반도체 웨이퍼의 미세 패턴을 식각하는 플라즈마 장치",
    "자율주행 차량의 라이다 센서 융합 객체 인식",
    "콘크리트 균열을 스스로 보수하는 박테리아 조성물",
    "유기 발광 다이오드 디스플레이의 번인 보상 회로",
    "하천 녹조를 가압 부상으로 제거하는 수처리 장치",
]
TITLES = ["음극재", "식각 장치", "라이다", "자기치유 콘크리트", "OLED 보상", "녹조 제거"]
APPLICANTS = ["가나전자", "가나전자", "다라반도체", "마바건설", "사아디스플레이", "자차환경"]


def invoke(*args: str) -> tuple[int, str, str]:
    """Run the CLI in-process; returns (exit code, stdout, stderr)."""
    result = CliRunner().invoke(app, list(args), env={"COLUMNS": "100"})
    err = result.stderr
    if result.exit_code not in (0, 2):  # an uncaught exception: show it in the failure
        err += repr(result.exception)
    return result.exit_code, result.stdout, err


def build(path: Path, column: str, tiny_model: str, *extra: str) -> tuple[int, str, str]:
    root = path.parent / "idx"
    return invoke("index", str(path), "-c", column, "-m", tiny_model, "--index", str(root), *extra)


def similar_json(path: Path, doc: int, *extra: str) -> list[dict]:
    code, out, err = invoke(
        "similar", "--doc", str(doc), "--k", "50", "--format", "json",
        "--index", str(path.parent / "idx"), "--include-self", *extra,
    )  # fmt: skip
    assert code == 0, err
    return json.loads(out)


def text_of_rows(path: Path) -> dict[int, str]:
    """Row -> text as the index holds it (every document is in `similar --include-self`)."""
    return {h["row"]: h["text"] for h in similar_json(path, 0)}


def write_csv(path: Path, encoding: str, sep: str = ",") -> None:
    lines = [sep.join(["번호", "제목", "초록"])]
    lines += [sep.join([str(i), t, a]) for i, (t, a) in enumerate(zip(TITLES, ABSTRACTS))]
    data = "\r\n".join(lines) + "\r\n"
    if encoding == "utf-16":  # Excel's "Unicode text": UTF-16 LE with a BOM, tab-separated
        path.write_bytes(codecs.BOM_UTF16_LE + data.encode("utf-16-le"))
    elif encoding == "utf-8-sig":
        path.write_bytes(codecs.BOM_UTF8 + data.encode("utf-8"))
    else:
        path.write_bytes(data.encode(encoding))


def titled_workbook(path: Path) -> None:
    """A title row merged over A1:D1, the header on Excel row 2, data from row 3;
    applicant B3:B4 merged (same applicant) and abstract D5:D6 merged over two rows."""
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.title = "특허"
    sheet["A1"] = "2024 특허 목록"
    sheet.merge_cells("A1:D1")
    sheet.append(["번호", "출원인", "제목", "초록"])
    for i, (title, abstract) in enumerate(zip(TITLES, ABSTRACTS)):
        sheet.append([i + 1, APPLICANTS[i], title, abstract])
    sheet.merge_cells("B3:B4")  # openpyxl blanks B4, as Excel stores it
    sheet.merge_cells("D5:D6")  # the abstract of row 5 covers row 6 too
    book.save(path)


# ------------------------------------------------------------------ 1. encodings
@pytest.mark.parametrize(
    ("encoding", "suffix", "sep"),
    [("cp949", ".csv", ","), ("euc-kr", ".csv", ","), ("utf-8-sig", ".csv", ","),
     ("utf-16", ".txt", "\t")],
)  # fmt: skip
def test_korean_excel_csv_encodings_index_as_written(tmp_path, tiny_model, encoding, suffix, sep):
    path = tmp_path / f"patents{suffix}"
    write_csv(path, encoding, sep)
    code, _, err = build(path, "초록", tiny_model, "-q")
    assert code == 0, err
    assert text_of_rows(path) == dict(enumerate(ABSTRACTS))
    # The build says which encoding it read (cp949 and euc-kr are one family).
    named = {"cp949": "cp949", "euc-kr": "cp949", "utf-8-sig": "utf-8", "utf-16": "utf-16"}
    assert named[encoding] in err.lower()


def test_encoding_override_and_wrong_override(tmp_path, tiny_model):
    path = tmp_path / "patents.csv"
    write_csv(path, "cp949")
    code, _, err = build(path, "초록", tiny_model, "-q", "--encoding", "cp949")
    assert code == 0, err
    assert text_of_rows(path)[3] == ABSTRACTS[3]
    code, _, err = build(path, "초록", tiny_model, "-q", "--encoding", "utf-8", "--name", "x")
    assert code == 2
    assert len(err.strip().splitlines()) == 1
    assert "utf-8" in err and "--encoding" in err


# ------------------------------------------------------- 2-3. title row, merged cells
def test_title_row_and_merged_cells_index_with_data_row_numbers(tmp_path, tiny_model):
    path = tmp_path / "patents.xlsx"
    titled_workbook(path)
    code, _, err = build(path, "초록", tiny_model, "-q")
    assert code == 0, err
    # The header is found on Excel row 2 and said so; merged ranges are filled and said so.
    assert "header" in err and "row 2" in err
    assert "merged" in err
    texts = text_of_rows(path)
    # Document 0 is the first data row (Excel row 3), not the header line.
    assert texts[0] == ABSTRACTS[0]
    assert len(texts) == len(ABSTRACTS)
    # D5:D6 merged: document 3 (Excel row 6) carries the merged abstract, not "".
    assert texts[3] == ABSTRACTS[2]
    hits = similar_json(path, 0, "--show", "출원인")
    applicant = {h["row"]: h["columns"]["출원인"] for h in hits}
    assert applicant[1] == "가나전자"  # B3:B4 merged: filled with the top-left value


def test_header_row_option_overrides_detection(tmp_path, tiny_model):
    path = tmp_path / "patents.xlsx"
    titled_workbook(path)
    code, _, err = build(path, "초록", tiny_model, "-q", "--header-row", "2")
    assert code == 0, err
    assert text_of_rows(path)[0] == ABSTRACTS[0]
    code, _, err = build(path, "초록", tiny_model, "-q", "--header-row", "1", "--name", "h1")
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "초록" in err


def test_title_row_in_a_csv(tmp_path, tiny_model):
    path = tmp_path / "patents.csv"
    write_csv(path, "utf-8")
    path.write_text("2024 특허 목록,,\n" + path.read_text(encoding="utf-8"), encoding="utf-8")
    code, _, err = build(path, "초록", tiny_model, "-q")
    assert code == 0, err
    assert text_of_rows(path) == dict(enumerate(ABSTRACTS))


# ---------------------------------------------------------------- 4. other sheet
def test_column_on_another_sheet(tmp_path, tiny_model):
    from openpyxl import Workbook

    path = tmp_path / "book.xlsx"
    book = Workbook()
    book.active.title = "표지"
    book.active.append(["메모"])
    book.active.append(["이 파일은 2024년 특허 목록입니다"])
    data = book.create_sheet("목록")
    data.append(["제목", "초록"])
    for title, abstract in zip(TITLES, ABSTRACTS):
        data.append([title, abstract])
    other = book.create_sheet("요약")
    other.append(["초록"])
    other.append(["다른 초록"])
    book.save(path)
    # The column is on two other sheets: one line naming them and --sheet.
    code, _, err = build(path, "초록", tiny_model, "-q")
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "'목록'" in err and "--sheet 1" in err
    code, _, err = build(path, "초록", tiny_model, "-q", "--sheet", "1")
    assert code == 0, err
    assert text_of_rows(path) == dict(enumerate(ABSTRACTS))


def test_column_on_exactly_one_other_sheet_is_used_and_said(tmp_path, tiny_model):
    from openpyxl import Workbook

    path = tmp_path / "book.xlsx"
    book = Workbook()
    book.active.title = "표지"
    book.active.append(["메모"])
    book.active.append(["표지 설명"])
    data = book.create_sheet("목록")
    data.append(["제목", "초록"])
    for title, abstract in zip(TITLES, ABSTRACTS):
        data.append([title, abstract])
    book.save(path)
    code, _, err = build(path, "초록", tiny_model, "-q")
    assert code == 0, err
    assert "목록" in err
    assert text_of_rows(path) == dict(enumerate(ABSTRACTS))


# -------------------------------------------------------------- 5. several columns
@pytest.mark.parametrize("form", ["repeat", "comma"])
def test_several_text_columns_joined(tmp_path, tiny_model, form):
    path = tmp_path / "patents.csv"
    write_csv(path, "utf-8")
    cols = ["-c", "제목", "-c", "초록"] if form == "repeat" else ["-c", "제목,초록"]
    code, _, err = invoke(
        "index", str(path), *cols, "-m", tiny_model, "--index", str(tmp_path / "idx"), "-q"
    )
    assert code == 0, err
    texts = text_of_rows(path)
    assert texts[2] == f"{TITLES[2]}\n{ABSTRACTS[2]}"
    code, out, _ = invoke("info", "--index", str(tmp_path / "idx"), "--format", "json")
    assert code == 0
    assert json.loads(out)["text_columns"] == ["제목", "초록"]


# --------------------------------------------------------- 6. one text as one query
def test_text_file_is_one_query(tmp_path, tiny_model):
    path = tmp_path / "patents.csv"
    write_csv(path, "utf-8")
    assert build(path, "초록", tiny_model, "-q")[0] == 0
    query = tmp_path / "abstract.txt"
    text = "리튬 이차전지용 실리콘\n음극재의 부피 팽창을\n억제하는 방법\n"
    query.write_text(text, encoding="utf-8")
    code, out, err = invoke(
        "query", "--text-file", str(query), "--k", "3", "--format", "json",
        "--index", str(tmp_path / "idx"),
    )  # fmt: skip
    assert code == 0, err
    hits = json.loads(out)
    assert {h["query_index"] for h in hits} == {0}
    assert hits[0]["query"] == query.read_text(encoding="utf-8").strip()
    help_text = invoke("query", "--help")[1]
    assert "--text-file" in help_text and "one per line" in help_text


# ---------------------------------------------------------------- 7. threshold
def test_min_similarity_alone_and_with_k(tmp_path, tiny_model):
    path = tmp_path / "patents.csv"
    write_csv(path, "utf-8")
    assert build(path, "초록", tiny_model, "-q")[0] == 0
    everything = similar_json(path, 0)
    sims = sorted((h["similarity"] for h in everything if h["row"] != 0), reverse=True)
    cut = (sims[1] + sims[2]) / 2  # exactly two documents reach it
    root = str(tmp_path / "idx")
    code, out, err = invoke(
        "similar", "--doc", "0", "--min-similarity", f"{cut}", "--format", "json", "--index", root
    )
    assert code == 0, err
    assert [h["similarity"] for h in json.loads(out)] == pytest.approx(sims[:2])
    code, out, _ = invoke(
        "similar", "--doc", "0", "--min-similarity", f"{cut}", "--k", "1", "-f", "json",
        "--index", root,
    )  # fmt: skip
    assert len(json.loads(out)) == 1
    import simsearch

    frame = simsearch.similar(0, k=10, root=root, min_similarity=cut)
    assert len(frame) == 2 and (frame["similarity"] >= cut).all()


# ------------------------------------------------------------ 8. results for Excel
def test_results_csv_file_has_bom_and_xlsx_has_columns(tmp_path, tiny_model):
    from openpyxl import load_workbook

    path = tmp_path / "patents.csv"
    write_csv(path, "utf-8")
    assert build(path, "초록", tiny_model, "-q")[0] == 0
    root = str(tmp_path / "idx")
    out_csv = tmp_path / "results.csv"
    code, _, err = invoke(
        "similar", "--doc", "0", "--k", "3", "-f", "csv", "-o", str(out_csv), "--index", root
    )
    assert code == 0, err
    raw = out_csv.read_bytes()
    assert raw.startswith(codecs.BOM_UTF8)
    assert ABSTRACTS[0] not in raw.decode("utf-8-sig")  # the query doc itself is left out
    out_xlsx = tmp_path / "results.xlsx"
    code, _, err = invoke(
        "similar", "--doc", "0", "--k", "3", "--format", "xlsx", "-o", str(out_xlsx),
        "--index", root,
    )  # fmt: skip
    assert code == 0, err
    sheet = load_workbook(out_xlsx).active
    header = [c.value for c in sheet[1]]
    assert {"rank", "row", "similarity", "번호", "제목", "초록"} <= set(header)
    assert sheet.max_row == 4
    width = sheet.column_dimensions[chr(ord("A") + header.index("초록"))].width
    assert width and width >= 30


def test_xlsx_needs_an_output_file(tmp_path, tiny_model):
    path = tmp_path / "patents.csv"
    write_csv(path, "utf-8")
    assert build(path, "초록", tiny_model, "-q")[0] == 0
    code, _, err = invoke("similar", "--doc", "0", "-f", "xlsx", "--index", str(tmp_path / "idx"))
    assert code == 2 and "-o" in err and len(err.strip().splitlines()) == 1


def test_table_wraps_korean_text_and_show_prints_a_document_whole(tmp_path, tiny_model):
    path = tmp_path / "patents.csv"
    write_csv(path, "utf-8")
    assert build(path, "초록", tiny_model, "-q")[0] == 0
    root = str(tmp_path / "idx")
    code, out, _ = invoke("similar", "--doc", "1", "--k", "5", "--index", root)
    assert code == 0
    # At 100 columns every word of every abstract is printed (wrapped, not cut).
    flat = " ".join(out.split())
    for abstract in ABSTRACTS[:1] + ABSTRACTS[2:]:
        assert all(word in flat for word in abstract.split())
    code, out, err = invoke("show", "--doc", "3", "--index", root)
    assert code == 0, err
    assert ABSTRACTS[3] in out and TITLES[3] in out and "제목" in out


# ------------------------------------------------------------ 9. offline hub
def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # closed again when the block ends


def test_no_hub_fails_fast_with_one_line(tmp_path):
    path = tmp_path / "patents.csv"
    write_csv(path, "utf-8")
    env = {k: v for k, v in os.environ.items() if k != "HF_HUB_OFFLINE"}
    env.update(
        HF_ENDPOINT=f"http://127.0.0.1:{_closed_port()}",
        HF_HOME=str(tmp_path / "hf-home"),  # no cached copy of the default model
        PYTHONPATH=str(Path(__file__).resolve().parents[2] / "src"),
    )
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "simsearch", "index", str(path), "-c", "초록", "-q"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    seconds = time.perf_counter() - start
    assert done.returncode == 2, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "MiniLM" in done.stderr and "offline" in done.stderr.lower()
    assert seconds < 15


# -------------------------------------------------- 10. one-line error promise
def test_cuda_on_cpu_only_torch_is_one_line(tmp_path, tiny_model):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    path = tmp_path / "patents.csv"
    write_csv(path, "utf-8")
    code, _, err = build(path, "초록", tiny_model, "-q", "--device", "cuda")
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and "cuda" in err.lower()


def test_eval_index_is_a_root_with_name(tmp_path, tiny_model):
    """`eval --index ROOT --name NAME` scores NAME; it never silently scores the default."""
    path = tmp_path / "patents.csv"
    write_csv(path, "utf-8")
    root = tmp_path / "idx"
    assert build(path, "초록", tiny_model, "-q")[0] == 0
    assert build(path, "제목", tiny_model, "-q", "--name", "titles")[0] == 0
    pairs = tmp_path / "queries.csv"
    pairs.write_text(
        "query,relevant\n" + "".join(f"{t},{i}\n" for i, t in enumerate(TITLES)), encoding="utf-8"
    )
    code, out, err = invoke(
        "eval", str(pairs), "--index", str(root), "--name", "titles", "--format", "json"
    )
    assert code == 0, err
    # Title queries against the title index: each finds itself first.
    assert json.loads(out)["recall@1"] == pytest.approx(100.0)  # percent
    code, _, err = invoke("eval", str(pairs), "--index", str(root / "default"))
    assert code == 2 and "--name" in err


# ----------------------------------------------------------- 11. whitening
def test_whitening_with_too_few_documents_is_not_degenerate(tmp_path, tiny_model):
    path = tmp_path / "patents.csv"
    write_csv(path, "utf-8")
    text = path.read_text(encoding="utf-8").rstrip("\r\n") + "\r\n6,빈 행,\r\n"
    path.write_text(text, encoding="utf-8")  # row 6: an empty abstract
    # All dimensions asked for: whitening keeps (n - 1) // 2 and says so (an explicit
    # --whiten-dim above that bound is refused before the model loads: test_whiten_preflight).
    code, _, err = build(path, "초록", tiny_model, "-q", "--whiten")
    assert code == 0, err
    assert "whiten" in err.lower() and "documents" in err
    hits = similar_json(path, 1)
    sims = [h["similarity"] for h in hits if h["row"] not in (1, 6)]
    assert np.ptp(sims) > 1e-3  # not all equal to -1/(n-1)
    assert 6 not in [h["row"] for h in hits]  # the empty document is never ranked


# ------------------------------------------------------------ 12. default backend
def test_default_backend_is_onnx_on_cpu_and_said(tmp_path, tiny_model):
    require("onnxruntime", "onnx")
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    path = tmp_path / "patents.csv"
    write_csv(path, "utf-8")
    code, _, err = build(path, "초록", tiny_model, "-q")
    assert code == 0, err
    built = [line for line in err.splitlines() if line.startswith("Indexed")]
    assert built and "backend onnx" in built[0]


# ------------------------------------------------------------- 13. notebook
def test_build_index_accepts_a_path_model(tmp_path, tiny_model):
    import simsearch

    path = tmp_path / "patents.csv"
    write_csv(path, "utf-8")
    report = simsearch.build_index(path, "초록", model=Path(tiny_model), root=tmp_path / "idx")
    assert report.n_docs == len(ABSTRACTS)


def test_imported_embeddings_record_no_model_and_query_says_so(tmp_path):
    path = tmp_path / "patents.csv"
    write_csv(path, "utf-8")
    matrix = np.random.default_rng(0).normal(size=(len(ABSTRACTS), 8)).astype(np.float32)
    np.save(tmp_path / "emb.npy", matrix)
    root = str(tmp_path / "idx")
    code, _, err = invoke(
        "index", str(path), "-c", "초록", "--embeddings", str(tmp_path / "emb.npy"),
        "--index", root, "-q",
    )  # fmt: skip
    assert code == 0, err
    assert "ko-sroberta" not in err
    code, out, _ = invoke("info", "--index", root, "--format", "json")
    assert json.loads(out)["model"] == "imported"
    assert invoke("similar", "--doc", "0", "--index", root)[0] == 0
    code, _, err = invoke("query", "배터리", "--index", root)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "--model" in err and "imported" in err


def test_train_json_is_clean_json(tmp_path, tiny_model):
    pairs = tmp_path / "pairs.csv"
    rows = [f"{a},{b},{s}" for a, b, s in zip(TITLES, ABSTRACTS, [5, 4, 3, 2, 1, 0])]
    pairs.write_text("sentence1,sentence2,score\n" + "\n".join(rows) + "\n", encoding="utf-8")
    code, out, err = invoke(
        "train", "--method", "sts", "--data", str(pairs), "-m", tiny_model,
        "-o", str(tmp_path / "model"), "--max-steps", "1", "--batch-size", "4",
        "--format", "json",
    )  # fmt: skip
    assert code == 0, err
    assert json.loads(out)["method"].startswith("sts")
