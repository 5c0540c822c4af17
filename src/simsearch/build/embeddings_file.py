"""Checking a matrix imported with ``index --embeddings X.npy`` before anything is
written or locked (issue 13: a FIFO blocked while holding the lock, ``.npz`` was a
traceback, ``(n, 0)`` and all-zero matrices were accepted)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from simsearch.errors import SimsearchError

#: Rows checked per step when scanning the matrix for zero rows (bounded memory).
SCAN_ROWS = 8192


def open_embeddings(path: Path, n_rows: int) -> np.ndarray:
    """The ``(n_rows, dim)`` floating-point matrix in the ``.npy`` file ``path``,
    memory-mapped read-only, after checking it can be imported.

    Raises:
        SimsearchError: not a regular ``.npy`` file, not a 2-D floating-point matrix
            with one row per source row and at least one column, or every row zero.
    """
    from simsearch._fs.safe import check_regular

    if not path.exists() and not path.is_symlink():
        raise SimsearchError(f"embeddings file not found: {path}")
    if path.suffix.lower() == ".npz":
        raise SimsearchError(
            f"{path} is a .npz archive; save the matrix alone with numpy.save(path, matrix) "
            "and pass that .npy file"
        )
    check_regular(path.resolve() if path.is_symlink() else path)
    try:
        matrix = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise SimsearchError(f"cannot read {path} as a .npy matrix: {first}") from None
    if not isinstance(matrix, np.ndarray):
        raise SimsearchError(f"cannot read {path} as a .npy matrix")
    if matrix.ndim != 2 or matrix.shape[0] != n_rows:
        raise SimsearchError(
            f"{path} has shape {matrix.shape} but the source has {n_rows} rows; the matrix "
            "must be (n_rows, dim) with one row per source row, in order"
        )
    if matrix.shape[1] < 1:
        raise SimsearchError(
            f"{path} has shape {matrix.shape}: an embedding needs at least 1 column"
        )
    if not np.issubdtype(matrix.dtype, np.floating):
        raise SimsearchError(f"{path} holds {matrix.dtype}, not floating-point embeddings")
    if not any(np.any(matrix[s : s + SCAN_ROWS]) for s in range(0, n_rows, SCAN_ROWS)):
        raise SimsearchError(
            f"every row of {path} is zero: these are not embeddings (was the matrix saved "
            "before it was filled?)"
        )
    return matrix
