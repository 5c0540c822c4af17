"""The derived parts of a generation, each written by one function.

A part is a function ``(PartInput) -> Part``: it writes its files into the generation
and returns their names by role and the metadata sections that describe them. The build
runs :data:`PARTS` in order; a part that writes a ``search`` matrix (whitening, flow)
makes it the matrix that the parts after it see. Adding a part is one function and one
entry in :data:`PARTS`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from simsearch.build.generation import Generation
from simsearch.build.matrix import map_blocks
from simsearch.build.options import BuildReport, Target, check_whiten_dim
from simsearch.build.plan import Units
from simsearch.store import index as store
from simsearch.store.meta import (
    COLUMN_FORMAT,
    ColumnFileInfo,
    FlowInfo,
    LexicalInfo,
    Section,
    WhiteningInfo,
    WindowsInfo,
)
from simsearch.tables.read import Corpus


@dataclass(frozen=True)
class PartInput:
    """What a derived part is built from.

    Attributes:
        gen: the generation being written.
        corpus: the source as read.
        target: the resolved options.
        units: the encoded texts (rows or windows), their hashes and empty mask.
        embeddings: the ``(n_units, dim)`` float32 matrix of this generation.
        search: the matrix searched: ``embeddings``, or the transformed copy.
        previous: the previous index, whatever its model (its Kiwi terms are reused).
        report: the build's report (a part may add its counts).
        terms: the Kiwi analysis started before the encoding
            (:class:`simsearch.build.terms.Terms`), or ``None``: the lexical part
            analyses the texts itself.
    """

    gen: Generation
    corpus: Corpus
    target: Target
    units: Units
    embeddings: Path
    search: Path
    previous: store.Index | None
    report: BuildReport
    terms: Any = None


@dataclass(frozen=True)
class Part:
    """What a part wrote: ``{role: file name}`` and its metadata sections."""

    files: dict[str, str]
    sections: tuple[Section, ...] = ()


NOTHING = Part({})


def columns(ctx: PartInput) -> Part:
    """The source columns as parquet, for filters (:mod:`simsearch.retrieval.filters`)."""
    from simsearch.retrieval import filters

    name = ctx.gen.name("columns", "parquet")
    types = filters.write_columns(ctx.corpus.frame, ctx.gen.path / name)
    return Part({filters.ROLE: name}, (ColumnFileInfo(types=types, format=COLUMN_FORMAT),))


def transform(ctx: PartInput) -> Part:
    """The search matrix of a fitted transform (whitening or flow), if one is asked for."""
    if ctx.target.whiten:
        return _whitening(ctx)
    if ctx.target.flow:
        return _flow(ctx)
    return NOTHING


def _whitening(ctx: PartInput) -> Part:
    """Fit BERT-whitening on the non-empty units; write the whitened search matrix
    (empty units stay zero rows) and the transform."""
    from simsearch.transforms.whitening import fit_whitening, safe_dim

    raw = np.load(ctx.embeddings, mmap_mode="r")
    requested = ctx.target.whiten_dim
    check_whiten_dim(requested, int(raw.shape[1]))  # also when nothing was encoded
    keep = np.flatnonzero(~ctx.units.empty)
    dim, why = safe_dim(len(keep), raw.shape[1], requested)
    if why:
        ctx.gen.log(why)
    fitted = fit_whitening(raw[keep], dim)
    files = {"search": ctx.gen.name("search", "npy"), "whitening": ctx.gen.name("whitening", "npz")}
    map_blocks(raw, fitted.apply, ctx.gen.path / files["search"], fitted.dim,
               "the whitened matrix", ctx.units.empty)
    _write_bytes(ctx.gen.path / files["whitening"], lambda fh: np.savez(
        fh, mean=fitted.mean, matrix=fitted.matrix))
    section = WhiteningInfo(requested_dim=requested, dim=fitted.dim, fitted_on=len(keep))
    return Part(files, (section,))


def _flow(ctx: PartInput) -> Part:
    """Fit BERT-flow on the non-empty units (a seeded sample of at most 20k); write the
    flowed search matrix (empty units stay zero rows) and the ONNX graph."""
    from simsearch.transforms.flow import fit_flow

    raw = np.load(ctx.embeddings, mmap_mode="r")
    fitted = fit_flow(raw[np.flatnonzero(~ctx.units.empty)])
    files = {"search": ctx.gen.name("search", "npy"), "flow": ctx.gen.name("flow", "onnx")}
    map_blocks(raw, fitted.apply, ctx.gen.path / files["search"], fitted.dim,
               "the flowed matrix", ctx.units.empty)
    _write_bytes(ctx.gen.path / files["flow"], lambda fh: fh.write(fitted.onnx_model))
    info = fitted.info
    section = FlowInfo(
        dim=fitted.dim,
        fitted_on=int(info["fit_embeddings"]),
        epochs=int(info["epochs"]),
        heldout_nll_per_dim=info["heldout_nll_per_dim"],
    )
    return Part(files, (section,))


def ann(ctx: PartInput) -> Part:
    """The ANN index over the search matrix, streamed from disk (if asked for)."""
    if not ctx.target.ann:
        return NOTHING
    from simsearch.retrieval.ann import build_ann

    name = ctx.gen.name("ann", "usearch")
    info = build_ann(np.load(ctx.search, mmap_mode="r"), ctx.gen.path / name, skip=ctx.units.empty)
    ctx.gen.log(
        f"approximate index: {info.library} HNSW over {info.dtype} vectors, "
        f"{info.n_vectors:,} vectors, {info.bytes_per_vector:,.0f} bytes per vector, "
        f"built in {info.build_seconds:.1f} s"
    )
    return Part({"ann": name}, (info,))


def windows(ctx: PartInput) -> Part:
    """The window -> row map (only when some row was split) and the windows section
    (whenever chunking is ``auto``)."""
    plan = ctx.units.windows
    if plan is None:
        return NOTHING
    from simsearch.text.windows import save_window_map

    found = plan.windows
    ctx.report.n_split = found.n_split
    files = {}
    if plan.split:
        files["windows"] = ctx.gen.name("windows", "npy")
        save_window_map(ctx.gen.path / files["windows"], found)
    section = WindowsInfo(
        plan.chunking, plan.max_tokens, plan.overlap_tokens,
        found.n_windows if plan.split else found.n_rows, found.n_split,
    )
    return Part(files, (section,))


def lexical(ctx: PartInput) -> Part:
    """The BM25 index over Kiwi terms of the rows (:mod:`simsearch.retrieval.bm25`),
    analysing only texts the previous build's terms lack (if asked for)."""
    if not ctx.target.lexical:
        return NOTHING
    from simsearch.retrieval import bm25
    from simsearch.retrieval.fusion import DEFAULT as FUSION
    from simsearch.retrieval.parts import LEXICAL_ROLES

    options = bm25.BM25Options()
    found = ctx.terms if ctx.terms is not None else start_terms(ctx.corpus.texts, ctx.previous,
                                                               ctx.gen.log, beside=False)
    terms, ctx.report.tokenized = found.result()
    index = bm25.LexicalIndex.build(terms.terms, options)
    names = {
        "matrix": ctx.gen.name("bm25", "npz"),
        "vocab": ctx.gen.name("vocab", "json"),
        "terms": ctx.gen.name("terms", "jsonl"),
    }
    index.save(ctx.gen.path, names, terms)
    section = LexicalInfo(
        analyzer="kiwi", k1=options.k1, b=options.b, method=options.method,
        n_terms=len(index.vocab), fusion=FUSION.method, dense_weight=_dense_weight(ctx, index),
    )
    return Part({LEXICAL_ROLES[k]: v for k, v in names.items()}, (section,))


def _dense_weight(ctx: PartInput, index) -> float:
    """The hybrid default's dense weight for this index, estimated from how often its two
    parts agree on the corpus's own sentences (:func:`simsearch.retrieval.fusion.estimate`);
    :data:`simsearch.retrieval.fusion.DEFAULT`'s for a corpus too small to estimate."""
    from simsearch.retrieval import fusion

    plan = ctx.units.windows
    n_units = len(ctx.units.texts)
    offsets = plan.windows.offsets if plan is not None and plan.split else np.arange(n_units + 1)
    found = fusion.estimate(np.load(ctx.search, mmap_mode="r"), offsets, ctx.units.texts,
                            ctx.units.empty, index)
    if found is None:
        return fusion.DEFAULT.dense_weight
    ctx.gen.log(f"hybrid fusion: the two parts agree on {found[0]:.0%} of the neighbours of "
                f"{fusion.AGREEMENT_QUERIES} sentences: dense weight {found[1]}")
    return found[1]


def start_terms(texts, previous: store.Index | None, log, beside: bool = True):
    """The Kiwi analysis of ``texts`` for the lexical part (:class:`simsearch.build.terms.Terms`),
    reusing the previous build's terms where readable; with ``beside``, started now in a
    background thread (see :mod:`simsearch.build.terms`)."""
    from simsearch.build.terms import Terms

    return Terms(texts, _previous_terms(previous, log), beside=beside)


def _previous_terms(previous: store.Index | None, log):  # -> bm25.TokenStore | None
    """The Kiwi terms of the previous build, when readable."""
    from simsearch.retrieval import bm25

    if previous is None or "lexical_terms" not in previous.meta.files:
        return None
    path = previous.file("lexical_terms")
    if not path.exists():
        return None
    try:
        return bm25.TokenStore.load(path)
    except (OSError, ValueError, KeyError):
        log("ignoring the previous lexical terms (unreadable); analysing every text")
        return None


#: The derived parts, in the order they are written.
def row_parts(ctx: PartInput) -> Part:
    """The parts ``similar`` and the empty-row filter read instead of computing them per
    call: the row vectors of a windowed index and the empty rows
    (:func:`simsearch.retrieval.parts.write_row_parts`). Runs after :func:`windows`."""
    from simsearch.retrieval.parts import write_row_parts

    plan = ctx.units.windows
    files = {"embeddings": ctx.search.name}
    if plan is not None and plan.split:
        files["windows"] = ctx.gen.name("windows", "npy")
    return Part(write_row_parts(ctx.gen.path, ctx.gen.id, files, ctx.corpus.texts))


PARTS = (columns, transform, ann, windows, row_parts, lexical)


def write_parts(ctx: PartInput) -> tuple[dict[str, str], list[Section], Path]:
    """Run :data:`PARTS`; returns ``({role: file name}, sections, search matrix)``."""
    files: dict[str, str] = {}
    sections: list[Section] = []
    for make in PARTS:
        part = make(ctx)
        files.update(part.files)
        sections.extend(part.sections)
        if "search" in part.files:
            ctx = replace(ctx, search=ctx.gen.path / part.files["search"])
    return files, sections, ctx.search


def _write_bytes(path: Path, write) -> None:
    from simsearch._fs import atomic

    with atomic.atomic_path(path) as tmp, open(tmp, "wb") as fh:
        write(fh)
