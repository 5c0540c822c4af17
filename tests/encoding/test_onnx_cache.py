"""One ONNX export per model (issue 20): a content-addressed cache shared by every index,
recorded in each index's metadata; older indexes keep using the copy under their root."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest
from conftest import require

from simsearch.build import build_index
from simsearch.encoding import onnx as onnx_encoder
from simsearch.encoding.encoders import query_encoder
from simsearch.store.index import load_index
from simsearch.store.meta import OnnxExport

require("onnxruntime", "onnx")
require("onnx", "onnx")

TEXTS = [f"배터리 전극 문서 {i} guitar" if i % 2 else f"반도체 메모리 {i}" for i in range(12)]


@pytest.fixture
def docs(tmp_path):
    path = tmp_path / "docs.csv"
    pd.DataFrame({"text": TEXTS}).to_csv(path, index=False)
    return path


def test_two_indexes_of_one_model_share_one_export(tmp_path, docs, tiny_model, private_cache):
    build_index(docs, "text", model=tiny_model, root=tmp_path / "a")
    build_index(docs, "text", model=tiny_model, root=tmp_path / "b", name="other")
    exports = [p for p in private_cache.iterdir() if not p.name.startswith(".")]
    assert len(exports) == 1
    first, second = load_index(tmp_path / "a"), load_index(tmp_path / "b", "other")
    assert first.meta.get(OnnxExport) == second.meta.get(OnnxExport) == OnnxExport(exports[0].name)
    assert first.onnx_key == onnx_encoder.cache_key(tiny_model)
    assert not (tmp_path / "a" / "onnx").exists() and not (tmp_path / "b" / "onnx").exists()
    encoder = query_encoder(second)
    assert encoder.backend == "onnx" and encoder.directory == exports[0]


def test_an_index_with_its_own_older_copy_still_uses_it(tmp_path, docs, tiny_model,
                                                        private_cache):
    root = tmp_path / "idx"
    build_index(docs, "text", model=tiny_model, root=root)
    key = load_index(root).onnx_key
    (root / "onnx").mkdir()
    shutil.move(private_cache / key, root / "onnx" / key)  # the layout before the cache
    encoder = query_encoder(load_index(root))
    assert encoder.backend == "onnx" and encoder.directory == root / "onnx" / key


def test_a_missing_export_is_named_in_one_line_and_made_again(tmp_path, docs, tiny_model,
                                                               private_cache):
    root = tmp_path / "idx"
    build_index(docs, "text", model=tiny_model, root=root)
    index = load_index(root)
    shutil.rmtree(private_cache / index.onnx_key)
    lines: list[str] = []
    assert query_encoder(index, log=lines.append).backend == "torch"  # still answers
    assert len(lines) == 1 and index.onnx_key in lines[0] and "simsearch index" in lines[0]
    report = build_index(docs, "text", model=tiny_model, root=root)
    assert report.status == "up-to-date"
    assert (private_cache / index.onnx_key / onnx_encoder.CONFIG).is_file()
    assert query_encoder(load_index(root)).backend == "onnx"


def test_the_cache_directory_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("SIMSEARCH_CACHE_DIR", str(tmp_path / "mine"))
    assert onnx_encoder.shared_dir("abc") == tmp_path / "mine" / "onnx" / "abc"
    monkeypatch.delenv("SIMSEARCH_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    if onnx_encoder.sys.platform.startswith("linux"):
        assert onnx_encoder.cache_root() == tmp_path / "xdg" / "simsearch"


def test_the_query_session_does_not_spin_and_the_build_session_does(
    tmp_path, docs, tiny_model, private_cache
):
    """Idle onnxruntime threads busy-wait by default; between queries they fought numpy's
    BLAS threads and doubled a warm hybrid query on 2 cores (docs/performance.md), so the
    query encoder turns spinning off while a build's encoder keeps it."""
    root = tmp_path / "idx"
    build_index(docs, "text", model=tiny_model, root=root, backend="onnx")
    key = "session.intra_op.allow_spinning"
    query = query_encoder(load_index(root))
    assert query.backend == "onnx"
    assert query.session.get_session_options().get_session_config_entry(key) == "0"
    directory = onnx_encoder.shared_dir(load_index(root).onnx_key)
    build = onnx_encoder.OnnxEncoder(directory)
    with pytest.raises(RuntimeError, match="does not have configuration"):  # the default
        build.session.get_session_options().get_session_config_entry(key)
    assert query.encode(["배터리 전극"]).tolist() == build.encode(["배터리 전극"]).tolist()
