"""The default model's architecture, end to end: a tiny RoBERTa of the shape of
``jhgan/ko-sroberta-multitask`` through ``index``, ``query`` (torch and ONNX),
``--whiten`` and ``eval``.

ko-sroberta-multitask is ``klue/roberta-base`` fine-tuned SBERT-style: a ``RobertaModel``
whose position ids start after the padding index (``padding_idx=1``,
``max_position_embeddings = 512 + 2``), a WordPiece ``BertTokenizer`` vocabulary with
klue's special-token ids (``[CLS]=0 [PAD]=1 [SEP]=2 [UNK]=3``), ``token_type_ids`` from the
BERT tokenizer fed to a model with one token type, ``max_seq_length`` 128, mean pooling and
no Normalize module, saved in the sentence-transformers 2.x layout of the hub. The tiny
model below has all of that, with 2 layers of 32 dims, random weights fixed by a seed and
a WordPiece vocabulary trained here on the sample patents, so that Korean words tokenize
to real word pieces rather than ``[UNK]``. Its ``max_position_embeddings`` is 128 + 2, so
a text that were not truncated at 128 tokens would fail in the embedding lookup.

What breaks first with such a model in an ONNX export is the position ids (computed from
``input_ids != padding_idx``) and ``token_type_ids``: these tests compare the ONNX path
with sentence-transformers on padded batches and on the command line.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import require
from typer.testing import CliRunner

from simsearch.cli import app

pytestmark = [pytest.mark.extra, pytest.mark.slow]
require("onnxruntime", "onnx")
require("onnx", "onnx")

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "data" / "patents.xlsx"
MAX_SEQ_LENGTH = 128
PAD_ID = 1  # klue/roberta-base: [CLS]=0 [PAD]=1 [SEP]=2 [UNK]=3 [MASK]=4
SPECIALS = ["[CLS]", "[PAD]", "[SEP]", "[UNK]", "[MASK]"]
QUERY_ROWS = [0, 5, 29, 58, 99, 119]  # queries that are documents' own abstracts


def _hangul_syllables() -> list[str]:
    """The 2,350 Hangul syllables of KS X 1001 (every syllable EUC-KR encodes)."""
    syllables = []
    for high in range(0xB0, 0xC9):
        for low in range(0xA1, 0xFF):
            try:
                syllables.append(bytes([high, low]).decode("euc-kr"))
            except UnicodeDecodeError:
                continue
    return syllables


def build_tiny_roberta(directory: Path, corpus: list[str]) -> Path:
    """Save a 2-layer, 32-dim RoBERTa SentenceTransformer shaped like
    jhgan/ko-sroberta-multitask into ``directory`` (see the module doc) and return it."""
    import torch
    from tokenizers import BertWordPieceTokenizer
    from transformers import BertTokenizerFast, RobertaConfig, RobertaModel

    directory.mkdir(parents=True, exist_ok=True)
    wordpiece = BertWordPieceTokenizer(lowercase=False, strip_accents=False)
    wordpiece.train_from_iterator(
        corpus, vocab_size=2000, special_tokens=SPECIALS, show_progress=False
    )
    vocab = sorted(wordpiece.get_vocab().items(), key=lambda item: item[1])
    tokens = [token for token, _ in vocab]
    # Every common syllable, alone and as a continuation piece: a word outside the
    # corpus still splits into syllables, as klue's vocabulary allows, never into [UNK].
    known = set(tokens)
    syllables = _hangul_syllables()
    tokens += [t for t in syllables + ["##" + s for s in syllables] if t not in known]
    (directory / "vocab.txt").write_text("\n".join(tokens) + "\n", encoding="utf-8")
    tokenizer = BertTokenizerFast(
        vocab=str(directory / "vocab.txt"),
        do_lower_case=False,
        bos_token="[CLS]",
        eos_token="[SEP]",
        model_max_length=512,
    )
    assert tokenizer.pad_token_id == PAD_ID and tokenizer.cls_token_id == 0
    config = RobertaConfig(
        vocab_size=len(tokens),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=MAX_SEQ_LENGTH + PAD_ID + 1,
        type_vocab_size=1,
        pad_token_id=PAD_ID,
        bos_token_id=0,
        eos_token_id=2,
        layer_norm_eps=1e-5,
    )
    torch.manual_seed(0)
    RobertaModel(config, add_pooling_layer=False).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    # The sentence-transformers 2.x files of the hub model (transformer at the root).
    kinds = "sentence_transformers.models"
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": f"{kinds}.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": f"{kinds}.Pooling"},
    ]
    pooling = {
        "word_embedding_dimension": config.hidden_size,
        "pooling_mode_cls_token": False,
        "pooling_mode_mean_tokens": True,
        "pooling_mode_max_tokens": False,
        "pooling_mode_mean_sqrt_len_tokens": False,
    }
    files = {
        "modules.json": modules,
        "sentence_bert_config.json": {"max_seq_length": MAX_SEQ_LENGTH, "do_lower_case": False},
        "config_sentence_transformers.json": {"__version__": {"sentence_transformers": "2.0.0"}},
        "1_Pooling/config.json": pooling,
    }
    for name, content in files.items():
        (directory / name).parent.mkdir(exist_ok=True)
        (directory / name).write_text(json.dumps(content, indent=2), encoding="utf-8")
    return directory


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """torch on one thread while this module runs: a 32-dim model gains nothing from more,
    and on a busy 2-core machine two threads waiting on each other made every encode of
    the sample abstracts 20x slower (6.6 s against 0.25 s)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def patents() -> pd.DataFrame:
    return pd.read_excel(SAMPLE)


@pytest.fixture(scope="module")
def tiny_roberta(tmp_path_factory, patents) -> str:
    corpus = patents["title"].dropna().tolist() + patents["abstract"].dropna().tolist()
    return str(build_tiny_roberta(tmp_path_factory.mktemp("tiny-roberta") / "model", corpus))


@pytest.fixture(scope="module")
def work(tmp_path_factory, tiny_roberta) -> Path:
    """A directory holding an index of the sample patents' abstracts (``idx/default``),
    built with ``simsearch index`` through the tiny RoBERTa."""
    cwd = tmp_path_factory.mktemp("roberta-work")
    args = ["index", str(SAMPLE), "-c", "abstract", "-m", tiny_roberta, "--index", "idx", "-q",
            "--chunking", "none"]  # one vector per row: the rankings below are pinned per row
    result = cli(cwd, *args)
    assert result.exit_code == 0, result.output
    assert "Indexed 120 documents x 32 dims" in result.stderr
    assert "1 empty document kept" in result.stderr
    return cwd


def cli(cwd: Path, *args: str, env: dict[str, str] | None = None):
    """``simsearch ARGS`` in ``cwd`` through the Typer app (one process: torch loads once)."""
    import os

    old = Path.cwd()
    os.chdir(cwd)
    try:
        return CliRunner().invoke(app, list(args), env={"COLUMNS": "200", **(env or {})})
    finally:
        os.chdir(old)


def query_json(cwd: Path, queries: list[str], *extra: str, onnx: bool) -> list[dict]:
    (cwd / "queries.txt").write_text("\n".join(queries) + "\n", encoding="utf-8")
    env = {"SIMSEARCH_ONNX": "1" if onnx else "0"}
    args = ["query", "--file", "queries.txt", "--k", "5", "-f", "json", "--index", "idx", *extra]
    result = cli(cwd, *args, env=env)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_the_tiny_model_has_the_shape_of_ko_sroberta(tiny_roberta):
    from simsearch.encoding.sbert import load_model

    st = load_model(tiny_roberta, "cpu")
    assert [type(m).__name__ for m in st] == ["Transformer", "Pooling"]  # no Normalize
    assert st[1].get_config_dict()["pooling_mode"] in ("mean", ["mean"])
    assert st.max_seq_length == MAX_SEQ_LENGTH
    hf = st[0].auto_model
    assert type(hf).__name__ == "RobertaModel"
    assert hf.embeddings.padding_idx == PAD_ID
    assert hf.config.max_position_embeddings == MAX_SEQ_LENGTH + 2
    tokenizer = st.tokenizer
    assert type(tokenizer).__name__.startswith("BertTokenizer")
    assert "token_type_ids" in tokenizer.model_input_names
    pieces = tokenizer.tokenize("리튬 이차전지용 음극재의 콘크리트 균열을 춤추듯 보수한다")
    assert "[UNK]" not in pieces and len(pieces) >= 6
    assert any(p.startswith("##") for p in pieces)  # real WordPiece continuation pieces


def test_onnx_export_equals_sentence_transformers_on_padded_batches(work, tiny_roberta, patents):
    from simsearch.encoding import onnx as onnx_encoder
    from simsearch.encoding.sbert import encode, load_model

    texts = patents["abstract"].dropna().tolist()[:30]
    texts += ["리튬", "콘크리트 균열 보수", "A man plays a guitar.", "양파를 자른다. " * 60]
    reference = encode(load_model(tiny_roberta, "cpu"), texts, batch_size=7)
    directory = onnx_encoder.export(tiny_roberta, work / "idx")  # the one `index` made
    config = json.loads((directory / onnx_encoder.CONFIG).read_text(encoding="utf-8"))
    assert config["pad_id"] == PAD_ID and config["pooling"] == "mean"
    assert config["max_seq_length"] == MAX_SEQ_LENGTH and "token_type_ids" in config["inputs"]
    encoder = onnx_encoder.OnnxEncoder(directory)
    # Batches of 7 (sorted by length) still pad: a 2-token text shares one with abstracts.
    vectors = encoder.encode(texts, batch_size=7)
    assert vectors.shape == (len(texts), 32) and vectors.dtype == np.float32
    assert np.isfinite(vectors).all()
    np.testing.assert_allclose(vectors, reference, atol=1e-5)
    # One at a time (no padding) gives the same vectors as in padded batches.
    alone = np.vstack([encoder.encode([t]) for t in texts[-4:]])
    np.testing.assert_allclose(alone, vectors[-4:], atol=1e-5)
    assert encoder.count_truncated(texts) >= 1


def test_query_on_torch_and_onnx_gives_the_same_top_k(work, tiny_roberta, patents):
    from simsearch.encoding import onnx as onnx_encoder
    from simsearch.encoding.encoders import query_encoder
    from simsearch.store.index import load_index

    index = load_index(work / "idx")
    assert index.embeddings.shape == (120, 32) and np.isfinite(index.embeddings).all()
    assert onnx_encoder.has_export(work / "idx", tiny_roberta)  # made by `index`
    assert query_encoder(index).backend == "onnx"
    queries = [patents["abstract"][i] for i in QUERY_ROWS] + ["콘크리트 균열 보수", "배터리 음극재"]
    # Dense mode: this test pins the cosine ranking (hybrid adds BM25 on top).
    fast = query_json(work, queries, "--mode", "dense", onnx=True)
    slow = query_json(work, queries, "--mode", "dense", onnx=False)
    assert len(fast) == len(slow) == 5 * len(queries)
    assert [(h["query_index"], h["row"]) for h in fast] == [
        (h["query_index"], h["row"]) for h in slow
    ]
    np.testing.assert_allclose(
        [h["similarity"] for h in fast], [h["similarity"] for h in slow], atol=1e-4
    )
    # A document's own abstract finds that document first, at cosine similarity 1.
    firsts = [h for h in fast if h["rank"] == 1]
    assert [h["row"] for h in firsts[: len(QUERY_ROWS)]] == QUERY_ROWS
    assert all(h["similarity"] == pytest.approx(1, abs=1e-4) for h in firsts[: len(QUERY_ROWS)])
    # The similarities are the cosines against the cached matrix, ranked as by brute force.
    vectors = query_encoder(index).encode(queries)
    cosines = vectors @ index.embeddings.T
    for q in range(len(queries)):
        hits = [h for h in fast if h["query_index"] == q]
        order = np.argsort(-cosines[q], kind="stable")[:5]
        assert [h["row"] for h in hits] == order.tolist()
        np.testing.assert_allclose([h["similarity"] for h in hits], cosines[q][order], atol=1e-5)


def test_whitened_index_queries_agree_on_torch_and_onnx(work, tiny_roberta, patents):
    args = ["index", str(SAMPLE), "-c", "abstract", "-m", tiny_roberta, "--index", "idx",
            "--chunking", "none"]
    result = cli(work, *args, "--name", "white", "--whiten", "--whiten-dim", "16", "-q")
    assert result.exit_code == 0, result.output
    from simsearch.store.index import load_index

    white = load_index(work / "idx", "white")
    assert white.embeddings.shape[0] == 120 and np.isfinite(white.embeddings).all()
    queries = [patents["abstract"][i] for i in QUERY_ROWS]
    fast = query_json(work, queries, "--name", "white", onnx=True)
    slow = query_json(work, queries, "--name", "white", onnx=False)
    assert [h["row"] for h in fast] == [h["row"] for h in slow]
    np.testing.assert_allclose(
        [h["similarity"] for h in fast], [h["similarity"] for h in slow], atol=1e-4
    )
    firsts = [h for h in fast if h["rank"] == 1]
    assert [h["row"] for h in firsts] == QUERY_ROWS
    assert all(h["similarity"] == pytest.approx(1, abs=1e-4) for h in firsts)
    # Whitening spreads the crowded cosines: the 5th neighbour is less similar than before.
    plain = query_json(work, queries, onnx=True)
    fifth = [h["similarity"] for h in fast if h["rank"] == 5]
    assert np.mean(fifth) < np.mean([h["similarity"] for h in plain if h["rank"] == 5])


def test_eval_sts_and_retrieval(work, tiny_roberta, patents):
    from scipy.stats import spearmanr

    from simsearch.encoding.sbert import encode, load_model

    rows = patents.dropna(subset=["abstract"]).reset_index(drop=True)
    first = rows["abstract"].str.split(". ", regex=False).str[0]
    # Pairs: a title with its own abstract's first sentence (5), with one of the same
    # topic (2.5), with one of another topic (0).
    pairs = []
    for i in range(0, 60, 3):
        same = rows.index[(rows["topic"] == rows["topic"][i]) & (rows.index != i)][0]
        other = rows.index[rows["topic"] != rows["topic"][i]][i % 10]
        for j, score in ((i, 5.0), (same, 2.5), (other, 0.0)):
            pairs.append({"sentence1": rows["title"][i], "sentence2": first[j], "score": score})
    pd.DataFrame(pairs).to_csv(work / "pairs.csv", index=False)
    result = cli(work, "eval", "pairs.csv", "-m", tiny_roberta, "--format", "json")
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)[0]
    assert record["pairs"] == len(pairs) == 60
    st = load_model(tiny_roberta, "cpu")
    frame = pd.DataFrame(pairs)
    e1 = encode(st, frame["sentence1"].tolist())
    e2 = encode(st, frame["sentence2"].tolist())
    expected = 100 * spearmanr(frame["score"], (e1 * e2).sum(axis=1))[0]
    assert record["spearman"] == pytest.approx(expected, abs=1e-3)
    white = cli(work, "eval", "pairs.csv", "-m", tiny_roberta, "--whiten", "--whiten-dim", "8",
                "--format", "json")  # fmt: skip
    assert white.exit_code == 0, white.output
    whitened = json.loads(white.stdout)[0]
    assert "+whiten(8)" in whitened["model"] and np.isfinite(whitened["spearman"])
    assert -100 <= whitened["spearman"] <= 100
    # Retrieval against the index: each abstract finds its own row first.
    queries = pd.DataFrame({"query": [patents["abstract"][i] for i in QUERY_ROWS],
                            "relevant": [str(i) for i in QUERY_ROWS]})  # fmt: skip
    queries.to_csv(work / "q.csv", index=False)
    retrieval = cli(work, "eval", "q.csv", "--index", "idx", "--format", "json")
    assert retrieval.exit_code == 0, retrieval.output
    metrics = json.loads(retrieval.stdout)
    assert metrics["queries"] == len(QUERY_ROWS) and metrics["recall@1"] == pytest.approx(100)
