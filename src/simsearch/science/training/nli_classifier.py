"""SBERT's classification objective (Reimers & Gurevych 2019, "Sentence-BERT", arXiv:1908.10084).

On NLI pairs, a softmax classifier over ``(u, v, |u - v|)`` of the two sentence embeddings
predicts entailment / neutral / contradiction; the loss trains the siamese encoder through
it. Only the encoder is kept (the classifier is discarded), so the saved model is a normal
SentenceTransformer directory. Loss: sentence-transformers' ``SoftmaxLoss``; trainer:
``SentenceTransformerTrainer``. The original recipe: batch 16, lr 2e-5, 10 % linear warm-up.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from simsearch.errors import InvalidParameter, SimsearchError
from simsearch.science.training import trainer as shared
from simsearch.science.training.config import DEFAULTS, TrainConfig, TrainResult

# Label ids as in sentence-transformers' NLI examples (AllNLI): 0 entailment, 1 neutral,
# 2 contradiction.
NLI_LABELS = ("entailment", "neutral", "contradiction")


def read_nli_pairs(
    paths: Path | str | Sequence[Path | str],
    premise: str = "sentence1",
    hypothesis: str = "sentence2",
    label: str | None = None,
) -> pd.DataFrame:
    """Read (premise, hypothesis, label) rows from KorNLI/XNLI-format files.

    Labels are matched case-insensitively against entailment / neutral / contradiction;
    other labels (e.g. ``-``) and rows with a missing text are dropped. ``label`` names the
    class column (None: ``gold_label``, else ``label``, whichever the file has).

    Returns:
        DataFrame with str columns ``sentence1``, ``sentence2`` and int ``label``
        (0 entailment, 1 neutral, 2 contradiction).

    Raises:
        SimsearchError: missing file or column, or no labelled pair at all.
    """
    from simsearch.tables.labeled import read_table, require_columns

    if isinstance(paths, (str, Path)):
        paths = [paths]
    frames = []
    for path in paths:
        df = read_table(path)
        column = label or ("gold_label" if "gold_label" in df.columns else "label")
        require_columns(
            df, {"anchor": premise, "positive": hypothesis, "label_column": column}, path
        )
        df = df.dropna(subset=[premise, hypothesis, column])
        ids = df[column].astype(str).str.strip().str.lower().map(
            {name: i for i, name in enumerate(NLI_LABELS)}
        )
        part = pd.DataFrame(
            {
                "sentence1": df[premise].astype(str).str.strip(),
                "sentence2": df[hypothesis].astype(str).str.strip(),
                "label": ids,
            }
        ).dropna(subset=["label"])
        frames.append(part[(part.sentence1 != "") & (part.sentence2 != "")])
    out = pd.concat(frames, ignore_index=True)
    if out.empty:
        raise SimsearchError(
            "No labelled NLI pair found: the file needs premise and hypothesis columns and a "
            "label column with entailment / neutral / contradiction."
        )
    return out.astype({"label": int})


def train_softmax(
    base_model: str | Any,
    data: pd.DataFrame,
    output_dir: Path | str,
    config: TrainConfig,
    *,
    dev: pd.DataFrame | None = None,
    labels: tuple[str, str | None] = ("", None),
) -> TrainResult:
    """Train ``base_model`` with SBERT's softmax classification objective and save it.

    Args:
        base_model: hub id / local directory, or a loaded SentenceTransformer.
        data: :func:`read_nli_pairs` output (sentence1, sentence2, label 0..2).
        output_dir: where the encoder is saved (a SentenceTransformer directory).
        config: schedule (:class:`~simsearch.science.training.config.TrainConfig`, method
            ``softmax``; batch size / lr None: 16 / 2e-5, as SBERT).
        dev: optional scored pairs; Spearman x 100 of cosine similarity before and after.
        labels: (description of the data, of the base model) for the card.

    Returns:
        TrainResult (also written to ``output_dir/simsearch_card.json``); ``extra`` holds the
        training loss and the label counts.

    Raises:
        SimsearchError: empty data, fewer than 2 distinct labels, batch size below 2.
    """
    from datasets import Dataset
    from sentence_transformers.sentence_transformer.losses import SoftmaxLoss
    from transformers import set_seed

    from simsearch.encoding.sbert import load_model

    if data is None or data.empty:
        raise SimsearchError("The softmax objective needs a non-empty table of labelled pairs.")
    if data["label"].nunique() < 2:
        raise SimsearchError("The softmax objective needs pairs of at least 2 different labels.")
    batch_size = int(config.batch_size or DEFAULTS["softmax"]["batch_size"])
    lr = float(config.lr or DEFAULTS["softmax"]["lr"])
    if batch_size < 2:
        raise InvalidParameter("batch_size", "{name} must be at least 2.")
    set_seed(config.seed)
    model = load_model(base_model)
    model.max_seq_length = config.max_seq_length
    dataset = Dataset.from_pandas(data[["sentence1", "sentence2", "label"]], preserve_index=False)
    loss = SoftmaxLoss(model, model.get_embedding_dimension(), num_labels=len(NLI_LABELS))
    output_dir = Path(output_dir)
    before = shared.dev_spearman(model, dev)
    args = shared.arguments(config, output_dir / "checkpoints", batch_size, lr)
    trainer = shared.st_trainer(model=model, args=args, train_dataset=dataset, loss=loss)
    steps, train_loss, seconds = shared.run(trainer, config.on_progress)
    after = shared.dev_spearman(model, dev)
    shared.save_model(model, output_dir)  # the encoder only; the classifier lives in the loss
    counts = data["label"].value_counts().to_dict()
    result = TrainResult(
        output_dir=str(output_dir),
        base_model=shared.base_label(base_model, labels),
        method="softmax (SBERT classification, u,v,|u-v|)",
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
        extra={
            "train_loss": round(train_loss, 4),
            "labels": {NLI_LABELS[int(k)]: int(v) for k, v in sorted(counts.items())},
        },
    )
    shared.write_card(result)
    return result
