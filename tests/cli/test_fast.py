"""The fast paths give the same results as the reference paths.

* the ONNX runtime (export + onnxruntime + tokenizers + numpy pooling) vs
  sentence-transformers, for the tiny test model and the real MiniLM;
* queries fall back to sentence-transformers where no export exists;
* ``--backend onnx`` builds vs torch builds; precision changes re-encode;
* the fast command-line lane (``python -m simsearch``) vs the typer app;
* chunked ranking of many queries vs the notebook recipe.

No timings are asserted here; ``scripts/bench.py`` measures speed.
"""

from __future__ import annotations

import csv
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import REPO, require, shared_file

from simsearch.build import build_index
from simsearch.cli.fast import parse
from simsearch.cli.run import flag_for
from simsearch.encoding import onnx as onnx_encoder
from simsearch.encoding.encoders import TorchEncoder, check_options, half_precision, query_encoder
from simsearch.errors import InvalidParameter, SimsearchError
from simsearch.retrieval.topk import top_k
from simsearch.store.index import load_index

pytestmark = pytest.mark.extra
require("onnxruntime", "onnx")
require("onnx", "onnx")

TEXTS = [
    "안전모를 가진 한 남자가 춤을 추고 있다.",
    "어린아이가 말을 타고 있다.",
    "A man is playing a guitar.",
    "  leading and trailing spaces  ",
    "배터리 전극 제조 방법",
    "",
    "x",
    "한 여자가 양파를 자르고 있다. " * 40,  # longer than max_seq_length: truncated
]


def _st_vectors(model: str, texts: list[str]) -> np.ndarray:
    from simsearch.encoding.sbert import encode, load_model

    return encode(load_model(model, "cpu"), texts, batch_size=3)


def _korsts_sentences(n: int) -> list[str]:
    try:
        path = shared_file("korsts/sts-dev.tsv")
    except pytest.skip.Exception:
        return [f"{t} {i}" for i in range(n // len(TEXTS) + 1) for t in TEXTS if t][:n]
    frame = pd.read_csv(path, sep="\t", quoting=csv.QUOTE_NONE)
    frame = frame.dropna(subset=["sentence1", "sentence2"])
    return list(frame["sentence1"].iloc[:n])


@pytest.fixture(scope="module")
def tiny_export(tmp_path_factory, tiny_model) -> Path:
    return onnx_encoder.export(tiny_model, tmp_path_factory.mktemp("onnx-root"))


def test_tiny_model_onnx_equals_sentence_transformers(tiny_model, tiny_export):
    reference = _st_vectors(tiny_model, TEXTS)
    encoder = onnx_encoder.OnnxEncoder(tiny_export)
    vectors = encoder.encode(TEXTS, batch_size=3)
    assert vectors.shape == reference.shape and vectors.dtype == np.float32
    keep = [i for i, t in enumerate(TEXTS) if t.strip()]
    cosines = (vectors[keep] * reference[keep]).sum(axis=1)
    assert cosines.min() >= 0.999
    np.testing.assert_allclose(vectors, reference, atol=1e-5)
    assert not vectors[TEXTS.index("")].any()  # empty text: zero row, like encode()
    assert encoder.count_truncated(TEXTS) == TorchEncoder(tiny_model, "cpu").count_truncated(TEXTS)


@pytest.mark.slow
def test_minilm_onnx_equals_sentence_transformers_with_same_top_k(minilm, tmp_path):
    texts = _korsts_sentences(30) + [t for t in TEXTS if t.strip()]
    reference = _st_vectors(minilm, texts)
    directory = onnx_encoder.export(minilm, tmp_path)
    vectors = onnx_encoder.OnnxEncoder(directory).encode(texts, batch_size=16)
    assert ((vectors * reference).sum(axis=1)).min() >= 0.999
    queries = vectors[:10]
    ours, _ = top_k(vectors, queries, 5)
    theirs, _ = top_k(reference, reference[:10], 5)
    assert ours.tolist() == theirs.tolist()
    # int8: dynamically quantised, close but not equal.
    int8 = onnx_encoder.OnnxEncoder(directory, "int8").encode(texts, batch_size=16)
    assert np.allclose(np.linalg.norm(int8, axis=1), 1, atol=1e-5)
    assert ((int8 * reference).sum(axis=1)).mean() >= 0.98


def test_query_uses_the_export_and_falls_back_without_one(workdir, tiny_model, monkeypatch,
                                                          private_cache):
    pd.DataFrame({"text": [t or "-" for t in TEXTS]}).to_csv("docs.csv", index=False)
    build_index("docs.csv", "text", model=tiny_model)
    index = load_index()
    assert onnx_encoder.has_export(".simsearch", index.model)  # made at index time
    assert "onnx" not in index.meta.files  # a shared cache, not a file of the index
    encoder = query_encoder(index)
    assert encoder.backend == "onnx"
    fast = encoder.encode(["배터리 전극", "guitar"])
    monkeypatch.setenv("SIMSEARCH_ONNX", "0")
    slow_encoder = query_encoder(index)
    assert slow_encoder.backend == "torch"
    slow = slow_encoder.encode(["배터리 전극", "guitar"])
    np.testing.assert_allclose(fast, slow, atol=1e-5)
    monkeypatch.delenv("SIMSEARCH_ONNX")
    import shutil

    shutil.rmtree(onnx_encoder.export_dir(".simsearch", index.model))
    assert query_encoder(index).backend == "torch"  # no export: sentence-transformers
    import simsearch

    frame = simsearch.query("guitar", k=3)
    assert len(frame) == 3


def test_onnx_backend_build_equals_torch_build(workdir, tiny_model):
    texts = [f"문서 {i} " + "가나다라마바사"[i % 7] * (i % 4 + 1) for i in range(40)]
    texts[7] = ""
    pd.DataFrame({"text": texts}).to_csv("docs.csv", index=False)
    build_index("docs.csv", "text", model=tiny_model, root="t")
    report = build_index("docs.csv", "text", model=tiny_model, root="o", backend="onnx")
    assert report.meta.encode.backend == "onnx"
    torch_matrix = load_index("t").embeddings
    onnx_matrix = load_index("o").embeddings
    np.testing.assert_allclose(onnx_matrix, torch_matrix, atol=1e-5)
    # int8 is a different precision: everything is encoded again, never mixed.
    int8 = build_index("docs.csv", "text", model=tiny_model, root="o", backend="onnx",
                       precision="int8")  # fmt: skip
    assert int8.reasons == ["precision changed (fp32 -> int8)"] and int8.reused == 0
    assert int8.meta.encode.precision == "int8"
    assert query_encoder(load_index("o")).precision == "int8"


@pytest.mark.parametrize(
    "backend,precision,device,message",
    [
        ("tensorflow", "fp32", None, "unknown --backend"),
        ("torch", "fp8", None, "unknown --precision"),
        ("torch", "int8", None, "--precision int8 needs the onnx backend"),
        ("onnx", "fp16", None, "for GPUs with the torch backend"),
        ("onnx", "fp32", "cuda", "runs on the CPU"),
    ],
)
def test_impossible_backend_options_are_refused(backend, precision, device, message):
    from simsearch.cli.core import index_command

    with pytest.raises(InvalidParameter) as raised:
        check_options(backend, precision, device)
    # The library names the parameter; only the CLI spells it as a flag.
    assert "--" not in str(raised.value)
    assert re.search(message, raised.value.render(flag_for(index_command)))


def test_half_precision_needs_a_gpu(workdir, tiny_model):
    pd.DataFrame({"text": ["a", "b"]}).to_csv("docs.csv", index=False)
    with pytest.raises(SimsearchError, match="needs a GPU"):
        build_index("docs.csv", "text", model=tiny_model, device="cpu", precision="fp16")


def test_bf16_cast_still_returns_float32(tiny_model):
    # The GPU code path, exercised on the CPU (torch runs bf16 there too).
    encoder = TorchEncoder(tiny_model, "cpu")
    half_precision(encoder.st, "bf16")
    vectors = encoder.encode(["배터리", "guitar"])
    reference = TorchEncoder(tiny_model, "cpu").encode(["배터리", "guitar"])
    assert vectors.dtype == np.float32
    assert ((vectors * reference).sum(axis=1)).min() > 0.99


# --------------------------------------------------------------------------- CLI lane


def test_fast_lane_parses_only_the_plain_forms():
    assert parse("similar", ["--doc", "3", "--k=5", "-f", "json", "--include-self"]) == {
        "doc": 3,
        "k": 5,
        "fmt": "json",
        "include_self": True,
    }
    assert parse("similar", ["-d", "-1"]) == {"doc": -1}
    assert parse("query", ["TEXT", "-k", "2"]) == {"k": 2, "text": "TEXT"}
    assert parse("query", ["--file", "-"]) == {"file": "-", "text": None}
    for command, args in [
        ("similar", ["--k", "3"]),  # --doc missing: typer reports it
        ("similar", ["--doc", "x"]),  # not a number
        ("similar", ["--doc", "1", "--help"]),
        ("similar", ["--doc", "1", "--brand-new-option", "1"]),
        ("similar", ["--doc"]),
        ("similar", ["--doc", "1", "extra"]),
        ("query", ["one", "two"]),
        ("query", ["-k5", "x"]),
        ("index", ["docs.csv"]),
    ]:
        assert parse(command, args) is None, args


def _cli(lane: str, *args: str, cwd: Path, stdin: str | None = None):
    code = (
        "from simsearch.cli.typer_app import app; app(prog_name='simsearch')"
        if lane == "typer"
        else None
    )
    command = [sys.executable, "-c", code] if code else [sys.executable, "-m", "simsearch"]
    env = dict(os.environ, HF_HUB_OFFLINE="1", COLUMNS="120", PYTHONPATH=str(REPO / "src"))
    return subprocess.run(
        [*command, *args], cwd=cwd, capture_output=True, text=True, input=stdin, env=env
    )


@pytest.mark.slow
def test_fast_lane_prints_what_the_typer_app_prints(workdir, tiny_model):
    texts = [f"문서 {i} " + "가나다라마바사"[i % 7] * (i % 4 + 1) for i in range(20)]
    pd.DataFrame({"n": range(20), "text": texts}).to_csv("docs.csv", index=False)
    build_index("docs.csv", "text", model=tiny_model)
    cases = [
        ["similar", "--doc", "3", "--k", "4", "-f", "json"],
        ["similar", "-d", "0", "--include-self", "--show", "n", "-f", "csv"],
        ["similar", "--doc", "2", "--k", "3"],  # rich table
        ["similar", "--doc", "99"],  # error: one line, exit 2
        ["similar", "--doc", "1", "--format", "xml"],
        ["query", "문서 가가", "-k", "2", "-f", "json"],
        ["query", "--file", "-", "--k", "2", "-f", "csv"],
        ["query"],
        ["show", "--doc", "3"],  # show is on the fast lane since cli/commands.py
        ["show", "--doc", "99"],
        ["list"],
        ["info", "-f", "json"],
    ]
    for args in cases:
        fast = _cli("fast", *args, cwd=workdir, stdin="문서 1\n\n문서 다다\n")
        slow = _cli("typer", *args, cwd=workdir, stdin="문서 1\n\n문서 다다\n")
        assert (fast.returncode, fast.stdout, fast.stderr) == (
            slow.returncode,
            slow.stdout,
            slow.stderr,
        ), args


# --------------------------------------------------------------------------- ranking


def test_chunked_many_query_ranking_equals_notebook_recipe():
    from sklearn.metrics.pairwise import cosine_distances

    rng = np.random.default_rng(7)
    emb = rng.standard_normal((2000, 48)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    queries = emb[:300]
    # 300 queries in blocks of 7 (block bound of 7 score rows): many chunks.
    indices, sims = top_k(emb, queries, 10, block_bytes=4 * 2000 * 7)
    expected = np.argsort(cosine_distances(queries, emb), axis=1, kind="stable")[:, :10]
    assert indices.tolist() == expected.tolist()
    np.testing.assert_allclose(sims, (queries @ emb.T)[np.arange(300)[:, None], expected],
                               atol=1e-6)  # fmt: skip
