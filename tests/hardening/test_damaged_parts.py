"""Issue 18, A5 and A6: the newer parts of an index (window map, row vectors, empty rows,
BM25 matrix and vocabulary, column file) under same-size damage and hostile row counts.

Each damage must give the one-line "damaged; rebuild" error (:class:`DamagedIndex`,
exit code 2), never a traceback, a huge allocation or a silently wrong answer. The
hostile files are written with their true size and sha256 in the metadata
(:func:`hostile.point_file`), so only the checks made when a part opens can catch them.
"""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hostile import assert_one_line_error, index_file, point_file, run

import simsearch
from simsearch.build import build_index
from simsearch.errors import DamagedIndex

N_DOCS = 20
EMPTY_ROW = 5


@pytest.fixture(scope="module")
def built(tmp_path_factory, tiny_model) -> Path:
    """An index with every newer part: long documents split into windows (window map and
    row vectors), an empty row, the BM25 index and the column file."""
    top = tmp_path_factory.mktemp("parts")
    long = " 배터리 음극재 전극" * 30  # longer than the tiny model's 128 tokens
    texts = [f"문서 {i} 배터리 battery {i}" + (long if i % 3 == 0 else "") for i in range(N_DOCS)]
    texts[EMPTY_ROW] = ""
    frame = pd.DataFrame({"id": range(N_DOCS), "year": range(2000, 2000 + N_DOCS), "text": texts})
    frame.to_csv(top / "docs.csv", index=False)
    build_index(top / "docs.csv", "text", model=tiny_model, root=top / "idx")
    files = set(json.loads((top / "idx/default/meta.json").read_text())["files"])
    assert {"windows", "row_vectors", "empty_rows", "lexical_matrix", "columns"} <= files
    return top / "idx"


@pytest.fixture
def root(built, tmp_path) -> Path:
    """A fresh copy of the built index for one test to damage."""
    shutil.copytree(built, tmp_path / "idx")
    return tmp_path / "idx"


#: file role -> the search that opens it.
SEARCHES = {
    "windows": {"mode": "dense"},
    "row_vectors": {"mode": "dense"},
    "empty_rows": {"mode": "dense"},
    "lexical_matrix": {"mode": "lexical"},
    "lexical_vocab": {"mode": "lexical"},
    "columns": {"mode": "dense", "where": "text like '%battery%'"},
}
CLI_ARGS = {
    "dense": ["--mode", "dense"],
    "lexical": ["--mode", "lexical"],
}


def search(root: Path, role: str) -> list:
    return simsearch.similar(0, k=3, root=root, **SEARCHES[role])


def cli_args(root: Path, role: str) -> list[str]:
    args = ["similar", "--doc", "0", "--k", "3", "-f", "json", "--index", str(root)]
    args += CLI_ARGS[SEARCHES[role]["mode"]]
    if "where" in SEARCHES[role]:
        args += ["--where", SEARCHES[role]["where"]]
    return args


def random_bytes(path: Path) -> None:
    """Same size, every byte random (seeded)."""
    size = path.stat().st_size
    path.write_bytes(np.random.default_rng(18).integers(0, 256, size, dtype=np.uint8).tobytes())


def flip_bit(path: Path, offset: int, bit: int = 7) -> None:
    """Same size, one bit flipped at ``offset`` (negative: from the end)."""
    content = bytearray(path.read_bytes())
    content[offset] ^= 1 << bit
    path.write_bytes(bytes(content))


#: role -> where one flipped bit breaks its structure: a .npy header's dtype or shape
#: text, a byte inside the zip member (its CRC), the first byte of the JSON (no longer
#: UTF-8), the parquet footer's length.
FLIPS = {
    "windows": (20, 1),  # "'descr': '<i8'" -> "'descr': '<i:'"... in the header dict
    "row_vectors": (20, 1),
    "empty_rows": (20, 1),
    "lexical_matrix": (-300, 0),
    "lexical_vocab": (0, 7),
    "columns": (-6, 3),
}


def untouched_search_works(root: Path, role: str) -> None:
    assert len(search(root, role)) == 3


ROLES = list(SEARCHES)


@pytest.mark.parametrize("role", ROLES)
def test_random_bytes_in_a_part_is_the_damaged_error(root, role):
    untouched_search_works(root, role)
    random_bytes(index_file(root / "default", role))
    with pytest.raises(DamagedIndex, match="damaged"):
        search(root, role)


@pytest.mark.parametrize("role", ROLES)
def test_one_flipped_bit_in_a_part_is_the_damaged_error(root, role):
    offset, bit = FLIPS[role]
    flip_bit(index_file(root / "default", role), offset, bit)
    with pytest.raises(DamagedIndex, match="damaged"):
        search(root, role)


@pytest.mark.parametrize(
    "role", ["windows", "lexical_matrix", "columns"]
)
def test_a_damaged_part_is_one_line_and_exit_code_2(root, role, tmp_path):
    random_bytes(index_file(root / "default", role))
    result = run(cli_args(root, role), cwd=tmp_path, timeout=60)
    assert_one_line_error(result, "damaged")


# ------------------------------------------------------------ A6: hostile row counts


def replace_part(root: Path, role: str, name: str, write) -> None:
    """Write a hostile file of the current generation's form for ``role`` and name it in
    the metadata with its true size and sha256."""
    generation = index_file(root / "default", role).name.split("-", 1)[1].rsplit(".", 1)[0]
    suffix = index_file(root / "default", role).suffix
    path = root / "default" / f"{name}-{generation}{suffix}"
    write(path)
    point_file(root / "default", role, path.name)


def columns_of(n_rows: int):
    def write(path: Path) -> None:
        frame = pd.DataFrame({"id": range(n_rows), "year": [2010] * n_rows})
        frame.to_parquet(path)

    return write


@pytest.mark.parametrize("n_rows", [N_DOCS // 2, N_DOCS * 2])
def test_a_column_file_of_another_length_is_damaged(root, n_rows):
    replace_part(root, "columns", "hostile", columns_of(n_rows))
    from simsearch.store.index import load_index

    index = load_index(root)
    with pytest.raises(DamagedIndex, match=f"{n_rows} rows, not {N_DOCS}"):
        index.columns_file()


@pytest.mark.parametrize("n_rows", [N_DOCS // 2, N_DOCS * 2])
def test_filtering_on_a_column_file_of_another_length_is_damaged(root, n_rows):
    replace_part(root, "columns", "hostile", columns_of(n_rows))
    with pytest.raises(DamagedIndex, match="rows"):
        search(root, "columns")


def bm25_with(**changes):
    """A BM25 archive like the index's own, with some arrays replaced."""

    def write(path: Path, source: Path) -> None:
        with np.load(source) as arrays:
            values = {k: arrays[k] for k in arrays.files}
        values.update({k: v(values) if callable(v) else v for k, v in changes.items()})
        buffer = io.BytesIO()
        np.savez(buffer, **values)
        path.write_bytes(buffer.getvalue())

    return write


@pytest.mark.parametrize(
    "change",
    [
        {"n_rows": np.array(10**11)},
        {"n_rows": np.array(N_DOCS - 1)},
        {"indices": lambda v: v["indices"] + 1000},
        {"indices": lambda v: -v["indices"] - 1},
        {"indptr": lambda v: v["indptr"][::-1].copy()},
        {"data": lambda v: v["data"].astype(np.float64)},
        {"n_rows": np.array([N_DOCS, N_DOCS])},
    ],
    ids=["1e11-rows", "fewer-rows", "indices-past", "indices-negative", "indptr-reversed",
         "float64", "rows-vector"],
)
def test_a_hostile_bm25_matrix_is_damaged(root, change):
    source = index_file(root / "default", "lexical_matrix")
    replace_part(root, "lexical_matrix", "bm25x", lambda p: bm25_with(**change)(p, source))
    with pytest.raises(DamagedIndex, match="damaged"):
        search(root, "lexical_matrix")


def test_a_bm25_header_claiming_a_huge_array_is_damaged_without_allocating(root):
    """The ``data`` member's header claims 10^11 floats over the real bytes: refused from
    its size alone (reading it would allocate 373 GiB)."""
    import zipfile

    from numpy.lib import format as npy

    source = index_file(root / "default", "lexical_matrix")
    with np.load(source) as arrays:
        values = {k: arrays[k] for k in arrays.files}

    def write(path: Path) -> None:
        with zipfile.ZipFile(path, "w") as archive:
            for key, array in values.items():
                buffer = io.BytesIO()
                if key == "data":
                    header = {"descr": "<f4", "fortran_order": False, "shape": (10**11,)}
                    npy.write_array_header_1_0(buffer, header)
                    buffer.write(array.tobytes())
                else:
                    npy.write_array(buffer, array)
                archive.writestr(f"{key}.npy", buffer.getvalue())

    replace_part(root, "lexical_matrix", "bm25h", write)
    with pytest.raises(DamagedIndex, match="header disagrees"):
        search(root, "lexical_matrix")


def test_a_vocabulary_of_another_length_is_damaged(root):
    vocab = json.loads(index_file(root / "default", "lexical_vocab").read_text())
    write = lambda p: p.write_text(json.dumps(vocab + ["extra"]), encoding="utf-8")  # noqa: E731
    replace_part(root, "lexical_vocab", "vocabx", write)
    with pytest.raises(DamagedIndex, match="terms"):
        search(root, "lexical_vocab")


def window_map_with(change):
    def write(path: Path, source: Path) -> None:
        window_map = np.load(source)
        np.save(path, change(window_map.copy()))

    return write


def _rows_past(m):
    m[-1, 0] = N_DOCS + 7
    return m


def _negative_start(m):
    m[0, 1] = -5
    return m


@pytest.mark.parametrize(
    "change",
    [_rows_past, _negative_start, lambda m: m[:-1], lambda m: m.astype(np.int32),
     lambda m: m[:, :2].copy()],
    ids=["row-past-the-end", "negative-start", "one-window-fewer", "int32", "two-columns"],
)
def test_a_hostile_window_map_is_damaged(root, change):
    source = index_file(root / "default", "windows")
    replace_part(root, "windows", "windowsx", lambda p: window_map_with(change)(p, source))
    with pytest.raises(DamagedIndex, match="damaged"):
        search(root, "windows")


@pytest.mark.parametrize(
    "rows",
    [np.array([N_DOCS + 3]), np.array([-1]), np.array([EMPTY_ROW, EMPTY_ROW]),
     np.array([EMPTY_ROW], dtype=np.float64)],
    ids=["past-the-end", "negative", "repeated", "float"],
)
def test_hostile_empty_rows_are_damaged(root, rows):
    replace_part(root, "empty_rows", "emptyx", lambda p: np.save(p, rows))
    with pytest.raises(DamagedIndex, match="damaged"):
        search(root, "empty_rows")


def test_row_vectors_of_another_dtype_are_damaged(root):
    source = index_file(root / "default", "row_vectors")
    rows = np.load(source).astype(np.float16)
    replace_part(root, "row_vectors", "rowvx", lambda p: np.save(p, rows))
    with pytest.raises(DamagedIndex, match="damaged"):
        search(root, "row_vectors")
