"""Domain-adaptive pre-training on the user's own texts, before `nli`/`sts` fine-tuning.

Two methods, both ending in a normal SentenceTransformer directory (the base model's modules,
e.g. its mean pooling, kept) usable as ``--model`` and as the base of a further ``train``:

- ``mlm``: BERT's masked-language-model objective (Devlin et al. 2019; as domain-adaptive
  pre-training, Gururangan et al. 2020, "Don't Stop Pretraining", arXiv:2004.10964).
  The encoder's weights go into ``AutoModelForMaskedLM`` (the MLM head is taken from the base
  checkpoint when it has one, else freshly initialised), trained by transformers' ``Trainer``
  with ``DataCollatorForLanguageModeling`` (15 % of tokens: 80 % [MASK], 10 % random, 10 %
  kept), and copied back into the SentenceTransformer.
- ``tsdae``: TSDAE (Wang, Reimers & Gurevych 2021, arXiv:2104.06979): delete 60 % of the words
  of each sentence, encode the damaged sentence into one embedding, and train a decoder to
  rebuild the original from that embedding alone. sentence-transformers'
  ``DenoisingAutoEncoderLoss`` with ``tie_encoder_decoder=True``: the decoder is the same
  architecture loaded from the base model's own directory (so it works offline), with cross-
  attention added and its weights shared with the encoder. Words are split on whitespace
  (Korean eojeol), not with nltk.
"""

from __future__ import annotations

import random
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd

from simsearch.errors import InvalidParameter, SimsearchError
from simsearch.science.training import trainer as shared
from simsearch.science.training.config import TrainConfig, TrainResult

PRETRAIN_METHODS = ("mlm", "tsdae")


def _check(texts: list[str], config: TrainConfig) -> list[str]:
    if config.method not in PRETRAIN_METHODS:
        raise InvalidParameter(
            "method", f"Unknown pre-training {{name}} {config.method!r}: choose mlm or tsdae."
        )
    config.check()
    texts = [t.strip() for t in texts if isinstance(t, str) and t.strip()]
    if len(texts) < 2:
        raise SimsearchError("Pre-training needs at least 2 non-empty texts.")
    return texts


def delete_words(text: str, ratio: float, rng: random.Random) -> str:
    """TSDAE's deletion noise: drop each whitespace-separated word with probability ``ratio``,
    keeping at least one word."""
    words = text.split()
    if not words:
        return text
    kept = [w for w in words if rng.random() >= ratio]
    return " ".join(kept) if kept else rng.choice(words)


def pretrain(
    base_model: str | Any,
    texts: list[str],
    output_dir: Path | str,
    config: TrainConfig,
    *,
    dev: pd.DataFrame | None = None,
    labels: tuple[str, str | None] = ("", None),
) -> TrainResult:
    """Pre-train ``base_model`` on ``texts`` with MLM or TSDAE and save a SentenceTransformer.

    Args:
        base_model: hub id / local directory, or a loaded SentenceTransformer.
        texts: the corpus (list of str; empty ones are dropped).
        output_dir: where the SentenceTransformer directory is written.
        config: method (``mlm`` or ``tsdae``) and schedule
            (:class:`~simsearch.science.training.config.TrainConfig`; batch / lr None: 16 and 5e-5
            for mlm, 16 and 3e-5 for tsdae; ``mlm_probability``, ``deletion_ratio``).
        dev: optional scored pairs; Spearman x 100 of cosine similarity before and after.
        labels: (description of the data, of the base model) for the card.

    Returns:
        TrainResult (also written to ``output_dir/simsearch_card.json``).

    Raises:
        SimsearchError: unknown method, fewer than 2 texts, bad ratios, or (tsdae) a base
            model whose architecture cannot serve as a decoder.
    """
    from transformers import set_seed

    from simsearch.encoding.sbert import load_model

    texts = _check(list(texts), config)
    set_seed(config.seed)
    model = load_model(base_model)
    model.max_seq_length = config.max_seq_length
    before = shared.dev_spearman(model, dev)
    batch_size, lr = config.schedule()
    start = time.perf_counter()
    train = _train_mlm if config.method == "mlm" else _train_tsdae
    steps, loss = train(model, texts, config, batch_size, lr)
    seconds = time.perf_counter() - start
    after = shared.dev_spearman(model, dev)
    output_dir = Path(output_dir)
    shared.save_model(model, output_dir)
    extra: dict[str, Any] = {"train_loss": round(loss, 4)}
    if config.method == "mlm":
        extra["mlm_probability"] = config.mlm_probability
    else:
        extra["deletion_ratio"] = config.deletion_ratio
    result = TrainResult(
        output_dir=str(output_dir),
        base_model=shared.base_label(base_model, labels),
        method=config.method,
        data=labels[0],
        examples=len(texts),
        epochs=config.epochs,
        batch_size=batch_size,
        lr=lr,
        max_seq_length=config.max_seq_length,
        seed=config.seed,
        steps=steps,
        train_seconds=round(seconds, 1),
        dev_before=before,
        dev_after=after,
        extra=extra,
    )
    shared.write_card(result)
    return result


def _masked_lm(model: Any) -> Any:
    """An ``AutoModelForMaskedLM`` holding the SentenceTransformer's encoder weights.

    The head comes from the encoder's own checkpoint when it has one (a plain BERT/RoBERTa
    directory); a SentenceTransformer checkpoint has none, so it is initialised fresh (its
    output matrix is tied to the word embeddings either way).
    """
    from transformers import AutoModelForMaskedLM

    encoder = model.transformers_model
    source = getattr(encoder.config, "_name_or_path", "")
    mlm = None
    if source and Path(source).is_dir():
        try:
            mlm = AutoModelForMaskedLM.from_pretrained(source)
        except (OSError, ValueError):
            mlm = None
    if mlm is None:
        mlm = AutoModelForMaskedLM.from_config(encoder.config)
    # Whatever was loaded, the encoder's current weights win (e.g. a fine-tuned base).
    mlm.base_model.load_state_dict(encoder.state_dict(), strict=False)
    return mlm


def _train_mlm(
    model: Any, texts: list[str], config: TrainConfig, batch_size: int, lr: float
) -> tuple[int, float]:
    from datasets import Dataset
    from transformers import DataCollatorForLanguageModeling, Trainer

    tokenizer = model.tokenizer
    mlm = _masked_lm(model)
    dataset = Dataset.from_dict({"text": texts}).map(
        lambda batch: tokenizer(
            batch["text"], truncation=True, max_length=config.max_seq_length,
            return_special_tokens_mask=True,
        ),
        batched=True,
        remove_columns=["text"],
    )
    collator = DataCollatorForLanguageModeling(
        tokenizer, mlm=True, mlm_probability=config.mlm_probability, seed=config.seed
    )
    args = shared.plain_arguments(
        config, Path(tempfile.gettempdir()) / "simsearch-mlm", batch_size, lr
    )
    trainer = Trainer(model=mlm, args=args, train_dataset=dataset, data_collator=collator)
    steps, loss, _ = shared.run(trainer, config.on_progress)
    # Copy the adapted encoder back; the MLM head is dropped (as BERT's own fine-tuning does).
    encoder = model.transformers_model
    encoder.load_state_dict(mlm.base_model.state_dict(), strict=False)
    return steps, loss


def _train_tsdae(
    model: Any, texts: list[str], config: TrainConfig, batch_size: int, lr: float
) -> tuple[int, float]:
    from datasets import Dataset
    from sentence_transformers.sentence_transformer.losses import DenoisingAutoEncoderLoss

    source = getattr(model.transformers_model.config, "_name_or_path", "")
    if not source or not Path(source).is_dir():
        # The loss loads its decoder from this path; offline, only a local directory works.
        raise SimsearchError(
            "TSDAE needs the base model as a local directory (its decoder is loaded from it)."
        )
    rng = random.Random(config.seed)
    noisy = [delete_words(t, config.deletion_ratio, rng) for t in texts]
    dataset = Dataset.from_dict({"noisy": noisy, "text": texts})
    try:
        loss = DenoisingAutoEncoderLoss(model, tie_encoder_decoder=True)
    except (ValueError, AssertionError) as exc:
        raise SimsearchError(f"This base model cannot be trained with TSDAE: {exc}") from None
    args = shared.arguments(
        config, Path(tempfile.gettempdir()) / "simsearch-tsdae", batch_size, lr
    )
    trainer = shared.st_trainer(model=model, args=args, train_dataset=dataset, loss=loss)
    steps, train_loss, _ = shared.run(trainer, config.on_progress)
    return steps, train_loss
