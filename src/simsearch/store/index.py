"""The on-disk index: embeddings, the source rows, and metadata, in one directory.

Layout of an index named ``NAME`` under a root directory (default ``.simsearch``)::

    .simsearch/NAME/meta.json            metadata (simsearch.store.meta); written last: the commit
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
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from simsearch._fs.atomic import atomic_path, file_digest, path_size, write_npy_atomic
from simsearch.errors import DamagedIndex, InvalidParameter, SimsearchError
from simsearch.store.meta import IMPORTED, META, IndexMeta, ModelFiles, OnnxExport, damaged

DEFAULT_ROOT = ".simsearch"
DEFAULT_NAME = "default"
HASH_DTYPE = np.dtype("S16")
#: File systems allow 255 bytes per name; simsearch adds suffixes to temporary names.
MAX_NAME_BYTES = 100


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
    if len(name.encode("utf-8")) > MAX_NAME_BYTES:
        raise InvalidParameter(
            "name", f"the index {{name}} is {len(name)} characters long; use at most 100"
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
        meta: its metadata (:class:`~simsearch.store.meta.IndexMeta`).
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

    @property
    def imported(self) -> bool:
        """Whether the embeddings were imported with no model named (``similar`` works,
        ``query`` cannot encode text for it)."""
        return self.meta.model == IMPORTED

    @property
    def precision(self) -> str:
        """The precision the documents were encoded in (``fp32``, ``fp16``, ``int8``...)."""
        return self.meta.encode.precision

    @property
    def model_files(self) -> dict[str, Any] | None:
        """The fingerprint of a local model directory recorded at build time
        (``{"files": ..., "sha256": ...}``, see :mod:`simsearch.encoding.model_files`), or
        None for a hub model."""
        recorded = self.meta.get(ModelFiles)
        return None if recorded is None else recorded.as_dict()

    @property
    def onnx_key(self) -> str | None:
        """The key of the ONNX export (shared cache, :mod:`simsearch.encoding.onnx`) the
        index recorded at build time, or None (an index built before the shared cache,
        or a model with no export)."""
        recorded = self.meta.get(OnnxExport)
        return None if recorded is None else recorded.key

    def file(self, role: str) -> Path:
        """Path of the file with ``role`` (``embeddings``, ``rows``, ...) of this index."""
        return self.meta.file(self.path, role)

    @property
    def offsets(self) -> np.ndarray:
        """``(n_docs + 1,)`` int64 byte offsets of each row in the rows file."""
        if self._offsets is None:
            with self.reading("offsets"):
                offsets = np.load(self.file("offsets"), mmap_mode="r", allow_pickle=False)
            if offsets.shape != (self.n_docs + 1,) or offsets.dtype.kind not in "iu":
                raise damaged(self.path, f"{self.meta.files['offsets'].name} is not the offsets")
            self._offsets = offsets
        return self._offsets

    @contextlib.contextmanager
    def reading(self, role: str) -> Iterator[None]:
        """Turn any failure to read or parse the file of ``role`` into the "damaged,
        rebuild" error (a file can be damaged in ways that keep its size)."""
        try:
            yield
        except DamagedIndex:
            raise
        except SimsearchError as exc:  # e.g. a directory or FIFO where a file belongs
            raise damaged(self.path, str(exc)) from None
        except Exception as exc:  # noqa: BLE001 - numpy's header parser alone raises
            # ValueError, SyntaxError or tokenize.TokenError for the same damage
            name = self.meta.files[role].name if role in self.meta.files else role
            why = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise damaged(self.path, f"{name} is unreadable: {why}") from None

    _reading = reading  # the older name

    def columns_file(self) -> Path:
        """The parquet column file (role ``columns``) after checking, from its footer
        alone, that it holds one row per document (a hostile or mixed-up file with fewer
        rows would filter on a prefix of the index, one with more would index past it).

        Raises:
            KeyError: the index has no column file (built before filters existed).
            DamagedIndex: the file is unreadable or its row count is not ``n_docs``.
        """
        path = self.file("columns")
        with part_errors(self.path, path.name):
            import pyarrow.parquet as pq

            n_rows = pq.read_metadata(path).num_rows
        if n_rows != self.n_docs:
            raise damaged(self.path, f"{path.name} holds {n_rows} rows, not {self.n_docs}")
        return path

    def rows(self, positions: Sequence[int]) -> list[dict[str, Any]]:
        """The source rows at ``positions`` (0-based), as dicts column -> value, read by
        seeking in the rows file (cost grows with ``len(positions)``, not the corpus)."""
        from simsearch._fs.safe import open_regular

        out = []
        offsets = self.offsets
        with self.reading("rows"), open_regular(self.file("rows"), self.path) as handle:
            size = os.fstat(handle.fileno()).st_size
            for pos in positions:
                start, end = int(offsets[pos]), int(offsets[pos + 1])
                if not 0 <= start <= end <= size:
                    raise ValueError(f"row {pos} has offsets {start}..{end} outside the file")
                handle.seek(start)
                record = json.loads(handle.read(end - start))
                if not isinstance(record, dict):
                    raise ValueError(f"row {pos} is not a JSON object")
                out.append(record)
        return out

    @property
    def texts(self) -> list[str]:
        """All document texts in row order (reads the whole rows file). A build stores
        the encoded text itself in the text column (``""`` for an empty document)."""
        from simsearch._fs.safe import open_regular

        column = self.column
        with self.reading("rows"), open_regular(self.file("rows"), self.path) as handle:
            texts = [str(json.loads(line).get(column) or "") for line in handle]
        if len(texts) != self.n_docs:
            raise damaged(self.path, f"the rows file holds {len(texts)} rows, not {self.n_docs}")
        return texts

    def hashes(self) -> np.ndarray:
        """``(n_vectors,)`` ``|S16`` hashes (see :func:`text_hash`) of the encoded texts:
        one per row, or one per window when long documents are windows."""
        with self.reading("hashes"):
            hashes = np.load(self.file("hashes"), allow_pickle=False)
        if hashes.shape != (self.embeddings.shape[0],) or hashes.dtype != HASH_DTYPE:
            raise damaged(self.path, f"{self.meta.files['hashes'].name} is not the text hashes")
        return hashes

    def stored_row_vectors(self) -> np.ndarray | None:
        """``(n_docs, search_dim)`` float32, one L2-normalised vector per row, when the
        index holds them: the search matrix itself (no windows), or the ``row_vectors``
        part the build stored for windows (memory-mapped); ``None`` for a windowed index
        built before that part existed (:func:`simsearch.retrieval.parts.row_embeddings`
        computes them then).

        Raises:
            DamagedIndex: the stored part does not fit the index.
        """
        if "windows" not in self.meta.files:
            return self.embeddings
        if "row_vectors" not in self.meta.files:
            return None
        with self.reading("row_vectors"):
            rows = np.load(self.file("row_vectors"), mmap_mode="r", allow_pickle=False)
        if rows.dtype != np.float32 or rows.shape != (self.n_docs, self.embeddings.shape[1]):
            name = self.meta.files["row_vectors"].name
            raise damaged(self.path, f"{name} is not the row vectors")
        return rows

    def verify(self) -> None:
        """Compare every file with the sha256 recorded in its metadata.

        Raises:
            DamagedIndex: a file's checksum differs (the index is damaged).
        """
        for role, entry in self.meta.files.items():
            try:
                digest = file_digest(_member_file(self.path, entry.name, role not in FILE_ROLES))
            except OSError as exc:
                raise damaged(self.path, f"{entry.name} is unreadable: {exc}") from None
            if entry.sha256 and digest != entry.sha256:
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
            "text_columns": meta.table.text_columns,
            "model": meta.model,
            "rows": meta.n_docs,
            "empty": meta.n_empty,
            "dim": meta.dim,
            "size_bytes": sum(p.stat().st_size for p in self.path.iterdir() if p.is_file()),
            "created_at": meta.created_at,
            "stale": self.stale(),
            "meta": meta.to_dict(),
        }


@contextlib.contextmanager
def part_errors(index_path: str | os.PathLike[str], name: str) -> Iterator[None]:
    """Turn a failure to read, parse or check the part ``name`` of the index at
    ``index_path`` into the "damaged, rebuild" error, while a :class:`SimsearchError`
    (an invalid filter, a damaged index found deeper) passes unchanged.

    A file can be damaged in ways that keep its size (random bytes, a flipped bit) and
    :meth:`Index.verify` (sha256 of every file) is too slow to run on every open, so each
    part is checked where it is opened: parse errors (``ValueError``, ``BadZipFile``,
    ``UnicodeDecodeError``, ``ArrowInvalid``, ...) and failed shape or range checks
    (raised as ``ValueError``) land here.
    """
    try:
        yield
    except SimsearchError:
        raise
    except Exception as exc:  # noqa: BLE001 - each parser raises its own types
        why = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise damaged(index_path, f"{name}: {why[:200]}") from None


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
    if "embeddings" not in meta.files or "rows" not in meta.files or "offsets" not in meta.files:
        raise damaged(path, "meta.json does not name the embeddings, rows and offsets files")
    for role, entry in meta.files.items():
        file_path = _member_file(path, entry.name, role not in FILE_ROLES)
        size = path_size(file_path)
        if entry.size >= 0 and size != entry.size:
            raise damaged(path, f"{entry.name} has {size} bytes, not {entry.size}")
    matrix_path = meta.file(path, "search" if "search" in meta.files else "embeddings")
    try:
        matrix = np.load(matrix_path, mmap_mode="r")
    except PermissionError:
        raise SimsearchError(f"cannot read {matrix_path}: permission denied") from None
    except Exception as exc:  # noqa: BLE001 - a damaged header raises several types
        why = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise damaged(path, f"{matrix_path.name} is unreadable: {why}") from None
    if not isinstance(matrix, np.ndarray):
        raise damaged(path, f"{matrix_path.name} is not a .npy matrix")
    # With windows the matrix has one row per window (meta.windows.n_windows).
    n_vectors = meta.windows.n_windows if "windows" in meta.files and meta.windows else meta.n_docs
    if matrix.dtype != np.float32 or matrix.shape != (n_vectors, meta.search_dim):
        raise damaged(
            path,
            f"{matrix_path.name} holds {matrix.shape} {matrix.dtype}, "
            f"metadata says ({n_vectors}, {meta.search_dim}) float32",
        )
    return Index(path=path, meta=meta, embeddings=matrix)


#: Roles that are always single regular files (a feature's role may be a directory).
FILE_ROLES = {"embeddings", "rows", "offsets", "hashes", "search", "whitening"}


def _member_file(path: Path, name: str, role_may_be_directory: bool = False) -> Path:
    """A file the metadata names, checked to be a regular file of this index (not a
    link, a FIFO, a device or a directory; inside the index directory).

    Raises:
        DamagedIndex: otherwise.
    """
    from simsearch._fs.safe import check_regular
    from simsearch.store.layout import member

    file_path = member(path, name)
    try:
        if not (role_may_be_directory and _is_real_directory(file_path)):
            check_regular(file_path, within=path)
    except FileNotFoundError:
        raise damaged(path, f"{name} is missing") from None
    except (SimsearchError, OSError) as exc:
        raise damaged(path, str(exc)) from None
    return file_path


def _is_real_directory(path: Path) -> bool:
    import stat

    try:
        return stat.S_ISDIR(path.lstat().st_mode)
    except OSError:
        return False


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
    until the first one finishes, so two runs never interleave their files; see
    :func:`simsearch._fs.safe.index_lock` (no symlink followed, no file left behind).
    """
    from simsearch._fs.safe import index_lock
    from simsearch.store.layout import claim_index_dir

    claim_index_dir(path)
    with index_lock(path, on_wait=on_wait):
        yield
