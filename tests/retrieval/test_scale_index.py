"""Scale features through the index: ``index --ann`` (the ANN section, similar/query use
it, ``--exact`` and ``exact=True`` force the scan) and ``index --ray local`` (the same
index as a plain build)."""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pandas as pd
import pytest
from conftest import cli_command, cli_env, missing_extra, require, run_cli

import simsearch
from simsearch.errors import InvalidParameter, SimsearchError
from simsearch.retrieval.ann import require_usearch
from simsearch.search import similar_hits
from simsearch.store.index import load_index
from simsearch.store.meta import AnnInfo

pytestmark = pytest.mark.extra

try:  # through simsearch: it loads onnxruntime before usearch (the other order crashes)
    require_usearch()
except SimsearchError:
    missing_extra("usearch", "ann")

N = 3000


@pytest.fixture(scope="module")
def ann_index(tmp_path_factory):
    """3,000 clustered 64-d documents imported with --embeddings --ann (5 empty)."""
    root = tmp_path_factory.mktemp("scale")
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((50, 64))
    emb = centres[rng.integers(50, size=N)] + 0.6 * rng.standard_normal((N, 64))
    texts = [f"document {i}" for i in range(N)]
    for i in (3, 500, 1000, 2000, 2999):
        texts[i], emb[i] = "", 0.0
    np.save(root / "emb.npy", emb.astype(np.float32))
    pd.DataFrame({"id": range(N), "text": texts}).to_csv(root / "docs.csv", index=False)
    done = run_cli(
        "index", "docs.csv", "-c", "text", "--embeddings", "emb.npy", "--ann",
        "--index", "idx", "-q", cwd=root,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "approximate index: usearch HNSW over i8 vectors" in done.stderr
    return root


def test_ann_section_and_file_are_part_of_the_index(ann_index):
    index = load_index(ann_index / "idx")
    info = index.meta.get(AnnInfo)
    assert info is not None and info.n_vectors == N - 5 and info.n_skipped == 5
    assert index.file("ann").exists() and index.file("ann").name.startswith("ann-")
    index.verify()  # the ANN file is checksummed like every other file


def test_similar_uses_ann_and_matches_the_exact_scan(ann_index):
    index = load_index(ann_index / "idx")
    agree = []
    for doc in range(0, N, 150):
        approx = [h.row for h in similar_hits(index, doc, 10)]
        exact = [h.row for h in similar_hits(index, doc, 10, exact=True)]
        agree.append(len(set(approx) & set(exact)) / 10)
        assert doc not in approx and len(approx) == 10
    assert np.mean(agree) >= 0.95


@pytest.mark.slow  # CLI subprocesses over an ANN index
def test_cli_exact_flag_and_notebook_exact_keyword(ann_index):
    args = ["similar", "--doc", "7", "--k", "5", "--index", "idx", "-f", "json"]
    approx = json.loads(run_cli(*args, cwd=ann_index).stdout)
    exact = json.loads(run_cli(*args, "--exact", cwd=ann_index).stdout)
    frame = simsearch.similar(7, k=5, root=ann_index / "idx", exact=True)
    assert [h["row"] for h in exact] == frame["row"].tolist()
    # Similarities shown through the ANN index are exact (rescored from float32).
    exact_sims = {h["row"]: h["similarity"] for h in exact}
    for hit in approx:
        if hit["row"] in exact_sims:
            assert hit["similarity"] == pytest.approx(exact_sims[hit["row"]], abs=1e-6)


@pytest.mark.slow  # ANN index build + rebuild (about 12 s)
def test_rebuild_without_ann_drops_it(ann_index, tmp_path):
    from simsearch.build import build_index

    report = build_index(
        ann_index / "docs.csv", "text", embeddings=ann_index / "emb.npy", root=tmp_path, ann=True
    )
    assert report.meta.get(AnnInfo) is not None
    report = build_index(
        ann_index / "docs.csv", "text", embeddings=ann_index / "emb.npy", root=tmp_path
    )
    assert report.meta.get(AnnInfo) is None and "ann" not in report.meta.files
    assert load_index(tmp_path).meta.get(AnnInfo) is None


def test_ray_refuses_other_backends_naming_the_parameter():
    from simsearch.encoding.encoders import check_options

    with pytest.raises(InvalidParameter, match="ray encodes with sentence-transformers") as err:
        check_options("onnx", "fp32", None, "local")
    assert err.value.param == "ray"


@pytest.mark.slow
def test_index_through_ray_local_equals_a_plain_build(tiny_model, tmp_path):
    """The acceptance test of issue 11: ``index --ray local`` writes the index a plain
    build writes (same vectors to float tolerance, same top-10 rows)."""
    require("ray.data", "ray")
    texts = [
        f"문서 {i}: {'배터리 전극' if i % 3 else '반도체 공정'} {i % 17}" * (1 + i % 3)
        for i in range(120)
    ]
    pd.DataFrame({"text": texts}).to_csv(tmp_path / "docs.csv", index=False)
    common = ["index", "docs.csv", "-c", "text", "-m", tiny_model, "--batch-size", "8", "-q"]
    # Not run_cli: starting Ray and its actors took over 5 minutes at load 30 on 2 cores.
    done = subprocess.run(
        [*cli_command(), *common, "--ray", "local", "--index", "viaray"],
        cwd=tmp_path, capture_output=True, text=True, env=cli_env(), timeout=1200,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    plain = run_cli(*common, "--backend", "torch", "--index", "plain", cwd=tmp_path)
    assert plain.returncode == 0, plain.stderr
    a, b = load_index(tmp_path / "viaray"), load_index(tmp_path / "plain")
    assert a.meta.encode.backend == "ray" and b.meta.encode.backend == "torch"
    assert (a.hashes() == b.hashes()).all()
    np.testing.assert_allclose(np.asarray(a.embeddings), np.asarray(b.embeddings), atol=1e-5)
    for doc in range(0, 120, 6):
        rows_a = [h.row for h in similar_hits(a, doc, 10)]
        rows_b = [h.row for h in similar_hits(b, doc, 10)]
        assert rows_a == rows_b
