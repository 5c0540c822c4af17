"""Building indexes with a tiny model: cache reuse, incremental updates, import."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from simsearch import load_index
from simsearch.build import build_index
from simsearch.errors import SimsearchError


def sentences(n: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    words = [
        "배터리",
        "음극",
        "반도체",
        "식각",
        "센서",
        "차량",
        "물",
        "필터",
        "발효",
        "콘크리트",
        "battery",
        "anode",
        "wafer",
        "lidar",
        "sensor",
        "water",
    ]
    return [" ".join(rng.choice(words, size=rng.integers(3, 12))) + f" {i}" for i in range(n)]


def write_csv(path, texts, extra=None):
    frame = pd.DataFrame({"id": range(len(texts)), "text": texts})
    if extra is not None:
        frame["extra"] = extra
    frame.to_csv(path, index=False)
    return path


def reference(tiny_model, texts):
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(tiny_model, device="cpu")
    return model.encode(texts, normalize_embeddings=True, convert_to_numpy=True)


def test_build_writes_normalised_embeddings_equal_to_sentence_transformers(workdir, tiny_model):
    texts = sentences(40)
    texts[7] = ""
    source = write_csv(workdir / "docs.csv", texts)
    report = build_index(source, "text", model=tiny_model)
    assert report.status == "built" and report.encoded == 39 and report.n_empty == 1
    assert report.n_docs == 40
    index = load_index()
    assert index.embeddings.shape == (40, 32) and index.embeddings.dtype == np.float32
    assert index.meta.n_empty == 1 and index.meta.n_docs == 40
    assert not index.embeddings[7].any(), "an empty document is a zero row"
    keep = [i for i in range(40) if i != 7]
    expected = reference(tiny_model, [texts[i] for i in keep])
    np.testing.assert_allclose(index.embeddings[keep], expected, atol=1e-5)
    norms = np.linalg.norm(index.embeddings[keep], axis=1)
    np.testing.assert_allclose(norms, 1.0, atol=1e-5)
    meta = index.meta
    for key in ("source", "model", "dim", "n_docs", "versions", "created_at", "files"):
        assert getattr(meta, key)
    assert meta.source.column == "text" and len(meta.source.sha256) == 64
    assert index.rows([3])[0]["text"] == texts[3]
    index.verify()


def test_unchanged_source_reuses_the_cache_and_changes_say_why(workdir, tiny_model):
    source = write_csv(workdir / "docs.csv", sentences(20), extra=sentences(20, seed=9))
    build_index(source, "text", model=tiny_model)
    again = build_index(source, "text", model=tiny_model)
    assert again.status == "up-to-date" and again.encoded == 0
    other = build_index(source, "extra", model=tiny_model)
    assert other.status == "updated" and other.encoded == 20
    assert any("column changed" in r for r in other.reasons)
    rebuilt = build_index(source, "extra", model=tiny_model, rebuild=True)
    assert rebuilt.encoded == 20 and rebuilt.reasons == ["rebuild requested"]


def test_incremental_update_equals_full_rebuild(workdir, tiny_model):
    texts = sentences(60)
    source = write_csv(workdir / "docs.csv", texts)
    build_index(source, "text", model=tiny_model)
    edited = texts[:]
    edited[3] = "완전히 새로운 문장"  # edit
    edited[10] = "another new sentence"
    del edited[20]  # delete
    edited = edited[::-1] + ["추가된 문서 하나", "added two"]  # reorder + add
    write_csv(source, edited)
    report = build_index(source, "text", model=tiny_model)
    assert report.status == "updated"
    assert (report.encoded, report.reused, report.dropped) == (4, 57, 3)
    incremental = np.array(load_index().embeddings)
    build_index(source, "text", model=tiny_model, root=workdir / "full")
    full = load_index(workdir / "full")
    np.testing.assert_allclose(incremental, full.embeddings, atol=1e-6)
    assert load_index().texts == edited


def test_import_precomputed_embeddings(workdir, tiny_model):
    texts = sentences(12)
    source = write_csv(workdir / "docs.csv", texts)
    matrix = np.random.default_rng(0).standard_normal((12, 8)).astype(np.float64) * 3
    np.save(workdir / "emb.npy", matrix)
    report = build_index(source, "text", model=tiny_model, embeddings=workdir / "emb.npy")
    assert report.status == "imported"
    index = load_index()
    expected = matrix / np.linalg.norm(matrix, axis=1, keepdims=True)
    np.testing.assert_allclose(index.embeddings, expected.astype(np.float32), atol=1e-6)
    np.save(workdir / "bad.npy", matrix[:5])
    with pytest.raises(SimsearchError, match=r"shape \(5, 8\) but the source has 12 rows"):
        build_index(source, "text", model=tiny_model, embeddings=workdir / "bad.npy")
    assert load_index().n_docs == 12, "a refused import leaves the old index intact"


def test_no_index_yet_says_run_index_first(workdir):
    with pytest.raises(SimsearchError, match="run 'simsearch index"):
        load_index()


def test_whitened_index_searches_the_whitened_matrix_and_reencodes_nothing(workdir, tiny_model):
    from simsearch.search import encode_queries
    from simsearch.transforms.whitening import fit_whitening

    texts = sentences(50)
    texts[9] = ""
    source = write_csv(workdir / "docs.csv", texts)
    build_index(source, "text", model=tiny_model)
    report = build_index(source, "text", model=tiny_model, whiten=True, whiten_dim=8)
    assert report.encoded == 0 and report.reasons == ["whitening changed (off -> on)"]
    index = load_index()
    assert index.embeddings.shape == (50, 8) and index.meta.dim == 32
    raw = np.load(index.file("embeddings"))
    keep = [i for i in range(50) if i != 9]
    expected = fit_whitening(raw[keep], 8).apply(raw[keep])
    np.testing.assert_allclose(index.embeddings[keep], expected, atol=1e-5)
    assert not index.embeddings[9].any()
    query = encode_queries(index, [texts[3]])
    assert query.shape == (1, 8)
    np.testing.assert_allclose(query[0], index.embeddings[3], atol=1e-4)
    off = build_index(source, "text", model=tiny_model)
    assert off.encoded == 0 and load_index().embeddings.shape == (50, 32)
    with pytest.raises(SimsearchError, match="whiten_dim needs whitening") as raised:
        build_index(source, "text", model=tiny_model, whiten_dim=4)
    from simsearch.cli.core import index_command
    from simsearch.cli.run import flag_for

    assert raised.value.render(flag_for(index_command)).startswith("--whiten-dim needs")
