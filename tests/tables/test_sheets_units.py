"""Unit tests of the pieces behind issue 10: encoding detection, header rows, merged cells,
joined columns, Excel output, hub and device checks. Real bytes and real workbooks."""

from __future__ import annotations

import codecs
import csv
import os
import socket
import time

import pytest

from simsearch.encoding import preflight as environment
from simsearch.errors import SimsearchError
from simsearch.retrieval.hit import Hit
from simsearch.tables import charsets, sheets
from simsearch.tables import write as table_writer

KOREAN = "번호,제목\r\n1,리튬 이차전지용 실리콘 음극재\r\n2,콘크리트 균열 보수\r\n"


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (KOREAN.encode("utf-8"), "utf-8"),
        (codecs.BOM_UTF8 + KOREAN.encode("utf-8"), "utf-8-sig"),
        (KOREAN.encode("cp949"), "cp949"),
        (KOREAN.encode("euc-kr"), "cp949"),
        (codecs.BOM_UTF16_LE + KOREAN.encode("utf-16-le"), "utf-16"),
        (codecs.BOM_UTF16_BE + KOREAN.encode("utf-16-be"), "utf-16"),
        (KOREAN.replace("리튬", "abc").encode("utf-16-le"), "utf-16-le"),
    ],
)
def test_detect_encoding(data, expected):
    assert charsets.detect_encoding(data) == expected


def test_cp949_only_syllable_is_cp949_not_euc_kr():
    # '똠' is in cp949 (Microsoft's extension) but not in EUC-KR (KS X 1001).
    data = "이름\r\n똠방각하\r\n".encode("cp949")
    with pytest.raises(UnicodeDecodeError):
        data.decode("euc-kr")
    assert charsets.detect_encoding(data) == "cp949"


def test_detection_on_korsts_sentences():
    from conftest import shared_file

    path = shared_file("korsts/sts-dev.tsv")
    with path.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))[:200]
    for row in rows:
        text = row["sentence1"]
        for name in ("cp949", "utf-8"):
            try:
                data = text.encode(name)
            except UnicodeEncodeError:
                continue
            assert data.decode(charsets.detect_encoding(data)) == text


def test_read_text_override_and_wrong_override(tmp_path):
    path = tmp_path / "a.csv"
    path.write_bytes(KOREAN.encode("cp949"))
    decoded = charsets.read_text(path, "euc-kr")
    assert decoded.text == KOREAN and not decoded.detected
    with pytest.raises(SimsearchError, match="does not decode as utf-8"):
        charsets.read_text(path, "utf-8")
    with pytest.raises(SimsearchError, match="unknown encoding"):
        charsets.read_text(path, "klingon")


# ---------------------------------------------------------------- header rows
@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        ([["번호", "제목"], [1, "a"]], 0),
        ([["2024 특허 목록", None, None], ["번호", "제목", "초록"], [1, "a", "b"]], 1),
        ([["2024 특허 목록", "", ""], ["", "", ""], ["번호", "제목", "초록"]], 2),
        ([["text"], ["a"], ["b"]], 0),
        ([[None, "text"], ["0", "a"]], 0),  # pandas' to_csv with its index: first row
        ([["1", "2"], ["3", "4"]], 0),  # numbers only: nothing better than pandas' default
        ([["a", "a"], ["x", "y"]], 1),  # a repeated name is no header
    ],
)
def test_detect_header_row(rows, expected):
    assert sheets.detect_header_row(rows) == expected


def test_frame_from_rows_names_and_trailing_blank_rows():
    rows = [["a", None, "a"], [1, 2, 3], [None, None, None], [4, 5, 6], [None, None, None]]
    frame = sheets.frame_from_rows(rows, 0)
    assert list(frame.columns) == ["a", "Unnamed: 1", "a.1"]
    assert len(frame) == 3  # the inner blank row stays (row numbers hold), the last goes


def test_fill_merged_counts_only_below_the_header(tmp_path):
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet["A1"] = "제목 줄"
    sheet.merge_cells("A1:C1")
    sheet.append(["a", "b", "c"])
    sheet.append([1, "x", "긴 초록"])
    sheet.append([2, None, None])
    sheet.merge_cells("C3:C4")
    sheet.merge_cells("B3:B4")
    assert sheets.fill_merged(sheet, below_row=2) == (2, 2)
    assert sheet["C4"].value == "긴 초록" and sheet["B4"].value == "x"


def test_split_and_join_columns():
    import pandas as pd

    assert sheets.split_columns(["제목,초록"]) == ["제목", "초록"]
    assert sheets.split_columns(["제목", "초록"]) == ["제목", "초록"]
    assert sheets.split_columns(["a,b"], available=["a,b"]) == ["a,b"]
    with pytest.raises(SimsearchError, match="named twice"):
        sheets.split_columns(["a", "a"])
    frame = pd.DataFrame({"t": ["제목", None, ""], "a": ["초록", "둘째", None]})
    assert sheets.join_columns(frame, ["t", "a"]) == ["제목\n초록", "둘째", ""]


# --------------------------------------------------------------- table_writer
HITS = [
    Hit(rank=1, row=4, score=0.9, mode="dense", similarity=0.9, cosine_distance=0.1,
        text="가" * 100, matched_text="가" * 100, columns={"번호": 5, "초록": "가" * 100}),
    Hit(rank=2, row=0, score=0.8, mode="dense", similarity=0.8, cosine_distance=0.2,
        text="나", matched_text="나", columns={"번호": 1, "초록": "나"}),
]  # fmt: skip


def test_write_xlsx_widths_and_values(tmp_path):
    from openpyxl import load_workbook

    path = tmp_path / "r.xlsx"
    table_writer.write_hits(HITS, path)
    sheet = load_workbook(path).active
    assert [c.value for c in sheet[1]] == [
        "rank", "row", "cosine_distance", "similarity", "score", "mode", "matched_text",
        "matched_terms", "번호", "초록",
    ]  # fmt: skip
    assert sheet["B2"].value == 4 and sheet["J2"].value == "가" * 100
    assert sheet["E2"].value == 0.9 and sheet["F2"].value == "dense"  # what it is sorted by
    assert sheet.column_dimensions["J"].width == table_writer.MAX_WIDTH  # 200 cells, capped
    assert sheet.column_dimensions["A"].width < 10
    assert sheet["J2"].alignment.wrap_text
    with pytest.raises(SimsearchError, match=r"\.xlsx"):
        table_writer.write_hits(HITS, tmp_path / "r.txt")


def test_text_file_has_bom_and_is_atomic(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("old", encoding="utf-8")

    def broken(stream):
        stream.write("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        table_writer.write_text(path, broken)
    assert path.read_text(encoding="utf-8") == "old"  # the old file survives
    table_writer.write_text(path, lambda s: s.write("가,나\n"))
    assert path.read_bytes() == codecs.BOM_UTF8 + "가,나\n".encode()
    assert list(tmp_path.iterdir()) == [path]


def test_display_width_counts_hangul_twice():
    assert table_writer.display_width("ab가나") == 6


# ---------------------------------------------------------------- environment
def test_unreachable_hub_is_refused_in_seconds(tmp_path, monkeypatch):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    for key in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "cache"))
    assert environment.hub_address() == ("127.0.0.1", port)
    start = time.perf_counter()
    assert not environment.hub_reachable()
    with pytest.raises(SimsearchError, match="MiniLM") as error:
        environment.check_hub_model("jhgan/ko-sroberta-multitask")
    assert time.perf_counter() - start < 10
    assert "\n" not in str(error.value)


def test_local_model_needs_no_check_and_offline_mode_reads_only_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:1")
    environment.check_hub_model(str(tmp_path))  # a directory: no network involved
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    # Offline, an uncached hub id is refused before sentence-transformers loads (the
    # cached case: tests/build/test_default_model.py builds and queries through it).
    with pytest.raises(SimsearchError, match="offline .* not in the cache") as error:
        environment.check_hub_model("jhgan/ko-sroberta-multitask")
    assert "\n" not in str(error.value)


def test_cuda_without_gpu_is_one_sentence():
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(SimsearchError, match="not available") as error:
        environment.check_device("cuda")
    assert "\n" not in str(error.value)
    environment.check_device("cpu")
    with pytest.raises(SimsearchError, match="unknown device"):
        environment.check_device("tpu")


def test_proxy_is_what_the_check_connects_to(monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    assert environment.hub_address() == ("proxy.example", 3128)
    monkeypatch.delenv("HTTPS_PROXY")
    for key in ("https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.delenv("HF_ENDPOINT", raising=False)
    assert environment.hub_address() == ("huggingface.co", 443)
    assert os.environ.get("HF_ENDPOINT") is None


def test_missing_column_lists_the_data_sheets_not_the_cover(tmp_path):
    """Issue 18 B5: a workbook whose first sheet is a cover (a title, a note): a column on
    no sheet gives an error that offers the data sheets' columns, not the cover's title."""
    from openpyxl import Workbook

    from simsearch.errors import InvalidParameter
    from simsearch.tables.read import read_corpus

    path = tmp_path / "cover.xlsx"
    book = Workbook()
    book.active.title = "표지"
    book.active["A1"] = "2024 특허 목록"
    book.active["A3"] = "작성: 홍길동"
    for name, header in (("목록", ["번호", "제목", "요약"]), ("출원인", ["이름", "국가"])):
        data = book.create_sheet(name)
        data.append(header)
        data.append([f"{name} {i}" for i in range(len(header))])
    book.save(path)
    with pytest.raises(InvalidParameter) as caught:
        read_corpus(path, "본문")
    message = caught.value.render(lambda p: f"--{p}")
    assert "2024 특허 목록" not in message and "표지" not in message
    assert "sheet '목록': '번호', '제목', '요약'" in message
    assert "sheet '출원인': '이름', '국가'" in message and "--column" in message
    # The columns that exist still read, from the sheet that has them.
    assert read_corpus(path, "요약").texts == ["목록 2"]
