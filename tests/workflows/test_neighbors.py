"""`neighbors` (every row's top-k) and the table writer: pinned against `similar` and
brute force, files opened back the way Excel and pandas read them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import simsearch
from simsearch.errors import SimsearchError
from simsearch.tables.write import display_width, write_frame
from simsearch.workflows.neighbors import NeighborsOptions, neighbors_frame

N_DOCS, DIM = 61, 16


@pytest.fixture
def random_index(workdir):
    """An index of 61 Korean rows over random unit embeddings (imported, no model), with
    one exact duplicate pair (rows 3 and 40) and one empty row (row 7)."""
    rng = np.random.default_rng(7)
    emb = rng.standard_normal((N_DOCS, DIM)).astype(np.float32)
    emb[40] = emb[3]
    titles = [f"제목 {i} 리튬 전지" for i in range(N_DOCS)]
    texts = [
        f"본 발명은 문서 {i}번에 관한 것으로, 한국어 텍스트를 포함한다." for i in range(N_DOCS)
    ]
    texts[7] = ""
    pd.DataFrame(
        {"title": titles, "text": texts, "number": [f"0{i}" for i in range(N_DOCS)]}
    ).to_csv(workdir / "corpus.csv", index=False)
    np.save(workdir / "emb.npy", emb)
    simsearch.build_index(
        workdir / "corpus.csv", "text", embeddings=workdir / "emb.npy", model="none"
    )
    return simsearch.load_index()


@pytest.mark.parametrize("mode", ["dense", "hybrid", "lexical"])
def test_every_row_equals_similar(random_index, mode):
    frame = simsearch_neighbors(k=5, show=("title",), mode=mode)
    assert len(frame) == N_DOCS
    for row in range(N_DOCS):
        expected = simsearch.similar(row, k=5, mode=mode)
        got = frame.iloc[row]
        n = len(expected)
        assert got["row"] == row
        if n == 0:  # lexical: the empty row has no terms, so no neighbour
            assert mode == "lexical" and row == 7 and got["neighbor_1_row"] == -1
            continue
        assert [got[f"neighbor_{r}_row"] for r in range(1, n + 1)] == expected["row"].tolist()
        assert 7 not in expected["row"].tolist()  # the empty row is never a neighbour
        if mode != "dense":
            np.testing.assert_allclose(
                [got[f"neighbor_{r}_score"] for r in range(1, n + 1)],
                expected["score"].to_numpy(), atol=1e-6,
            )
        if mode != "lexical":
            np.testing.assert_allclose(
                [got[f"neighbor_{r}_similarity"] for r in range(1, n + 1)],
                expected["similarity"].to_numpy(dtype=float), atol=1e-6,
            )
        assert [got[f"neighbor_{r}_title"] for r in range(1, n + 1)] == expected["title"].tolist()
    if mode == "dense":  # the planted duplicate finds its copy first, at similarity 1
        assert frame.loc[3, "neighbor_1_row"] == 40
        assert frame.loc[3, "neighbor_1_similarity"] == pytest.approx(1.0, abs=1e-6)


def test_default_mode_is_the_default_of_similar(random_index):
    assert random_index.meta.lexical is not None
    frame = simsearch_neighbors(k=3)
    for row in (0, 3, 30):
        expected = simsearch.similar(row, k=3)  # hybrid: the index has a lexical index
        assert (expected["mode"] == "hybrid").all()
        assert [frame.loc[row, f"neighbor_{r}_row"] for r in (1, 2, 3)] == expected["row"].tolist()


def simsearch_neighbors(**kwargs):
    from simsearch.workflows.neighbors import neighbors

    return neighbors(**kwargs)


def test_small_blocks_equal_one_block_and_brute_force(random_index):
    emb = np.asarray(random_index.embeddings)
    ticks = []
    options = NeighborsOptions(k=4, mode="dense", block_rows=7)
    small = neighbors_frame(random_index, options, on_progress=lambda d, t: ticks.append(d))
    whole = neighbors_frame(random_index, NeighborsOptions(k=4, mode="dense"))
    pd.testing.assert_frame_equal(small, whole)
    assert ticks == [7, 14, 21, 28, 35, 42, 49, 56, 61]  # one tick per block of 7 rows
    scores = emb @ emb.T
    np.fill_diagonal(scores, -np.inf)
    scores[:, 7] = -np.inf  # the empty row
    brute = np.argsort(-scores, axis=1, kind="stable")[:, :4]
    got = whole[[f"neighbor_{r}_row" for r in range(1, 5)]].to_numpy()
    np.testing.assert_array_equal(np.sort(got, axis=1), np.sort(brute, axis=1))


def test_selected_rows_and_clamped_k(random_index):
    frame = neighbors_frame(random_index, NeighborsOptions(k=500, rows=(5, 0)))
    assert frame["row"].tolist() == [5, 0]
    # k clamped to the 59 other non-empty rows (row 7 is empty and never a neighbour)
    assert sum(c.endswith("_row") for c in frame.columns) == N_DOCS - 2
    with pytest.raises(SimsearchError, match="row 61 in rows is out of range"):
        neighbors_frame(random_index, NeighborsOptions(rows=(61,)))
    with pytest.raises(SimsearchError, match="no column 'claims'"):
        neighbors_frame(random_index, NeighborsOptions(show=("claims",)))
    with pytest.raises(SimsearchError, match="k must be at least 1"):
        neighbors_frame(random_index, NeighborsOptions(k=0))


def test_xlsx_is_formatted_for_excel_and_keeps_korean(random_index, workdir):
    from openpyxl import load_workbook

    frame = neighbors_frame(random_index, NeighborsOptions(k=2, show=("title", "number")))
    path = write_frame(frame, workdir / "nb.xlsx")
    sheet = load_workbook(path).active
    assert sheet.freeze_panes == "A2"
    assert [c.value for c in sheet[1]][:3] == ["row", "title", "number"]
    assert sheet["B2"].value == "제목 0 리튬 전지"
    # Korean is two cells wide per character: the title column is wider than its header.
    assert sheet.column_dimensions["B"].width >= display_width("제목 60 리튬 전지")
    assert sheet["C2"].value == "00"  # a code with a leading zero stays text
    as_text = {c: str for c in frame.columns if c.endswith("number")}
    back = pd.read_excel(path, dtype=as_text)
    pd.testing.assert_frame_equal(back, frame, check_dtype=False, atol=1e-6)
    # Text that looks like a number, a URL or a formula stays text.
    odd = pd.DataFrame({"code": ["007", "=1+1", "http://x.kr"]})
    cells = [c.value for c in load_workbook(write_frame(odd, workdir / "o.xlsx")).active["A"]]
    assert cells == ["code", "007", "=1+1", "http://x.kr"]


def test_csv_has_bom_and_parquet_round_trips(random_index, workdir):
    frame = neighbors_frame(random_index, NeighborsOptions(k=3, show=("title",)))
    csv_path = write_frame(frame, workdir / "nb.csv")
    assert csv_path.read_bytes().startswith(b"\xef\xbb\xbf")
    assert "제목 0 리튬 전지" in csv_path.read_text(encoding="utf-8-sig")
    pq = write_frame(frame, workdir / "nb.parquet")
    pd.testing.assert_frame_equal(pd.read_parquet(pq), frame)


def test_writer_refuses_unknown_suffix_and_keeps_old_file(random_index, workdir):
    frame = neighbors_frame(random_index, NeighborsOptions(k=1))
    (workdir / "old.txt").write_text("keep me")
    with pytest.raises(SimsearchError, match=r"must end in \.xlsx, \.csv, \.parquet"):
        write_frame(frame, workdir / "old.txt")
    assert (workdir / "old.txt").read_text() == "keep me"
    with pytest.raises(SimsearchError, match="does not exist"):
        write_frame(frame, workdir / "nowhere" / "x.xlsx")
    assert not list(workdir.glob(".x.xlsx*"))  # no temp file left behind
