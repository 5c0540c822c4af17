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
import random
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from simsearch.errors import InvalidParameter, SimsearchError

METHODS = ("simcse", "nli", "sts", "triplet")
# Trained by their own modules (issue 12): SBERT's softmax objective
# (simsearch.science.training.nli_classifier) and
# domain-adaptive pre-training (simsearch.science.training.pretrain).
ALL_METHODS = (*METHODS, "softmax", "mlm", "tsdae")

# Starting points: SimCSE paper (unsup: lr 3e-5, batch 64; sup: lr 5e-5) and the
# sentence-transformers STS example (batch 16). Smaller CPU batches for nli than the paper's 512.
DEFAULTS: dict[str, dict[str, float]] = {
    "simcse": {"lr": 3e-5, "batch_size": 64},
    "nli": {"lr": 5e-5, "batch_size": 64},
    "sts": {"lr": 2e-5, "batch_size": 16},
    "triplet": {"lr": 2e-5, "batch_size": 32},
    # SBERT (Reimers & Gurevych 2019): batch 16, lr 2e-5; MLM: the BERT/RoBERTa domain-
    # adaptation rate; TSDAE: the paper's lr 3e-5 (its batch 8 doubled for the CPU's sake).
    "softmax": {"lr": 2e-5, "batch_size": 16},
    "mlm": {"lr": 5e-5, "batch_size": 16},
    "tsdae": {"lr": 3e-5, "batch_size": 16},
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
        raise InvalidParameter("sts_loss", f"Unknown {{name}} {sts_loss!r}: use cosent or cosine.")
    if method == "triplet":
        return losses.BatchSemiHardTripletLoss(model)
    raise SimsearchError(f"Unknown method {method!r}: choose one of {', '.join(METHODS)}.")


def _dev_spearman(model: Any, dev: pd.DataFrame | None, batch_size: int) -> float | None:
    if dev is None:
        return None
    from simsearch.science.evaluate import embed_sts_pairs, sts_correlations

    model.eval()
    emb = embed_sts_pairs(model, dev, batch_size=batch_size)
    return round(sts_correlations(emb.cosine, emb.scores)[0], 2)


@dataclass(frozen=True)
class TrainConfig:
    """How to train: the method and its schedule.

    Attributes:
        method: one of ``simcse``, ``nli``, ``sts``, ``triplet``, ``softmax``, ``mlm``,
            ``tsdae``.
        epochs, batch_size, lr: training schedule (None: the method's default, ``DEFAULTS``).
        max_seq_length: tokens kept per text (longer texts are truncated).
        seed: seeds Python, NumPy, torch and the data order (transformers ``set_seed``).
        max_steps: stop after this many optimiser steps (overrides epochs; tests use it).
        warmup_ratio: share of the steps with a linear learning-rate warm-up.
        sts_loss: ``cosent`` or ``cosine`` (method ``sts``).
        show_progress: the trainer's progress bar.
        mlm_probability: share of tokens masked (method ``mlm``).
        deletion_ratio: share of words deleted from the input (method ``tsdae``).
    """

    method: str
    epochs: float = 1.0
    batch_size: int | None = None
    lr: float | None = None
    max_seq_length: int = 128
    seed: int = 42
    max_steps: int | None = None
    warmup_ratio: float = 0.1
    sts_loss: str = "cosent"
    show_progress: bool = True
    mlm_probability: float = 0.15
    deletion_ratio: float = 0.6

    def check(self) -> None:
        """Raises InvalidParameter for an unknown method, epochs <= 0, batch size < 2 or a
        masking/deletion share outside (0, 1)."""
        if self.method not in ALL_METHODS:
            raise InvalidParameter(
                "method",
                f"Unknown {{name}} {self.method!r}: choose one of {', '.join(ALL_METHODS)}.",
            )
        if not 0 < self.mlm_probability < 1:
            raise InvalidParameter("mlm_probability", "{name} must be between 0 and 1.")
        if not 0 <= self.deletion_ratio < 1:
            raise InvalidParameter("deletion_ratio", "{name} must be in [0, 1).")
        if self.epochs <= 0:
            raise InvalidParameter("epochs", "{name} must be positive.")
        if self.batch_size is not None and self.batch_size < 2:
            raise InvalidParameter(
                "batch_size", "{name} must be at least 2 (the losses compare batch items)."
            )


def train_model(
    base_model: str | Any,
    method: str,
    data: pd.DataFrame | list[str],
    output_dir: Path | str,
    dev: pd.DataFrame | None = None,
    *,
    data_label: str = "",
    base_label: str | None = None,
    **schedule: Any,
) -> TrainResult:
    """:func:`train` with the config given as keywords: ``method`` and ``schedule``
    are the fields of :class:`TrainConfig` (``epochs=``, ``batch_size=``, ...)."""
    config = TrainConfig(method, **schedule)
    return train(base_model, data, output_dir, config, dev=dev, labels=(data_label, base_label))


def train(
    base_model: str | Any,
    data: pd.DataFrame | list[str],
    output_dir: Path | str,
    config: TrainConfig,
    *,
    dev: pd.DataFrame | None = None,
    labels: tuple[str, str | None] = ("", None),
) -> TrainResult:
    """Fine-tune ``base_model`` with ``config`` on ``data`` and save it to ``output_dir``.

    Args:
        base_model: hub id / local directory, or a loaded SentenceTransformer.
        data: reader output (see :func:`build_dataset`).
        output_dir: where the trained model is saved.
        config: method and schedule (:class:`TrainConfig`).
        dev: optional scored pairs (sentence1, sentence2, score); Spearman x 100 of cosine
            similarity is measured before and after training.
        labels: (description of the data, of the base model) for the card.

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

    from simsearch.encoding.sbert import load_model

    config.check()
    if config.method not in METHODS:
        return _train_elsewhere(base_model, data, output_dir, config, dev, labels)
    method, seed = config.method, config.seed
    batch_size = int(config.batch_size or DEFAULTS[method]["batch_size"])
    lr = float(config.lr or DEFAULTS[method]["lr"])
    set_seed(seed)
    model = load_model(base_model)
    model.max_seq_length = config.max_seq_length
    dataset = build_dataset(method, data)
    loss = build_loss(method, model, config.sts_loss)
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
        num_train_epochs=config.epochs,
        max_steps=config.max_steps or -1,
        per_device_train_batch_size=batch_size,
        learning_rate=lr,
        warmup_steps=config.warmup_ratio,  # a float < 1 is a ratio of all steps in transformers v5
        seed=seed,
        data_seed=seed,
        batch_sampler=sampler,
        eval_strategy="no",
        save_strategy="no",
        report_to="none",
        logging_steps=50,
        disable_tqdm=not config.show_progress,
        use_cpu=os.environ.get("SIMSEARCH_DEVICE", "cpu") == "cpu",
        dataloader_drop_last=method == "triplet",
    )
    trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=dataset, loss=loss)
    if args.disable_tqdm:  # else the trainer prints its log dicts to stdout (JSON output!)
        from transformers.trainer_callback import PrinterCallback

        trainer.remove_callback(PrinterCallback)
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
        base_model=labels[1] or (base_model if isinstance(base_model, str) else "model"),
        method=method + (f" ({config.sts_loss})" if method == "sts" else ""),
        data=labels[0],
        examples=len(dataset),
        epochs=config.epochs,
        batch_size=batch_size,
        lr=lr,
        max_seq_length=config.max_seq_length,
        seed=seed,
        steps=int(state.global_step),
        train_seconds=round(seconds, 1),
        dev_before=before,
        dev_after=after,
        extra={"train_loss": round(float(state.training_loss), 4)},
    )
    write_card(result)
    return result


def _train_elsewhere(
    base_model: str | Any,
    data: Any,
    output_dir: Path | str,
    config: TrainConfig,
    dev: pd.DataFrame | None,
    labels: tuple[str, str | None],
) -> TrainResult:
    """The methods with their own module: softmax (SBERT NLI), mlm and tsdae (pre-training)."""
    if config.method == "softmax":
        from simsearch.science.training.nli_classifier import train_softmax

        return train_softmax(base_model, data, output_dir, config, dev=dev, labels=labels)
    from simsearch.science.training.pretrain import pretrain

    texts = list(data["text"]) if isinstance(data, pd.DataFrame) else list(data)
    return pretrain(base_model, texts, output_dir, config, dev=dev, labels=labels)


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


# --------------------------------------------------------------------------- from files


@dataclass(frozen=True)
class TrainData:
    """Which files and columns hold the training data (``simsearch train`` options).

    Attributes:
        data: training files; ``index``: an index whose texts feed simcse, mlm or tsdae.
        column: simcse text column(s) / triplet text column; ``label_column``: triplet class.
        text1, text2, score: sts columns; anchor, positive, negative: nli columns.
        max_texts: simcse, mlm, tsdae: sample at most this many unique texts.
    """

    data: Sequence[Path] = ()
    index: Path | None = None
    column: Sequence[str] | None = None
    label_column: str = "label"
    text1: str = "sentence1"
    text2: str = "sentence2"
    score: str = "score"
    anchor: str = "sentence1"
    positive: str = "sentence2"
    negative: str | None = None
    max_texts: int | None = None


def load_training_data(method: str, spec: TrainData, seed: int = 42) -> tuple[object, str]:
    """(data for :func:`build_dataset`, a description for the card).

    Raises:
        SimsearchError: unknown method, no data given, or unreadable files
            (:class:`~simsearch.errors.InvalidParameter` names the option).
    """
    import pandas as pd

    from simsearch.tables.labeled import (
        read_labeled_texts,
        read_nli_triplets,
        read_sts_pairs,
    )

    TrainConfig(method).check()
    data = list(spec.data)
    if not data and not (method in ("simcse", "mlm", "tsdae") and spec.index):
        raise InvalidParameter("data", f"method {method} needs training data: give {{name}}.")
    names = ", ".join(p.name for p in data)
    if method in ("simcse", "mlm", "tsdae"):
        return _simcse_texts(spec, names, seed)
    if method == "softmax":
        from simsearch.science.training.nli_classifier import read_nli_pairs

        # The class column: --label-column when given, else KorNLI's gold_label.
        label = None if spec.label_column == "label" else spec.label_column
        return read_nli_pairs(data, spec.anchor, spec.positive, label), names
    if method == "nli":
        return read_nli_triplets(data, spec.anchor, spec.positive, spec.negative), names
    if method == "sts":
        frames = [read_sts_pairs(p, spec.text1, spec.text2, spec.score) for p in data]
        return pd.concat(frames, ignore_index=True), names
    if len(data) > 1:
        # Class ids are per file; re-read jointly would be cleaner but one file is the norm.
        raise InvalidParameter("data", "method triplet reads one {name} file; merge them first.")
    text_column = (spec.column or ["text"])[0]
    frame, _ = read_labeled_texts(data[0], text_column, spec.label_column)
    return frame, names


def _simcse_texts(spec: TrainData, names: str, seed: int) -> tuple[list[str], str]:
    from simsearch.tables.labeled import read_texts

    texts: list[str] = []
    for path in spec.data:
        texts += read_texts(path, spec.column)
    if spec.index is not None:
        from simsearch.store.index import open_path

        texts += [t for t in open_path(spec.index).texts if t.strip()]
        names = ", ".join(filter(None, [names, f"index {spec.index}"]))
    texts = list(dict.fromkeys(texts))
    if spec.max_texts and len(texts) > spec.max_texts:
        texts = random.Random(seed).sample(texts, spec.max_texts)
    return texts, f"{names}: {len(texts)} unique texts"


def train_from_files(
    output: Path,
    config: TrainConfig,
    spec: TrainData,
    model: str | None = None,
    dev: Path | None = None,
) -> TrainResult:
    """Read the files of ``spec`` for ``config.method``, train from ``model`` (default
    :data:`simsearch.encoding.sbert.DEFAULT_MODEL`) and save to ``output``.

    Raises:
        SimsearchError: bad options or data (see :func:`load_training_data`), or an
            output directory that already holds files.
    """
    from simsearch.encoding.sbert import DEFAULT_MODEL
    from simsearch.tables.labeled import read_sts_pairs

    config.check()
    if output.exists() and any(output.iterdir()):
        raise InvalidParameter("output", f"{output} is not empty: choose a new {{name}}.")
    train_data, label = load_training_data(config.method, spec, config.seed)
    dev_pairs = read_sts_pairs(dev) if dev else None
    base = model or DEFAULT_MODEL
    return train(base, train_data, output, config, dev=dev_pairs, labels=(label, None))
