"""Fine-tuning sentence-embedding models with the sentence-transformers trainer.

Methods (``method=``), all trained with :class:`SentenceTransformerTrainer`:

- ``simcse``: unsupervised SimCSE (Gao et al. 2021, arXiv:2104.08821). Each sentence is its
  own positive; the two forward passes see different dropout masks; the other sentences in
  the batch are negatives. Loss: ``MultipleNegativesRankingLoss(scale=20)`` = temperature 0.05.
- ``nli``: supervised SimCSE: (anchor, entailment, contradiction) triplets, same loss with the
  contradiction as a hard negative.
- ``sts``: scored pairs, ``CoSENTLoss`` (Su 2022) or ``CosineSimilarityLoss`` (Reimers &
  Gurevych 2019); scores are rescaled to [0, 1] by the maximum score.
- ``triplet``: texts with a class, ``BatchSemiHardTripletLoss`` (Schroff et al. 2015, FaceNet)
  with batches grouped by label so each batch holds positives.

The output directory is a normal SentenceTransformer directory (usable as ``--model``) plus
``simsearch_card.json`` and ``SIMSEARCH_CARD.md`` recording base model, method, data and the
dev scores before and after.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from simsearch.errors import SimsearchError

METHODS = ("simcse", "nli", "sts", "triplet")

# Starting points: SimCSE paper (unsup: lr 3e-5, batch 64; sup: lr 5e-5) and the
# sentence-transformers STS example (batch 16). Smaller CPU batches for nli than the paper's 512.
DEFAULTS: dict[str, dict[str, float]] = {
    "simcse": {"lr": 3e-5, "batch_size": 64},
    "nli": {"lr": 5e-5, "batch_size": 64},
    "sts": {"lr": 2e-5, "batch_size": 16},
    "triplet": {"lr": 2e-5, "batch_size": 32},
}


@dataclass
class TrainResult:
    """What a training run produced. Scores are Spearman x 100 on the dev pairs (None: no dev)."""

    output_dir: str
    base_model: str
    method: str
    data: str
    examples: int
    epochs: float
    batch_size: int
    lr: float
    max_seq_length: int
    seed: int
    steps: int
    train_seconds: float
    dev_before: float | None = None
    dev_after: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def build_dataset(method: str, data: pd.DataFrame | list[str]) -> Any:
    """Turn reader output into the ``datasets.Dataset`` layout each loss expects.

    - simcse: ``list[str]`` (or DataFrame with ``text``) -> columns anchor, positive (same text)
    - nli: DataFrame anchor, positive, negative -> same columns
    - sts: DataFrame sentence1, sentence2, score -> sentence1, sentence2, score in [0, 1]
    - triplet: DataFrame text, label (int) -> same columns

    Raises:
        SimsearchError: unknown method or too little data.
    """
    from datasets import Dataset

    if method == "simcse":
        texts = list(data["text"]) if isinstance(data, pd.DataFrame) else list(data)
        if len(texts) < 2:
            raise SimsearchError("SimCSE needs at least 2 texts (in-batch negatives).")
        return Dataset.from_dict({"anchor": texts, "positive": texts})
    if not isinstance(data, pd.DataFrame) or data.empty:
        raise SimsearchError(f"Method {method!r} needs a non-empty table of examples.")
    if method == "nli":
        return Dataset.from_pandas(data[["anchor", "positive", "negative"]], preserve_index=False)
    if method == "sts":
        top = float(data["score"].max())
        if top <= 0:
            raise SimsearchError("STS scores must have a positive maximum (e.g. 0-5 or 0-1).")
        scaled = data[["sentence1", "sentence2"]].assign(score=data["score"] / top)
        return Dataset.from_pandas(scaled, preserve_index=False)
    if method == "triplet":
        return Dataset.from_pandas(data[["text", "label"]], preserve_index=False)
    raise SimsearchError(f"Unknown method {method!r}: choose one of {', '.join(METHODS)}.")


def build_loss(method: str, model: Any, sts_loss: str = "cosent") -> Any:
    """The sentence-transformers loss for a method (see the module docstring)."""
    from sentence_transformers.sentence_transformer import losses

    if method in ("simcse", "nli"):
        return losses.MultipleNegativesRankingLoss(model, scale=20.0)  # temperature 0.05
    if method == "sts":
        if sts_loss == "cosent":
            return losses.CoSENTLoss(model)
        if sts_loss == "cosine":
            return losses.CosineSimilarityLoss(model)
        raise SimsearchError(f"Unknown --sts-loss {sts_loss!r}: use cosent or cosine.")
    if method == "triplet":
        return losses.BatchSemiHardTripletLoss(model)
    raise SimsearchError(f"Unknown method {method!r}: choose one of {', '.join(METHODS)}.")


def _dev_spearman(model: Any, dev: pd.DataFrame | None, batch_size: int) -> float | None:
    if dev is None:
        return None
    from simsearch.evaluation import embed_sts_pairs, sts_correlations

    model.eval()
    emb = embed_sts_pairs(model, dev, batch_size=batch_size)
    return round(sts_correlations(emb.cosine, emb.scores)[0], 2)


def train_model(
    base_model: str | Any,
    method: str,
    data: pd.DataFrame | list[str],
    output_dir: Path | str,
    dev: pd.DataFrame | None = None,
    epochs: float = 1.0,
    batch_size: int | None = None,
    lr: float | None = None,
    max_seq_length: int = 128,
    seed: int = 42,
    max_steps: int | None = None,
    warmup_ratio: float = 0.1,
    sts_loss: str = "cosent",
    show_progress: bool = True,
    data_label: str = "",
    base_label: str | None = None,
) -> TrainResult:
    """Fine-tune ``base_model`` with ``method`` on ``data`` and save it to ``output_dir``.

    Args:
        base_model: hub id / local directory, or a loaded SentenceTransformer.
        method: one of ``simcse``, ``nli``, ``sts``, ``triplet``.
        data: reader output (see :func:`build_dataset`).
        dev: optional scored pairs (sentence1, sentence2, score); Spearman x 100 of cosine
            similarity is measured before and after training.
        epochs, batch_size, lr: training schedule (None: the method's default, ``DEFAULTS``).
        max_seq_length: tokens kept per text (longer texts are truncated).
        seed: seeds Python, NumPy, torch and the data order (transformers ``set_seed``).
        max_steps: stop after this many optimiser steps (overrides epochs; tests use it).

    Returns:
        TrainResult (also written to ``output_dir/simsearch_card.json``).

    Raises:
        SimsearchError: bad method/data, batch size too small for the loss.
    """
    from sentence_transformers import (
        SentenceTransformerTrainer,
        SentenceTransformerTrainingArguments,
    )
    from sentence_transformers.base.sampler import BatchSamplers
    from transformers import set_seed

    from simsearch._compat import load_model

    if method not in METHODS:
        raise SimsearchError(f"Unknown method {method!r}: choose one of {', '.join(METHODS)}.")
    batch_size = int(batch_size or DEFAULTS[method]["batch_size"])
    lr = float(lr or DEFAULTS[method]["lr"])
    if batch_size < 2:
        raise SimsearchError("--batch-size must be at least 2 (the losses compare batch items).")
    set_seed(seed)
    model = load_model(base_model) if isinstance(base_model, str) else base_model
    model.max_seq_length = max_seq_length
    dataset = build_dataset(method, data)
    loss = build_loss(method, model, sts_loss)
    output_dir = Path(output_dir)
    before = _dev_spearman(model, dev, batch_size=64)

    sampler = BatchSamplers.BATCH_SAMPLER
    if method in ("simcse", "nli"):
        # Duplicate texts in a batch would be false in-batch negatives.
        sampler = BatchSamplers.NO_DUPLICATES
    elif method == "triplet":
        sampler = BatchSamplers.GROUP_BY_LABEL
    args = SentenceTransformerTrainingArguments(
        output_dir=str(output_dir / "checkpoints"),
        num_train_epochs=epochs,
        max_steps=max_steps if max_steps else -1,
        per_device_train_batch_size=batch_size,
        learning_rate=lr,
        warmup_steps=warmup_ratio,  # a float < 1 is a ratio of all steps in transformers v5
        seed=seed,
        data_seed=seed,
        batch_sampler=sampler,
        eval_strategy="no",
        save_strategy="no",
        report_to="none",
        logging_steps=50,
        disable_tqdm=not show_progress,
        use_cpu=os.environ.get("SIMSEARCH_DEVICE", "cpu") == "cpu",
        dataloader_drop_last=method == "triplet",
    )
    trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=dataset, loss=loss)
    start = time.perf_counter()
    state = trainer.train()
    seconds = time.perf_counter() - start
    after = _dev_spearman(model, dev, batch_size=64)
    output_dir.mkdir(parents=True, exist_ok=True)
    model.save(str(output_dir))
    checkpoints = output_dir / "checkpoints"
    if checkpoints.is_dir() and not any(checkpoints.iterdir()):
        checkpoints.rmdir()  # save_strategy="no" leaves the trainer's output_dir empty
    result = TrainResult(
        output_dir=str(output_dir),
        base_model=base_label or (base_model if isinstance(base_model, str) else "model"),
        method=method + (f" ({sts_loss})" if method == "sts" else ""),
        data=data_label,
        examples=len(dataset),
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        max_seq_length=max_seq_length,
        seed=seed,
        steps=int(state.global_step),
        train_seconds=round(seconds, 1),
        dev_before=before,
        dev_after=after,
        extra={"train_loss": round(float(state.training_loss), 4)},
    )
    write_card(result)
    return result


def write_card(result: TrainResult) -> None:
    """Write ``simsearch_card.json`` and a short human-readable ``SIMSEARCH_CARD.md``."""
    out = Path(result.output_dir)
    (out / "simsearch_card.json").write_text(json.dumps(asdict(result), indent=2), "utf-8")
    dev = (
        f"dev Spearman x100: {result.dev_before} before -> {result.dev_after} after"
        if result.dev_after is not None
        else "no dev evaluation"
    )
    lines = [
        "# simsearch fine-tuned model",
        "",
        f"- base model: {result.base_model}",
        f"- method: {result.method}",
        f"- data: {result.data} ({result.examples} examples)",
        f"- schedule: {result.epochs} epoch(s), {result.steps} steps, batch {result.batch_size}, "
        f"lr {result.lr}, max_seq_length {result.max_seq_length}, seed {result.seed}",
        f"- training time: {result.train_seconds} s",
        f"- {dev}",
        "",
        "Use it with `simsearch index ... --model " + str(out) + "`.",
    ]
    (out / "SIMSEARCH_CARD.md").write_text("\n".join(lines) + "\n", "utf-8")


def read_card(model_dir: Path | str) -> dict[str, Any] | None:
    """The ``simsearch_card.json`` of a trained model directory, or None if absent."""
    path = Path(model_dir) / "simsearch_card.json"
    return json.loads(path.read_text("utf-8")) if path.is_file() else None
