"""The on-disk index: embeddings, the source rows, and metadata, in one directory.

Layout of an index named ``NAME`` under a root directory (default ``.simsearch``)::

    .simsearch/NAME/meta.json            metadata (simsearch.meta); written last: the commit
    .simsearch/NAME/embeddings-G.npy     (n_docs, dim) float32, L2-normalised rows
    .simsearch/NAME/rows-G.jsonl         row i of the source as one JSON object per line
    .simsearch/NAME/offsets-G.npy        (n_docs + 1,) int64 byte offsets into rows-G.jsonl
    .simsearch/NAME/hashes-G.npy         (n_docs,) |S16 blake2b digest of each document text
    .simsearch/NAME/work/                checkpoint of an unfinished ``index`` run

``G`` is a generation id. A build writes a whole new generation, each file atomically
(temporary file, fsync, rename), then replaces ``meta.json``; until that rename readers
see the old generation, after it the new one, never a mix. Old generations are deleted
after the commit.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from simsearch.atomic import atomic_path, file_digest, path_size, write_npy_atomic
from simsearch.errors import InvalidParameter, SimsearchError
from simsearch.meta import META, IndexMeta, damaged

if TYPE_CHECKING:
    from simsearch.flow import EmbeddingFlow
    from simsearch.whitening import Whitening

DEFAULT_ROOT = ".simsearch"
DEFAULT_NAME = "default"
HASH_DTYPE = np.dtype("S16")


def text_hash(text: str) -> bytes:
    """16-byte blake2b digest of a document text: the key that ties an embedding to its
    text, so unchanged texts are never encoded twice."""
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()


def text_hashes(texts: Sequence[str]) -> np.ndarray:
    """``(len(texts),)`` array of dtype ``|S16`` holding :func:`text_hash` of each text."""
    return np.array([text_hash(t) for t in texts], dtype=HASH_DTYPE)


def index_dir(root: str | Path = DEFAULT_ROOT, name: str = DEFAULT_NAME) -> Path:
    """The directory of the index ``name`` under ``root``."""
    if not name or "/" in name or "\\" in name or name.startswith("."):
        raise InvalidParameter(
            "name", f"invalid index {{name}} {name!r}; use letters, digits, '-' or '_'"
        )
    return Path(root) / name


# --------------------------------------------------------------------------- writing


def write_rows_atomic(rows_path: Path, offsets_path: Path, records: Iterator[dict]) -> int:
    """Write records as JSON lines plus their ``(n + 1,)`` int64 byte offsets, atomically.

    Returns the number of records written.
    """
    offsets = [0]
    with atomic_path(rows_path) as tmp, open(tmp, "wb") as handle:
        for record in records:
            line = json.dumps(record, ensure_ascii=False, default=str).encode("utf-8") + b"\n"
            handle.write(line)
            offsets.append(offsets[-1] + len(line))
    write_npy_atomic(offsets_path, np.asarray(offsets, dtype=np.int64))
    return len(offsets) - 1


def now_iso() -> str:
    """The current UTC time as an ISO-8601 string with seconds."""
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


# --------------------------------------------------------------------------- reading


@dataclass
class Index:
    """An index opened for reading.

    Attributes:
        path: the index directory.
        meta: its metadata (:class:`~simsearch.meta.IndexMeta`).
        embeddings: ``(n_docs, search_dim)`` float32 search matrix, memory-mapped
            read-only; rows are L2-normalised (empty documents are zero rows).
    """

    path: Path
    meta: IndexMeta
    embeddings: np.ndarray
    _offsets: np.ndarray | None = field(default=None, repr=False)

    @property
    def n_docs(self) -> int:
        """Number of documents (rows of the source file)."""
        return self.meta.n_docs

    @property
    def dim(self) -> int:
        """Embedding dimension of the search matrix."""
        return int(self.embeddings.shape[1])

    @property
    def column(self) -> str:
        """The source column whose text was encoded."""
        return self.meta.column

    @property
    def model(self) -> str:
        """The model id (hub id or absolute local path) the embeddings were made with."""
        return self.meta.model

    def file(self, role: str) -> Path:
        """Path of the file with ``role`` (``embeddings``, ``rows``, ...) of this index."""
        return self.meta.file(self.path, role)

    @property
    def offsets(self) -> np.ndarray:
        """``(n_docs + 1,)`` int64 byte offsets of each row in the rows file."""
        if self._offsets is None:
            self._offsets = np.load(self.file("offsets"), mmap_mode="r")
        return self._offsets

    def rows(self, positions: Sequence[int]) -> list[dict[str, Any]]:
        """The source rows at ``positions`` (0-based), as dicts column -> value, read by
        seeking in the rows file (cost grows with ``len(positions)``, not the corpus)."""
        out = []
        with open(self.file("rows"), "rb") as handle:
            for pos in positions:
                start, end = int(self.offsets[pos]), int(self.offsets[pos + 1])
                handle.seek(start)
                out.append(json.loads(handle.read(end - start)))
        return out

    @property
    def texts(self) -> list[str]:
        """All document texts in row order (reads the whole rows file). A build stores
        the encoded text itself in the text column (``""`` for an empty document)."""
        column = self.column
        with open(self.file("rows"), encoding="utf-8") as handle:
            return [str(json.loads(line).get(column) or "") for line in handle]

    def hashes(self) -> np.ndarray:
        """``(n_docs,)`` ``|S16`` text hashes (see :func:`text_hash`)."""
        return np.load(self.file("hashes"))

    def whitening(self) -> Whitening | None:
        """The stored BERT-whitening transform, or None when the index is not whitened."""
        if self.meta.whitening is None:
            return None
        from simsearch.whitening import Whitening

        return Whitening.load(self.file("whitening"))

    def flow(self) -> EmbeddingFlow | None:
        """The stored BERT-flow (an ONNX graph run by onnxruntime, no torch), or None."""
        if self.meta.flow is None:
            return None
        from simsearch.flow import EmbeddingFlow

        return EmbeddingFlow.load(self.file("flow"))

    def transform(self) -> Whitening | EmbeddingFlow | None:
        """The map from model embeddings to the search space (whitening or flow), or None
        when the index searches the raw embeddings. Both have ``.apply((m, d)) -> (m, k)``
        float32 unit rows."""
        return self.whitening() or self.flow()

    def verify(self) -> None:
        """Compare every file with the sha256 recorded in its metadata.

        Raises:
            DamagedIndex: a file's checksum differs (the index is damaged).
        """
        for entry in self.meta.files.values():
            if entry.sha256 and file_digest(self.path / entry.name) != entry.sha256:
                raise damaged(self.path, f"{entry.name} fails its sha256 check")

    def stale(self) -> str | None:
        """A warning when the source file was modified or removed after the index was
        built (compares size and modification time: one ``stat``), else ``None``."""
        src = self.meta.source
        path = Path(src.path)
        try:
            stat = path.stat()
        except OSError:
            return f"the source file {path} is gone; results come from the cached index"
        if stat.st_size != src.size_bytes or stat.st_mtime != src.mtime:
            return (
                f"{path.name} changed after the index was built; run 'simsearch index' again "
                "to update it (only changed rows are re-encoded)"
            )
        return None

    def describe(self) -> dict[str, Any]:
        """A flat summary: name, source, column, model, rows, dim, bytes on disk
        (``size_bytes``), ``stale`` (see :meth:`stale`) and the whole metadata."""
        meta = self.meta
        return {
            "name": self.path.name,
            "path": str(self.path),
            "source": meta.source.path,
            "sheet": meta.source.sheet,
            "column": meta.column,
            "model": meta.model,
            "rows": meta.n_docs,
            "empty": meta.n_empty,
            "dim": meta.dim,
            "size_bytes": sum(p.stat().st_size for p in self.path.iterdir() if p.is_file()),
            "created_at": meta.created_at,
            "stale": self.stale(),
            "meta": meta.to_dict(),
        }


def load_index(root: str | Path = DEFAULT_ROOT, name: str = DEFAULT_NAME) -> Index:
    """Open the index ``name`` under ``root`` for searching.

    The embedding matrix is memory-mapped, so opening costs milliseconds whatever the
    corpus size. Shapes, dtype and file sizes are checked against the metadata; full
    checksums are checked by :meth:`Index.verify` (``simsearch info --verify``).

    Raises:
        SimsearchError: no index yet, or its files disagree with its metadata
            (:class:`~simsearch.errors.DamagedIndex`).
    """
    path = index_dir(root, name)
    if Path(root).exists() and not Path(root).is_dir():
        raise InvalidParameter("root", f"{{name}} {root} is a file, not a directory of indexes")
    meta = IndexMeta.read(path)
    if "embeddings" not in meta.files:
        raise damaged(path, "meta.json names no embeddings file")
    for entry in meta.files.values():
        file_path = path / entry.name
        if not file_path.exists():
            raise damaged(path, f"{entry.name} is missing")
        size = path_size(file_path)
        if entry.size >= 0 and size != entry.size:
            raise damaged(path, f"{entry.name} has {size} bytes, not {entry.size}")
    matrix_path = meta.file(path, "search" if "search" in meta.files else "embeddings")
    try:
        matrix = np.load(matrix_path, mmap_mode="r")
    except PermissionError:
        raise SimsearchError(f"cannot read {matrix_path}: permission denied") from None
    except (OSError, ValueError) as exc:
        raise damaged(path, f"{matrix_path.name} is unreadable: {exc}") from None
    if matrix.dtype != np.float32 or matrix.shape != (meta.n_docs, meta.search_dim):
        raise damaged(
            path,
            f"{matrix_path.name} holds {matrix.shape} {matrix.dtype}, "
            f"metadata says ({meta.n_docs}, {meta.search_dim}) float32",
        )
    return Index(path=path, meta=meta, embeddings=matrix)


def open_path(path: str | Path) -> Index:
    """Open an index by its directory (one holding meta.json) or by an index root
    (its default index).

    Raises:
        SimsearchError: no index there (see :func:`load_index`).
    """
    path = Path(path)
    if (path / META).is_file():
        return load_index(path.parent, path.name)
    return load_index(path)


def describe_all(root: str | Path = DEFAULT_ROOT) -> list[dict[str, Any]]:
    """:meth:`Index.describe` for every index under ``root``; a damaged one is listed
    with its problem in ``error`` instead of failing the whole listing.

    Raises:
        SimsearchError: ``root`` does not exist or holds no index.
    """
    root = Path(root)
    out = []
    for path in list_indexes(root):
        try:
            out.append(load_index(root, path.name).describe())
        except SimsearchError as exc:
            out.append({"name": path.name, "path": str(path), "error": str(exc)})
    if not out:
        raise SimsearchError(f"no indexes at {root}; run 'simsearch index FILE --column COL' first")
    return out


def list_indexes(root: str | Path = DEFAULT_ROOT) -> list[Path]:
    """Index directories (those holding a ``meta.json``) directly under ``root``, sorted."""
    root = Path(root)
    if not root.is_dir():
        return []
    return sorted(p.parent for p in root.glob(f"*/{META}"))


@contextlib.contextmanager
def write_lock(path: Path, on_wait: Any = None) -> Iterator[None]:
    """Hold an exclusive lock on the index directory ``path`` while building it.

    A second ``index`` run on the same index waits here (calling ``on_wait()`` once)
    until the first one finishes, so two runs never interleave their files.
    """
    path.mkdir(parents=True, exist_ok=True)
    lock_file = path / ".lock"
    handle = open(lock_file, "a+")  # noqa: SIM115 - held for the whole block
    try:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows: no locking
            yield
            return
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if on_wait:
                on_wait()
            fcntl.flock(handle, fcntl.LOCK_EX)
        yield
    finally:
        handle.close()
