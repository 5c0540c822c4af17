"""Shared helpers for the science tests: a tiny SentenceTransformer and the shared data path."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

SHARED = (Path(__file__).resolve().parents[1] / ".." / "shared" / "data").resolve()

WORDS = [
    "cat",
    "dog",
    "bird",
    "fish",
    "car",
    "bus",
    "train",
    "plane",
    "red",
    "blue",
    "green",
    "small",
    "big",
    "fast",
    "slow",
    "eats",
    "runs",
    "flies",
    "swims",
    "the",
    "a",
    "is",
    "on",
    "in",
    "park",
    "road",
    "sky",
    "sea",
    "happy",
    "sad",
    "man",
    "woman",
    "child",
    "plays",
    "sings",
]


def shared_file(*parts: str) -> Path:
    """A file of the shared data set, or skip the test when the checkout has none."""
    path = SHARED.joinpath(*parts)
    if not path.is_file():
        pytest.skip(f"shared data {path} absent (expected ../shared/data beside the checkout)")
    return path


def build_tiny_model(directory: Path) -> Path:
    """Save a randomly initialised 2-layer, 32-dim BERT SentenceTransformer (mean pooling)
    with a word-level vocabulary of :data:`WORDS` to ``directory``; returns it."""
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling, Transformer
    from transformers import BertConfig, BertModel, BertTokenizerFast

    torch.manual_seed(0)
    hf_dir = directory / "hf"
    hf_dir.mkdir(parents=True)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS, *"abcdefghijklmnopqrstuvwxyz"]
    (hf_dir / "vocab.txt").write_text("\n".join(vocab) + "\n", "utf-8")
    vocab_file = str(hf_dir / "vocab.txt")
    try:  # transformers >= 5 takes `vocab`; 4.x took `vocab_file` (5.x ignores it: all [UNK])
        tokenizer = BertTokenizerFast(vocab=vocab_file)
    except TypeError:  # pragma: no cover - transformers 4.x
        tokenizer = BertTokenizerFast(vocab_file=vocab_file)
    assert "[UNK]" not in tokenizer.tokenize("the cat plays on a road")
    tokenizer.save_pretrained(hf_dir)
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
    )
    BertModel(config).save_pretrained(hf_dir)
    transformer = Transformer(str(hf_dir), max_seq_length=32)
    pooling = Pooling(transformer.get_embedding_dimension(), "mean")
    model = SentenceTransformer(modules=[transformer, pooling], device="cpu")
    out = directory / "st"
    model.save(str(out))
    return out


def random_sentences(n: int, seed: int = 0) -> list[str]:
    """``n`` distinct short sentences over :data:`WORDS`."""
    rng = random.Random(seed)
    seen: dict[str, None] = {}
    while len(seen) < n:
        seen.setdefault(" ".join(rng.choices(WORDS, k=rng.randint(3, 7))), None)
    return list(seen)
