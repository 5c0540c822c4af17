"""What a build is asked for: :class:`BuildOptions` (the keywords of
:func:`simsearch.build.build_index`, checked for values only), :class:`Target` (the
resolved options and source that an index records and is compared with), and
:class:`BuildReport` (what a build did)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from simsearch.encoding.sbert import DEFAULT_MODEL, model_id
from simsearch.errors import InvalidParameter
from simsearch.store import index as store
from simsearch.store.meta import COLUMN_FORMAT, IMPORTED, AnnInfo, ColumnFileInfo, IndexMeta
from simsearch.tables.read import Corpus


@dataclass
class BuildReport:
    """What :func:`~simsearch.build.build_index` did.

    Attributes:
        path: the index directory.
        status: ``"up-to-date"`` (cache reused as is), ``"built"`` (new index),
            ``"updated"`` (re-encoded only what changed) or ``"imported"``.
        reasons: why the index was (re)built, e.g. ``["source file changed"]``.
        n_docs: documents (rows) in the index; ``n_empty`` of them are empty.
        n_texts: distinct non-empty texts among the units (rows, or windows): what the
            model encodes, each once; ``encoded + resumed + reused == n_texts``.
        encoded: distinct texts encoded in this run; ``reused``: distinct texts whose
            embedding came from the cache; ``dropped``: cached texts no longer in the
            source.
        resumed: texts taken from the checkpoint of an interrupted run.
        truncated: texts longer than the model's max sequence length (cut when encoded;
            0 with windows, which always fit).
        n_windows: units of the index (windows, empty rows included; ``n_docs`` without
            chunking), each one vector;
            ``n_split``: documents cut into more than one window.
        tokenized: distinct texts analysed by Kiwi for the lexical index in this run (a
            repeated text once; unchanged texts reuse the previous build's terms).
        cut: 0-based rows longer than :data:`simsearch.build.plan.MAX_TEXT_CHARS`
            characters, indexed by their first ones only.
        seconds: wall time of the whole build.
    """

    path: Path
    status: str
    reasons: list[str] = field(default_factory=list)
    n_docs: int = 0
    n_empty: int = 0
    n_texts: int = 0
    encoded: int = 0
    reused: int = 0
    dropped: int = 0
    resumed: int = 0
    truncated: int = 0
    n_windows: int = 0
    n_split: int = 0
    tokenized: int = 0
    cut: list[int] = field(default_factory=list)
    seconds: float = 0.0
    meta: IndexMeta | None = None


@dataclass(frozen=True)
class BuildOptions:
    """What to build and how (the keyword arguments of
    :func:`~simsearch.build.build_index`). ``model`` is what the caller gave (``None``:
    the default); :attr:`Target.model` is the resolved name used everywhere after."""

    sheet: str | None = None
    model: str | os.PathLike | None = None
    root: str | Path = store.DEFAULT_ROOT
    name: str = store.DEFAULT_NAME
    device: str | None = None
    batch_size: int = 32
    chunk_size: int | None = None
    rebuild: bool = False
    embeddings: str | Path | None = None
    backend: str = "auto"
    precision: str = "fp32"
    whiten: bool = False
    whiten_dim: int | None = None
    flow: bool = False
    header_row: int | None = None
    encoding: str | None = None
    ann: bool = False
    ray: str | None = None

    chunking: str = "auto"
    lexical: bool = True

    @property
    def chunk(self) -> int:
        """Texts per checkpoint (``chunk_size``, default ``8 * batch_size``)."""
        return self.chunk_size or 8 * self.batch_size

    def check(self) -> None:
        """Refuse values that cannot work, before anything is read or loaded (the checks
        that touch the network or import torch are in :mod:`simsearch.build.preflight`).

        Raises:
            InvalidParameter: naming the first bad option.
        """
        if self.batch_size < 1:
            raise InvalidParameter(
                "batch_size", f"{{name}} must be at least 1, got {self.batch_size}"
            )
        from simsearch.retrieval.parts import CHUNKINGS

        if self.chunking not in CHUNKINGS:
            raise InvalidParameter(
                "chunking", f"{{name}} must be one of {', '.join(CHUNKINGS)}, got {self.chunking!r}"
            )
        if self.flow and self.whiten:
            raise InvalidParameter("flow", "{name} and whitening exclude each other: pick one")
        if self.whiten_dim is not None and not self.whiten:
            raise InvalidParameter("whiten_dim", "{name} needs whitening turned on")
        if self.whiten_dim is not None and self.whiten_dim < 1:
            raise InvalidParameter(
                "whiten_dim", f"{{name}} must be at least 1, got {self.whiten_dim}"
            )
        if self.header_row is not None and self.header_row < 1:
            raise InvalidParameter(
                "header_row", f"{{name}} counts from 1 (Excel's row numbers), got {self.header_row}"
            )


def resolve_model(options: BuildOptions) -> str:
    """The model recorded in the index: the given one (any path-like as a string, a
    local directory as its absolute path), ``"imported"`` for an imported matrix with
    no model named, else :data:`~simsearch.encoding.sbert.DEFAULT_MODEL`."""
    if options.model is None:
        return IMPORTED if options.embeddings is not None else DEFAULT_MODEL
    return model_id(os.fspath(options.model))


def check_whiten_dim(whiten_dim: int | None, dim: int) -> None:
    """Refuse keeping more whitened dimensions than the embeddings have, before any
    file is written.

    Raises:
        InvalidParameter: ``whiten_dim > dim``.
    """
    if whiten_dim is not None and whiten_dim > dim:
        raise InvalidParameter(
            "whiten_dim",
            f"{{name}} is {whiten_dim} but the embeddings have {dim} dimensions; "
            f"choose at most {dim}",
        )


@dataclass(frozen=True)
class Target:
    """The index a build must leave: the source as read and the resolved options that
    decide its content. An existing index is reused while :meth:`reasons` is empty."""

    sha256: str  # of the bytes that were read, not of the file now
    sheet: str | None
    column: str
    model: str  # resolved: never None (see resolve_model)
    precision: str
    whiten: bool
    whiten_dim: int | None
    ann: bool
    chunking: str
    lexical: bool
    flow: bool
    imported: bool

    @classmethod
    def of(cls, options: BuildOptions, corpus: Corpus) -> Target:
        """The target of ``options`` over ``corpus``; an imported matrix is fp32 with
        one vector per row (no windows)."""
        imported = options.embeddings is not None
        return cls(
            sha256=corpus.sha256,
            sheet=corpus.sheet,
            column=corpus.column,
            model=resolve_model(options),
            precision="fp32" if imported else options.precision,
            whiten=options.whiten,
            whiten_dim=options.whiten_dim if options.whiten else None,
            ann=options.ann,
            chunking="none" if imported else options.chunking,
            lexical=options.lexical,
            flow=bool(options.flow),
            imported=imported,
        )

    def reasons(self, meta: IndexMeta | None, model_files_changed: bool = False) -> list[str]:
        """Why an index with ``meta`` is not this target (empty: it is).

        Args:
            meta: the previous index's metadata, ``None`` when there is none.
            model_files_changed: the files of the (same, local) model changed since
                ``meta`` was written (:func:`simsearch.build.preflight.model_files_changed`).
        """
        if meta is None:
            return ["no index yet"]
        src = meta.source
        reasons = []
        if src.sha256 != self.sha256:
            reasons.append("the source file changed")
        if src.sheet != self.sheet:
            reasons.append(f"sheet changed ({src.sheet!r} -> {self.sheet!r})")
        if src.column != self.column:
            reasons.append(f"column changed ({src.column!r} -> {self.column!r})")
        precision = meta.encode.precision
        if meta.model != self.model:
            reasons.append(f"model changed ({meta.model} -> {self.model})")
        elif model_files_changed:
            reasons.append(f"the files of model {meta.model} changed since the last build")
        elif precision != self.precision and meta.encode.status != "imported":
            reasons.append(f"precision changed ({precision} -> {self.precision})")
        return reasons + self._part_reasons(meta)

    def _part_reasons(self, meta: IndexMeta) -> list[str]:
        """Why the parts built beside the embeddings (whitening, ANN, windows, lexical
        index, flow) no longer match this target."""
        from simsearch.retrieval import filters

        reasons = []
        white = meta.whitening
        if (white is not None) != self.whiten or (
            white is not None and white.requested_dim != self.whiten_dim
        ):
            old = "on" if white else "off"
            reasons.append(f"whitening changed ({old} -> {'on' if self.whiten else 'off'})")
        if filters.ROLE not in meta.files:  # built before filters: add the column file
            reasons.append("no column file for filters yet")
        elif _column_format(meta) < COLUMN_FORMAT:  # CSV cells copied as text only
            reasons.append("column file of text only (before typed CSV columns)")
        if (meta.get(AnnInfo) is not None) != self.ann:
            reasons.append("ANN index requested" if self.ann else "ANN index no longer requested")
        chunking = meta.windows.chunking if meta.windows else "none"
        if chunking != self.chunking:
            reasons.append(f"chunking changed ({chunking} -> {self.chunking})")
        if self.lexical != (meta.lexical is not None):
            reasons.append("lexical index " + ("added" if self.lexical else "removed"))
        if (meta.flow is not None) != self.flow:
            old = "on" if meta.flow else "off"
            reasons.append(f"flow changed ({old} -> {'on' if self.flow else 'off'})")
        if _lacks_row_parts(meta):  # built before they were stored: `similar` computes them
            reasons.append("no stored row vectors or empty rows yet")
        return reasons


def _column_format(meta: IndexMeta) -> int:
    """The format of the index's column copy (1 when its section predates formats)."""
    info = meta.get(ColumnFileInfo)
    return info.format if info is not None else 1


def _lacks_row_parts(meta: IndexMeta) -> bool:
    """An index written before the build stored the row vectors of its windows and its
    empty rows (``row_vectors``, ``empty_rows``; see :func:`simsearch.build.parts.row_parts`)."""
    from simsearch.retrieval.parts import EMPTY_ROWS, ROW_VECTORS

    windows = "windows" in meta.files and ROW_VECTORS not in meta.files
    return windows or (meta.n_empty > 0 and EMPTY_ROWS not in meta.files)
