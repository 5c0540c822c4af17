"""Issue 12: SBERT softmax objective, MLM/TSDAE pre-training, BERT-flow (tiny model, fast)."""

from __future__ import annotations

import random

import numpy as np
import pandas as pd
import pytest

from simsearch.errors import SimsearchError

TEXTS = [
    "배터리 음극재 실리콘 탄소 복합체",
    "리튬 이차전지 양극 활물질 제조 방법",
    "자동차 브레이크 패드 마찰재 조성물",
    "반도체 웨이퍼 세정 장치와 방법",
    "디스플레이 패널 유기 발광 소자",
    "의료용 카테터 코팅 조성물",
    "무선 충전 코일 배치 구조",
    "태양전지 전극 페이스트 조성물",
]


def _encode(model_dir: str, texts: list[str]) -> np.ndarray:
    from simsearch.encoding.sbert import encode, load_model

    return encode(load_model(model_dir), texts)


# ---------------------------------------------------------------- softmax (SBERT NLI)


def test_read_nli_pairs_maps_labels_and_drops_others(tmp_path):
    from simsearch.science.training.nli_classifier import read_nli_pairs

    path = tmp_path / "nli.tsv"
    path.write_text(
        "sentence1\tsentence2\tgold_label\n"
        'a "quoted\tb\tEntailment\n'
        "c\td\tneutral\n"
        "e\tf\tcontradiction\n"
        "g\th\t-\n"
        "i\t\tentailment\n",
        encoding="utf-8",
    )
    pairs = read_nli_pairs(path)
    assert pairs.to_dict("records") == [
        {"sentence1": 'a "quoted', "sentence2": "b", "label": 0},
        {"sentence1": "c", "sentence2": "d", "label": 1},
        {"sentence1": "e", "sentence2": "f", "label": 2},
    ]


def test_read_nli_pairs_without_labels_is_refused(tmp_path):
    from simsearch.science.training.nli_classifier import read_nli_pairs

    path = tmp_path / "nli.tsv"
    path.write_text("sentence1\tsentence2\tgold_label\na\tb\t-\n", encoding="utf-8")
    with pytest.raises(SimsearchError, match="No labelled NLI pair"):
        read_nli_pairs(path)


@pytest.mark.slow
def test_softmax_trains_the_encoder_and_saves_a_usable_model(tiny_model, tmp_path):
    from simsearch.science.training.core import TrainConfig
    from simsearch.science.training.nli_classifier import train_softmax

    rng = random.Random(0)
    data = pd.DataFrame(
        {
            "sentence1": [rng.choice(TEXTS) for _ in range(16)],
            "sentence2": [rng.choice(TEXTS) for _ in range(16)],
            "label": [i % 3 for i in range(16)],
        }
    )
    out = tmp_path / "softmax"
    config = TrainConfig("softmax", max_steps=2, batch_size=8, lr=1e-3, show_progress=False)
    result = train_softmax(tiny_model, data, out, config)
    assert result.steps == 2 and result.extra["labels"] == {
        "entailment": 6, "neutral": 5, "contradiction": 5
    }
    before, after = _encode(tiny_model, TEXTS), _encode(str(out), TEXTS)
    assert after.shape == before.shape
    assert not np.allclose(before, after, atol=1e-4)  # the siamese encoder itself was trained
    assert (out / "simsearch_card.json").is_file()


def test_softmax_needs_two_labels(tiny_model, tmp_path):
    from simsearch.science.training.core import TrainConfig
    from simsearch.science.training.nli_classifier import train_softmax

    data = pd.DataFrame({"sentence1": ["a", "b"], "sentence2": ["c", "d"], "label": [0, 0]})
    with pytest.raises(SimsearchError, match="at least 2 different labels"):
        train_softmax(tiny_model, data, tmp_path / "x", TrainConfig("softmax", max_steps=1))


# ---------------------------------------------------------------- MLM / TSDAE


def test_delete_words_keeps_order_and_at_least_one_word():
    from simsearch.science.training.pretrain import delete_words

    rng = random.Random(1)
    text = "하나 둘 셋 넷 다섯 여섯 일곱 여덟 아홉 열"
    outs = [delete_words(text, 0.6, rng) for _ in range(200)]
    words = text.split()
    for out in outs:
        kept = out.split()
        assert kept and all(w in words for w in kept)
        assert [words.index(w) for w in kept] == sorted(words.index(w) for w in kept)
    mean_kept = np.mean([len(o.split()) for o in outs]) / len(words)
    assert 0.3 < mean_kept < 0.5  # 60 % deleted on average
    assert delete_words("단어", 0.99, rng) == "단어"


@pytest.mark.slow
@pytest.mark.parametrize("method", ["mlm", "tsdae"])
def test_pretraining_saves_a_sentence_transformer_with_mean_pooling(tiny_model, tmp_path, method):
    import json

    from simsearch.science.training.core import TrainConfig
    from simsearch.science.training.pretrain import pretrain

    out = tmp_path / method
    config = TrainConfig(
        method, max_steps=2, batch_size=4, lr=1e-3, max_seq_length=32, show_progress=False
    )
    result = pretrain(tiny_model, TEXTS, out, config)
    assert result.steps == 2 and result.method == method
    assert np.isfinite(result.extra["train_loss"])
    modules = json.loads((out / "modules.json").read_text("utf-8"))
    pooling = [m for m in modules if m["type"].endswith("Pooling")]
    assert pooling, modules
    pool_cfg = json.loads((out / pooling[0]["path"] / "config.json").read_text("utf-8"))
    assert pool_cfg.get("pooling_mode_mean_tokens") or pool_cfg.get("pooling_mode") == "mean"
    before, after = _encode(tiny_model, TEXTS), _encode(str(out), TEXTS)
    assert after.shape == before.shape and not np.allclose(before, after, atol=1e-4)


def test_pretraining_refuses_bad_input(tiny_model, tmp_path):
    from simsearch.errors import InvalidParameter
    from simsearch.science.training.core import TrainConfig
    from simsearch.science.training.pretrain import pretrain

    with pytest.raises(SimsearchError, match="at least 2 non-empty texts"):
        pretrain(tiny_model, ["", "  ", "one"], tmp_path / "a", TrainConfig("mlm", max_steps=1))
    with pytest.raises(InvalidParameter, match="Unknown pre-training method 'sts'"):
        pretrain(tiny_model, TEXTS, tmp_path / "b", TrainConfig("sts"))
    with pytest.raises(InvalidParameter) as bad:
        pretrain(tiny_model, TEXTS, tmp_path / "c", TrainConfig("tsdae", deletion_ratio=1.0))
    assert bad.value.param == "deletion_ratio"


# ---------------------------------------------------------------- BERT-flow


def _anisotropic(n: int = 600, d: int = 12, seed: int = 0) -> np.ndarray:
    """Unit vectors crowded in a cone with a non-Gaussian (squared) component."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)) @ rng.normal(size=(d, d)) * 0.3
    x[:, 0] = x[:, 1] ** 2 + 5.0  # shared direction + non-linear dependence
    x[:, d // 2] = 0.0  # a constant dimension (zero variance, also after normalising)
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


@pytest.mark.slow
def test_flow_maps_corpus_to_isotropic_gaussian_and_matches_zuko(tmp_path):
    from simsearch.science.anisotropy import mean_random_cosine
    from simsearch.transforms.flow import EmbeddingFlow, FlowConfig, fit_flow

    x = _anisotropic()
    flow = fit_flow(x, FlowConfig(hidden=32, epochs=25, seed=0))
    info = flow.info
    assert info["input_dim"] == 12 and info["dim"] == 11  # constant dimension dropped
    assert info["export_max_abs_diff"] < 1e-4  # ONNX graph == zuko's forward map
    z = flow.latent(x)
    assert z.shape == (600, 11) and z.dtype == np.float32
    assert np.abs(z.mean(axis=0)).max() < 0.2
    assert np.abs(z.std(axis=0) - 1).max() < 0.2
    assert mean_random_cosine(x) > 0.6 and abs(mean_random_cosine(flow.apply(x))) < 0.05
    assert np.allclose(np.linalg.norm(flow.apply(x[:5]), axis=1), 1, atol=1e-5)
    path = flow.save(tmp_path / "flow")
    assert path.suffix == ".onnx"
    again = EmbeddingFlow.load(path)
    assert again.info == info and np.array_equal(again.apply(x), flow.apply(x))


def test_flow_is_reproducible_with_its_seed():
    from simsearch.transforms.flow import FlowConfig, fit_flow

    x = _anisotropic(n=200, d=6)
    cfg = FlowConfig(hidden=16, epochs=3, seed=3, max_embeddings=120)
    first = fit_flow(x, cfg)
    assert first.info["fit_embeddings"] == 120  # a seeded sample; applied to all rows
    assert np.array_equal(first.apply(x), fit_flow(x, cfg).apply(x))


def test_flow_refuses_bad_input(tmp_path):
    from simsearch.transforms.flow import EmbeddingFlow, FlowConfig, fit_flow

    with pytest.raises(SimsearchError, match="at least 10 embeddings"):
        fit_flow(np.ones((3, 4), np.float32))
    bad = _anisotropic(n=50, d=4)
    bad[0, 0] = np.nan
    with pytest.raises(SimsearchError, match="NaN"):
        fit_flow(bad)
    flow = fit_flow(_anisotropic(n=50, d=4), FlowConfig(hidden=8, epochs=1))
    with pytest.raises(SimsearchError, match="fitted on 4-dim"):
        flow.apply(np.ones((2, 5), np.float32))
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not onnx")
    with pytest.raises(SimsearchError, match="not a simsearch flow"):
        EmbeddingFlow.load(junk)
    with pytest.raises(SimsearchError, match="No flow file"):
        EmbeddingFlow.load(tmp_path / "missing.onnx")


def test_read_nli_pairs_on_kornli_dev_keeps_every_row():
    """Real data: the 2,490 XNLI dev rows, 830 per label, stray quotes left in place."""
    from conftest import shared_file

    from simsearch.science.training.nli_classifier import read_nli_pairs

    pairs = read_nli_pairs(shared_file("kornli/xnli.dev.ko.tsv"))
    assert len(pairs) == 2490
    assert pairs["label"].value_counts().to_dict() == {0: 830, 1: 830, 2: 830}


# ---------------------------------------------------------------- CLI and index integration


@pytest.mark.slow
def test_cli_train_mlm_on_an_index_then_sts_on_top(tiny_model, tmp_path, capsys):
    """`train --method mlm --index` (the command function, in-process: a subprocess would
    import torch again): the result is a --model for `train --method sts`."""
    import json

    from simsearch.build import build_index
    from simsearch.cli.models import train_command
    from simsearch.cli.run import run
    from simsearch.science.training.core import train_model

    docs = tmp_path / "docs.csv"
    pd.DataFrame({"text": TEXTS}).to_csv(docs, index=False)
    build_index(docs, "text", model=tiny_model, root=tmp_path / "idx")
    mlm = tmp_path / "mlm"
    capsys.readouterr()
    code = run(
        train_command,
        {"method": "mlm", "output": mlm, "index": tmp_path / "idx",
         "model": tiny_model, "max_steps": 1, "batch_size": 4, "fmt": "json"},
    )
    out = capsys.readouterr().out
    assert code == 0
    record = json.loads(out)  # stdout carries the JSON only (no trainer log lines)
    assert record["method"] == "mlm" and record["examples"] == len(TEXTS)
    pairs = pd.DataFrame(
        {"sentence1": TEXTS[:4], "sentence2": TEXTS[4:], "score": [1.0, 2.0, 3.0, 4.0]}
    )
    sts = train_model(str(mlm), "sts", pairs, tmp_path / "sts", max_steps=1, batch_size=4,
                      show_progress=False)
    assert sts.steps == 1 and (tmp_path / "sts" / "modules.json").is_file()


def test_cli_train_refuses_a_bad_deletion_ratio_in_one_line(tmp_path):
    from conftest import run_cli

    docs = tmp_path / "docs.csv"
    pd.DataFrame({"text": TEXTS}).to_csv(docs, index=False)
    bad = run_cli("train", "--method", "tsdae", "-o", str(tmp_path / "t"), "--deletion-ratio",
                  "1.5", "--data", str(docs), cwd=tmp_path)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert bad.stderr.strip().splitlines() == ["Error: --deletion-ratio must be in [0, 1)."]


@pytest.mark.slow
def test_index_flow_is_stored_and_applied_to_queries(tiny_model, tmp_path, monkeypatch):
    """`index --flow`: the search matrix is the flow of the raw embeddings, and a query goes
    through the same stored flow (its own document ranks first with similarity 1)."""
    import json
    import subprocess
    import sys

    from conftest import cli_env

    from simsearch.build import build_index
    from simsearch.search import encode_queries
    from simsearch.store.index import open_path
    from simsearch.transforms import load_transform
    from simsearch.transforms.flow import EmbeddingFlow

    docs = tmp_path / "docs.csv"
    texts = [f"{t} {i}" for i in range(4) for t in TEXTS]  # 32 documents
    pd.DataFrame({"text": texts}).to_csv(docs, index=False)
    build_index(docs, "text", model=tiny_model, root=tmp_path / "r", flow=True)
    index = open_path(tmp_path / "r" / "default")
    info = index.meta.flow
    assert info is not None and index.meta.whitening is None
    assert info.fitted_on == 32 and index.meta.search_dim == info.dim
    flow = load_transform(index)
    assert isinstance(flow, EmbeddingFlow)
    raw = np.load(index.file("embeddings"))
    assert np.allclose(index.embeddings, flow.apply(raw), atol=1e-5)
    monkeypatch.setenv("SIMSEARCH_ONNX", "0")  # here: the torch query encoder
    q = encode_queries(index, [texts[5]])
    assert q.shape == (1, info.dim)
    assert int(np.argmax(index.embeddings @ q[0])) == 5
    assert float((index.embeddings @ q[0])[5]) == pytest.approx(1.0, abs=1e-4)
    # The ONNX query path (the index made the export) applies the flow without torch.
    monkeypatch.delenv("SIMSEARCH_ONNX")
    code = (
        "import json, sys\n"
        "from simsearch.store.index import open_path\n"
        "from simsearch.search import encode_queries\n"
        f"q = encode_queries(open_path({str(index.path)!r}), [{texts[5]!r}])\n"
        "print(json.dumps({'torch': 'torch' in sys.modules, 'q': q[0].tolist()}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=cli_env(), timeout=120
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["torch"] is False
    np.testing.assert_allclose(np.array(out["q"]), q[0], atol=1e-4)


def test_index_flow_and_whiten_exclude_each_other(tiny_model, tmp_path):
    from conftest import run_cli

    docs = tmp_path / "docs.csv"
    pd.DataFrame({"text": TEXTS}).to_csv(docs, index=False)
    done = run_cli("index", str(docs), "-c", "text", "-m", tiny_model, "--index",
                   str(tmp_path / "r"), "--flow", "--whiten", cwd=tmp_path)
    assert done.returncode == 2 and "--flow" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "r" / "default" / "meta.json").exists()


@pytest.mark.slow
def test_inspect_flow_diagnoses_each_source_after_the_flow(tiny_model, tmp_path):
    from simsearch.science.anisotropy import InspectOptions, inspect_sources

    texts = tmp_path / "texts.csv"
    pd.DataFrame({"text": [f"{t} {i}" for i in range(6) for t in TEXTS]}).to_csv(
        texts, index=False
    )
    options = InspectOptions(texts=texts, sample=48, flow=True, plot=tmp_path / "s.png")
    diagnostics, plot = inspect_sources([], [tiny_model], options)
    assert [d.name.endswith("+flow") for d in diagnostics] == [False, True]
    raw, flowed = diagnostics
    assert flowed.n == raw.n == 48
    assert abs(flowed.mean_cosine) < raw.mean_cosine  # the cone is gone
    assert plot.is_file()
