"""The embedding matrices of a generation, written block by block: the assembly of
cached and new vectors, the import of an ``--embeddings`` matrix, and :func:`map_blocks`,
the one loop that writes a transformed copy (whitening, flow, import).

Every matrix is written through :func:`open_memmap`: the free space is checked and the
file's blocks are reserved first, so a full disk is an ordinary error, never SIGBUS.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from simsearch._fs import atomic
from simsearch._fs import safe as safe_files
from simsearch.errors import SimsearchError

#: Rows copied per step (bounds memory: 8192 x dim x 4 B).
COPY_ROWS = 8192


def open_memmap(path: Path, shape: tuple[int, int], what: str) -> np.ndarray:
    """A new ``.npy`` float32 memory map of ``shape`` whose blocks are allocated now: a
    memory-mapped write cannot report a full disk (the process dies of SIGBUS), so the
    space is checked and claimed up front, where ENOSPC is an ordinary error.

    Raises:
        SimsearchError: not enough free space for ``what``.
        OSError: ENOSPC while reserving.
    """
    safe_files.check_free_space(path.parent, shape[0] * shape[1] * 4, what)
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=shape)
    with open(path, "rb+") as handle:
        safe_files.reserve(handle.fileno(), out.offset + out.nbytes)
    return out


def map_blocks(
    raw: np.ndarray,
    fn: Callable[[np.ndarray], np.ndarray],
    target: Path,
    dim: int,
    what: str,
    empty: np.ndarray | None = None,
) -> None:
    """Write ``fn(raw[block])`` for every block of :data:`COPY_ROWS` rows into a new
    ``(len(raw), dim)`` float32 ``.npy`` at ``target`` (atomically).

    Args:
        raw: ``(n, d)`` rows (a memory map is read one block at a time).
        fn: ``(b, d) -> (b, dim)`` float32.
        target: the file to write.
        dim: columns of the output.
        what: the matrix named in a free-space error.
        empty: ``(n,)`` bool; these rows are written as zeros.
    """
    n = raw.shape[0]
    with atomic.atomic_path(target) as tmp:
        out = open_memmap(tmp, (n, dim), what)
        for start in range(0, n, COPY_ROWS):
            block = np.asarray(fn(raw[start : start + COPY_ROWS]), dtype=np.float32)
            if empty is not None:
                block[empty[start : start + COPY_ROWS]] = 0.0
            out[start : start + len(block)] = block
        out.flush()
        del out


def import_matrix(npy: Path, matrix: np.ndarray, target: Path) -> int:
    """Write ``matrix`` (an ``--embeddings`` file checked by
    :func:`simsearch.build.embeddings_file.open_embeddings`) L2-normalised to ``target``;
    returns its dimension.

    Raises:
        SimsearchError: the matrix holds NaN or infinite values.
    """

    def checked(block: np.ndarray) -> np.ndarray:
        block = np.asarray(block, dtype=np.float32)
        if not np.isfinite(block).all():
            raise SimsearchError(f"{npy} contains NaN or infinite values")
        return normalise(block)

    dim = int(matrix.shape[1])
    map_blocks(matrix, checked, target, dim, "the embedding matrix")
    return dim


def assemble(
    target: Path,
    hashes: list[bytes],
    empty: np.ndarray,
    sources: tuple[dict[bytes, int], np.ndarray | None, dict[bytes, int], np.ndarray | None],
    dim: int,
) -> None:
    """Write the ``(len(hashes), dim)`` matrix of the units: empty units as zero rows,
    the others from the new vectors or else from the previous index's matrix.

    Args:
        target: the file to write.
        hashes: the unit hashes in order.
        empty: ``(n,)`` bool.
        sources: ``(new_rows, pending, cached, old_matrix)``: hash -> row of the freshly
            encoded ``pending`` matrix, hash -> row of the previous ``old_matrix``.
        dim: the embedding dimension.
    """
    new_rows, pending, cached, old_matrix = sources
    n = len(hashes)
    with atomic.atomic_path(target) as tmp:
        out = open_memmap(tmp, (n, dim), "the embedding matrix")
        for start in range(0, n, COPY_ROWS):
            stop = min(start + COPY_ROWS, n)
            block = np.zeros((stop - start, dim), dtype=np.float32)
            for offset, h in enumerate(hashes[start:stop]):
                if empty[start + offset]:
                    continue
                if h in new_rows:
                    block[offset] = pending[new_rows[h]]
                else:
                    block[offset] = old_matrix[cached[h]]
            out[start:stop] = block
        out.flush()
        del out


def normalise(block: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm (zero rows stay zero), float32."""
    norms = np.linalg.norm(block, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return (block / norms).astype(np.float32, copy=False)
