"""What a training run is given and what it gives back: the methods, their default
schedules, :class:`TrainConfig`, :class:`TrainData` and :class:`TrainResult`.

The objectives (:mod:`.contrastive`, :mod:`.nli_classifier`, :mod:`.pretrain`) import
this module; the dispatcher (:mod:`.core`) imports them. Nothing here imports torch or
sentence-transformers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from simsearch.errors import InvalidParameter

#: Trained by :mod:`simsearch.science.training.contrastive`.
METHODS = ("simcse", "nli", "sts", "triplet")
# Trained by their own modules (issue 12): SBERT's softmax objective
# (simsearch.science.training.nli_classifier) and
# domain-adaptive pre-training (simsearch.science.training.pretrain).
# A cross-encoder reranker (issue 19): simsearch.science.training.cross_encoder.
ALL_METHODS = (*METHODS, "softmax", "mlm", "tsdae", "cross-encoder")

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
    # sentence-transformers' STS cross-encoder example: batch 16, lr 2e-5.
    "cross-encoder": {"lr": 2e-5, "batch_size": 16},
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


@dataclass(frozen=True)
class TrainConfig:
    """How to train: the method and its schedule.

    Attributes:
        method: one of ``simcse``, ``nli``, ``sts``, ``triplet``, ``softmax``, ``mlm``,
            ``tsdae``, ``cross-encoder``.
        epochs, batch_size, lr: training schedule (None: the method's default, ``DEFAULTS``).
        max_seq_length: tokens kept per text (longer texts are truncated).
        seed: seeds Python, NumPy, torch and the data order (transformers ``set_seed``).
        max_steps: stop after this many optimiser steps (overrides epochs; tests use it).
        warmup_ratio: share of the steps with a linear learning-rate warm-up.
        sts_loss: ``cosent`` or ``cosine`` (method ``sts``).
        show_progress: report progress (through ``on_progress``).
        on_progress: called as ``on_progress(step, total_steps)`` after each optimiser
            step (the CLI's progress bar); transformers' own tqdm bars are always off.
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
    on_progress: Callable[[int, int], None] | None = field(default=None, compare=False)

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

    def schedule(self) -> tuple[int, float]:
        """(batch size, learning rate): the config's, else the method's ``DEFAULTS``."""
        defaults = DEFAULTS[self.method]
        return int(self.batch_size or defaults["batch_size"]), float(self.lr or defaults["lr"])


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
