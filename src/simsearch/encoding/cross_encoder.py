"""A cross-encoder reranker: sentence-transformers' ``CrossEncoder`` reads a (query,
document) pair together and scores how well they match (Nogueira & Cho 2019,
"Passage Re-ranking with BERT", arXiv:1901.04085; the "retrieve & re-rank" recipe of
sentence-transformers).

Loaded on demand only: this module imports torch and sentence-transformers inside its
functions, so a query that does not rerank never imports them.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from simsearch.errors import InvalidParameter

#: Pairs scored per forward pass.
PAIR_BATCH = 32


class Reranker:
    """A loaded ``CrossEncoder`` scoring (query, document) pairs.

    Attributes:
        name: the hub id or directory it was loaded from.
        model: the ``sentence_transformers.CrossEncoder``.
    """

    def __init__(self, name: str, model: Any) -> None:
        self.name = name
        self.model = model

    def score(self, pairs: Sequence[tuple[str, str]], batch_size: int = PAIR_BATCH) -> np.ndarray:
        """``(len(pairs),)`` float32 scores (higher: a better match), ``batch_size`` pairs
        per forward pass. A model with several labels (an NLI classifier) scores a pair
        by its first label's logit (entailment in sentence-transformers' NLI models)."""
        if not pairs:
            return np.empty(0, np.float32)
        scores = self.model.predict(
            [list(p) for p in pairs], batch_size=batch_size, show_progress_bar=False,
            convert_to_numpy=True,
        )
        scores = np.asarray(scores, dtype=np.float32)
        return scores[:, 0] if scores.ndim == 2 else scores.reshape(-1)


def model_location(name: str) -> str:
    """The directory (as a string) or hub id to load ``name`` from; cheap, so a command
    checks it before any work.

    Raises:
        InvalidParameter: (``rerank``) an empty name, or a path (``./x``, ``/x``, ``~/x``,
            or an existing file) that is no directory.
    """
    if not name or not name.strip():
        raise InvalidParameter("rerank", "{name} is empty: give a hub id or a model directory")
    local = Path(name).expanduser()
    if name.startswith((".", "/", "~")) or local.exists():
        if not local.is_dir():
            raise InvalidParameter("rerank", f"{{name}} {name}: no such model directory")
        return str(local)
    return name


def load_reranker(name: str, device: str | None = None) -> Reranker:
    """Load the cross-encoder ``name`` (a hub id or a local directory).

    Raises:
        InvalidParameter: (param ``rerank``) an empty name, a local directory that does
            not exist, or a model that does not load as a ``CrossEncoder`` (the reason
            in one line).
    """
    where = model_location(name)
    from simsearch.encoding.sbert import _quiet_libraries

    _quiet_libraries()  # no advisory warnings or loading bars on stderr
    try:
        from sentence_transformers import CrossEncoder

        model = CrossEncoder(where, device=device)
    except Exception as exc:  # noqa: BLE001 - hub, files and config errors alike
        reason = _first_sentence(str(exc)) or type(exc).__name__
        raise InvalidParameter(
            "rerank", f"cannot load {{name}} {name} as a cross-encoder: {reason}"
        ) from None
    return Reranker(name, model)


def _first_sentence(text: str, limit: int = 200) -> str:
    """The first sentence of an error message on one line (at most ``limit`` characters)."""
    flat = " ".join(text.split())
    end = flat.find(". ")
    flat = flat if end < 0 else flat[: end + 1]
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
