"""Fine-tuning a cross-encoder reranker (``simsearch train --method cross-encoder``).

A cross-encoder reads both texts of a pair at once and outputs one score (Nogueira & Cho
2019, arXiv:1901.04085; sentence-transformers' ``CrossEncoder``): slower than comparing
embeddings, so it reranks a first stage's top hits (``--rerank``). It is trained here as
in sentence-transformers' STS cross-encoder example: one output, sigmoid, binary
cross-entropy (``BinaryCrossEntropyLoss``) on targets in ``[0, 1]``:

* scored pairs (KorSTS: ``sentence1``, ``sentence2``, ``score`` from 0 to 5): the score
  divided by the file's largest score (5 for KorSTS);
* NLI pairs (KorNLI: premise, hypothesis, ``gold_label``): entailment 1, neutral 0.5,
  contradiction 0 (how close the hypothesis is to the premise, as a reranker reads it).

The saved directory loads with ``CrossEncoder(DIR)`` and ``--rerank DIR``. torch and
sentence-transformers are imported inside the functions.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from simsearch.errors import SimsearchError
from simsearch.science.training import trainer as shared
from simsearch.science.training.config import TrainConfig, TrainResult

#: The method's name in ``simsearch train --method``.
METHOD = "cross-encoder"
#: Targets of the NLI labels (ids 0 entailment, 1 neutral, 2 contradiction).
NLI_TARGETS = (1.0, 0.5, 0.0)


def read_cross_pairs(paths: Sequence[Path], spec: Any) -> tuple[pd.DataFrame, str]:
    """The (``sentence1``, ``sentence2``, ``label`` in [0, 1]) pairs of ``paths``: scored
    pairs when a file has the ``spec.score`` column, else NLI pairs (``spec.anchor``,
    ``spec.positive`` and the label column, ``gold_label`` by default).

    Args:
        spec: :class:`~simsearch.science.training.config.TrainData` (column names).

    Returns:
        ``(pairs, a description for the card)``.

    Raises:
        SimsearchError: unreadable files, missing columns, no usable pair, or a score
            column with no positive score.
    """
    from simsearch.science.training.nli_classifier import read_nli_pairs
    from simsearch.tables.labeled import read_sts_pairs, read_table

    frames, kinds = [], []
    for path in paths:
        if spec.score in read_table(path).columns:
            pairs = read_sts_pairs(path, spec.text1, spec.text2, spec.score)
            top = float(pairs["score"].max())
            if top <= 0:
                raise SimsearchError(f"{path}: no positive score in column {spec.score!r}")
            pairs["label"] = (pairs.pop("score") / top).clip(0.0, 1.0)
            kinds.append(f"{path.name} (scores / {top:g})")
        else:
            label = None if spec.label_column == "label" else spec.label_column
            pairs = read_nli_pairs([path], spec.anchor, spec.positive, label)
            pairs["label"] = pairs["label"].map(dict(enumerate(NLI_TARGETS)))
            kinds.append(f"{path.name} (NLI labels)")
        frames.append(pairs[["sentence1", "sentence2", "label"]])
    out = pd.concat(frames, ignore_index=True).astype({"label": float})
    return out, ", ".join(kinds)


def dev_spearman(model: Any, dev: pd.DataFrame | None, batch_size: int = 64) -> float | None:
    """Spearman x 100 of the cross-encoder's scores of the ``dev`` pairs against their
    gold scores; None without ``dev``."""
    if dev is None:
        return None
    from scipy.stats import spearmanr

    pairs = [[a, b] for a, b in zip(dev["sentence1"], dev["sentence2"], strict=True)]
    scores = np.asarray(model.predict(pairs, batch_size=batch_size, show_progress_bar=False))
    return round(100.0 * float(spearmanr(scores.reshape(len(pairs), -1)[:, 0],
                                         dev["score"]).statistic), 2)


def train_cross_encoder(
    base_model: str | Any,
    data: pd.DataFrame,
    output_dir: Path | str,
    config: TrainConfig,
    *,
    dev: pd.DataFrame | None = None,
    labels: tuple[str, str | None] = ("", None),
) -> TrainResult:
    """Fine-tune a one-output ``CrossEncoder`` from ``base_model`` on ``data`` and save it.

    Args:
        base_model: a hub id or directory of a transformer (a new one-output head is
            added when it has none), or a loaded ``CrossEncoder``.
        data: :func:`read_cross_pairs` output.
        output_dir: where the model is saved (``--rerank`` loads it).
        config: the schedule (:class:`TrainConfig`, method ``cross-encoder``).
        dev: scored pairs; the Spearman x 100 of the model's scores is measured before
            and after training.
        labels: (description of the data, of the base model) for the card.

    Returns:
        TrainResult (also written to ``output_dir/simsearch_card.json``).

    Raises:
        SimsearchError: the base model does not load, or no training pair.
    """
    from datasets import Dataset
    from sentence_transformers.cross_encoder import (
        CrossEncoder,
        CrossEncoderTrainer,
        CrossEncoderTrainingArguments,
    )
    from sentence_transformers.cross_encoder.losses import BinaryCrossEntropyLoss
    from transformers import set_seed

    if len(data) == 0:
        raise SimsearchError("no training pair for the cross-encoder")
    set_seed(config.seed)
    output_dir = Path(output_dir)
    model = base_model
    if isinstance(base_model, str):
        try:
            model = CrossEncoder(base_model, num_labels=1, max_length=config.max_seq_length,
                                 device="cpu" if shared.use_cpu() else None)
        except Exception as exc:  # noqa: BLE001 - hub, files and config errors alike
            reason = " ".join(str(exc).split())[:200] or type(exc).__name__
            raise SimsearchError(f"cannot load {base_model} as a cross-encoder: {reason}") from None
    batch_size, lr = config.schedule()
    before = dev_spearman(model, dev)
    args = CrossEncoderTrainingArguments(
        **shared._common(config, output_dir, batch_size, lr), eval_strategy="no"
    )
    dataset = Dataset.from_pandas(data[["sentence1", "sentence2", "label"]], preserve_index=False)
    trainer = CrossEncoderTrainer(
        model=model, args=args, train_dataset=dataset, loss=BinaryCrossEntropyLoss(model)
    )
    steps, _loss, seconds = shared.run(trainer)
    after = dev_spearman(model, dev)
    output_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(output_dir))
    _drop_empty(output_dir / "checkpoints")
    result = TrainResult(
        output_dir=str(output_dir), base_model=shared.base_label(base_model, labels),
        method=METHOD, data=labels[0], examples=len(data), epochs=config.epochs,
        batch_size=batch_size, lr=lr, max_seq_length=config.max_seq_length, seed=config.seed,
        steps=steps, train_seconds=round(seconds, 1), dev_before=before, dev_after=after,
        extra={"loss": "BinaryCrossEntropyLoss", "use": f"--rerank {output_dir}"},
    )
    shared.write_card(result)
    return result


def _drop_empty(directory: Path) -> None:
    if directory.is_dir() and not any(directory.iterdir()):
        directory.rmdir()
