"""BERT-whitening (Su et al. 2021, "Whitening Sentence Representations for Better Semantics
and Faster Retrieval", arXiv:2103.15316).

Fit on a corpus of embeddings ``x`` (n, d): ``mu = mean(x)``, ``cov = (x - mu)^T (x - mu) / n``,
``U, S, _ = svd(cov)``, ``W = U / sqrt(S)``; keep the first ``k`` columns to reduce the
dimension. Apply: ``y = (x - mu) @ W[:, :k]`` then L2-normalise, so cosine similarity stays a
dot product. The transform makes the corpus embeddings zero-mean with identity covariance,
which removes the common direction that makes raw BERT-style embeddings anisotropic.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from simsearch.errors import InvalidParameter, SimsearchError

# Singular values below this (relative to the largest) are treated as zero: dividing by
# their square root would blow noise up to unit variance.
_REL_EPS = 1e-8


@dataclass
class Whitening:
    """A fitted whitening transform.

    Attributes:
        mean: (d,) float32 corpus mean.
        matrix: (d, k) float32 whitening matrix ``U[:, :k] / sqrt(S[:k])``.
    """

    mean: np.ndarray
    matrix: np.ndarray

    @property
    def dim(self) -> int:
        """Output dimension k."""
        return int(self.matrix.shape[1])

    def apply(self, x: np.ndarray) -> np.ndarray:
        """Whiten (m, d) embeddings to (m, k) float32 unit-length rows.

        Raises:
            SimsearchError: ``x`` has a different dimension than the fitted transform.
        """
        x = np.asarray(x, dtype=np.float32)
        if x.ndim == 1:
            x = x[None, :]
        if x.shape[1] != self.mean.shape[0]:
            raise SimsearchError(
                f"Whitening was fitted on {self.mean.shape[0]}-dim embeddings but got "
                f"{x.shape[1]}-dim ones: rebuild the index with the same model."
            )
        y = (x - self.mean) @ self.matrix
        norms = np.linalg.norm(y, axis=1, keepdims=True)
        # A row equal to the mean whitens to zero; leave it zero instead of dividing by 0.
        return (y / np.maximum(norms, 1e-12)).astype(np.float32)

    def save(self, path: Path | str) -> Path:
        """Save as ``.npz`` (arrays ``mean`` and ``matrix``); returns the path written."""
        path = Path(path)
        if path.suffix != ".npz":
            path = path.with_suffix(".npz")
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, mean=self.mean, matrix=self.matrix)
        return path

    @classmethod
    def load(cls, path: Path | str) -> Whitening:
        """Load a transform written by :meth:`save`.

        Raises:
            SimsearchError: the file is missing or not a whitening ``.npz``.
        """
        path = Path(path)
        if not path.is_file():
            raise SimsearchError(f"No whitening file at {path}: rebuild the index with whitening.")
        with np.load(path) as data:
            if "mean" not in data or "matrix" not in data:
                raise SimsearchError(f"{path} is not a whitening file (needs mean and matrix).")
            return cls(data["mean"].astype(np.float32), data["matrix"].astype(np.float32))


def safe_dim(n_docs: int, dim: int, requested: int | None) -> tuple[int | None, str | None]:
    """The number of whitened dimensions to keep when fitting on ``n_docs`` documents.

    Whitening fitted on n points in ``n - 1`` or more dimensions maps them to a regular
    simplex: every cosine similarity becomes exactly ``-1/(n - 1)`` and the ranking is
    noise. ``scripts/whitening_few_docs.py`` shows the spread of similarities shrinking to
    0 as the kept dimension nears ``n - 1`` on the 119 sample abstracts; at most
    ``(n - 1) // 2`` dimensions are kept here.

    Args:
        n_docs: non-empty documents the transform is fitted on.
        dim: the embedding dimension.
        requested: dimensions asked for (None: all ``dim``).

    Returns:
        ``(k, reason)``: the dimension to keep (None: all, as asked) and a one-line
        reason when it is fewer than asked (else None).

    Raises:
        SimsearchError: fewer than 5 documents (not even 2 dimensions could be kept).
    """
    limit = (n_docs - 1) // 2
    if limit < 2:
        raise SimsearchError(
            f"whitening needs at least 5 non-empty documents to fit on, got {n_docs}; "
            "build the index without whitening"
        )
    wanted = requested or dim
    if wanted <= limit:
        return requested, None
    return limit, (
        f"whitening keeps {limit} of the {wanted} dimensions asked for: fitted on {n_docs} "
        f"documents, more would make all documents equally similar (add documents, or "
        f"ask for at most {limit})"
    )


def fit_whitening(embeddings: np.ndarray, dim: int | None = None) -> Whitening:
    """Fit BERT-whitening on (n, d) embeddings, keeping ``dim`` output dimensions (None: d).

    Computed in float64 for a stable SVD; stored as float32. Directions with (near) zero
    variance are dropped, so ``k <= rank`` (e.g. fewer documents than dimensions).

    Raises:
        SimsearchError: fewer than 2 embeddings, or ``dim`` not in 1..d.
    """
    x = np.asarray(embeddings, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 2:
        raise SimsearchError("Whitening needs at least 2 embeddings (an (n, d) matrix).")
    n, d = x.shape
    if dim is not None and not 1 <= dim <= d:
        raise InvalidParameter(
            "whiten_dim", f"{{name}} must be between 1 and {d} (the model's dimension)."
        )
    mu = x.mean(axis=0)
    centered = x - mu
    cov = centered.T @ centered / n
    u, s, _ = np.linalg.svd(cov)
    k = dim or d
    k = min(k, int((s > s[0] * _REL_EPS).sum()))
    matrix = u[:, :k] / np.sqrt(s[:k])
    return Whitening(mu.astype(np.float32), matrix.astype(np.float32))
