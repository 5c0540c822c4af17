"""The on-disk index: embeddings, the source rows, and metadata, in one directory.

Layout of an index named ``NAME`` under a root directory (default ``.simsearch``)::

    .simsearch/NAME/meta.json            metadata; written last, it is the commit point
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
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from simsearch.errors import SimsearchError

FORMAT_VERSION = 1
DEFAULT_ROOT = ".simsearch"
DEFAULT_NAME = "default"
META = "meta.json"
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
        raise SimsearchError(f"invalid index name {name!r}; use letters, digits, '-' or '_'")
    return Path(root) / name


# --------------------------------------------------------------------------- writing


def fsync_dir(path: Path) -> None:
    """fsync a directory so a rename inside it survives a power cut (no-op on Windows)."""
    if os.name == "nt":  # pragma: no cover
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; on success fsync it and rename it over
    ``target``. On error the temporary file is removed and ``target`` is untouched."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp_path, target)
        fsync_dir(target.parent)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_json_atomic(target: Path, data: dict[str, Any]) -> None:
    """Write ``data`` as UTF-8 JSON to ``target`` atomically."""
    with atomic_path(target) as tmp:
        tmp.write_text(json.dumps(data, ensure_ascii=False, indent=2), encoding="utf-8")


def write_npy_atomic(target: Path, array: np.ndarray) -> None:
    """Write ``array`` as ``.npy`` to ``target`` atomically."""
    with atomic_path(target) as tmp, open(tmp, "wb") as handle:
        np.save(handle, array, allow_pickle=False)


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


def file_digest(path: Path, block_bytes: int = 1 << 22) -> str:
    """Hex sha256 of a file (read in 4 MiB blocks)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(block_bytes):
            digest.update(block)
    return digest.hexdigest()


def now_iso() -> str:
    """The current UTC time as an ISO-8601 string with seconds."""
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


# --------------------------------------------------------------------------- reading


@dataclass
class Index:
    """An index opened for reading.

    Attributes:
        path: the index directory.
        meta: the parsed ``meta.json`` (see :mod:`simsearch.build` for its keys).
        embeddings: ``(n_docs, dim)`` float32 search matrix, memory-mapped read-only;
            rows are L2-normalised (empty documents are zero rows).
    """

    path: Path
    meta: dict[str, Any]
    embeddings: np.ndarray
    _offsets: np.ndarray | None = field(default=None, repr=False)

    @property
    def n_docs(self) -> int:
        """Number of documents (rows of the source file)."""
        return int(self.meta["n_docs"])

    @property
    def dim(self) -> int:
        """Embedding dimension of the search matrix."""
        return int(self.embeddings.shape[1])

    @property
    def column(self) -> str:
        """The source column whose text was encoded."""
        return str(self.meta["source"]["column"])

    @property
    def model(self) -> str:
        """The model id (hub id or absolute local path) the embeddings were made with."""
        return str(self.meta["model"])

    def file(self, key: str) -> Path:
        """Path of one of the files named in ``meta['files']``."""
        return self.path / self.meta["files"][key]

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
        """All document texts in row order (reads the whole rows file)."""
        column = self.column
        with open(self.file("rows"), encoding="utf-8") as handle:
            return [_as_text(json.loads(line).get(column)) for line in handle]

    def hashes(self) -> np.ndarray:
        """``(n_docs,)`` ``|S16`` text hashes (see :func:`text_hash`)."""
        return np.load(self.file("hashes"))

    def verify(self) -> None:
        """Compare every file with the sha256 recorded in ``meta['checksums']``.

        Raises:
            SimsearchError: a file's checksum differs (the index is damaged).
        """
        for key, expected in self.meta.get("checksums", {}).items():
            if file_digest(self.file(key)) != expected:
                raise damaged(self.path, f"{self.meta['files'][key]} fails its sha256 check")


def _as_text(value: Any) -> str:
    from simsearch.corpus import cell_text

    return cell_text(value)


def damaged(path: Path, why: str) -> SimsearchError:
    """The error for an index that must not be used."""
    return SimsearchError(
        f"the index at {path} is damaged ({why}); rebuild it with "
        "'simsearch index FILE --column COL --rebuild'"
    )


def read_meta(path: Path) -> dict[str, Any]:
    """Parse ``path/meta.json``.

    Raises:
        SimsearchError: no index there yet, or the metadata is unreadable.
    """
    meta_path = path / META
    if path.exists() and not os.access(path, os.R_OK | os.X_OK):
        raise SimsearchError(f"cannot read the index directory {path}: permission denied")
    if not meta_path.exists():
        if path.is_dir() and any(path.glob("embeddings-*.npy")):
            raise damaged(path, "meta.json is missing")
        raise SimsearchError(
            f"no index found at {path}; run 'simsearch index FILE --column COL' first"
        )
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except PermissionError:
        raise SimsearchError(f"cannot read {meta_path}: permission denied") from None
    except (OSError, ValueError) as exc:
        raise damaged(path, f"meta.json is unreadable: {exc}") from None
    if not isinstance(meta, dict) or meta.get("format_version") != FORMAT_VERSION:
        raise damaged(path, "meta.json is not a simsearch index of this version")
    return meta


def load_index(root: str | Path = DEFAULT_ROOT, name: str = DEFAULT_NAME) -> Index:
    """Open the index ``name`` under ``root`` for searching.

    The embedding matrix is memory-mapped, so opening costs milliseconds whatever the
    corpus size. Shapes, dtype and file sizes are checked against the metadata; full
    checksums are checked by :meth:`Index.verify` (``simsearch info --verify``).

    Raises:
        SimsearchError: no index yet, or its files disagree with its metadata.
    """
    path = index_dir(root, name)
    if Path(root).exists() and not Path(root).is_dir():
        raise SimsearchError(f"--index {root} is a file, not a directory of indexes")
    meta = read_meta(path)
    try:
        files = meta["files"]
        n_docs, dim = int(meta["n_docs"]), int(meta["dim"])
        matrix_path = path / files.get("search", files["embeddings"])
    except (KeyError, TypeError, ValueError):
        raise damaged(path, "meta.json lacks required keys") from None
    for key, size in meta.get("sizes", {}).items():
        file_path = path / files[key]
        if not file_path.exists():
            raise damaged(path, f"{files[key]} is missing")
        if file_path.stat().st_size != size:
            raise damaged(path, f"{files[key]} has {file_path.stat().st_size} bytes, not {size}")
    try:
        matrix = np.load(matrix_path, mmap_mode="r")
    except PermissionError:
        raise SimsearchError(f"cannot read {matrix_path}: permission denied") from None
    except (OSError, ValueError) as exc:
        raise damaged(path, f"{matrix_path.name} is unreadable: {exc}") from None
    expected_dim = int(meta.get("search_dim", dim))
    if matrix.dtype != np.float32 or matrix.shape != (n_docs, expected_dim):
        raise damaged(
            path,
            f"{matrix_path.name} holds {matrix.shape} {matrix.dtype}, "
            f"metadata says ({n_docs}, {expected_dim}) float32",
        )
    return Index(path=path, meta=meta, embeddings=matrix)


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
