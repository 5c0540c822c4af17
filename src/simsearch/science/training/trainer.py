"""What every objective does around its loss, written once: the trainer's arguments, a
quiet run timed, the dev score before and after, the model saved and the card written."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pandas as pd

from simsearch.science.training.config import TrainConfig, TrainResult


def dev_spearman(model: Any, dev: pd.DataFrame | None, batch_size: int = 64) -> float | None:
    """Spearman x 100 of the cosine similarity of ``model``'s embeddings of the ``dev``
    pairs (sentence1, sentence2, score) against their scores; None without ``dev``."""
    if dev is None:
        return None
    from simsearch.science.evaluate import embed_sts_pairs, sts_correlations

    model.eval()
    emb = embed_sts_pairs(model, dev, batch_size=batch_size)
    return round(sts_correlations(emb.cosine, emb.scores)[0], 2)


#: The older private name, kept for callers outside the package.
_dev_spearman = dev_spearman


def use_cpu() -> bool:
    """Train on the CPU unless ``SIMSEARCH_DEVICE`` names another device."""
    return os.environ.get("SIMSEARCH_DEVICE", "cpu") == "cpu"


def arguments(
    config: TrainConfig, output_dir: Path, batch_size: int, lr: float, **more: Any
) -> Any:
    """``SentenceTransformerTrainingArguments`` for ``config``: no evaluation, no saving
    during training, no reporting; ``more`` adds or overrides fields (``batch_sampler``).
    Use :func:`plain_arguments` for transformers' own ``Trainer``."""
    from sentence_transformers import SentenceTransformerTrainingArguments

    return SentenceTransformerTrainingArguments(
        **_common(config, output_dir, batch_size, lr), eval_strategy="no", **more
    )


def plain_arguments(config: TrainConfig, output_dir: Path, batch_size: int, lr: float) -> Any:
    """transformers ``TrainingArguments`` with the same schedule as :func:`arguments`."""
    from transformers import TrainingArguments

    return TrainingArguments(**_common(config, output_dir, batch_size, lr))


def _common(config: TrainConfig, output_dir: Path, batch_size: int, lr: float) -> dict[str, Any]:
    return {
        "output_dir": str(output_dir),
        "num_train_epochs": config.epochs,
        "max_steps": config.max_steps or -1,
        "per_device_train_batch_size": batch_size,
        "learning_rate": lr,
        "warmup_steps": config.warmup_ratio,  # a float < 1 is a ratio of all steps (v5)
        "seed": config.seed,
        "data_seed": config.seed,
        "save_strategy": "no",
        "report_to": "none",
        "logging_steps": 50,
        # transformers' tqdm bar (and, with it off, its printed log dicts) stay off: the
        # progress goes to ``config.on_progress`` (see :func:`run`).
        "disable_tqdm": True,
        "use_cpu": use_cpu(),
    }


def st_trainer(**kwargs: Any) -> Any:
    """A ``SentenceTransformerTrainer(**kwargs)`` without the model-card callback, which
    samples "widget examples" behind a tqdm bar of its own: as its docstring invites,
    :meth:`add_model_card_callback` is overridden to add nothing (``simsearch_card.json``
    and ``SIMSEARCH_CARD.md`` record the training instead, :func:`write_card`)."""
    from sentence_transformers import SentenceTransformerTrainer

    class _Trainer(SentenceTransformerTrainer):
        def add_model_card_callback(self, default_args_dict: dict[str, Any]) -> None:
            return None

    return _Trainer(**kwargs)


def run(
    trainer: Any, on_progress: Callable[[int, int], None] | None = None
) -> tuple[int, float, float]:
    """Train; returns (optimiser steps, final training loss, seconds). transformers'
    tqdm bar is off (``disable_tqdm``) and its stand-in, which prints the log dicts
    to stdout (into JSON output), is removed; ``on_progress(step, total)`` is called
    after each optimiser step instead."""
    from transformers.trainer_callback import PrinterCallback, TrainerCallback

    trainer.remove_callback(PrinterCallback)
    if on_progress is not None:

        class _Progress(TrainerCallback):
            def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
                on_progress(state.global_step, state.max_steps)

        trainer.add_callback(_Progress())
    start = time.perf_counter()
    state = trainer.train()
    seconds = time.perf_counter() - start
    return int(state.global_step), float(state.training_loss), seconds


def save_model(model: Any, output_dir: Path) -> None:
    """Save the SentenceTransformer to ``output_dir``, removing the empty ``checkpoints``
    directory a trainer with ``save_strategy="no"`` leaves behind."""
    output_dir.mkdir(parents=True, exist_ok=True)
    model.save(str(output_dir))
    checkpoints = output_dir / "checkpoints"
    if checkpoints.is_dir() and not any(checkpoints.iterdir()):
        checkpoints.rmdir()


def base_label(base_model: str | Any, labels: tuple[str, str | None]) -> str:
    """The base model as the card names it: ``labels[1]``, else its id, else "model"."""
    return labels[1] or (base_model if isinstance(base_model, str) else "model")


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
        "Use it with `simsearch query ... --rerank " + str(out) + "` (a reranker)."
        if result.method == "cross-encoder"
        else "Use it with `simsearch index ... --model " + str(out) + "`.",
    ]
    (out / "SIMSEARCH_CARD.md").write_text("\n".join(lines) + "\n", "utf-8")
