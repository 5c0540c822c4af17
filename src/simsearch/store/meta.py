"""The index metadata (``meta.json``): one typed definition that reads, validates and
writes it. Every other module uses :class:`IndexMeta`'s attributes, never raw keys.

Format version 2 (this one)::

    {"format_version": 2, "name": ..., "created_at": ..., "model": ...,
     "source": {path, sha256, size_bytes, mtime, sheet, column},
     "columns": [...], "n_docs": n, "n_empty": n, "dim": d, "search_dim": d',
     "encode": {device, batch_size, backend, precision, status, encoded, reused,
                dropped, truncated},
     "versions": {package: version},
     "files": {role: {"name": ..., "size": bytes, "sha256": ...}},
     "sections": {key: {...}}}

``files`` names every file of the generation by role (``embeddings``, ``rows``,
``offsets``, ``hashes``; optional ``search``, ``whitening``, ``flow``, and whatever a feature
adds); a name is a plain file name inside the index directory (checked on read).

``sections`` holds OPTIONAL typed parts, one per feature (``whitening``, ``flow`` here; windows,
a lexical index, a columnar copy, an ANN index can be added the
same way): a frozen dataclass subclassing :class:`Section` with a ``KEY`` and the
``@section`` decorator. Readers of one section never see the others; a section this
version does not know is kept as is and written back unchanged.

Format version 1 (simsearch 0.1: ``files``/``sizes``/``checksums`` as three maps,
``whitening`` at the top level) is upgraded on read; other versions are refused with
a one-line "rebuild" message.
"""

from __future__ import annotations

import dataclasses
import json
import os
import types
import typing
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from simsearch.errors import REBUILD, DamagedIndex, InvalidParameter, SimsearchError, damaged

FORMAT_VERSION = 2
#: The model recorded for an index whose embeddings were imported with no model named:
#: ``similar`` works, ``query`` cannot encode text for it.
IMPORTED = "imported"
META = "meta.json"
#: meta.json is a few kilobytes; anything far larger is not ours.
MAX_META_BYTES = 64 << 20

S = TypeVar("S", bound="Section")


# --------------------------------------------------------------------------- parts


@dataclass(frozen=True)
class SourceInfo:
    """The source file as it was when the index was built."""

    path: str
    sha256: str
    size_bytes: int
    mtime: float
    sheet: str | None
    column: str


@dataclass(frozen=True)
class EncodeInfo:
    """How the embeddings were made in the last build."""

    device: str | None
    batch_size: int
    backend: str | None
    precision: str
    status: str
    encoded: int = 0
    reused: int = 0
    dropped: int = 0
    truncated: int = 0


@dataclass(frozen=True)
class FileEntry:
    """One file of the index generation: its name in the index directory, size in
    bytes and hex sha256."""

    name: str
    size: int
    sha256: str


class Section:
    """Base of the optional metadata sections (see the module doc)."""

    KEY: ClassVar[str] = ""


SECTIONS: dict[str, type[Section]] = {}


def section(cls: type[S]) -> type[S]:
    """Register an optional section class under its ``KEY``."""
    SECTIONS[cls.KEY] = cls
    return cls


@section
@dataclass(frozen=True)
class WhiteningInfo(Section):
    """BERT-whitening of the search matrix (files ``search`` and ``whitening``):
    ``requested_dim`` as asked (None: all), ``dim`` kept, ``fitted_on`` documents."""

    KEY: ClassVar[str] = "whitening"
    requested_dim: int | None
    dim: int
    fitted_on: int


@section
@dataclass(frozen=True)
class FlowInfo(Section):
    """BERT-flow of the search matrix (files ``search`` and ``flow``, an ONNX graph):
    ``dim`` kept, ``fitted_on`` embeddings, training ``epochs`` and the held-out negative
    log-likelihood per dimension (None: no held-out split)."""

    KEY: ClassVar[str] = "flow"
    dim: int
    fitted_on: int
    epochs: int
    heldout_nll_per_dim: float | None


@section
@dataclass(frozen=True)
class TableInfo(Section):
    """How the source table was read: ``text_columns`` joined into each document (one
    or several), the text ``encoding`` (None for binary formats), the 1-based
    ``header_row`` (document ``i`` is row ``header_row + 1 + i`` of the sheet or file),
    and the cells filled from merged ranges."""

    KEY: ClassVar[str] = "table"
    text_columns: list[str] = field(default_factory=list)
    encoding: str | None = None
    header_row: int = 1
    merged_cells_filled: int = 0


@section
@dataclass(frozen=True)
class ColumnFileInfo(Section):
    """The columnar copy of the source columns that filters read (file ``columns``,
    parquet; :mod:`simsearch.retrieval.filters`): each column's name and Arrow type, and
    the ``format`` of the copy: 1 (absent in older metadata) held the cells of a CSV/TSV
    file as text only; 2 types them (:data:`COLUMN_FORMAT`,
    :func:`simsearch.store.columns.typed_text`)."""

    KEY: ClassVar[str] = "column_file"
    types: dict[str, str]
    format: int = 1


#: The column copy's format written now: CSV/TSV cells typed (whole numbers, decimals,
#: dates, booleans; empty cells NULL). An index with an older copy is upgraded by the
#: next ``index`` run (the copy rewritten, every vector reused).
COLUMN_FORMAT = 2


@section
@dataclass(frozen=True)
class WindowsInfo(Section):
    """Long documents as overlapping windows (file ``windows``, the window -> row map;
    absent when no document was split): ``chunking`` ``auto`` or ``sentences``, the window size
    and overlap in model tokens, ``n_windows`` encoded and ``n_split`` rows cut."""

    KEY: ClassVar[str] = "windows"
    chunking: str
    max_tokens: int
    overlap_tokens: int
    n_windows: int
    n_split: int


@section
@dataclass(frozen=True)
class Generations(Section):
    """Housekeeping: the files of the previous generation, kept one build longer for
    readers that opened it a moment before the commit; the next build deletes them
    (:mod:`simsearch.store.generations`: only names listed here or in its journal)."""

    KEY: ClassVar[str] = "generations"
    previous: list[str]


@section
@dataclass(frozen=True)
class ModelFiles(Section):
    """Fingerprint of a local model directory (:mod:`simsearch.encoding.model_files`):
    each file's ``[size, mtime_ns]`` and one sha256 over their contents, so a model
    retrained into the same directory is noticed by ``index`` and ``query``."""

    KEY: ClassVar[str] = "model_files"
    files: dict[str, list[int]]
    sha256: str

    def as_dict(self) -> dict[str, Any]:
        return {"files": self.files, "sha256": self.sha256}


@section
@dataclass(frozen=True)
class OnnxExport(Section):
    """The ONNX export of the model that ``query`` runs without torch: its key in the
    shared, content-addressed export cache (:mod:`simsearch.encoding.onnx`), so the
    index says which export it needs and a missing one is named in one line."""

    KEY: ClassVar[str] = "onnx_export"
    key: str


@section
@dataclass(frozen=True)
class AnnInfo(Section):
    """The approximate nearest-neighbour index (file ``ann``; see :mod:`simsearch.retrieval.ann`):
    the library and its version, the HNSW and compression parameters it was built with,
    the vectors it holds (``n_skipped``: empty rows left out), its size and build time."""

    KEY: ClassVar[str] = "ann"
    library: str
    version: str
    kind: str
    metric: str
    dtype: str
    connectivity: int
    expansion_add: int
    expansion_search: int
    oversample: int
    n_vectors: int
    n_skipped: int
    dim: int
    bytes: int
    bytes_per_vector: float
    build_seconds: float


@section
@dataclass(frozen=True)
class LexicalInfo(Section):
    """The BM25 index over Kiwi terms (files ``lexical_matrix``, ``lexical_vocab``,
    ``lexical_terms``) and how hybrid search fuses it with the dense ranking."""

    KEY: ClassVar[str] = "lexical"
    analyzer: str
    k1: float
    b: float
    method: str
    n_terms: int
    fusion: str
    dense_weight: float


@section
@dataclass(frozen=True)
class FusionInfo(Section):
    """Fusion settings chosen for this index by ``eval --tune``
    (:func:`simsearch.science.tune.tune_fusion`); every ranking of the index uses them
    unless a call overrides them (``--fusion``, ``--dense-weight``). Absent: the
    library default (:data:`simsearch.retrieval.fusion.DEFAULT`).

    ``pairs`` labelled queries were used, ``folds`` cross-validation folds; ``heldout_mrr``
    and ``default_mrr`` are the held-out MRR@10 (x 100) of the tuning and of the default."""

    KEY: ClassVar[str] = "fusion"
    method: str
    dense_weight: float
    pairs: int
    folds: int
    heldout_mrr: float
    default_mrr: float


# --------------------------------------------------------------------------- the whole


@dataclass
class IndexMeta:
    """The whole ``meta.json`` of one index (see the module doc for the layout)."""

    name: str
    created_at: str
    model: str
    source: SourceInfo
    columns: list[str]
    n_docs: int
    n_empty: int
    dim: int
    search_dim: int
    encode: EncodeInfo
    versions: dict[str, str]
    files: dict[str, FileEntry]
    sections: dict[str, Any] = field(default_factory=dict)

    @property
    def column(self) -> str:
        """The source column whose text was encoded."""
        return self.source.column

    @property
    def table(self) -> TableInfo:
        """How the source was read (defaults for indexes built before it was recorded)."""
        return self.get(TableInfo) or TableInfo(text_columns=[self.source.column])

    @property
    def windows(self) -> WindowsInfo | None:
        """The windows section, or None for an index built before windows or with
        chunking none."""
        return self.get(WindowsInfo)

    @property
    def lexical(self) -> LexicalInfo | None:
        """The lexical section, or None when the index has no BM25 index."""
        return self.get(LexicalInfo)

    @property
    def whitening(self) -> WhiteningInfo | None:
        """The whitening section, or None when the index is not whitened."""
        return self.get(WhiteningInfo)

    @property
    def flow(self) -> FlowInfo | None:
        """The BERT-flow section, or None when the index has no flow."""
        return self.get(FlowInfo)

    def check_columns(self, show: Sequence[str]) -> None:
        """Refuse a column to show that is not one of the index's source columns.

        Raises:
            InvalidParameter: (``show``) the first missing column, with the choices.
        """
        missing = [c for c in show if c not in self.columns]
        if missing:
            listed = ", ".join(repr(c) for c in self.columns)
            raise InvalidParameter(
                "show", f"no column {missing[0]!r} to {{name}}; choose from: {listed}"
            )

    def get(self, kind: type[S]) -> S | None:
        """The optional section of class ``kind``, or None when absent."""
        value = self.sections.get(kind.KEY)
        return value if isinstance(value, kind) else None

    def with_section(self, value: Section) -> None:
        """Add or replace an optional section."""
        self.sections[value.KEY] = value

    def file(self, directory: Path, role: str) -> Path:
        """Path of the file with ``role`` inside ``directory`` (KeyError if none)."""
        return directory / self.files[role].name

    # -- JSON ------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The JSON object written to ``meta.json``."""
        out: dict[str, Any] = {"format_version": FORMAT_VERSION}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name == "sections":
                value = {
                    k: dataclasses.asdict(v) if isinstance(v, Section) else v
                    for k, v in value.items()
                }
            elif f.name == "files":
                value = {k: dataclasses.asdict(v) for k, v in value.items()}
            elif dataclasses.is_dataclass(value):
                value = dataclasses.asdict(value)
            out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, data: Any, path: Path) -> IndexMeta:
        """Validate a parsed ``meta.json`` (any format version this one reads).

        Raises:
            DamagedIndex: a missing or mistyped key, a file name outside the index
                directory, or a format version this simsearch does not read.
        """
        if not isinstance(data, dict):
            raise damaged(path, "meta.json is not a JSON object")
        version = data.get("format_version")
        if version == 1:
            data = _upgrade_v1(data)
        elif version != FORMAT_VERSION:
            raise DamagedIndex(
                f"the index at {path} has format version {version!r}; this simsearch reads "
                f"version {FORMAT_VERSION}: {REBUILD}"
            )
        body = {k: v for k, v in data.items() if k != "format_version"}
        meta = _convert(cls, body, "meta.json", path)
        for role, entry in meta.files.items():
            name = entry.name
            if not name or name != Path(name).name or name.startswith(".") or "\\" in name:
                raise damaged(path, f"file {role!r} is named {name!r}, outside the index")
        meta.sections = {
            k: _convert(SECTIONS[k], v, f"sections.{k}", path) if k in SECTIONS else v
            for k, v in meta.sections.items()
        }
        return meta

    @classmethod
    def read(cls, path: Path) -> IndexMeta:
        """Read and validate ``path/meta.json``.

        Raises:
            SimsearchError: no index there, or the directory is unreadable.
            DamagedIndex: meta.json unreadable, incomplete or of another format.
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
        from simsearch._fs.safe import read_bounded

        try:
            # A regular file of bounded size only: a FIFO must not block, a device or a
            # huge file must not be read forever.
            data = json.loads(read_bounded(meta_path, path, MAX_META_BYTES).decode("utf-8"))
        except PermissionError:
            raise SimsearchError(f"cannot read {meta_path}: permission denied") from None
        except (OSError, ValueError, SimsearchError) as exc:
            raise damaged(path, f"meta.json is unreadable: {exc}") from None
        return cls.from_dict(data, path)

    def write(self, path: Path) -> None:
        """Write ``path/meta.json`` atomically: the commit point of a build."""
        from simsearch._fs.atomic import write_json_atomic

        write_json_atomic(path / META, self.to_dict())


def _upgrade_v1(data: dict[str, Any]) -> dict[str, Any]:
    """A format-1 meta.json in the format-2 layout (same information)."""
    out = dict(data)
    files, sizes, sums = (data.get(k) or {} for k in ("files", "sizes", "checksums"))
    if not isinstance(files, dict):
        return out  # _convert reports it
    out["files"] = {
        role: {"name": name, "size": sizes.get(role, -1), "sha256": sums.get(role, "")}
        for role, name in files.items()
    }
    white = out.pop("whitening", None)
    out["sections"] = {}
    if isinstance(white, dict):
        requested = white.get("requested") or {}
        out["sections"]["whitening"] = {
            "requested_dim": requested.get("dim"),
            "dim": white.get("dim"),
            "fitted_on": white.get("fitted_on"),
        }
    for key in ("sizes", "checksums", "normalized"):
        out.pop(key, None)
    return out


# --------------------------------------------------------------------------- checking


def _convert(hint: Any, value: Any, where: str, path: Path) -> Any:
    """``value`` checked against the type ``hint`` (dataclasses built field by field)."""
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, where, path)
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        hint = next(a for a in args if a is not type(None))
        return _convert(hint, value, where, path)
    if origin is dict:
        if not isinstance(value, dict):
            raise damaged(path, f"{where} is not an object")
        return {str(k): _convert(args[1], v, f"{where}.{k}", path) for k, v in value.items()}
    if origin is list:
        if not isinstance(value, list):
            raise damaged(path, f"{where} is not a list")
        return [_convert(args[0], v, where, path) for v in value]
    if hint is Any:
        return value
    ok = {
        int: isinstance(value, int) and not isinstance(value, bool),
        float: isinstance(value, (int, float)) and not isinstance(value, bool),
        str: isinstance(value, str),
        bool: isinstance(value, bool),
    }.get(hint, True)
    if not ok:
        raise damaged(path, f"{where} is {value!r}, not {getattr(hint, '__name__', hint)}")
    return value


def _build(cls: Any, value: Any, where: str, path: Path) -> Any:
    if not isinstance(value, dict):
        raise damaged(path, f"{where} is not an object")
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name in value:
            kwargs[f.name] = _convert(hints[f.name], value[f.name], f"{where}.{f.name}", path)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise damaged(path, f"meta.json lacks {where}.{f.name}")
    return cls(**kwargs)
