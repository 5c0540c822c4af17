"""Indexes whose column copy was written all-text (before typed CSV columns, issue 18
A4) are upgraded by the next ``index`` run: the copy is typed, every vector reused."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from hostile import _digest, edit_meta, index_file, point_file

from simsearch.build import build_index
from simsearch.retrieval.filters import filter_rows
from simsearch.store import index as store


def make_old(index_dir) -> None:
    """Rewrite the column copy as the older writer left it: every CSV cell as text
    (empty cells ``""``), and no ``format`` in its metadata section."""
    path = index_file(index_dir, "columns")
    table = pq.read_table(path)
    texts = [pa.array(["" if v is None else str(v) for v in table.column(name).to_pylist()],
                      type=pa.string()) for name in table.column_names]
    pq.write_table(pa.Table.from_arrays(texts, names=table.column_names), path)
    point_file(index_dir, "columns", path.name)  # its new size and sha256

    def old_section(meta):
        section = meta["sections"]["column_file"]
        section.pop("format", None)
        section["types"] = {name: "string" for name in section["types"]}

    edit_meta(index_dir, old_section)


def test_an_all_text_column_copy_is_typed_by_the_next_index_run(tmp_path, tiny_model):
    n = 20
    frame = pd.DataFrame({
        "id": range(n),
        "year": [2015 + i % 10 for i in range(n)],
        "score": [None if i % 7 == 0 else i / 4 for i in range(n)],
        "text": [f"문서 {i} 배터리 음극재 battery {i}" for i in range(n)],
    })
    source = tmp_path / "docs.csv"
    frame.to_csv(source, index=False)
    root = tmp_path / "idx"
    build_index(source, "text", model=tiny_model, root=root, lexical=False)
    index_dir = root / "default"
    make_old(index_dir)
    old = store.load_index(root, "default")
    old_vectors = np.load(old.file("embeddings"))
    assert pq.read_schema(old.columns_file()).field("year").type == pa.string()

    report = build_index(source, "text", model=tiny_model, root=root, lexical=False)

    assert report.reasons == ["column file of text only (before typed CSV columns)"]
    assert report.encoded == 0 and report.reused == n
    new = store.load_index(root, "default")
    np.testing.assert_array_equal(np.load(new.file("embeddings")), old_vectors)
    schema = pq.read_schema(new.columns_file())
    assert (schema.field("id").type, schema.field("year").type,
            schema.field("score").type) == (pa.int64(), pa.int64(), pa.float64())
    assert new.meta.sections["column_file"].format == 2
    # Numeric comparisons and empty cells as NULL, brute force over the frame:
    got = filter_rows(new.columns_file(), "year >= 2020 and score is not null")
    want = np.flatnonzero((frame["year"] >= 2020) & frame["score"].notna())
    np.testing.assert_array_equal(np.sort(np.asarray(got)), want)
    again = build_index(source, "text", model=tiny_model, root=root, lexical=False)
    assert again.status == "up-to-date"


def test_digest_helper_is_the_sha256_the_index_records(tmp_path, tiny_model):
    """The hostile helper rewrites the entry as the index records it (guards make_old)."""
    source = tmp_path / "docs.csv"
    pd.DataFrame({"text": [f"문서 {i}" for i in range(6)]}).to_csv(source, index=False)
    build_index(source, "text", model=tiny_model, root=tmp_path / "idx", lexical=False)
    index_dir = tmp_path / "idx" / "default"
    make_old(index_dir)
    store.load_index(tmp_path / "idx", "default").verify()  # sizes and sha256 agree
    assert _digest(index_file(index_dir, "columns"))
