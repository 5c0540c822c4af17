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

from pathlib import Path
from typing import Any

import pandas as pd

from simsearch.errors import InvalidParameter, SimsearchError
from simsearch.science.training import trainer as shared
from simsearch.science.training.config import METHODS, TrainConfig, TrainResult


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
        raise InvalidParameter("sts_loss", f"Unknown {{name}} {sts_loss!r}: use cosent or cosine.")
    if method == "triplet":
        return losses.BatchSemiHardTripletLoss(model)
    raise SimsearchError(f"Unknown method {method!r}: choose one of {', '.join(METHODS)}.")


def _sampler(method: str) -> Any:
    from sentence_transformers.base.sampler import BatchSamplers

    if method in ("simcse", "nli"):
        # Duplicate texts in a batch would be false in-batch negatives.
        return BatchSamplers.NO_DUPLICATES
    if method == "triplet":
        return BatchSamplers.GROUP_BY_LABEL
    return BatchSamplers.BATCH_SAMPLER


def train_contrastive(
    base_model: str | Any,
    data: pd.DataFrame | list[str],
    output_dir: Path | str,
    config: TrainConfig,
    *,
    dev: pd.DataFrame | None = None,
    labels: tuple[str, str | None] = ("", None),
) -> TrainResult:
    """Fine-tune ``base_model`` with one of :data:`METHODS` and save it to ``output_dir``
    (arguments as :func:`simsearch.science.training.core.train`).

    Raises:
        SimsearchError: bad method/data, batch size too small for the loss.
    """
    from transformers import set_seed

    from simsearch.encoding.sbert import load_model

    method = config.method
    batch_size, lr = config.schedule()
    set_seed(config.seed)
    model = load_model(base_model)
    model.max_seq_length = config.max_seq_length
    dataset = build_dataset(method, data)
    loss = build_loss(method, model, config.sts_loss)
    output_dir = Path(output_dir)
    before = shared.dev_spearman(model, dev)
    args = shared.arguments(
        config, output_dir / "checkpoints", batch_size, lr,
        batch_sampler=_sampler(method), dataloader_drop_last=method == "triplet",
    )
    trainer = shared.st_trainer(model=model, args=args, train_dataset=dataset, loss=loss)
    steps, train_loss, seconds = shared.run(trainer, config.on_progress)
    after = shared.dev_spearman(model, dev)
    shared.save_model(model, output_dir)
    result = TrainResult(
        output_dir=str(output_dir),
        base_model=shared.base_label(base_model, labels),
        method=method + (f" ({config.sts_loss})" if method == "sts" else ""),
        data=labels[0],
        examples=len(dataset),
        epochs=config.epochs,
        batch_size=batch_size,
        lr=lr,
        max_seq_length=config.max_seq_length,
        seed=config.seed,
        steps=steps,
        train_seconds=round(seconds, 1),
        dev_before=before,
        dev_after=after,
        extra={"train_loss": round(train_loss, 4)},
    )
    shared.write_card(result)
    return result
