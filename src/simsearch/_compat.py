"""Small adapters the science modules share: model loading that also accepts an
already-loaded model, and opening an index by its directory or its root."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer


def load_model(model: str | Any, device: str | None = None) -> SentenceTransformer:
    """:func:`simsearch.encoding.load_model`, passing an already-loaded model through.

    Raises:
        SimsearchError: the model cannot be loaded.
    """
    if not isinstance(model, str):
        return model
    from simsearch.encoding import load_model as core_load

    return core_load(model, device=device)


def encode(model: SentenceTransformer, texts: list[str], batch_size: int = 32) -> np.ndarray:
    """Encode texts to an (n, dim) float32 array of L2-normalised embeddings."""
    from simsearch.encoding import encode as core_encode

    return core_encode(model, texts, batch_size=batch_size, show_progress=False)


def model_label(model: str | Any) -> str:
    """A short display name for a model argument (its string, or the loaded model's type)."""
    if isinstance(model, str):
        return model
    return type(model).__name__


def open_index(path: Path | str) -> Any:
    """Open an index directory (one holding meta.json) or an index root (its default index).

    Raises:
        SimsearchError: no index there (from ``simsearch.index.load_index``).
    """
    from simsearch.index import load_index

    path = Path(path)
    if (path / "meta.json").is_file():
        return load_index(path.parent, path.name)
    return load_index(path)


def index_whitening(index: Any) -> Any:
    """The index's stored :class:`~simsearch.whitening.Whitening`, or None when not whitened."""
    from simsearch.whitening import Whitening

    files = index.meta.get("files", {})
    if "whitening" in files:
        return Whitening.load(Path(index.path) / files["whitening"])
    return None
