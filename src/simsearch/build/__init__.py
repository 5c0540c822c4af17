"""Building an index: read the corpus, encode what is new, write a new generation.

A build is incremental and resumable:

* each document's embedding is keyed by a hash of its text (for one model), so after an
  edit of the source only texts never encoded before are encoded; reordered, deleted
  and unchanged rows reuse the cached vectors, and the result equals a full rebuild;
* the texts to encode are written chunk by chunk into ``work/pending.npy`` with a
  checkpoint after every chunk, so a killed or interrupted run resumes where it stopped;
* peak memory is bounded by one chunk, not by the corpus.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import json
import math
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from simsearch._fs import atomic
from simsearch._fs import safe as safe_files
from simsearch.encoding.sbert import DEFAULT_MODEL, model_id
from simsearch.errors import InvalidParameter, SimsearchError
from simsearch.retrieval import filters
from simsearch.retrieval.fusion import DEFAULT as FUSION
from simsearch.store import generations, layout
from simsearch.store import index as store
from simsearch.store.meta import (
    IMPORTED,
    META,
    AnnInfo,
    ColumnFileInfo,
    EncodeInfo,
    FileEntry,
    FlowInfo,
    Generations,
    IndexMeta,
    LexicalInfo,
    ModelFiles,
    SourceInfo,
    TableInfo,
    WhiteningInfo,
    WindowsInfo,
)
from simsearch.tables.cells import cell_text
from simsearch.tables.read import Corpus, read_corpus

ProgressFn = Callable[[int, int], None]
LogFn = Callable[[str], None]
#: Rows copied per step when assembling the final matrix (bounds memory: 8192 x dim x 4 B).
COPY_ROWS = 8192


@dataclass
class BuildReport:
    """What :func:`build_index` did.

    Attributes:
        path: the index directory.
        status: ``"up-to-date"`` (cache reused as is), ``"built"`` (new index),
            ``"updated"`` (re-encoded only what changed) or ``"imported"``.
        reasons: why the index was (re)built, e.g. ``["source file changed"]``.
        n_docs: documents (rows) in the index; ``n_empty`` of them are empty.
        encoded: texts encoded in this run; ``reused``: rows whose embedding came from the
            cache; ``dropped``: cached texts no longer in the source.
        resumed: texts taken from the checkpoint of an interrupted run.
        truncated: texts longer than the model's max sequence length (cut when encoded;
            0 with windows, which always fit).
        n_windows: texts encoded for the index (windows; ``n_docs`` without chunking);
            ``n_split``: documents cut into more than one window.
        tokenized: texts analysed by Kiwi for the lexical index in this run.
        seconds: wall time of the whole build.
    """

    path: Path
    status: str
    reasons: list[str] = field(default_factory=list)
    n_docs: int = 0
    n_empty: int = 0
    encoded: int = 0
    reused: int = 0
    dropped: int = 0
    resumed: int = 0
    truncated: int = 0
    n_windows: int = 0
    n_split: int = 0
    tokenized: int = 0
    seconds: float = 0.0
    meta: IndexMeta | None = None


@dataclass(frozen=True)
class BuildOptions:
    """What to build and how (the keyword arguments of :func:`build_index`)."""

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
    def model_name(self) -> str:
        """The model recorded in the index: the given one (any path-like as a string),
        ``"imported"`` for an imported matrix with no model named, else the default."""
        if self.model is None:
            return IMPORTED if self.embeddings is not None else DEFAULT_MODEL
        return model_id(os.fspath(self.model))

    def check(self) -> None:
        """Refuse options that cannot work, before anything is read or loaded.

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
        if self.embeddings is None:
            from simsearch.encoding.encoders import check_options, resolve_backend
            from simsearch.encoding.model_files import check_local_model
            from simsearch.encoding.preflight import check_hub_model

            check_local_model(self.model_name)  # a bad path: refused before torch is imported
            check_hub_model(self.model_name)  # seconds, before the file or torch is loaded
            backend = resolve_backend(self.backend, self.device, self.precision, self.ray)
            check_options(backend, self.precision, self.device, self.ray)


def build_index(  # noqa: PLR0913 - the notebook API: one keyword per BuildOptions field
    source: str | Path,
    column: str,
    *,
    sheet: str | None = None,
    model: str | os.PathLike | None = None,
    root: str | Path = store.DEFAULT_ROOT,
    name: str = store.DEFAULT_NAME,
    device: str | None = None,
    batch_size: int = 32,
    chunk_size: int | None = None,
    rebuild: bool = False,
    embeddings: str | Path | None = None,
    on_progress: ProgressFn | None = None,
    log: LogFn | None = None,
    backend: str = "auto",
    precision: str = "fp32",
    whiten: bool = False,
    whiten_dim: int | None = None,
    flow: bool = False,
    header_row: int | None = None,
    encoding: str | None = None,
    ann: bool = False,
    ray: str | None = None,
    chunking: str = "auto",
    lexical: bool = True,
) -> BuildReport:
    """Encode ``column`` of ``source`` and save it as the index ``name`` under ``root``.

    Args:
        source: ``.xlsx``/``.csv``/``.tsv``/``.parquet``/``.jsonl`` file; row i is document i.
        column: the text column to encode; several (a list, or comma-separated) are
            joined per row with a line break into one document.
        sheet: Excel sheet name or 0-based number (default the first sheet, or the one
            sheet that has the column).
        model: SentenceTransformer hub id or local directory, any path-like (default
            ``jhgan/ko-sroberta-multitask``; with ``embeddings`` and no model, the index
            records ``"imported"`` and cannot encode query texts).
        device: torch device; default GPU when available, else CPU.
        batch_size: texts per forward pass.
        chunk_size: texts per checkpoint (default ``8 * batch_size``).
        rebuild: ignore the cache and encode everything again.
        embeddings: a ``.npy`` of shape ``(n_rows, dim)`` computed elsewhere (e.g. a
            notebook's ``model.encode`` output) to import instead of encoding; rows are
            L2-normalised on import.
        on_progress: called as ``on_progress(done, total)`` (texts) while encoding.
        log: called with one-line status messages (cache reuse, resume, truncation).
        backend: ``torch`` (sentence-transformers), ``onnx`` (onnxruntime on CPU), or
            ``auto`` (default): ``onnx`` when onnxruntime is installed and no GPU is used,
            else ``torch``; see :func:`simsearch.encoding.encoders.resolve_backend`.
        precision: ``fp32``; ``fp16``/``bf16`` on a GPU with torch; ``int8`` with onnx.
        whiten: search a BERT-whitened copy of the matrix (Su et al. 2021, see
            :mod:`simsearch.transforms.whitening`), fitted on the corpus and applied to queries too;
            the raw embeddings stay cached, so turning it on or off re-encodes nothing.
        whiten_dim: keep this many whitened dimensions (default all; at most
            ``(n - 1) // 2`` when fitted on ``n`` non-empty documents, see
            :func:`simsearch.transforms.whitening.safe_dim`).
        flow: search a BERT-flow copy of the matrix (Li et al. 2020, see
            :mod:`simsearch.transforms.flow`): a normalizing flow fitted on the corpus embeddings,
            stored as an ONNX graph and applied to queries too (no torch needed then).
        header_row: 1-based row of the header as Excel numbers rows (default detected).
        encoding: codec of a CSV/TSV file (default detected: UTF-8, cp949, UTF-16...).
        ann: also build an approximate nearest-neighbour index (usearch HNSW over int8
            vectors, exact rescoring; see :mod:`simsearch.retrieval.ann`), which ``similar`` and
            ``query`` then use unless asked for the exact scan.
        ray: encode on Ray: ``"local"`` (a Ray instance on this machine), ``"auto"``, or
            a head address (``ray://HOST:10001``); see :mod:`simsearch.encoding.distributed`.
            ``device="cuda:0,cuda:1"`` encodes on several GPUs of this machine instead.
        chunking: ``auto``: documents longer than the model's max sequence length are
            encoded as overlapping windows (:mod:`simsearch.text.windows`) and rows are ranked
            by their windows; ``none``: truncated as the model does.
        lexical: also build the BM25 index over Kiwi terms (:mod:`simsearch.retrieval.bm25`)
            for lexical and hybrid search.

    Returns:
        A :class:`BuildReport`.

    Raises:
        SimsearchError: bad source, column, sheet, model, device or imported matrix
            (:class:`~simsearch.errors.InvalidParameter` names the argument).
    """
    values = dict(locals())  # the keywords are named like the fields of BuildOptions
    fields = {f.name for f in dataclasses.fields(BuildOptions)}
    options = BuildOptions(**{k: v for k, v in values.items() if k in fields})
    return build(source, column, options, on_progress=on_progress, log=log)


def build(
    source: str | Path,
    column: str,
    options: BuildOptions,
    *,
    on_progress: ProgressFn | None = None,
    log: LogFn | None = None,
) -> BuildReport:
    """:func:`build_index` with its options as one :class:`BuildOptions`."""
    started = time.perf_counter()
    log = log or (lambda _msg: None)
    options.check()
    if options.embeddings is None:
        from simsearch.encoding.model_files import check_local_model

        check_local_model(options.model_name)  # before torch is imported: seconds
    path = store.index_dir(options.root, options.name)
    layout.check_index_dir_path(Path(options.root), options.name)
    corpus = read_corpus(
        source, column, options.sheet, header_row=options.header_row, encoding=options.encoding
    )
    for line in corpus.notes.lines(Path(source).name):
        log(line)
    source = Path(source).resolve()
    matrix = None
    if options.embeddings is not None:
        from simsearch.build.embeddings_file import open_embeddings

        # Checked before the lock: a FIFO or a bad matrix must not hold it.
        matrix = open_embeddings(Path(options.embeddings), len(corpus.texts))
        check_whiten_dim(options.whiten_dim, int(matrix.shape[1]))
    wanted = {
        "sha256": corpus.sha256,  # of the bytes that were read, not of the file now
        "sheet": corpus.sheet,
        "column": corpus.column,
        "model": options.model_name,
        "precision": "fp32" if options.embeddings is not None else options.precision,
        "whitening": {"dim": options.whiten_dim} if options.whiten else None,
        "ann": options.ann,
        # An imported matrix has one vector per row: no windows.
        "chunking": "none" if options.embeddings is not None else options.chunking,
        "lexical": options.lexical,
        "flow": bool(options.flow),
    }
    created = not path.exists()
    try:
        layout.claim_index_dir(path)  # never write into a directory that is not ours
        on_wait = lambda: log(f"waiting for another 'simsearch index' run on {path} to finish")  # noqa: E731
        with safe_files.index_lock(path, on_wait=on_wait):
            return _build_locked(
                path, source, corpus, wanted, options, matrix, on_progress, log, started
            )
    except OSError as exc:
        raise safe_files.os_error(exc, f"writing the index at {path}") from None
    finally:
        if created:  # a first build that failed leaves no empty index directory behind
            layout.release_new_index_dir(path)


def _build_locked(  # noqa: PLR0913 - the pieces build() prepared before taking the lock
    path: Path,
    source: Path,
    corpus: Corpus,
    wanted: dict[str, Any],
    options: BuildOptions,
    matrix: np.ndarray | None,
    on_progress: ProgressFn | None,
    log: LogFn,
    started: float,
) -> BuildReport:
    # Opened even for a rebuild (to keep its generation one build longer for readers):
    # whatever is wrong with it only makes it absent (see _open_previous).
    old = _open_previous(path, log)
    reasons = _reasons(old.meta if old else None, wanted)
    fresh = bool(reasons) or options.rebuild or options.embeddings is not None
    if old is not None and not fresh:
        # Finish the clean-up of a run killed between its commit and its clean-up.
        generations.clean(path, keep=_listed(old.meta))
        if wanted["model"] != IMPORTED:
            _query_export(wanted["model"], path, None, log)
        report = BuildReport(path=path, status="up-to-date", reused=old.n_docs)
        meta = old.meta
    else:
        reasons = ["rebuild requested"] if options.rebuild else reasons
        job = _Job(path, corpus, wanted, old, log, on_progress, reuse=not options.rebuild)
        with job.attempt():
            job.plan_units(options)
            report = job.run(options, matrix)
            report.reasons = reasons
            meta = job.commit(source, report, options)
        if wanted["model"] != IMPORTED:
            _query_export(wanted["model"], path, job.encoder, log)
    report.meta = meta
    report.n_docs, report.n_empty = meta.n_docs, meta.n_empty
    report.seconds = time.perf_counter() - started
    return report


def _listed(meta: IndexMeta) -> set[str]:
    """Names of the current generation and of the previous one (kept for readers)."""
    kept = meta.get(Generations)
    return {f.name for f in meta.files.values()} | set(kept.previous if kept else [])


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


def _open_previous(path: Path, log: LogFn) -> store.Index | None:
    if not (path / META).exists() and not (path / META).is_symlink():
        return None
    try:
        old = store.load_index(path.parent, path.name)
        old.verify()  # a damaged cache must never be reused, even in part
        return old
    except (SimsearchError, OSError, ValueError) as exc:
        log(f"ignoring the previous index and encoding everything: {exc}")
        return None


def _query_export(model: str, path: Path, encoder: Any, log: LogFn) -> None:
    """Best effort: make the model's ONNX export that ``query`` runs without torch
    (see :mod:`simsearch.encoding.onnx`), reusing an fp32 CPU model already loaded."""
    from simsearch.encoding.onnx import ensure_export

    st = getattr(encoder, "st", None) if getattr(encoder, "precision", "") == "fp32" else None
    ensure_export(model, path.parent, st=st, log=log)


def _reasons(meta: IndexMeta | None, wanted: dict[str, Any]) -> list[str]:
    if meta is None:
        return ["no index yet"]
    src = meta.source
    reasons = []
    if src.sha256 != wanted["sha256"]:
        reasons.append("the source file changed")
    if src.sheet != wanted["sheet"]:
        reasons.append(f"sheet changed ({src.sheet!r} -> {wanted['sheet']!r})")
    if src.column != wanted["column"]:
        reasons.append(f"column changed ({src.column!r} -> {wanted['column']!r})")
    precision = meta.encode.precision
    if meta.model != wanted["model"]:
        reasons.append(f"model changed ({meta.model} -> {wanted['model']})")
    elif _model_files_changed(meta):
        reasons.append(f"the files of model {meta.model} changed since the last build")
    elif precision != wanted["precision"] and meta.encode.status != "imported":
        reasons.append(f"precision changed ({precision} -> {wanted['precision']})")
    return reasons + _search_reasons(meta, wanted)


def _search_reasons(meta: IndexMeta, wanted: dict[str, Any]) -> list[str]:
    """Why the parts built beside the embeddings (whitening, ANN, windows, lexical
    index) no longer match what is asked for."""
    reasons = []
    white = meta.whitening
    if (None if white is None else {"dim": white.requested_dim}) != wanted["whitening"]:
        old = "on" if white else "off"
        reasons.append(f"whitening changed ({old} -> {'on' if wanted['whitening'] else 'off'})")
    if filters.ROLE not in meta.files:  # built before filters: add the column file
        reasons.append("no column file for filters yet")
    if (meta.get(AnnInfo) is not None) != wanted["ann"]:
        reasons.append("ANN index requested" if wanted["ann"] else "ANN index no longer requested")
    chunking = meta.windows.chunking if meta.windows else "none"
    if chunking != wanted["chunking"]:
        reasons.append(f"chunking changed ({chunking} -> {wanted['chunking']})")
    if wanted["lexical"] != (meta.lexical is not None):
        reasons.append("lexical index " + ("added" if wanted["lexical"] else "removed"))
    if (meta.flow is not None) != wanted.get("flow", False):
        old = "on" if meta.flow else "off"
        reasons.append(f"flow changed ({old} -> {'on' if wanted.get('flow') else 'off'})")
    return reasons


def _model_files_changed(meta: IndexMeta) -> bool:
    from simsearch.encoding.model_files import changed

    recorded = meta.get(ModelFiles)
    return recorded is not None and changed(meta.model, recorded.as_dict())


class _Job:
    """One build: plans which texts to encode, encodes them with checkpoints, commits."""

    def __init__(
        self,
        path: Path,
        corpus: Corpus,
        wanted: dict[str, Any],
        old: store.Index | None,
        log: LogFn,
        on_progress: ProgressFn | None,
        reuse: bool = True,
    ) -> None:
        self.path, self.corpus, self.wanted, self.log = path, corpus, wanted, log
        self.on_progress = on_progress
        self.generation = time.strftime("%Y%m%d%H%M%S") + "-" + uuid.uuid4().hex[:6]
        self.previous = old  # whatever its model: its Kiwi terms can be reused
        self.plan: Any = None
        self._set_units(list(corpus.texts))
        # Vectors are reused only from the same model at the same precision.
        same_model = (
            old is not None
            and old.model == wanted["model"]
            and old.meta.encode.precision == wanted["precision"]
            and not _model_files_changed(old.meta)
        )
        self.old = old if reuse and same_model else None
        self.old_files = [f.name for f in old.meta.files.values()] if old is not None else []
        kept = old.meta.get(Generations) if old is not None else None
        # The generation before the previous one goes once this build commits. An index
        # of an earlier version lists no previous generation: its directory held only
        # simsearch's own files (its meta.json says so), so unlisted generations go.
        self.retire = set(kept.previous) if kept else self._unlisted_generations()
        self.listed = set(self.old_files) | (set(kept.previous) if kept else set())
        self.matrix_path: Path | None = None
        self.encoder: Any = None
        self.dim = 0

    # -- planning ---------------------------------------------------------------------

    def _set_units(self, units: list[str]) -> None:
        """The texts that get one embedding each: the rows, or their windows."""
        self.units = units
        self.hashes = store.text_hashes(units)
        self.empty = np.array([not t.strip() for t in units], dtype=bool)

    def plan_units(self, options: BuildOptions) -> None:
        """With chunking ``auto``, cut documents longer than the model's max sequence
        length into windows (:mod:`simsearch.text.windows`); they are what gets encoded."""
        if self.wanted["chunking"] != "auto":
            return
        from simsearch.encoding.sbert import load_model
        from simsearch.retrieval.parts import plan_windows

        self.plan = plan_windows(load_model(options.model, "cpu"), self.corpus.texts)
        if self.plan.split:
            self._set_units(self.plan.windows.texts)

    def _cached_rows(self) -> dict[bytes, int]:
        """hash -> row of the previous index holding that text's embedding."""
        if self.old is None:
            return {}
        old_hashes = self.old.hashes()
        return {h: i for i, h in enumerate(old_hashes.tolist())}

    def _plan(self) -> tuple[list[bytes], dict[bytes, int], int]:
        cached = self._cached_rows()
        new: dict[bytes, int] = {}
        for h, is_empty in zip(self.hashes.tolist(), self.empty.tolist()):
            if not is_empty and h not in cached and h not in new:
                new[h] = len(new)
        texts_by_hash = dict(zip(self.hashes.tolist(), self.units))
        # Longest first, as sentence-transformers orders a batch: similar lengths share
        # a batch (little padding) and any truncated texts are met at once.
        order = sorted(new, key=lambda h: -len(texts_by_hash[h]))
        current = set(self.hashes.tolist())
        dropped = len(set(cached) - current)
        return order, cached, dropped

    # -- encoding ---------------------------------------------------------------------

    def _unlisted_generations(self) -> set[str]:
        if not (self.path / META).is_file():
            return set()
        keep = set(self.old_files)
        return {
            n
            for n in os_listdir(self.path)
            if layout.GENERATION_NAME.match(n) and n not in keep
        }

    def _journal(self, **fields: Any) -> None:
        """Record in ``work/job.json`` what this build will write or retire, so a
        later run can finish or undo it (see :mod:`simsearch.store.generations`)."""
        job_file = self._work() / "job.json"
        job = generations.read_journal(self.path)
        job.update(fields)
        self._work().mkdir(exist_ok=True)
        atomic.write_json_atomic(job_file, job)

    @contextlib.contextmanager
    def attempt(self) -> Any:
        """Undo what this build wrote when it fails: its generation's files always;
        the checkpoint too when the disk is full (keeping it would keep the disk full),
        not when interrupted (the next run resumes from it)."""
        try:
            yield
        except BaseException as exc:
            committed = (self.path / META).is_file() and self._is_committed()
            if not committed:
                generations.discard(self.path, self.generation)
                full = isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)
                if full or getattr(exc, "no_space", False) or not self._resumable():
                    generations.clear_work(self.path)
            raise

    def _is_committed(self) -> bool:
        try:
            text = safe_files.read_bounded(self.path / META, self.path, 64 << 20)
        except (OSError, SimsearchError):
            return False
        return f"embeddings-{self.generation}.npy".encode() in text

    def _resumable(self) -> bool:
        return (self._work() / "pending.npy").is_file()

    def run(self, options: BuildOptions, matrix: np.ndarray | None = None) -> BuildReport:
        """Import ``matrix`` (``options.embeddings``, already checked) or encode what
        the cache lacks."""
        earlier = generations.read_journal(self.path).get("generation")
        if isinstance(earlier, str) and not any(earlier in n for n in self.listed):
            generations.discard(self.path, earlier)  # files of a run killed mid-write
        self._journal(generation=self.generation)
        if matrix is not None:
            return self.import_matrix(Path(str(options.embeddings)), matrix)
        chunk = options.chunk_size or 8 * options.batch_size
        from simsearch.encoding.encoders import resolve_backend

        return self.encode(
            options.model_name,
            options.device,
            options.batch_size,
            chunk,
            resolve_backend(options.backend, options.device, options.precision, options.ray),
            options.precision,
            options.whiten_dim,
            options.ray,
        )

    def encode(
        self,
        model: str,
        device: str | None,
        batch_size: int,
        chunk: int,
        backend: str = "torch",
        precision: str = "fp32",
        whiten_dim: int | None = None,
        ray: str | None = None,
    ) -> BuildReport:
        order, cached, dropped = self._plan()
        texts_by_hash = dict(zip(self.hashes.tolist(), self.units))
        report = BuildReport(path=self.path, status="updated" if self.old else "built")
        report.dropped = dropped
        pending = None
        if order:
            from simsearch.encoding.encoders import open_encoder

            encoder = open_encoder(
                model,
                device=device,
                backend=backend,
                precision=precision,
                root=self.path.parent,
                log=self.log,
                ray=ray,
            )
            self.encoder = encoder
            self.dim = encoder.dim
            check_whiten_dim(whiten_dim, self.dim)  # before hours of encoding
            pending, done = self._open_pending(order)
            report.resumed = done
            if done:
                self.log(f"resuming an interrupted run: {done:,} of {len(order):,} texts done")
            total = len(order)
            if self.on_progress:
                self.on_progress(done, total)
            remaining = [texts_by_hash[h] for h in order[done:]]
            try:
                report.truncated += self._encode_chunks(
                    encoder, remaining, pending, done, batch_size, chunk
                )
            finally:
                getattr(encoder, "close", lambda: None)()
            report.encoded = total - done
        else:
            # Nothing new: every non-empty text is cached (select_column refuses a
            # column where every document is empty, so there is a cache here).
            self.dim = self.old.meta.dim
        if report.truncated:
            self.log(
                f"{report.truncated:,} texts are longer than the model's max sequence length "
                "and were truncated when encoded"
            )
        new_rows = {h: i for i, h in enumerate(order)}
        report.reused = sum(1 for h in self.hashes.tolist() if h in cached and h not in new_rows)
        self._assemble(cached, new_rows, pending)
        return report

    def _encode_chunks(
        self,
        encoder: Any,
        texts: list[str],
        pending: np.ndarray,
        done: int,
        batch_size: int,
        chunk: int,
    ) -> int:
        """Encode ``texts`` into ``pending[done:]`` chunk by chunk, checkpointing after
        each; returns how many were truncated. Encoders with ``stream`` (Ray, several
        devices) yield the chunks in order as they finish; others encode one at a time."""
        texts, truncated = _cut_long_texts(encoder, texts)
        if hasattr(encoder, "stream"):
            blocks = encoder.stream(texts, batch_size, chunk)
        else:
            blocks = (
                encoder.encode(texts[s : s + chunk], batch_size)
                for s in range(0, len(texts), chunk)
            )
        offset, total = 0, done + len(texts)
        for block in blocks:
            start = done + offset
            pending[start : start + len(block)] = block
            offset += len(block)
            self._checkpoint(pending, done + offset)
            if self.on_progress:
                self.on_progress(done + offset, total)
        return truncated

    def _work(self) -> Path:
        return self.path / "work"

    def _open_pending(self, order: list[bytes]) -> tuple[np.ndarray, int]:
        """The checkpoint matrix for ``order`` and how many of its rows are done."""
        work = self._work()
        key = self._job_key(order)
        job_file, pending_file = work / "job.json", work / "pending.npy"
        if job_file.exists() and pending_file.exists():
            try:
                job = json.loads(job_file.read_text(encoding="utf-8"))
                if job.get("key") == key:
                    pending = np.load(pending_file, mmap_mode="r+")
                    if pending.shape == (len(order), self.dim) and pending.dtype == np.float32:
                        return pending, int(job["done"])
            except (OSError, ValueError, KeyError):
                pass  # a damaged checkpoint is discarded, never trusted
        generations.clear_work(self.path, keep_journal=True)
        work.mkdir(parents=True, exist_ok=True)
        size = len(order) * self.dim * 4
        safe_files.check_free_space(work, size, "the encoding checkpoint")
        pending = _open_memmap(pending_file, (len(order), self.dim))
        self._journal(key=key, done=0, total=len(order), generation=self.generation)
        return pending, 0

    def _job_key(self, order: list[bytes]) -> str:
        import hashlib

        digest = hashlib.sha256(self.wanted["model"].encode("utf-8"))
        if self.wanted["precision"] != "fp32":  # fp32 keys stay as before
            digest.update(self.wanted["precision"].encode("utf-8"))
        for h in order:
            digest.update(h)
        return digest.hexdigest()

    def _checkpoint(self, pending: np.ndarray, done: int) -> None:
        # The rows must be on disk before the counter that vouches for them.
        pending.flush()
        with open(self._work() / "pending.npy", "rb+") as handle:
            os_fsync(handle.fileno())
        job_file = self._work() / "job.json"
        job = json.loads(job_file.read_text(encoding="utf-8"))
        job["done"] = done
        atomic.write_json_atomic(job_file, job)

    def import_matrix(self, npy: Path, matrix: np.ndarray) -> BuildReport:
        """Use a precomputed ``(n_rows, dim)`` matrix (checked by
        :func:`simsearch.build.embeddings_file.open_embeddings`) instead of encoding."""
        n = len(self.corpus.texts)
        self.dim = int(matrix.shape[1])
        safe_files.check_free_space(self.path, n * self.dim * 4, "the embedding matrix")
        with atomic.atomic_path(self._matrix_target()) as tmp:
            out = _open_memmap(tmp, (n, self.dim))
            for start in range(0, n, COPY_ROWS):
                block = np.asarray(matrix[start : start + COPY_ROWS], dtype=np.float32)
                if not np.isfinite(block).all():
                    raise SimsearchError(f"{npy} contains NaN or infinite values")
                out[start : start + len(block)] = _normalise(block)
            out.flush()
            del out
        return BuildReport(path=self.path, status="imported", encoded=0, reused=0)

    # -- writing ----------------------------------------------------------------------

    def _matrix_target(self) -> Path:
        self.matrix_path = self.path / f"embeddings-{self.generation}.npy"
        return self.matrix_path

    def _assemble(
        self, cached: dict[bytes, int], new_rows: dict[bytes, int], pending: np.ndarray | None
    ) -> None:
        """Write the final (n_docs, dim) matrix from cached rows and freshly encoded rows."""
        n = len(self.hashes)
        old_matrix = (
            np.load(self.old.file("embeddings"), mmap_mode="r") if self.old is not None else None
        )
        hashes = self.hashes.tolist()
        safe_files.check_free_space(self.path, n * self.dim * 4, "the embedding matrix")
        with atomic.atomic_path(self._matrix_target()) as tmp:
            out = _open_memmap(tmp, (n, self.dim))
            for start in range(0, n, COPY_ROWS):
                stop = min(start + COPY_ROWS, n)
                block = np.zeros((stop - start, self.dim), dtype=np.float32)
                for offset, h in enumerate(hashes[start:stop]):
                    if self.empty[start + offset]:
                        continue
                    if h in new_rows:
                        block[offset] = pending[new_rows[h]]
                    else:
                        block[offset] = old_matrix[cached[h]]
                out[start:stop] = block
            out.flush()
            del out

    def commit(self, source: Path, report: BuildReport, options: BuildOptions) -> IndexMeta:
        """Write rows, offsets and hashes, then ``meta.json`` (the commit point), then
        remove older generations and the checkpoint."""
        gen = self.generation
        files = {
            "embeddings": f"embeddings-{gen}.npy",
            "rows": f"rows-{gen}.jsonl",
            "offsets": f"offsets-{gen}.npy",
            "hashes": f"hashes-{gen}.npy",
        }
        frame = self.corpus.frame
        column = self.corpus.column
        records = (
            {c: _json_value(v) for c, v in zip(frame.columns, values)} | {column: text}
            for values, text in zip(frame.itertuples(index=False, name=None), self.corpus.texts)
        )
        store.write_rows_atomic(self.path / files["rows"], self.path / files["offsets"], records)
        atomic.write_npy_atomic(self.path / files["hashes"], self.hashes)
        # The source columns as parquet, for filters (retrieval.filters; cheap to rewrite).
        files[filters.ROLE] = f"columns-{gen}.parquet"
        column_types = filters.write_columns(frame, self.path / files[filters.ROLE])
        whitening = self._whiten(files) or self._flow(files)
        ann = self._ann(files) if options.ann else None
        sections = [s for s in (whitening, *self._retrieval_parts(files, report)) if s]
        # Row vectors of a windowed index and the empty rows, stored so that similar and
        # every ranking read them instead of recomputing them per call (retrieval.parts).
        from simsearch.retrieval.parts import write_row_parts

        files.update(write_row_parts(self.path, self.generation, files, self.corpus.texts))
        meta = IndexMeta(
            name=self.path.name,
            created_at=store.now_iso(),
            model=self.wanted["model"],
            source=SourceInfo(
                path=str(source),
                sha256=self.wanted["sha256"],
                # From the moment the file was read (an edit during encoding is stale).
                size_bytes=self.corpus.size_bytes,
                mtime=self.corpus.mtime,
                sheet=self.corpus.sheet,
                column=column,
            ),
            columns=[str(c) for c in frame.columns],
            n_docs=len(self.corpus.texts),
            n_empty=self.corpus.n_empty,
            dim=self.dim,
            search_dim=whitening.dim if whitening else self.dim,
            encode=EncodeInfo(
                device=options.device,
                batch_size=options.batch_size,
                backend=getattr(self.encoder, "backend", None),
                precision=self.wanted["precision"],
                status=report.status,
                encoded=report.encoded,
                reused=report.reused,
                dropped=report.dropped,
                truncated=report.truncated,
            ),
            versions=_versions(),
            files={role: self._entry(name) for role, name in files.items()},
        )
        for part in sections:
            meta.with_section(part)
        meta.with_section(ColumnFileInfo(types=column_types))
        meta.with_section(_table_info(self.corpus))
        previous = set(self.old_files) - set(files.values())
        if ann is not None:
            meta.with_section(ann)
        # The generation just replaced stays one build longer: a reader that opened its
        # meta.json a moment ago can still read its rows. The one before it goes.
        meta.with_section(Generations(previous=sorted(previous)))
        fingerprint = self._model_fingerprint()
        if fingerprint is not None:
            meta.with_section(fingerprint)
        self._journal(retire=sorted(self.retire - previous - set(files.values())))
        meta.write(self.path)
        self._cleanup(set(files.values()) | previous)
        return meta

    def _model_fingerprint(self) -> ModelFiles | None:
        if self.encoder is None and self.old is not None:
            return self.old.meta.get(ModelFiles)  # nothing encoded: the same model files
        from simsearch.encoding.model_files import fingerprint

        found = fingerprint(self.wanted["model"]) if self.encoder is not None else None
        return None if found is None else ModelFiles(files=found["files"], sha256=found["sha256"])

    def _retrieval_parts(self, files: dict[str, str], report: BuildReport) -> list[Any]:
        """Write the window map and the lexical index of this generation (naming them in
        ``files``) and return their metadata sections."""
        from simsearch.retrieval import parts as retrieval_store

        report.n_windows = len(self.units)
        out: list[Any] = []
        if self.plan is not None:
            files.update(retrieval_store.write_windows(self.path, self.generation, self.plan))
            windows = self.plan.windows
            report.n_split = windows.n_split
            out.append(WindowsInfo("auto", self.plan.max_tokens, self.plan.overlap_tokens,
                                   windows.n_windows if self.plan.split else windows.n_rows,
                                   windows.n_split))
        if self.wanted["lexical"]:
            previous = None
            if self.previous is not None and "lexical_terms" in self.previous.meta.files:
                previous = self.previous.file("lexical_terms")
            names, lex, report.tokenized = retrieval_store.build_lexical(
                self.path, self.generation, self.corpus.texts, previous, self.log
            )
            files.update(names)
            out.append(LexicalInfo(analyzer="kiwi", k1=1.5, b=0.75, method="lucene",
                                   n_terms=len(lex.vocab), fusion=FUSION.method,
                                   dense_weight=FUSION.dense_weight))
        return out

    def _entry(self, name: str) -> FileEntry:
        path = self.path / name
        return FileEntry(name=name, size=atomic.path_size(path), sha256=atomic.file_digest(path))

    def _whiten(self, files: dict[str, str]) -> WhiteningInfo | None:
        """Fit BERT-whitening on the non-empty rows and write the whitened search matrix
        (empty documents stay zero rows) and the transform; names them in ``files``."""
        requested = self.wanted["whitening"]
        if requested is None:
            return None
        from simsearch.transforms.whitening import fit_whitening, safe_dim

        raw = np.load(self.matrix_path, mmap_mode="r")
        check_whiten_dim(requested["dim"], int(raw.shape[1]))  # also when nothing was encoded
        keep = np.flatnonzero(~self.empty)
        dim, why = safe_dim(len(keep), raw.shape[1], requested["dim"])
        if why:
            self.log(why)
        transform = fit_whitening(raw[keep], dim)
        files["search"] = f"search-{self.generation}.npy"
        files["whitening"] = f"whitening-{self.generation}.npz"
        n = raw.shape[0]
        safe_files.check_free_space(self.path, n * transform.dim * 4, "the whitened matrix")
        with atomic.atomic_path(self.path / files["search"]) as tmp:
            out = _open_memmap(tmp, (n, transform.dim))
            for start in range(0, n, COPY_ROWS):
                block = transform.apply(raw[start : start + COPY_ROWS])
                block[self.empty[start : start + COPY_ROWS]] = 0.0
                out[start : start + len(block)] = block
            out.flush()
            del out
        with atomic.atomic_path(self.path / files["whitening"]) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, mean=transform.mean, matrix=transform.matrix)
        return WhiteningInfo(requested_dim=requested["dim"], dim=transform.dim, fitted_on=len(keep))

    def _ann(self, files: dict[str, str]) -> AnnInfo:
        """Build the ANN index over the search matrix (whitened when whitening is on),
        streaming it from disk; names it in ``files``."""
        from simsearch.retrieval.ann import build_ann

        matrix = np.load(self.path / files.get("search", files["embeddings"]), mmap_mode="r")
        files["ann"] = f"ann-{self.generation}.usearch"
        info = build_ann(matrix, self.path / files["ann"], skip=self.empty)
        self.log(
            f"approximate index: {info.library} HNSW over {info.dtype} vectors, "
            f"{info.n_vectors:,} vectors, {info.bytes_per_vector:,.0f} bytes per vector, "
            f"built in {info.build_seconds:.1f} s"
        )
        return info

    def _flow(self, files: dict[str, str]) -> FlowInfo | None:
        """Fit BERT-flow on the non-empty rows (a seeded sample of at most 20k) and write
        the flowed search matrix (empty documents stay zero rows) and the ONNX graph."""
        if not self.wanted.get("flow"):
            return None
        from simsearch.transforms.flow import fit_flow

        raw = np.load(self.matrix_path, mmap_mode="r")
        keep = np.flatnonzero(~self.empty)
        transform = fit_flow(raw[keep])
        files["search"] = f"search-{self.generation}.npy"
        files["flow"] = f"flow-{self.generation}.onnx"
        n = raw.shape[0]
        with atomic.atomic_path(self.path / files["search"]) as tmp:
            out = np.lib.format.open_memmap(
                tmp, mode="w+", dtype=np.float32, shape=(n, transform.dim)
            )
            for start in range(0, n, COPY_ROWS):
                block = transform.apply(raw[start : start + COPY_ROWS])
                block[self.empty[start : start + COPY_ROWS]] = 0.0
                out[start : start + len(block)] = block
            out.flush()
            del out
        with atomic.atomic_path(self.path / files["flow"]) as tmp:
            tmp.write_bytes(transform.onnx_model)
        info = transform.info
        return FlowInfo(
            dim=transform.dim,
            fitted_on=int(info["fit_embeddings"]),
            epochs=int(info["epochs"]),
            heldout_nll_per_dim=info["heldout_nll_per_dim"],
        )

    def _cleanup(self, keep: set[str]) -> None:
        """After the commit: delete what the journal retires, and the checkpoint; only
        names our records list (see :mod:`simsearch.store.generations`)."""
        generations.clean(self.path, keep=keep)


def os_listdir(path: Path) -> list[str]:
    import os

    return os.listdir(path)


def os_fsync(fd: int) -> None:
    import os

    os.fsync(fd)


def _open_memmap(path: Path, shape: tuple[int, int]) -> np.ndarray:
    """A new ``.npy`` float32 memory map of ``shape`` whose blocks are allocated now: a
    memory-mapped write cannot report a full disk (the process dies of SIGBUS), so the
    space is claimed up front, where ENOSPC is an ordinary error."""
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=shape)
    with open(path, "rb+") as handle:
        safe_files.reserve(handle.fileno(), out.offset + out.nbytes)
    return out


def _cut_long_texts(encoder: Any, texts: list[str]) -> tuple[list[str], int]:
    """``(texts to encode, how many are truncated)``: huge texts are cut to a prefix
    with the same first tokens (see :mod:`simsearch.encoding.truncation`), so a 5 MB cell costs
    what a window costs; encoders without a tokenizer we know count as before."""
    from simsearch.encoding.truncation import cut_long_texts, hf_counter, tokenizers_counter

    st = getattr(encoder, "st", None)
    if st is not None and getattr(st, "tokenizer", None) is not None and st.max_seq_length:
        return cut_long_texts(texts, hf_counter(st.tokenizer), int(st.max_seq_length))
    tokenizer = getattr(encoder, "tokenizer", None)
    limit = getattr(encoder, "max_seq_length", None)
    if tokenizer is not None and limit:
        return cut_long_texts(texts, tokenizers_counter(encoder), int(limit))
    return texts, encoder.count_truncated(texts)


def _table_info(corpus: Corpus) -> TableInfo:
    notes = corpus.notes
    return TableInfo(
        text_columns=list(corpus.columns),
        encoding=notes.encoding,
        header_row=notes.header_row,
        merged_cells_filled=notes.merged_cells,
    )


def _normalise(block: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(block, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return (block / norms).astype(np.float32, copy=False)


def _json_value(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else value
    text = cell_text(value)
    return text or None


def _versions() -> dict[str, str]:
    out = {}
    packages = ("simsearch", "sentence-transformers", "transformers", "torch", "numpy", "pandas")
    for package in packages:
        try:
            out[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            out[package] = "not installed"
    return out
