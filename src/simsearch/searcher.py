"""A reusable searcher: one opened index with everything a query needs, kept warm.

:func:`open` returns a :class:`Searcher` that holds the memory-mapped index, its
ranking parts (window map, BM25 index, ANN, non-empty rows), the query encoder (the
ONNX export, or sentence-transformers), the index's stored transform and Kiwi (one per
process, :func:`simsearch.text.kiwi.get_kiwi`), each loaded on first use and then
kept. Its :meth:`Searcher.query` and :meth:`Searcher.similar` rank through the same
:func:`simsearch.retrieval.rank.rank` as the one-shot functions of
:mod:`simsearch.search`, so the results are identical; only the loading is shared::

    searcher = simsearch.open(name="patents")
    searcher.query("배터리 전극", k=5)           # DataFrame, as simsearch.query
    searcher.query(["전극", "분리막"], k=5)       # a batch: the model runs once
    searcher.similar(0, k=10)

The notebook functions :func:`query` and :func:`similar` (``simsearch.query``,
``simsearch.similar``) keep one open searcher per index (its directory and name) in
this process, so a loop over many queries is warm from its second call. Before each
call the index's generation is checked (one ``stat`` of ``meta.json`` and of each file
it names: :func:`signature`); a rebuilt or changed index is opened again, never served
stale. ``serve``, ``neighbors``, ``dedup`` and ``eval`` rank through a searcher too.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from simsearch import search
from simsearch.store import index as store
from simsearch.store.meta import META

if TYPE_CHECKING:
    import pandas as pd

    from simsearch.retrieval.hit import Hit
    from simsearch.retrieval.rank import Parts

LogFn = Callable[[str], None]
#: Open searchers kept by :func:`cached` (least recently used dropped first).
MAX_OPEN = 4
_UNSET = object()


def _quiet(_msg: str) -> None:
    pass


def signature(path: Path) -> tuple:
    """What identifies the generation of the index at ``path``: ``(inode, size,
    mtime_ns)`` of ``meta.json`` and of every file it names (a build replaces
    ``meta.json`` by a rename; a file changed in place changes its own stat).

    Raises:
        SimsearchError: no index at ``path`` (see :func:`simsearch.store.index.load_index`).
    """
    from simsearch.store.meta import IndexMeta

    meta_stat = _stat(path / META)
    if meta_stat is None:
        IndexMeta.read(path)  # raises the usual "no index" error
    names = _names_of(path, meta_stat)
    return (meta_stat, *(_stat(path / name) for name in names))


_NAMES: dict[tuple, tuple[str, ...]] = {}


def _names_of(path: Path, meta_stat: tuple | None) -> tuple[str, ...]:
    """The file names ``meta.json`` lists, parsed once per version of ``meta.json``."""
    from simsearch.store.meta import IndexMeta

    key = (str(path), meta_stat)
    names = _NAMES.get(key)
    if names is None:
        try:
            names = tuple(sorted(e.name for e in IndexMeta.read(path).files.values()))
        except Exception:  # noqa: BLE001 - a damaged meta.json: load_index says why
            names = ()
        if len(_NAMES) > 64:
            _NAMES.clear()
        _NAMES[key] = names
    return names


def _stat(path: Path) -> tuple | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


class Searcher:
    """An opened index that answers queries with everything loaded once (see the
    module doc). Thread-safe: parts and the encoder load under a lock, and ranking
    reads only memory-mapped or immutable arrays.

    Args:
        index: an opened :class:`~simsearch.store.index.Index`.
        device: where the query encoder runs (None: the ONNX export on the CPU when the
            index has one, else sentence-transformers' default device).
        log: receives one-line notices (a damaged ONNX export, k clamped...).

    Attributes:
        index: the index.
        signature: its generation when opened (:func:`signature`).
    """

    def __init__(self, index: store.Index, device: str | None = None,
                 log: LogFn | None = None) -> None:
        self.index = index
        self.device = device
        self.log = log or _quiet
        self.signature = signature(index.path)
        self._parts: dict[tuple[bool, bool], Parts] = {}
        self._encoder: Any = None
        self._transform: Any = _UNSET
        self._lock = threading.RLock()

    # ------------------------------------------------------------------ loading
    def stale(self) -> bool:
        """Whether the index on disk is no longer the generation this searcher holds
        (rebuilt, updated, or a file changed or removed)."""
        try:
            return signature(self.index.path) != self.signature
        except Exception:  # noqa: BLE001 - gone or damaged: certainly not this one
            return True

    def parts(self, mode: str | None = None, exact: bool = False) -> Parts:
        """The ranking parts (:func:`simsearch.retrieval.parts.open_parts`) for ``mode``
        (the lexical index is read only for a mode that may use it) and ``exact`` (the
        exact scan even when the index has an ANN index), opened once.

        Raises:
            DamagedIndex: a part is unreadable or does not fit the index.
        """
        lexical = mode != "dense"
        with self._lock:
            found = self._parts.get((lexical, exact))
            if found is None and not lexical:
                found = self._parts.get((True, exact))  # the lexical parts serve dense too
            if found is None:
                found = search.open_parts(self.index, mode, exact)
                self._parts[(lexical, exact)] = found
            return found

    def encoder(self) -> Any:
        """The query encoder (:func:`simsearch.encoding.encoders.query_encoder`), loaded
        on first use.

        Raises:
            SimsearchError: imported embeddings (no model), a local model changed since
                the build, or a model that cannot be loaded.
        """
        with self._lock:
            if self._encoder is None:
                from simsearch.encoding import encoders

                self._encoder = encoders.query_encoder(self.index, self.device, self.log)
            return self._encoder

    def transform(self) -> Any:
        """The index's stored transform (whitening or flow), or None; loaded once."""
        with self._lock:
            if self._transform is _UNSET:
                from simsearch.transforms import load_transform

                self._transform = load_transform(self.index)
            return self._transform

    def encode(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        """``(len(texts), search_dim)`` float32 L2-normalised query vectors in the index's
        search space (:func:`simsearch.search.encode_queries`)."""
        return search.encode_queries(self.index, list(texts), self.device, batch_size,
                                     self.encoder(), self.log, self.transform())

    # ------------------------------------------------------------------ searching
    def query_hits(  # noqa: PLR0913 - the keyword options of query
        self,
        text: str | Sequence[str],
        k: int | None = 10,
        *,
        mode: str | None = None,
        aggregate: str = "max",
        min_similarity: float | None = None,
        where: str | None = None,
        exact: bool = False,
        allowed: np.ndarray | None = None,
        batch_size: int = 32,
        dense_weight: float | None = None,
        fusion: str | None = None,
    ) -> list[Hit]:
        """:func:`simsearch.search.query_hits` over the loaded parts and encoder: the
        ``k`` documents nearest to each query text (a list is one batch: the model runs
        once for all), grouped by query in input order.

        Raises:
            SimsearchError: no query text, an empty query, ``k < 1``, a bad filter,
                an unknown mode, or a model problem.
        """
        texts = search.check_texts([text] if isinstance(text, str) else text)
        options = search.search_options(mode, aggregate, dense_weight, fusion)
        # The model and the transform load on first need, after the checks of the
        # query and the filter (as in the one-shot path).
        return search.query_hits(
            self.index, texts, k, self.device, batch_size, self.log, min_similarity,
            _Lazy(self), where, exact, options=options, allowed=allowed,
            parts=self.parts(options.mode, exact), transform=_Lazy(self),
        )

    def similar_hits(  # noqa: PLR0913 - the keyword options of similar
        self,
        doc: int,
        k: int | None = 10,
        *,
        include_self: bool = False,
        mode: str | None = None,
        min_similarity: float | None = None,
        where: str | None = None,
        exact: bool = False,
        allowed: np.ndarray | None = None,
        dense_weight: float | None = None,
        fusion: str | None = None,
    ) -> list[Hit]:
        """:func:`simsearch.search.similar_hits` over the loaded parts: the ``k``
        documents most similar to row ``doc``.

        Raises:
            InvalidParameter: ``doc`` out of range, ``k < 1``, a mode the index cannot
                run, or a bad filter.
        """
        search.check_doc(doc, self.index)
        options = search.search_options(mode, dense_weight=dense_weight, fusion=fusion)
        return search.similar_hits(
            self.index, doc, k, include_self, self.log, min_similarity, where, exact,
            options=options, allowed=allowed, parts=self.parts(options.mode, exact),
        )

    def query(self, text: str | Sequence[str], k: int | None = 10, **options: Any
              ) -> pd.DataFrame:
        """:meth:`query_hits` as a DataFrame (:func:`simsearch.search.hits_frame`): ``k``
        rows per query with a ``query`` column, as ``simsearch.query``."""
        return search.hits_frame(self.query_hits(text, k, **options))

    def similar(self, doc: int, k: int | None = 10, **options: Any) -> pd.DataFrame:
        """:meth:`similar_hits` as a DataFrame, as ``simsearch.similar``."""
        return search.hits_frame(self.similar_hits(doc, k, **options))

    def close(self) -> None:
        """Drop what this searcher loaded (the memory maps close with the arrays)."""
        with self._lock:
            self._parts.clear()
            self._encoder = None
            self._transform = _UNSET


class _Lazy:
    """The searcher's encoder and transform, loaded when a query is first encoded."""

    def __init__(self, searcher: Searcher) -> None:
        self.searcher = searcher

    def encode(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        return self.searcher.encoder().encode(texts, batch_size)

    def apply(self, vectors: np.ndarray) -> np.ndarray:
        transform = self.searcher.transform()
        return vectors if transform is None else transform.apply(vectors)


def open(  # noqa: A001 - simsearch.open, the notebook's name for it
    name: str = store.DEFAULT_NAME,
    *,
    root: str | os.PathLike = store.DEFAULT_ROOT,
    index: str | os.PathLike | None = None,
    device: str | None = None,
    log: LogFn | None = None,
) -> Searcher:
    """Open the index ``name`` under ``root`` (or the index directory ``index``) as a
    :class:`Searcher` that keeps what it loads.

    Example:
        >>> searcher = simsearch.open(name="patents")  # doctest: +SKIP
        >>> searcher.query("배터리 전극", k=5)  # doctest: +SKIP

    Raises:
        SimsearchError: no index there, or its files disagree with its metadata.
    """
    opened = store.open_path(index) if index is not None else store.load_index(root, name)
    return Searcher(opened, device=device, log=log)


# ------------------------------------------------------------------ the process's searchers
_OPEN: OrderedDict[tuple, Searcher] = OrderedDict()
_OPEN_LOCK = threading.Lock()


def cached(root: str | os.PathLike = store.DEFAULT_ROOT, name: str = store.DEFAULT_NAME,
           device: str | None = None) -> Searcher:
    """The open searcher of the index ``name`` under ``root`` in this process, opened
    again when its generation changed (:meth:`Searcher.stale`); at most
    :data:`MAX_OPEN` are kept.

    Raises:
        SimsearchError: no index there, or a damaged one.
    """
    path = store.index_dir(root, name)
    key = (str(Path(os.path.abspath(path))), device)
    with _OPEN_LOCK:
        found = _OPEN.get(key)
        if found is not None and not found.stale():
            _OPEN.move_to_end(key)
            return found
        _OPEN.pop(key, None)
    fresh = open(name, root=root, device=device)
    with _OPEN_LOCK:
        _OPEN[key] = fresh
        while len(_OPEN) > MAX_OPEN:
            _OPEN.popitem(last=False)[1].close()
    return fresh


def forget() -> None:
    """Close every searcher :func:`cached` keeps (the next call opens the index again)."""
    with _OPEN_LOCK:
        while _OPEN:
            _OPEN.popitem()[1].close()


def of(index: store.Index | Searcher) -> Searcher:
    """``index`` itself when it is a :class:`Searcher`, else a new one over it."""
    return index if isinstance(index, Searcher) else Searcher(index)


def similar(  # noqa: PLR0913 - keyword options of the notebook API
    doc: int,
    k: int | None = 10,
    *,
    root: str | os.PathLike = store.DEFAULT_ROOT,
    name: str = store.DEFAULT_NAME,
    include_self: bool = False,
    min_similarity: float | None = None,
    where: str | None = None,
    exact: bool = False,
    mode: str | None = None,
    dense_weight: float | None = None,
    fusion: str | None = None,
) -> pd.DataFrame:
    """Notebook API: the ``k`` documents most similar to row ``doc`` of the indexed file
    (through the approximate index when the index has one; ``exact=True`` scans all).
    The index stays open between calls (:func:`cached`): a loop is warm from its
    second call, and a rebuilt index is opened again.

    ``where`` keeps only rows matching an SQL condition over the source columns,
    applied before ranking (see :mod:`simsearch.retrieval.filters`).

    Example:
        >>> simsearch.similar(0, k=5, where="year >= 2020")  # doctest: +SKIP

    Args:
        k: at most this many rows; None with ``min_similarity``: no limit.
        min_similarity: keep only rows with cosine similarity ``>=`` this.
        dense_weight, fusion: override the index's fusion (``eval --tune``) or the
            default for this call: a weight in ``[0, 1]``, ``"convex"`` or ``"rrf"``.

    Returns:
        A DataFrame of up to ``k`` rows, nearest first (see
        :func:`simsearch.search.hits_frame`).

    Raises:
        SimsearchError: no index, ``doc`` out of range, ``k < 1``, a threshold outside
            ``[-1, 1]``, a bad filter.
    """
    return cached(root, name).similar(
        doc, k, include_self=include_self, min_similarity=min_similarity, where=where,
        exact=exact, mode=mode, dense_weight=dense_weight, fusion=fusion,
    )


def query(  # noqa: PLR0913 - keyword options of the notebook and CLI
    text: str | Sequence[str],
    k: int = 10,
    *,
    root: str | os.PathLike = store.DEFAULT_ROOT,
    name: str = store.DEFAULT_NAME,
    device: str | None = None,
    min_similarity: float | None = None,
    where: str | None = None,
    exact: bool = False,
    mode: str | None = None,
    aggregate: str = "max",
    dense_weight: float | None = None,
    fusion: str | None = None,
) -> pd.DataFrame:
    """Notebook API: the ``k`` documents most similar to a query text (or to each of
    several), encoded with the index's own model (through the approximate index when
    the index has one; ``exact=True`` scans all); ``where`` filters rows before
    ranking, as in :func:`similar`. The index and the model stay loaded between calls
    (:func:`cached`), so a loop is warm from its second call.

    Returns:
        A DataFrame of ``k`` rows per query with a ``query`` column (see
        :func:`simsearch.search.hits_frame`).

    Raises:
        SimsearchError: no index, empty query, ``k < 1``, a bad filter, model problems.
    """
    return cached(root, name, device).query(
        text, k, min_similarity=min_similarity, where=where, exact=exact, mode=mode,
        aggregate=aggregate, dense_weight=dense_weight, fusion=fusion,
    )
