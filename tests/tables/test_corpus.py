"""Reading corpora: formats, sheets, missing cells, and the errors users hit."""

from __future__ import annotations

import pandas as pd
import pytest

from simsearch.errors import SimsearchError
from simsearch.tables.read import read_corpus, read_table


@pytest.fixture
def book(tmp_path):
    path = tmp_path / "book.xlsx"
    with pd.ExcelWriter(path) as writer:
        pd.DataFrame({"n": [1, 2, 3], "abstract": ["배터리 음극재", None, "반도체 식각"]}).to_excel(
            writer, sheet_name="first", index=False
        )
        pd.DataFrame({"abstract": ["두 번째 시트"]}).to_excel(
            writer, sheet_name="second", index=False
        )
    return path


def test_xlsx_first_sheet_by_default_and_missing_cells_stay_in_place(book):
    corpus = read_corpus(book, "abstract")
    assert corpus.sheet == "first"
    assert corpus.texts == ["배터리 음극재", "", "반도체 식각"]
    assert corpus.n_empty == 1
    assert len(corpus.frame) == 3


def test_xlsx_sheet_by_name_and_number(book):
    assert read_corpus(book, "abstract", sheet="second").texts == ["두 번째 시트"]
    assert read_corpus(book, "abstract", sheet="1").sheet == "second"


def test_unknown_sheet_lists_the_sheets(book):
    with pytest.raises(SimsearchError, match=r"no sheet 'third'.*'first', 'second'"):
        read_corpus(book, "abstract", sheet="third")


def test_unknown_column_lists_the_columns(book):
    with pytest.raises(SimsearchError, match=r"no column 'claims'.*'n', 'abstract'"):
        read_corpus(book, "claims")


def test_csv_and_tsv_keep_text_exactly(tmp_path):
    csv_path = tmp_path / "c.csv"
    csv_path.write_text('id,text\n1,NA\n2,\n3,"쉼표, 포함"\n', encoding="utf-8")
    assert read_corpus(csv_path, "text").texts == ["NA", "", "쉼표, 포함"]
    tsv_path = tmp_path / "t.tsv"
    tsv_path.write_text("id\ttext\n1\t가\n2\t나\n", encoding="utf-8")
    assert read_corpus(tsv_path, "text").texts == ["가", "나"]


def test_numbers_are_read_as_their_text(tmp_path):
    path = tmp_path / "nums.xlsx"
    pd.DataFrame({"id": [1, 2, 3], "v": [1.0, 2.5, None]}).to_excel(path, index=False)
    assert read_corpus(path, "v").texts == ["1", "2.5", ""]


@pytest.mark.parametrize(
    "name,content,message",
    [
        ("missing.csv", None, "file not found"),
        ("notes.docx", b"x", "unsupported file type '.docx'"),
        ("empty.csv", b"", "is empty"),
        ("fake.xlsx", b"this is not a workbook", "not a readable .xlsx"),
    ],
)
def test_bad_files_raise_one_line_errors(tmp_path, name, content, message):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(SimsearchError, match=message) as info:
        read_table(path)
    assert "\n" not in str(info.value)


def test_all_empty_column_is_refused(tmp_path):
    path = tmp_path / "e.csv"
    path.write_text("id,text\n1,\n2,  \n", encoding="utf-8")
    with pytest.raises(SimsearchError, match="empty in every row"):
        read_corpus(path, "text")
