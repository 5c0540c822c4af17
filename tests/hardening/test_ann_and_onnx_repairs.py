"""Issue 18, A7 and A8: a full disk while the ANN file is saved, and ``index --rebuild``
over a damaged ONNX export.

The full disk is real: a small tmpfs (root only; skipped with the reason elsewhere), as in
``test_hardening_io.py``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hostile import assert_one_line_error, diff, run, snapshot
from test_hardening_io import fill, tmpfs

from simsearch.build import build_index

pytest.importorskip("usearch")


def write_docs(path: Path, n: int) -> Path:
    texts = [f"문서 {i} 배터리 음극재 battery {i}" for i in range(n)]
    pd.DataFrame({"id": range(n), "text": texts}).to_csv(path, index=False)
    return path


@pytest.mark.slow  # builds an ANN index twice (about 4 s)
def test_disk_full_while_saving_the_ann_file_is_one_line_and_keeps_the_index(
    tmp_path, tiny_model
):
    """An imported matrix (no encoding) of 6000 x 32 fits the space left as float32
    (768 KB, with the space check's 1 MB margin), but its HNSW graph (1.1 MB) does not."""
    n = 6000
    docs = write_docs(tmp_path / "docs.csv", n)
    matrix = tmp_path / "m.npy"
    np.save(matrix, np.random.default_rng(0).normal(size=(n, 32)).astype(np.float32))
    with tmpfs(tmp_path / "small", "4m") as small:
        root = small / "idx"
        build_index(write_docs(tmp_path / "few.csv", 12), "text", model=tiny_model, root=root)
        before = snapshot(root)
        fill(small, leave=1900 * 1024)
        free = shutil.disk_usage(small).free
        args = ["index", str(docs), "-c", "text", "--embeddings", str(matrix), "-m", tiny_model,
                "--index", str(root), "--ann", "--no-lexical", "-q"]
        result = run(args, cwd=tmp_path, timeout=120)
        assert_one_line_error(result, "space")
        assert shutil.disk_usage(small).free == free, "the failed build left files behind"
        assert not diff(before, snapshot(root)), "the previous index changed"
        ok = run(["similar", "--doc", "0", "-f", "json", "--index", str(root)], cwd=tmp_path)
        assert ok.code == 0, ok


def test_saving_an_ann_file_where_it_cannot_fit_is_the_space_error(tmp_path):
    """The library alone: ``build_ann`` on a full file system raises the one-line
    SimsearchError (no usearch RuntimeError) and leaves no temporary file."""
    from simsearch.errors import SimsearchError
    from simsearch.retrieval.ann import build_ann

    vectors = np.random.default_rng(1).normal(size=(2000, 32)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    with tmpfs(tmp_path / "small", "1m") as small:
        fill(small, leave=64 * 1024)
        names = set(p.name for p in small.iterdir())
        with pytest.raises(SimsearchError, match="space"):
            build_ann(vectors, small / "ann-x.usearch")
        assert set(p.name for p in small.iterdir()) == names


# ---------------------------------------------------- A8: --rebuild repairs the export


@pytest.mark.slow  # two ONNX exports each (about 18 s)
@pytest.mark.parametrize("damage", ["truncated", "same-size"])
def test_rebuild_repairs_a_damaged_onnx_export(tmp_path, tiny_model, damage, private_cache):
    """The warning about a damaged export says to run ``index`` again; ``--rebuild``
    must repair it as plain ``index`` does, not crash on it."""
    import json

    docs = write_docs(tmp_path / "docs.csv", 12)
    root = tmp_path / "idx"
    build_index(docs, "text", model=tiny_model, root=root)
    (tokenizer,) = private_cache.glob("*/tokenizer.json")
    content = tokenizer.read_bytes()
    if damage == "truncated":
        tokenizer.write_bytes(content[:100])
    else:
        tokenizer.write_bytes(b" " * len(content))
    result = run(["index", str(docs), "-c", "text", "-m", tiny_model, "--index", str(root),
                  "--rebuild", "-q"], cwd=tmp_path, timeout=180)
    assert result.code == 0 and "Traceback" not in result.stderr, result
    assert json.loads(tokenizer.read_text(encoding="utf-8"))["model"], "the export was not repaired"
    ok = run(["query", "배터리", "--k", "3", "-f", "json", "--index", str(root)], cwd=tmp_path,
             timeout=120)
    assert ok.code == 0 and len(json.loads(ok.stdout)) == 3, ok
