"""Building an index: read the corpus, encode what is new, write a new generation.

A build is incremental and resumable:

* each document's embedding is keyed by a hash of its text (for one model), so after an
  edit of the source only texts never encoded before are encoded; reordered, deleted
  and unchanged rows reuse the cached vectors, and the result equals a full rebuild;
* the texts to encode are written chunk by chunk into ``work/pending.npy`` with a
  checkpoint after every chunk, so a killed or interrupted run resumes where it stopped;
* peak memory is bounded by one chunk, not by the corpus.

The stages, one module each: :mod:`~simsearch.build.options` (what is asked for, and why
an index no longer matches it), :mod:`~simsearch.build.preflight` (checks that touch
the network or torch, once), :mod:`~simsearch.build.plan` (units and the reuse diff),
:mod:`~simsearch.build.encode` with :mod:`~simsearch.build.checkpoint`,
:mod:`~simsearch.build.matrix` (assembly, import, block transforms),
:mod:`~simsearch.build.parts` (derived parts) and :mod:`~simsearch.build.commit`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from simsearch._fs import safe as safe_files
from simsearch.build.commit import commit_generation, query_export, write_rows
from simsearch.build.encode import Encoded, EncoderSlot, encode_missing
from simsearch.build.generation import Generation, kept_names
from simsearch.build.matrix import assemble, import_matrix
from simsearch.build.options import (
    BuildOptions,
    BuildReport,
    Target,
    check_whiten_dim,
    resolve_model,
)
from simsearch.build.parts import PartInput, write_parts
from simsearch.build.plan import cap_notice, cap_texts, plan_reuse, plan_units
from simsearch.build.preflight import check_encoding, check_whiten_rows, model_files_changed
from simsearch.errors import SimsearchError
from simsearch.store import generations, layout
from simsearch.store import index as store
from simsearch.store.meta import IMPORTED, META, IndexMeta
from simsearch.tables.read import Corpus, read_corpus

__all__ = ["BuildOptions", "BuildReport", "build", "build_index", "check_whiten_dim"]

ProgressFn = Callable[[int, int], None]
LogFn = Callable[[str], None]


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
        whiten_dim: keep this many whitened dimensions (default all, lowered to
            ``(n - 1) // 2`` when fitted on ``n`` non-empty documents, see
            :func:`simsearch.transforms.whitening.safe_dim`; a ``whiten_dim`` above that
            bound is refused before the model is loaded).
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
            by their windows; ``sentences``: every sentence is its own window (long ones
            still cut to fit), for queries of about one sentence; ``none``: truncated as
            the model does.
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
    model = resolve_model(options)
    path = store.index_dir(options.root, options.name)
    layout.check_index_dir_path(Path(options.root), options.name)
    corpus = read_corpus(
        source, column, options.sheet, header_row=options.header_row, encoding=options.encoding
    )
    check_whiten_rows(options.whiten_dim, len(corpus.texts) - corpus.n_empty)
    # After the file and the column are known good: the model check and resolving
    # "auto" (which may import torch) take seconds, a missing file should not.
    backend = None if options.embeddings is not None else check_encoding(options, model)
    for line in corpus.notes.lines(Path(source).name):
        log(line)
    texts, cut = cap_texts(corpus.texts)
    if cut:
        corpus = dataclasses.replace(corpus, texts=texts, n_empty=sum(not t.strip() for t in texts))
        log(cap_notice(cut))
    matrix = None
    if options.embeddings is not None:
        from simsearch.build.embeddings_file import open_embeddings

        # Checked before the lock: a FIFO or a bad matrix must not hold it.
        matrix = open_embeddings(Path(options.embeddings), len(corpus.texts))
        check_whiten_dim(options.whiten_dim, int(matrix.shape[1]))
    job = _Inputs(Path(source).resolve(), corpus, Target.of(options, corpus), options, backend)
    created = not path.exists()
    try:
        layout.claim_index_dir(path)  # never write into a directory that is not ours
        on_wait = lambda: log(f"waiting for another 'simsearch index' run on {path} to finish")  # noqa: E731
        with safe_files.index_lock(path, on_wait=on_wait):
            report = _build_locked(Generation(path, log, on_progress), job, matrix)
    except OSError as exc:
        raise safe_files.os_error(exc, f"writing the index at {path}") from None
    finally:
        if created:  # a first build that failed leaves no empty index directory behind
            layout.release_new_index_dir(path)
    report.seconds = time.perf_counter() - started
    report.cut = cut
    return report


@dataclass(frozen=True)
class _Inputs:
    """What :func:`build` prepared before taking the lock."""

    source: Path
    corpus: Corpus
    target: Target
    options: BuildOptions
    backend: str | None  # None: an imported matrix, nothing is encoded


def _build_locked(gen: Generation, job: _Inputs, matrix: np.ndarray | None) -> BuildReport:
    """Reuse the index as it is, or write a new generation."""
    # Opened even for a rebuild (to keep its generation one build longer for readers):
    # whatever is wrong with it only makes it absent (see open_previous).
    target, options = job.target, job.options
    old = open_previous(gen.path, gen.log)
    stale = model_files_changed(old.meta if old else None, target.model)
    reasons = target.reasons(old.meta if old else None, stale)
    if old is not None and not (reasons or options.rebuild or target.imported):
        # Finish the clean-up of a run killed between its commit and its clean-up.
        generations.clean(gen.path, keep=kept_names(old.meta))
        report, meta = BuildReport(path=gen.path, status="up-to-date", reused=old.n_docs), old.meta
        if target.model != IMPORTED:
            query_export(target.model, gen.path, None, gen.log)  # made again when missing
    else:
        same = old is not None and (old.model, old.meta.encode.precision) == (
            target.model,
            target.precision,
        )
        reusable = old if same and not stale and not options.rebuild else None
        slot = EncoderSlot(target.model, options, job.backend, gen) if job.backend else None
        try:
            with gen.attempt():
                report, meta = _write_generation(gen, job, matrix, (old, reusable), slot)
        finally:
            if slot is not None:
                slot.close()
        report.reasons = ["rebuild requested"] if options.rebuild else reasons
    report.meta = meta
    report.n_docs, report.n_empty = meta.n_docs, meta.n_empty
    return report


def _write_generation(
    gen: Generation,
    job: _Inputs,
    matrix: np.ndarray | None,
    previous: tuple[store.Index | None, store.Index | None],
    slot: EncoderSlot | None,
) -> tuple[BuildReport, IndexMeta]:
    """Plan, encode (or import), assemble, write the derived parts and commit."""
    old, reusable = previous
    # Kiwi analyses beside the encoding; leaving the block stops an unfinished analysis.
    with _terms_beside(job, old, gen, encoding=matrix is None) as terms:
        units = plan_units(job.corpus.texts, job.target.chunking, slot)
        retire = gen.start(old)
        embeddings = gen.path / gen.name("embeddings", "npy")
        report, encoded = _embeddings(gen, job, matrix, (units, reusable, slot), embeddings)
        report.n_windows = len(units.texts)
        report.n_texts = len(
            {h for h, e in zip(units.hashes.tolist(), units.empty.tolist()) if not e}
        )
        files = {"embeddings": embeddings.name, **write_rows(gen, job.corpus, units)}
        ctx = PartInput(gen, job.corpus, job.target, units, embeddings, embeddings, old, report,
                        terms)
        part_files, sections, _ = write_parts(ctx)
    files.update(part_files)
    backend = slot.opened.backend if slot and slot.opened and encoded.pending is not None else None
    sections += _export_section(job.target.model, gen, slot)
    built = (files, sections, encoded, backend)
    meta = commit_generation(
        gen, job.source, job.corpus, job.target, job.options, report, built, (old, reusable, retire)
    )
    return report, meta


def _terms_beside(job: _Inputs, old: store.Index | None, gen: Generation, encoding: bool):
    """The lexical part's Kiwi analysis, started now to run beside the encoding
    (:class:`simsearch.build.terms.Terms`, a context manager that stops it on exit), or
    a null context giving None (no lexical part, nothing is encoded, or
    :data:`simsearch.build.terms.BESIDE` is off): the part then analyses after it."""
    from simsearch.build import terms as beside

    if not (job.target.lexical and encoding and beside.BESIDE):
        return contextlib.nullcontext()
    from simsearch.build.parts import start_terms

    return start_terms(job.corpus.texts, old, gen.log)


def _embeddings(
    gen: Generation, job: _Inputs, matrix: np.ndarray | None, plan: tuple, embeddings: Path
) -> tuple[BuildReport, Encoded]:
    """Write the generation's embeddings file: the imported ``matrix``, or the cached
    vectors plus the newly encoded ones. ``plan``: ``(units, reusable index, slot)``."""
    units, reusable, slot = plan
    if matrix is not None:
        dim = import_matrix(Path(str(job.options.embeddings)), matrix, embeddings)
        return BuildReport(path=gen.path, status="imported"), Encoded(None, dim)
    reuse = plan_reuse(units, reusable)
    cached_dim = reusable.meta.dim if reusable is not None else 0
    encoded = encode_missing(gen, reuse, slot, job.options, cached_dim)
    report = BuildReport(
        path=gen.path,
        status="updated" if reusable else "built",
        encoded=encoded.encoded,
        reused=reuse.reused,
        dropped=reuse.dropped,
        resumed=encoded.resumed,
        truncated=encoded.truncated,
    )
    old_matrix = np.load(reusable.file("embeddings"), mmap_mode="r") if reusable else None
    new_rows = {h: i for i, h in enumerate(reuse.order)}
    sources = (new_rows, encoded.pending, reuse.cached, old_matrix)
    assemble(embeddings, units.hashes.tolist(), units.empty, sources, encoded.dim)
    return report, encoded


def _export_section(model: str, gen: Generation, slot: EncoderSlot | None) -> list:
    """Make the model's ONNX export for queries (shared cache, before the commit, so the
    index can record which export it needs; see :mod:`simsearch.encoding.onnx`)."""
    if model == IMPORTED:
        return []
    from simsearch.store.meta import OnnxExport

    found = query_export(model, gen.path, slot.opened if slot is not None else None, gen.log)
    return [] if found is None else [OnnxExport(key=found.name)]


def open_previous(path: Path, log: LogFn) -> store.Index | None:
    """The index at ``path``, verified, or ``None`` (absent, or damaged: logged; a
    damaged cache is never reused, even in part)."""
    if not (path / META).exists() and not (path / META).is_symlink():
        return None
    try:
        old = store.load_index(path.parent, path.name)
        old.verify()
        return old
    except (SimsearchError, OSError, ValueError) as exc:
        log(f"ignoring the previous index and encoding everything: {exc}")
        return None
