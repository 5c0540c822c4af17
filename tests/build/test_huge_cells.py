"""Huge cells (issue 18 A9): a row's text is indexed by its first ``MAX_TEXT_CHARS``
characters (Excel's cell limit), so one 1.6 MB cell costs what a 32 KB one does, and the
build names the rows it cut."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from simsearch.build import build_index
from simsearch.build.plan import MAX_TEXT_CHARS, cap_notice, cap_texts
from simsearch.store import index as store


def test_cap_texts_cuts_only_the_long_rows_and_names_them():
    texts = ["짧다", "가" * (MAX_TEXT_CHARS + 1), "", "나" * MAX_TEXT_CHARS]
    capped, cut = cap_texts(texts)
    assert cut == [1]
    assert capped == [texts[0], "가" * MAX_TEXT_CHARS, "", texts[3]]
    assert cap_texts(["a", "b"]) == (["a", "b"], [])


def test_cap_notice_is_one_line_naming_the_rows():
    assert "row longer than 32,767 characters" in cap_notice([7])
    assert cap_notice([7]).endswith(": 7")
    many = cap_notice(list(range(25)))
    assert "25 rows" in many and "0, 1, 2" in many and "and 15 more" in many
    assert "\n" not in many


@pytest.mark.slow
def test_a_huge_cell_is_indexed_by_its_first_characters(tmp_path, tiny_model):
    """The issue's reproduction: ``'가나다 ' * 400000`` (1.6 MB) in one cell, windows and
    the lexical index on (the defaults). The row is stored, windowed and analysed as its
    first 32,767 characters; the other rows are untouched; the notice names row 1."""
    huge = "가나다 " * 400_000
    others = ["배터리 음극재 실리콘", "반도체 식각 장비"]
    source = tmp_path / "huge.csv"
    pd.DataFrame({"text": [others[0], huge, others[1]]}).to_csv(source, index=False)
    lines: list[str] = []
    report = build_index(source, "text", model=tiny_model, root=tmp_path / "idx",
                         backend="torch", log=lines.append)
    assert report.cut == [1]
    notices = [line for line in lines if "Excel's cell limit" in line]
    assert len(notices) == 1 and notices[0].endswith(": 1"), lines
    index = store.load_index(tmp_path / "idx", "default")
    assert index.texts == [others[0], huge[:MAX_TEXT_CHARS], others[1]]
    window_map = np.load(index.file("windows"))
    assert window_map[:, 2].max() <= MAX_TEXT_CHARS
    assert report.n_windows == len(window_map) and set(window_map[:, 0]) == {0, 1, 2}
