"""``--whiten-dim`` (issue 18 A10): the error names the real bound, ``(n - 1) // 2`` for
``n`` non-empty documents, and comes before the model is loaded or exported."""

from __future__ import annotations

import pandas as pd
import pytest
from hostile import assert_one_line_error, run

from simsearch.build import build_index
from simsearch.errors import InvalidParameter

N_DOCS = 12  # (12 - 1) // 2 = 5 dimensions at most


def write_docs(path, n=N_DOCS, empty=0):
    texts = [f"문서 {i} 배터리 음극재 battery {i}" for i in range(n)] + [""] * empty
    pd.DataFrame({"text": texts}).to_csv(path, index=False)
    return path


@pytest.mark.parametrize("backend", ["torch", "onnx"])
def test_whiten_dim_above_half_the_documents_is_refused_before_the_model(
    tmp_path, tiny_model, backend
):
    """10 dimensions on 12 documents (3 empty rows do not count): the bound named is 5 of
    ``(n - 1) // 2``, not the model's 32; nothing was loaded, exported or written."""
    docs = write_docs(tmp_path / "docs.csv", empty=3)
    root = tmp_path / "idx"
    progress: list[int] = []
    with pytest.raises(InvalidParameter) as caught:
        build_index(docs, "text", model=tiny_model, root=root, backend=backend, whiten=True,
                    whiten_dim=10, on_progress=lambda done, _total: progress.append(done))
    message = str(caught.value)
    assert "(n - 1) // 2 = 5" in message and "12 non-empty documents" in message, message
    assert "at most 5" in message and "32" not in message
    assert not progress and not root.exists()  # no ONNX export, no index directory


def test_whiten_dim_at_the_bound_builds(tmp_path, tiny_model):
    docs = write_docs(tmp_path / "docs.csv")
    report = build_index(docs, "text", model=tiny_model, root=tmp_path / "idx",
                         backend="torch", whiten=True, whiten_dim=5, lexical=False)
    assert report.meta.whitening.dim == 5


def test_whiten_dim_on_too_few_documents_names_the_five_needed(tmp_path, tiny_model):
    docs = write_docs(tmp_path / "docs.csv", n=4)
    with pytest.raises(InvalidParameter, match="at least 5 non-empty documents"):
        build_index(docs, "text", model=tiny_model, root=tmp_path / "idx", whiten=True,
                    whiten_dim=2)


@pytest.mark.slow
def test_whiten_dim_error_on_the_command_line_is_one_line(tmp_path, tiny_model):
    docs = write_docs(tmp_path / "docs.csv")
    result = run(["index", docs, "-c", "text", "-m", tiny_model, "--index", tmp_path / "idx",
                  "--whiten", "--whiten-dim", "384"], cwd=tmp_path, timeout=120)
    line = assert_one_line_error(result, "--whiten-dim is 384")
    assert "at most 5" in line
    assert not (tmp_path / "idx").exists()
