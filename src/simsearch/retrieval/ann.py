"""Approximate nearest-neighbour (ANN) search beside the exact float32 matrix.

Method: an HNSW graph (Malkov & Yashunin 2018, arXiv:1603.09320) built by
`usearch <https://github.com/unum-cloud/usearch>`_ over *compressed* copies of the
L2-normalised embeddings, then **exact rescoring**: the graph proposes
``oversample * k`` candidates, their float32 rows are read from the matrix on disk
(a memory map: only those rows are paged in) and ranked by the exact cosine similarity,
so the similarities shown are exact and the top-k order among the candidates is the
exact order.

Why usearch (measured in ``scripts/bench_scale.py``, see ``docs/scaling.md``): at 1M
realistic 768-d vectors its int8 HNSW answered in under 1 ms with recall@10 0.997 (100
candidates rescored), where faiss IVF with 8-bit scalar quantisation took 22-28 ms (the
exact scan: 764 ms, same run); faiss built 11x faster. Its index file can be
memory-mapped (``Index.restore(path, view=True)``): a cold ``similar``/``query`` process
maps the graph instead of reading it into its own memory (opening still walks the node
table: 8 ms at 100k, a few hundred ms at 1M on a loaded machine).

Compression: ``i8`` (default) stores each vector as int8 after scaling it by its own
largest absolute component (absmax quantisation). usearch maps floats to int8 as
``round(127 * x)``, which for a unit vector in 768 dimensions (components around 0.04)
would use only a few of the 255 levels; cosine similarity is scale-invariant per
vector, so the scaling changes no ranking and keeps ~7 bits per component. ``b1``
(sign bits, Hamming distance) is 32x smaller than float32 and needs a larger
``oversample``; ``f16`` is kept for comparison.

Filters and windows: :class:`simsearch.retrieval.dense_index.AnnDense` searches this
graph (built over the windows when long documents are split), groups the candidate
vectors to rows, rescores them exactly, oversamples by the filter's selectivity and the
windows per row, widens the search until ``k`` rows qualify, and falls back to the exact
scan when the graph cannot deliver them, so ``k`` results come back whenever ``k`` rows
match.

Imports of usearch happen inside functions: opening an index without ANN costs nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from simsearch.errors import SimsearchError, damaged
from simsearch.store.meta import AnnInfo

ProgressFn = Callable[[int, int], None]

#: Rows read from the float32 matrix per step while building (8192 x 768 x 4 B = 24 MiB).
BUILD_ROWS = 8192
DTYPES = ("i8", "b1", "f16")
LIBRARY = "usearch"


@dataclass(frozen=True)
class AnnOptions:
    """How the ANN index is built and searched.

    Attributes:
        dtype: stored vector type: ``i8`` (int8, 1 byte per dimension, default), ``b1``
            (1 bit per dimension, Hamming distance) or ``f16``.
        connectivity: HNSW links per node (``M`` in the paper); more links, better recall,
            bigger index.
        expansion_add: candidate list while inserting (``efConstruction``).
        expansion_search: candidate list while searching (``ef``); raised to the number
            of candidates wanted when that is larger.
        oversample: candidates rescored exactly per result asked for.
        threads: threads for batch search (0: all cores).
        build_threads: threads inserting vectors. 1 (default): the same matrix gives
            the same graph, byte for byte, and so the same top-k on every build
            (usearch draws the HNSW levels from a fixed-seed generator; only the
            interleaving of threads varies, and usearch takes no seed). 0: all cores,
            faster on a many-core machine but not reproducible.
    """

    dtype: str = "i8"
    connectivity: int = 16
    expansion_add: int = 128
    expansion_search: int = 128
    oversample: int = 10
    threads: int = 0
    build_threads: int = 1

    def check(self) -> None:
        """Raises SimsearchError naming the first invalid option."""
        if self.dtype not in DTYPES:
            raise SimsearchError(
                f"ANN dtype must be one of {', '.join(DTYPES)}, got {self.dtype!r}"
            )
        for name in ("connectivity", "expansion_add", "expansion_search", "oversample"):
            if getattr(self, name) < 1:
                raise SimsearchError(f"ANN {name} must be at least 1, got {getattr(self, name)}")
        for name in ("threads", "build_threads"):
            if getattr(self, name) < 0:
                raise SimsearchError(
                    f"ANN {name} must be 0 (all cores) or more, got {getattr(self, name)}")


def require_usearch() -> Any:
    """The ``usearch.index`` module, or a SimsearchError saying how to install it.

    onnxruntime (the fast query path) is loaded first when installed: importing it
    *after* usearch crashes the process (segmentation fault, usearch 2.26 with
    onnxruntime 1.31 on Linux), e.g. a notebook's ``similar`` then ``query``."""
    from importlib.util import find_spec

    if find_spec("onnxruntime") is not None:
        import onnxruntime  # noqa: F401 - load order, see above
    try:
        from usearch import index as usearch_index
    except ImportError:
        raise SimsearchError(
            "approximate search needs the usearch package; install it with "
            'pip install -e ".[ann]" (or pip install usearch)'
        ) from None
    return usearch_index


def _metric(dtype: str) -> str:
    return "hamming" if dtype == "b1" else "cos"


def encode_for_index(vectors: np.ndarray, dtype: str) -> np.ndarray:
    """The representation handed to usearch for ``dtype``.

    ``i8``: each row divided by its largest absolute component (absmax scaling; rows of
    zeros stay zero), float32, which usearch rounds to ``round(127 * x)``. ``b1``: sign
    bits packed 8 per byte (``np.packbits(x > 0)``), ``(n, ceil(dim / 8))`` uint8.
    ``f16``: float32 as is.

    Args:
        vectors: ``(n, dim)`` float32.
    """
    vectors = np.asarray(vectors, dtype=np.float32)
    if dtype == "b1":
        return np.packbits(vectors > 0, axis=1)
    if dtype == "i8":
        peak = np.abs(vectors).max(axis=1, keepdims=True)
        peak[peak == 0] = 1.0
        return vectors / peak
    return vectors


# --------------------------------------------------------------------------- building


def build_ann(
    matrix: np.ndarray,
    target: Path,
    options: AnnOptions | None = None,
    *,
    skip: np.ndarray | None = None,
    on_progress: ProgressFn | None = None,
) -> AnnInfo:
    """Build the ANN index of ``matrix`` and save it to ``target``, streaming.

    The float32 matrix is read ``BUILD_ROWS`` rows at a time (pass the memory-mapped
    ``.npy``: it is never loaded whole); only the compressed graph is held in memory
    (about ``dim + 8 * connectivity`` bytes per vector with ``i8``). The key of each
    vector is its row in ``matrix``. Rows of zeros (empty documents) and rows marked in
    ``skip`` are left out: they have no direction to search for.

    Args:
        matrix: ``(n, dim)`` float32, L2-normalised rows (document or window vectors).
        target: the index file to write (written beside as a temporary file, then
            renamed, so a crash never leaves a half-written index under that name).
        options: :class:`AnnOptions` (default: int8 HNSW, M=16).
        skip: optional ``(n,)`` bool, rows to leave out.
        on_progress: called as ``on_progress(done_rows, n)``.

    Returns:
        The metadata section describing the index (:class:`~simsearch.store.meta.AnnInfo`:
        library, version, parameters, ``n_vectors``, ``bytes``, ``bytes_per_vector``,
        ``build_seconds``).

    Raises:
        SimsearchError: usearch missing, invalid options, a matrix that is not 2-d, not
            enough space for the file (see :func:`save`).
    """
    options = options or AnnOptions()
    options.check()
    usearch_index = require_usearch()
    if matrix.ndim != 2:
        raise SimsearchError(f"the matrix to index must be 2-d, got shape {matrix.shape}")
    started = time.perf_counter()
    n, dim = matrix.shape
    index = usearch_index.Index(
        ndim=dim,
        metric=_metric(options.dtype),
        dtype=options.dtype,
        connectivity=options.connectivity,
        expansion_add=options.expansion_add,
        expansion_search=options.expansion_search,
    )
    added = 0
    for start in range(0, n, BUILD_ROWS):
        block = np.asarray(matrix[start : start + BUILD_ROWS], dtype=np.float32)
        keep = np.abs(block).max(axis=1) > 0 if block.size else np.zeros(0, bool)
        if skip is not None:
            keep &= ~np.asarray(skip[start : start + len(block)], dtype=bool)
        rows = np.flatnonzero(keep)
        if len(rows):
            keys = (rows + start).astype(np.uint64)
            vectors = encode_for_index(block[rows], options.dtype)
            index.add(keys, vectors, threads=options.build_threads)
            added += len(rows)
        if on_progress:
            on_progress(start + len(block), n)
    save(index, Path(target))
    size = Path(target).stat().st_size
    return AnnInfo(
        library=LIBRARY,
        version=_usearch_version(),
        kind="hnsw",
        metric=_metric(options.dtype),
        dtype=options.dtype,
        connectivity=options.connectivity,
        expansion_add=options.expansion_add,
        expansion_search=options.expansion_search,
        oversample=options.oversample,
        n_vectors=int(added),
        n_skipped=int(n - added),
        dim=int(dim),
        bytes=int(size),
        bytes_per_vector=round(size / max(added, 1), 1),
        build_seconds=round(time.perf_counter() - started, 2),
    )


def save(index: Any, target: Path) -> None:
    """Write the usearch ``index`` to ``target`` atomically, after checking the disk
    has room for its serialized length (plus a margin).

    usearch reports a failed write only as ``RuntimeError: Failed to serialize into
    stream``; it is turned into the same one-line error as any other full disk. Either
    way no temporary file is left and an existing ``target`` is untouched.

    Raises:
        SimsearchError: not enough space, or the write failed (one line).
    """
    import shutil

    from simsearch._fs.atomic import atomic_path
    from simsearch._fs.safe import check_free_space

    needed = int(getattr(index, "serialized_length", 0) or 0)
    target.parent.mkdir(parents=True, exist_ok=True)
    check_free_space(target.parent, needed, "the approximate index")
    with atomic_path(target) as tmp:
        try:
            index.save(str(tmp))
        except RuntimeError as exc:
            try:
                free = shutil.disk_usage(target.parent).free
            except OSError:
                free = 0
            why = (
                "no space left on the device; free some space or use a location on "
                "another disk" if free < needed else str(exc)
            )
            error = SimsearchError(f"failed writing the approximate index {target}: {why}")
            error.no_space = free < needed  # type: ignore[attr-defined] - as check_free_space
            raise error from None


def _usearch_version() -> str:
    try:
        from importlib import metadata

        return metadata.version("usearch")
    except Exception:  # noqa: BLE001 - a version string is informative only
        return "unknown"


# --------------------------------------------------------------------------- searching


@dataclass
class AnnIndex:
    """An ANN index opened for searching (memory-mapped by default).

    Attributes:
        index: the ``usearch.index.Index``.
        options: the options it was built with (``expansion_search`` and ``oversample``
            may be changed for searching).
        n_vectors: vectors in the graph.
    """

    index: Any
    options: AnnOptions
    n_vectors: int

    @classmethod
    def open(cls, path: Path, section: AnnInfo | None = None, view: bool = True) -> AnnIndex:
        """Open the index file ``path`` (``view=True``: memory-mapped; pages are read
        as the search touches them, and opening walks the node table, O(n)).

        Args:
            path: the file written by :func:`build_ann`.
            section: the metadata section :func:`build_ann` returned (for the options).

        Raises:
            SimsearchError: usearch missing.
            DamagedIndex: the file missing, unreadable, not a usearch index, or another
                index's graph (its size or dimension differs from ``section``); one line
                ending "rebuild it with 'simsearch index ... --rebuild'", as every
                damaged part of an index (its directory is ``path``'s).
        """

        usearch_index = require_usearch()
        path = Path(path)
        if not path.exists():
            raise damaged(path.parent, f"the ANN index file {path.name} is missing")
        try:
            index = usearch_index.Index.restore(str(path), view=view)
        except Exception as exc:  # noqa: BLE001 - usearch raises plain RuntimeErrors
            why = (str(exc).splitlines() or [type(exc).__name__])[0][:200]
            raise damaged(path.parent, f"{path.name}: {why}") from None
        if index is None:
            raise damaged(path.parent, f"{path.name} is not a usearch index")
        _check_against(index, section, path)
        known = {f.name for f in fields(AnnOptions)}
        values = asdict(section) if section is not None else {}
        options = AnnOptions(**{k: v for k, v in values.items() if k in known})
        index.expansion_search = options.expansion_search
        return cls(index=index, options=options, n_vectors=len(index))

    def candidates(self, queries: np.ndarray, count: int) -> list[np.ndarray]:
        """Up to ``count`` approximate nearest vector ids (keys) per query.

        Args:
            queries: ``(m, dim)`` float32, L2-normalised.

        Returns:
            ``m`` int64 arrays of vector ids, nearest first by the compressed distance.
        """
        count = max(1, min(count, self.n_vectors))
        self.index.expansion_search = max(self.options.expansion_search, count)
        encoded = encode_for_index(queries, self.options.dtype)
        found = self.index.search(encoded, count, threads=self.options.threads)
        if not hasattr(found, "counts"):  # usearch answers one query with a Matches
            return [np.asarray(found.keys, dtype=np.int64)]
        keys, counts = found.keys, found.counts
        return [keys[i, : counts[i]].astype(np.int64) for i in range(len(counts))]


def _check_against(index: Any, section: AnnInfo | None, path: Path) -> None:
    """Refuse a usearch graph that is not the one ``section`` describes (a file of
    another index put in its place): its vector count and dimension must match.

    Raises:
        DamagedIndex: they differ.
    """

    if section is None:
        return
    found = (len(index), int(index.ndim))
    wanted = (int(section.n_vectors), int(section.dim))
    if found != wanted:
        raise damaged(path.parent, (
            f"{path.name} holds {found[0]:,} vectors of dimension {found[1]}, the index "
            f"recorded {wanted[0]:,} of dimension {wanted[1]}"))


# --------------------------------------------------------------------------- index glue


#: ANN indexes opened in this process, by file path (a file name carries its build
#: generation, so a rebuilt index is a new key): a notebook's second query does not map
#: the file again.
_OPENED: dict[str, AnnIndex] = {}


def open_for(index: Any) -> AnnIndex | None:
    """The ANN index of an opened simsearch index, or ``None`` when it has none (opened
    once per process and file).

    Args:
        index: an opened :class:`simsearch.store.index.Index`; its metadata holds an
            :class:`~simsearch.store.meta.AnnInfo` section when ``index --ann`` built one.
    """
    section = index.meta.get(AnnInfo)
    if section is None:
        return None
    path = str(index.file("ann"))
    if path not in _OPENED:
        _OPENED.clear()  # keep one: an older generation's file may be deleted soon
        _OPENED[path] = AnnIndex.open(index.file("ann"), section)
    return _OPENED[path]
