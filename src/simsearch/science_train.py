"""File-level entry point of ``simsearch train``: read the data for a method, then train.

Kept apart from :mod:`simsearch.training` so the library function takes in-memory data and
this module owns the file formats and option checking.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path

from simsearch.errors import SimsearchError
from simsearch.training import METHODS, TrainResult, train_model

FALLBACK_MODEL = "sentence-transformers/all-MiniLM-L6-v2"


def default_model() -> str:
    """The core's default model id (``simsearch.encoding.DEFAULT_MODEL``) if defined."""
    try:
        from simsearch.encoding import DEFAULT_MODEL
    except ImportError:
        return FALLBACK_MODEL
    return DEFAULT_MODEL


def load_training_data(
    method: str,
    data: Sequence[Path],
    index: Path | None = None,
    columns: Sequence[str] | None = None,
    label_column: str = "label",
    text1: str = "sentence1",
    text2: str = "sentence2",
    score: str = "score",
    anchor: str = "sentence1",
    positive: str = "sentence2",
    negative: str | None = None,
    max_texts: int | None = None,
    seed: int = 42,
) -> tuple[object, str]:
    """(data for :func:`simsearch.training.build_dataset`, a description for the card).

    Raises:
        SimsearchError: unknown method, no data given, or unreadable files.
    """
    import pandas as pd

    from simsearch.labeled import (
        read_labeled_texts,
        read_nli_triplets,
        read_sts_pairs,
        read_texts,
    )

    if method not in METHODS:
        raise SimsearchError(f"Unknown --method {method!r}: choose one of {', '.join(METHODS)}.")
    if not data and not (method == "simcse" and index):
        where = "--data FILE (or --index DIR)" if method == "simcse" else "--data FILE"
        raise SimsearchError(f"--method {method} needs training data: give {where}.")
    names = ", ".join(p.name for p in data)
    if method == "simcse":
        texts: list[str] = []
        for path in data:
            texts += read_texts(path, columns)
        if index is not None:
            from simsearch._compat import open_index

            texts += [t for t in open_index(index).texts if t.strip()]
            names = ", ".join(filter(None, [names, f"index {index}"]))
        texts = list(dict.fromkeys(texts))
        if max_texts and len(texts) > max_texts:
            texts = random.Random(seed).sample(texts, max_texts)
        return texts, f"{names}: {len(texts)} unique texts"
    if method == "nli":
        return read_nli_triplets(list(data), anchor, positive, negative), names
    if method == "sts":
        frames = [read_sts_pairs(p, text1, text2, score) for p in data]
        return pd.concat(frames, ignore_index=True), names
    frames = []
    for path in data:
        frame, _ = read_labeled_texts(path, (columns or ["text"])[0], label_column)
        frames.append(frame)
    if len(frames) > 1:
        # Class ids are per file; re-read jointly would be cleaner but one file is the norm.
        raise SimsearchError("--method triplet reads one --data file; merge your files first.")
    return frames[0], names


def train_from_files(
    method: str,
    output: Path,
    data: Sequence[Path],
    index: Path | None = None,
    model: str | None = None,
    columns: Sequence[str] | None = None,
    label_column: str = "label",
    text1: str = "sentence1",
    text2: str = "sentence2",
    score: str = "score",
    anchor: str = "sentence1",
    positive: str = "sentence2",
    negative: str | None = None,
    dev: Path | None = None,
    epochs: float = 1.0,
    batch_size: int | None = None,
    lr: float | None = None,
    max_seq_length: int = 128,
    max_steps: int | None = None,
    max_texts: int | None = None,
    sts_loss: str = "cosent",
    seed: int = 42,
    show_progress: bool = True,
) -> TrainResult:
    """Read the files for ``method``, train from ``model`` and save to ``output``.

    Raises:
        SimsearchError: bad options or data (see :func:`load_training_data`), or an
            output directory that already holds files.
    """
    from simsearch.labeled import read_sts_pairs

    if epochs <= 0:
        raise SimsearchError("--epochs must be positive.")
    if output.exists() and any(output.iterdir()):
        raise SimsearchError(f"Output directory {output} is not empty: choose a new --output.")
    train_data, label = load_training_data(
        method,
        data,
        index,
        columns,
        label_column,
        text1,
        text2,
        score,
        anchor,
        positive,
        negative,
        max_texts,
        seed,
    )
    dev_pairs = read_sts_pairs(dev) if dev else None
    base = model or default_model()
    return train_model(
        base,
        method,
        train_data,
        output,
        dev=dev_pairs,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        max_seq_length=max_seq_length,
        seed=seed,
        max_steps=max_steps,
        sts_loss=sts_loss,
        show_progress=show_progress,
        data_label=label,
    )
