"""Maps fitted on the corpus and applied to queries alike: whitening
(:mod:`~simsearch.transforms.whitening`) and BERT-flow (:mod:`~simsearch.transforms.flow`).

:func:`load_transform` opens the one an index stores. The store knows nothing of
transforms: this package reads the index's metadata and files (layer order
``transforms`` above ``store``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import numpy as np

    from simsearch.store.index import Index


class Transform(Protocol):
    """A map from model embeddings to the search space."""

    @property
    def dim(self) -> int:
        """The output dimension ``k``."""

    def apply(self, x: np.ndarray) -> np.ndarray:
        """``(m, d)`` float32 model embeddings -> ``(m, k)`` float32 unit rows."""


def load_transform(index: Index) -> Transform | None:
    """The map from model embeddings to ``index``'s search space: its stored whitening
    (:class:`~simsearch.transforms.whitening.Whitening`) or BERT-flow
    (:class:`~simsearch.transforms.flow.EmbeddingFlow`, an ONNX graph run by
    onnxruntime, no torch), or None when the index searches the raw embeddings.

    Raises:
        DamagedIndex: the stored file is unreadable.
    """
    if index.meta.whitening is not None:
        from zipfile import BadZipFile

        from simsearch.errors import DamagedIndex
        from simsearch.transforms.whitening import Whitening

        try:
            with index.reading("whitening"):
                return Whitening.load(index.file("whitening"))
        except BadZipFile as exc:
            raise DamagedIndex.at(index.path, f"the whitening file is unreadable: {exc}") from None
    if index.meta.flow is not None:
        from simsearch.transforms.flow import EmbeddingFlow

        return EmbeddingFlow.load(index.file("flow"))
    return None
