"""The typed index metadata (simsearch.store.meta.IndexMeta): validation, versions, sections."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from simsearch._fs import atomic
from simsearch.build import build_index
from simsearch.errors import DamagedIndex
from simsearch.store.index import load_index
from simsearch.store.meta import FileEntry, IndexMeta


@pytest.fixture
def index_path(workdir, monkeypatch):
    """An index built by importing a random matrix (no model is loaded)."""
    monkeypatch.setenv("SIMSEARCH_ONNX", "0")
    pd.DataFrame({"text": [f"doc {i}" for i in range(6)]}).to_csv("docs.csv", index=False)
    rng = np.random.default_rng(0)
    np.save("emb.npy", rng.standard_normal((6, 4)).astype(np.float32))
    build_index("docs.csv", "text", embeddings="emb.npy", whiten=True, lexical=False)  # as v1
    return workdir / ".simsearch" / "default"


def rewrite(path, change):
    data = json.loads((path / "meta.json").read_text("utf-8"))
    change(data)
    (path / "meta.json").write_text(json.dumps(data), "utf-8")


def test_round_trip_and_typed_sections(index_path):
    meta = load_index().meta
    assert meta.whitening is not None and meta.whitening.dim == meta.search_dim <= 4
    again = IndexMeta.from_dict(json.loads(json.dumps(meta.to_dict())), index_path)
    assert again == meta


@pytest.mark.parametrize(
    "change,message",
    [
        (lambda d: d.pop("n_docs"), "lacks meta.json.n_docs"),
        (lambda d: d["source"].pop("sha256"), "lacks meta.json.source.sha256"),
        (lambda d: d.update(dim="four"), "meta.json.dim is 'four', not int"),
        (lambda d: d["files"]["rows"].update(name="../rows.jsonl"), "outside the index"),
        (lambda d: d.update(files=[]), "meta.json.files is not an object"),
    ],
)
def test_missing_or_mistyped_keys_are_a_damaged_index_never_a_keyerror(index_path, change, message):
    rewrite(index_path, change)
    with pytest.raises(DamagedIndex, match="rebuild") as raised:
        load_index()
    assert message in str(raised.value)


def test_format_1_opens_and_other_versions_are_refused_with_the_version(index_path):
    def to_v1(d):
        files = d.pop("files")
        d["files"] = {role: entry["name"] for role, entry in files.items()}
        d["sizes"] = {role: entry["size"] for role, entry in files.items()}
        d["checksums"] = {role: entry["sha256"] for role, entry in files.items()}
        white = d.pop("sections")["whitening"]
        d["whitening"] = {
            "requested": {"dim": white["requested_dim"]},
            "dim": white["dim"],
            "fitted_on": white["fitted_on"],
        }
        d["format_version"] = 1

    before = load_index()
    before.meta.sections.pop("table")  # format 1 predates the table section (issue 10)
    rewrite(index_path, to_v1)
    old = load_index()
    # Format 1 knew one section, whitening; the others (generations, model files, the
    # column file of filters) are what a format-1 index lacks.
    before.meta.sections = {k: v for k, v in before.meta.sections.items() if k == "whitening"}
    assert old.meta == before.meta
    old.verify()
    rewrite(index_path, lambda d: d.update(format_version=9))
    with pytest.raises(DamagedIndex, match="format version 9") as raised:
        load_index()
    assert "--rebuild" in str(raised.value) and "\n" not in str(raised.value)


def test_unknown_sections_are_kept_and_directories_are_files_too(index_path):
    lexical = index_path / "lexical-20260101000000-abcdef"
    lexical.mkdir()
    (lexical / "vocab.json").write_text("{}", "utf-8")
    entry = FileEntry(lexical.name, atomic.path_size(lexical), atomic.file_digest(lexical))

    def add(d):
        d["files"]["lexical"] = {"name": entry.name, "size": entry.size, "sha256": entry.sha256}
        d["sections"]["from_the_future"] = {"anything": [1, 2]}

    rewrite(index_path, add)
    index = load_index()
    index.verify()
    assert index.meta.to_dict()["sections"]["from_the_future"] == {"anything": [1, 2]}
    (lexical / "vocab.json").write_text('{"x": 1}', "utf-8")
    with pytest.raises(DamagedIndex, match="has 8 bytes, not 2"):
        load_index()
