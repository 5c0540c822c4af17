"""Model loading/encoding for the science modules.

Uses the core's ``simsearch.encoding.load_model``/``encode`` when present (the contract
with the core), else a local equivalent so this branch works before the merge.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from simsearch.errors import SimsearchError

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer


def load_model(model: str | Any, device: str | None = None) -> SentenceTransformer:
    """Load a SentenceTransformer from a hub id or a local directory (or pass one through).

    Raises:
        SimsearchError: the model cannot be loaded.
    """
    if not isinstance(model, str):
        return model
    try:
        from simsearch.encoding import load_model as core_load
    except ImportError:
        core_load = None
    if core_load is not None:
        return core_load(model, device=device)
    from sentence_transformers import SentenceTransformer

    try:
        return SentenceTransformer(model, device=device or "cpu")
    except Exception as exc:  # noqa: BLE001 - any load failure becomes one user-facing line
        raise SimsearchError(
            f"Cannot load model {model!r} ({type(exc).__name__}); give a local model "
            "directory or a cached hub id (offline: HF_HUB_OFFLINE=1)."
        ) from exc


def encode(model: SentenceTransformer, texts: list[str], batch_size: int = 32) -> np.ndarray:
    """Encode texts to an (n, dim) float32 array of L2-normalised embeddings."""
    try:
        from simsearch.encoding import encode as core_encode
    except ImportError:
        core_encode = None
    if core_encode is not None:
        return core_encode(model, texts, batch_size=batch_size, show_progress=False)
    emb = model.encode(
        texts, batch_size=batch_size, convert_to_numpy=True, normalize_embeddings=True
    )
    return np.asarray(emb, dtype=np.float32)


def model_label(model: str | Any) -> str:
    """A short display name for a model argument (its string, or the loaded model's path)."""
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
