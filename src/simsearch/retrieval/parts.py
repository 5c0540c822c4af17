"""The retrieval parts of an index generation: the window map (long documents as
windows) and the lexical index (BM25 over Kiwi terms), built incrementally and opened as
a :class:`~simsearch.retrieval.modes.Retriever`.

Files of generation ``G`` (roles in ``meta.json``):

* ``windows``: ``windows-G.npy``, ``(n_windows, 3)`` int64 row/start/end
  (:func:`simsearch.text.windows.save_window_map`); absent when no document was split, so an
  index of short documents is exactly today's;
* ``lexical_matrix`` / ``lexical_vocab`` / ``lexical_terms``: ``bm25-G.npz``,
  ``vocab-G.json``, ``terms-G.jsonl`` (:class:`simsearch.retrieval.bm25.LexicalIndex`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from simsearch.retrieval import bm25 as lexical
from simsearch.text import windows as chunking

CHUNKINGS = ("auto", "sentences", "none")
LEXICAL_ROLES = {"matrix": "lexical_matrix", "vocab": "lexical_vocab", "terms": "lexical_terms"}
LogFn = Callable[[str], None]


@dataclass(frozen=True)
class WindowPlan:
    """The windows of a corpus for one model: what is encoded, and the row map."""

    windows: chunking.Windows
    max_tokens: int
    overlap_tokens: int
    chunking: str = "auto"

    @property
    def split(self) -> bool:
        """True when some row has more than one window (the map must be stored)."""
        return self.windows.n_windows != self.windows.n_rows


def lexical_names(files: dict) -> dict[str, str] | None:
    """``{matrix, vocab, terms}`` file names from an index's ``files`` map (values with a
    ``name`` attribute or plain names), or ``None`` when the index has no lexical part."""
    if LEXICAL_ROLES["matrix"] not in files:
        return None
    return {k: getattr(files[r], "name", files[r]) for k, r in LEXICAL_ROLES.items()}


def open_retriever(
    directory: Path,
    files: dict,
    embeddings: np.ndarray | None,
    n_rows: int,
    load_lexical: bool = True,
):
    """The :class:`~simsearch.retrieval.modes.Retriever` of an index directory.

    Args:
        directory: the index directory.
        files: its ``files`` map (role -> entry with ``name``, or plain names).
        embeddings: the search matrix (windows or rows), or ``None``.
        n_rows: number of rows.
        load_lexical: read the lexical index (when the index has one).

    Every part is checked against ``n_rows`` (and the window map against the rows of
    ``embeddings``) as it opens, before anything is allocated from it.

    Raises:
        DamagedIndex: a part is unreadable (random bytes, a flipped bit) or does not fit
            the index (row counts, shapes, indices out of range).
    """
    from simsearch.retrieval.modes import Retriever
    from simsearch.store.index import part_errors

    offsets = np.arange(n_rows + 1, dtype=np.int64)
    window_map = None
    if "windows" in files:
        name = getattr(files["windows"], "name", files["windows"])
        n_windows = None if embeddings is None else embeddings.shape[0]
        with part_errors(directory, name):
            window_map = chunking.load_window_map(directory / name, n_windows, n_rows)
            offsets = chunking.row_offsets(np.asarray(window_map[:, 0]), n_rows)
    names = lexical_names(files) if load_lexical else None
    lex = None
    if names is not None:
        with part_errors(directory, f"{names['matrix']} / {names['vocab']}"):
            lex = lexical.LexicalIndex.load(directory, names, n_rows=n_rows)
    return Retriever(embeddings, offsets, lex, window_map)


# --------------------------------------------------------------------------- row parts

#: File roles of the row parts written at build time (see :func:`write_row_parts`).
ROW_VECTORS = "row_vectors"
EMPTY_ROWS = "empty_rows"
#: Windows summed per step while writing the row vectors (bounds memory).
ROW_BLOCK = 65_536


def row_vectors_of(vectors: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """``(n_rows, dim)`` float32 L2-normalised mean of each row's windows (zero rows stay
    zero), computed in blocks of rows.

    Args:
        vectors: ``(n_windows, dim)`` float32 (a memmap is fine).
        offsets: ``(n_rows + 1,)`` int64 CSR window map.
    """
    n_rows = len(offsets) - 1
    out = np.empty((n_rows, vectors.shape[1]), dtype=np.float32)
    for a in range(0, n_rows, ROW_BLOCK):
        b = min(a + ROW_BLOCK, n_rows)
        block = np.asarray(vectors[offsets[a] : offsets[b]], dtype=np.float32)
        sums = np.add.reduceat(block, offsets[a:b] - offsets[a], axis=0)
        norms = np.linalg.norm(sums, axis=1, keepdims=True)
        norms[norms == 0] = 1.0
        out[a:b] = sums / norms
    return out


def write_row_parts(directory: Path, generation: str, files: dict[str, str],
                    texts: Sequence[str]) -> dict[str, str]:
    """Write the parts that ``similar`` and the non-empty filter would otherwise compute
    on every call; returns ``{role: file name}``:

    * ``row_vectors`` (``row_vectors-G.npy``, ``(n_rows, dim)`` float32): the row vectors
      of a windowed index (one-vector-per-row indexes use the search matrix itself);
    * ``empty_rows`` (``empty_rows-G.npy``, ``(n_empty,)`` int64): rows whose text is
      empty or blank (:func:`empty_rows`), written only when there are any.

    Args:
        directory: the index directory; files: the generation's ``{role: name}`` so far
            (the search matrix is ``search`` when transformed, else ``embeddings``);
        texts: the row texts.
    """
    from simsearch._fs.atomic import write_npy_atomic

    out: dict[str, str] = {}
    if "windows" in files:
        matrix = np.load(directory / files.get("search", files["embeddings"]), mmap_mode="r")
        window_map = chunking.load_window_map(directory / files["windows"])
        offsets = chunking.row_offsets(np.asarray(window_map[:, 0]), len(texts))
        out[ROW_VECTORS] = f"row_vectors-{generation}.npy"
        write_npy_atomic(directory / out[ROW_VECTORS], row_vectors_of(matrix, offsets))
    empty = empty_rows(texts)
    if len(empty):
        out[EMPTY_ROWS] = f"empty_rows-{generation}.npy"
        write_npy_atomic(directory / out[EMPTY_ROWS], empty)
    return out


def empty_rows(texts: Sequence[str]) -> np.ndarray:
    """``(n_empty,)`` int64 rows whose text is empty or blank (what the build counts as
    ``n_empty``: such a row is never a search result)."""
    return np.array([i for i, t in enumerate(texts) if not t.strip()], dtype=np.int64)


def open_parts(index, lexical: bool = True, exact: bool = False):
    """The :class:`~simsearch.retrieval.rank.Parts` of an opened index.

    Args:
        index: a :class:`simsearch.store.index.Index`.
        lexical: read the BM25 index when there is one (a dense ranking needs none).
        exact: the exact scan even when the index has an ANN index.

    Row vectors and empty rows come from their stored parts; an index built before those
    existed computes them here (the same values, only slower: its whole matrix or rows
    file is read).
    """
    from simsearch.retrieval import ann
    from simsearch.retrieval.dense_index import AnnDense, DenseParts, ExactDense
    from simsearch.retrieval.rank import Parts
    from simsearch.retrieval.rowfilter import RowFilter

    retriever = open_retriever(
        index.path, index.meta.files, index.embeddings, index.n_docs, load_lexical=lexical
    )
    rows = row_embeddings(index, retriever.offsets)
    dense_parts = DenseParts(index.embeddings, retriever.offsets, rows)
    graph = None if exact else ann.open_for(index)
    dense = ExactDense(dense_parts) if graph is None else AnnDense(dense_parts, graph)
    nonempty = None
    if index.meta.n_empty:
        if EMPTY_ROWS in index.meta.files:
            empty = load_empty_rows(index)
        else:  # an index built before the part existed: read its texts once
            empty = empty_rows(index.texts)
        nonempty = RowFilter(~RowFilter.of_rows(empty, index.n_docs).mask)
    return Parts(retriever, dense, nonempty, stored_fusion(index.meta))


def stored_fusion(meta):  # -> FusionOptions | None
    """The fusion settings of an index: those ``eval --tune`` stored (section ``fusion``),
    else the dense weight estimated at build time (section ``lexical``,
    :func:`simsearch.retrieval.fusion.estimate`; an index built before the estimate
    recorded the old default there), else ``None``."""
    from simsearch.retrieval.fusion import FusionOptions
    from simsearch.store.meta import FusionInfo

    info = meta.get(FusionInfo)
    if info is not None:
        return FusionOptions(info.method, info.dense_weight)
    lexical = meta.lexical
    if lexical is None:
        return None
    return FusionOptions(lexical.fusion, lexical.dense_weight)


def row_embeddings(index, offsets: np.ndarray | None = None) -> np.ndarray:
    """``(n_docs, search_dim)`` float32, one L2-normalised vector per row of an opened
    index: the search matrix, or for windows the stored mean of each row's window
    vectors; an index built before that part was stored computes it here
    (O(n_windows x dim), :func:`row_vectors_of`). ``offsets``: the window map's
    ``(n_docs + 1,)`` row offsets, when the caller has them.

    Raises:
        DamagedIndex: a part does not fit the index.
    """
    stored = index.stored_row_vectors()
    if stored is not None:
        return stored
    if offsets is None:
        offsets = open_retriever(
            index.path, index.meta.files, index.embeddings, index.n_docs, load_lexical=False
        ).offsets
    return row_vectors_of(index.embeddings, offsets)


def load_empty_rows(index) -> np.ndarray:
    """``(n_empty,)`` int64 of the ``empty_rows`` part of an opened index, checked: as
    many distinct rows as the metadata counts, each in ``range(n_docs)``, ascending.

    Raises:
        DamagedIndex: the file is unreadable or does not fit the index.
    """
    from simsearch.store.index import part_errors

    path = index.file(EMPTY_ROWS)
    with part_errors(index.path, path.name):
        empty = np.load(path, mmap_mode="r", allow_pickle=False)  # size checked: no bomb
        if not isinstance(empty, np.ndarray) or empty.dtype != np.int64 or empty.ndim != 1:
            raise ValueError("not an int64 vector of rows")
        if len(empty) != index.meta.n_empty:
            raise ValueError(f"{len(empty)} empty rows, the metadata counts {index.meta.n_empty}")
        if len(empty) and (empty[0] < 0 or empty[-1] >= index.n_docs
                           or np.any(np.diff(empty) <= 0)):
            raise ValueError(f"rows out of order or outside 0..{index.n_docs - 1}")
    return np.array(empty)
