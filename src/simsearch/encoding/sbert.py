"""Encoding texts into sentence embeddings with sentence-transformers.

torch and sentence_transformers are imported inside the functions that use them, so
commands that never encode (``similar``, ``list``, ``info``) start fast.

Method: SBERT (Reimers & Gurevych 2019, arXiv:1908.10084): a transformer encoder with
mean pooling over token embeddings, trained as a siamese network so that cosine
similarity of sentence embeddings tracks meaning.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from simsearch.errors import InvalidParameter

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

#: The default model: Korean RoBERTa, mean pooling, trained SBERT-style on KorNLI/KorSTS.
DEFAULT_MODEL = "jhgan/ko-sroberta-multitask"


def resolve_device(device: str | None = None) -> str:
    """The torch device to encode on: ``device`` if given, else ``"cuda"`` when a GPU is
    available, else ``"mps"`` on Apple silicon, else ``"cpu"``."""
    if device:
        return device
    import torch

    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def model_id(model: str | os.PathLike) -> str:
    """The identifier recorded in an index: an absolute path for a local directory,
    the hub id unchanged otherwise (so ``query`` run elsewhere finds the same model)."""
    model = os.fspath(model)
    path = Path(model).expanduser()
    if path.is_dir():
        return str(path.resolve())
    return model


def load_model(
    model: str | SentenceTransformer = DEFAULT_MODEL, device: str | None = None
) -> SentenceTransformer:
    """Load a SentenceTransformer from a hub id or a local directory.

    Args:
        model: hub id (e.g. ``jhgan/ko-sroberta-multitask``) or a directory saved with
            ``SentenceTransformer.save``; an already-loaded model is returned as is.
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``; default: see
            :func:`resolve_device`.

    Raises:
        SimsearchError: the model cannot be loaded (not a directory and not downloadable,
            e.g. offline with an empty cache), or the device does not exist.
    """
    if isinstance(model, os.PathLike):
        model = os.fspath(model)
    if not isinstance(model, str):
        return model
    from simsearch.encoding.preflight import (
        OFFLINE_HINT,
        check_device,
        check_hub_model,
        not_cached_offline,
    )

    check_device(device)
    check_hub_model(model)
    _quiet_libraries()
    from sentence_transformers import SentenceTransformer

    device = resolve_device(device)
    local = Path(model).expanduser()
    if model.startswith((".", "/", "~")) and not local.is_dir():
        raise InvalidParameter("model", f"model directory not found: {model} (check {{name}})")
    try:
        return SentenceTransformer(str(local) if local.is_dir() else model, device=device)
    except (OSError, ValueError) as exc:
        if os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0"):
            raise InvalidParameter("model", not_cached_offline(model)) from None
        why = f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
        raise InvalidParameter(
            "model",
            f"cannot load model {model!r}: {why}; connect to the internet once to download "
            f"it, give {{name}} a local directory holding a saved SentenceTransformer, or "
            f"{OFFLINE_HINT}",
        ) from None
    except RuntimeError as exc:
        raise InvalidParameter(
            "device",
            f"cannot load model {model!r} on device {device!r}: {str(exc).splitlines()[0]}; "
            "choose another {name} (cpu always works)",
        ) from None


def _quiet_libraries() -> None:
    # transformers' advisory warnings would break our one-line-output promise.
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


def encode(
    model: SentenceTransformer,
    texts: Sequence[str],
    batch_size: int = 32,
    show_progress: bool = False,
) -> np.ndarray:
    """Encode texts into L2-normalised embeddings.

    Empty (or whitespace-only) texts get a zero vector: they have cosine similarity 0
    (distance 1) to everything, so they never rank above a real match.

    Returns:
        ``(len(texts), dim)`` float32, each non-empty row of unit L2 norm.
    """
    dim = embedding_dim(model)
    out = np.zeros((len(texts), dim), dtype=np.float32)
    keep = [i for i, t in enumerate(texts) if t.strip()]
    if keep:
        vectors = model.encode(
            [texts[i] for i in keep],
            batch_size=batch_size,
            show_progress_bar=show_progress,
            convert_to_numpy=True,
            normalize_embeddings=True,
        )
        out[keep] = vectors.astype(np.float32, copy=False)
    return out


def embedding_dim(model: SentenceTransformer) -> int:
    """The model's output dimension (e.g. 384 for MiniLM-L6, 768 for ko-sroberta)."""
    # sentence-transformers 5.x renamed get_sentence_embedding_dimension.
    getter = getattr(model, "get_embedding_dimension", None)
    return int(getter() if getter else model.get_sentence_embedding_dimension())


def count_truncated(model: SentenceTransformer, texts: Sequence[str], sample: int = 0) -> int:
    """How many of ``texts`` exceed the model's ``max_seq_length`` in tokens (and so are
    truncated when encoded). ``sample > 0`` checks only the first ``sample`` texts."""
    limit = getattr(model, "max_seq_length", None)
    tokenizer = getattr(model, "tokenizer", None)
    if not limit or tokenizer is None:
        return 0
    chosen = list(texts[:sample] if sample else texts)
    # No tokenizer we know of makes more than 4 tokens of one character (byte-level BPE:
    # 4 UTF-8 bytes; WordPiece on Hangul: 3 jamo), so shorter texts cannot overflow and
    # are not tokenized twice.
    long_texts = [t for t in chosen if 4 * len(t) > limit]
    if not long_texts:
        return 0
    lengths = tokenizer(long_texts, add_special_tokens=True, truncation=False)["input_ids"]
    return sum(1 for ids in lengths if len(ids) > limit)
