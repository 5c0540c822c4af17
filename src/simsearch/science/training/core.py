"""Training entry points: :func:`train` dispatches a :class:`TrainConfig` to the module of
its objective, :func:`train_from_files` reads the data first (``simsearch train``).

The layers inside :mod:`simsearch.science.training`, top to bottom (no cycle):

- this module: the dispatcher and the data loading;
- the objectives: :mod:`.contrastive` (simcse, nli, sts, triplet),
  :mod:`.nli_classifier` (softmax), :mod:`.pretrain` (mlm, tsdae);
- :mod:`.trainer` (arguments, quiet run, save, dev score, card) and :mod:`.config`
  (:class:`TrainConfig`, :class:`TrainData`, :class:`TrainResult`, ``DEFAULTS``).

The names of the older single module (``DEFAULTS``, ``TrainResult``, ``write_card``,
``build_dataset``, ...) are importable from here as before.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pandas as pd

from simsearch.errors import InvalidParameter
from simsearch.science.training.config import (
    ALL_METHODS,
    DEFAULTS,
    METHODS,
    TrainConfig,
    TrainData,
    TrainResult,
)
from simsearch.science.training.contrastive import build_dataset, build_loss, train_contrastive
from simsearch.science.training.trainer import _dev_spearman, dev_spearman, write_card

__all__ = [
    "ALL_METHODS",
    "DEFAULTS",
    "METHODS",
    "TrainConfig",
    "TrainData",
    "TrainResult",
    "_dev_spearman",
    "build_dataset",
    "build_loss",
    "dev_spearman",
    "load_training_data",
    "train",
    "train_from_files",
    "train_model",
    "write_card",
]


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
        data: reader output (see :func:`build_dataset`; softmax: NLI pairs, mlm/tsdae:
            texts).
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
    config.check()
    if config.method in METHODS:
        return train_contrastive(base_model, data, output_dir, config, dev=dev, labels=labels)
    if config.method == "softmax":
        from simsearch.science.training.nli_classifier import train_softmax

        return train_softmax(base_model, data, output_dir, config, dev=dev, labels=labels)
    if config.method == "cross-encoder":
        from simsearch.science.training.cross_encoder import train_cross_encoder

        return train_cross_encoder(base_model, data, output_dir, config, dev=dev, labels=labels)
    from simsearch.science.training.pretrain import pretrain

    texts = list(data["text"]) if isinstance(data, pd.DataFrame) else list(data)
    return pretrain(base_model, texts, output_dir, config, dev=dev, labels=labels)


def load_training_data(method: str, spec: TrainData, seed: int = 42) -> tuple[object, str]:
    """(data for :func:`build_dataset`, a description for the card).

    Raises:
        SimsearchError: unknown method, no data given, or unreadable files
            (:class:`~simsearch.errors.InvalidParameter` names the option).
    """
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
    if method == "cross-encoder":
        from simsearch.science.training.cross_encoder import read_cross_pairs

        return read_cross_pairs(data, spec)
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
