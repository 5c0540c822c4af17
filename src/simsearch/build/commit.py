"""The commit stage: rows, offsets and hashes of the generation, its ``meta.json`` (the
commit point: readers switch to the new generation when it is replaced), the clean-up
of what the journal retires, and the ONNX export that ``query`` runs without torch."""

from __future__ import annotations

import math
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from simsearch._fs import atomic
from simsearch.build.encode import Encoded
from simsearch.build.generation import Generation
from simsearch.build.options import BuildOptions, BuildReport, Target
from simsearch.build.plan import Units
from simsearch.store import generations
from simsearch.store import index as store
from simsearch.store.meta import (
    EncodeInfo,
    FileEntry,
    Generations,
    IndexMeta,
    ModelFiles,
    Section,
    SourceInfo,
    TableInfo,
)
from simsearch.tables.cells import cell_text
from simsearch.tables.read import Corpus


def write_rows(gen: Generation, corpus: Corpus, units: Units) -> dict[str, str]:
    """Write the rows (JSON lines, every source column), their offsets and the unit
    hashes; returns ``{role: file name}``."""
    files = {
        "rows": gen.name("rows", "jsonl"),
        "offsets": gen.name("offsets", "npy"),
        "hashes": gen.name("hashes", "npy"),
    }
    frame, column = corpus.frame, corpus.column
    records = (
        {c: _json_value(v) for c, v in zip(frame.columns, values)} | {column: text}
        for values, text in zip(frame.itertuples(index=False, name=None), corpus.texts)
    )
    store.write_rows_atomic(gen.path / files["rows"], gen.path / files["offsets"], records)
    atomic.write_npy_atomic(gen.path / files["hashes"], units.hashes)
    return files


def commit_generation(  # noqa: PLR0913 - the pieces of the generation, each from its stage
    gen: Generation,
    source: Path,
    corpus: Corpus,
    target: Target,
    options: BuildOptions,
    report: BuildReport,
    built: tuple[dict[str, str], list[Section], Encoded, str | None],
    previous: tuple[store.Index | None, store.Index | None, set[str]],
) -> IndexMeta:
    """Write ``meta.json`` of the generation (the commit point), then remove what the
    journal retires and the checkpoint.

    Args:
        built: ``(files, sections, encoded, backend)``: every file of the generation by
            role, the sections of its parts, the encode stage's result and the backend
            of the encoder that ran (``None`` when nothing was encoded).
        previous: ``(the previous index, the same index when its vectors were reusable
            (same model and precision), the names this build retires)``.
    """
    files, sections, encoded, backend = built
    old, reusable, retire = previous
    search_dim = int(np.load(gen.path / files.get("search", files["embeddings"]),
                             mmap_mode="r").shape[1])
    meta = IndexMeta(
        name=gen.path.name,
        created_at=store.now_iso(),
        model=target.model,
        source=SourceInfo(
            path=str(source),
            sha256=target.sha256,
            # From the moment the file was read (an edit during encoding is stale).
            size_bytes=corpus.size_bytes,
            mtime=corpus.mtime,
            sheet=corpus.sheet,
            column=corpus.column,
        ),
        columns=[str(c) for c in corpus.frame.columns],
        n_docs=len(corpus.texts),
        n_empty=corpus.n_empty,
        dim=encoded.dim,
        search_dim=search_dim,
        encode=EncodeInfo(
            device=options.device,
            batch_size=options.batch_size,
            backend=backend,
            precision=target.precision,
            status=report.status,
            encoded=report.encoded,
            reused=report.reused,
            dropped=report.dropped,
            truncated=report.truncated,
        ),
        versions=_versions(),
        files={role: _entry(gen.path, name) for role, name in files.items()},
    )
    for section in [*sections, _table_info(corpus)]:
        meta.with_section(section)
    names = set(files.values())
    # The generation just replaced stays one build longer: a reader that opened its
    # meta.json a moment ago can still read its rows. The one before it goes.
    replaced = {f.name for f in old.meta.files.values()} - names if old is not None else set()
    meta.with_section(Generations(previous=sorted(replaced)))
    _keep_tuned_fusion(meta, old)
    fingerprint = _model_fingerprint(target.model, reusable, encoded.pending is not None)
    if fingerprint is not None:
        meta.with_section(fingerprint)
    gen.journal(retire=sorted(retire - replaced - names))
    meta.write(gen.path)
    cleanup(gen.path, names | replaced)
    return meta


def cleanup(path: Path, keep: set[str]) -> None:
    """After the commit: delete what the journal retires, and the checkpoint; only
    names our records list (see :mod:`simsearch.store.generations`)."""
    generations.clean(path, keep=keep)


def query_export(model: str, path: Path, encoder: Any, log: Any) -> Path | None:
    """Best effort: make the model's ONNX export that ``query`` runs without torch
    (see :mod:`simsearch.encoding.onnx`; one per model, in the shared cache), reusing
    an fp32 CPU model already loaded. Returns the export directory, or None when the
    model has none."""
    from simsearch.encoding.onnx import ensure_export

    st = getattr(encoder, "st", None) if getattr(encoder, "precision", "") == "fp32" else None
    return ensure_export(model, path.parent, st=st, log=log)


def _model_fingerprint(model: str, old: store.Index | None, encoded: bool) -> ModelFiles | None:
    if not encoded and old is not None:
        return old.meta.get(ModelFiles)  # nothing encoded: the same model files
    if not encoded:
        return None
    from simsearch.encoding.model_files import fingerprint

    found = fingerprint(model)
    return None if found is None else ModelFiles(files=found["files"], sha256=found["sha256"])


def _entry(path: Path, name: str) -> FileEntry:
    full = path / name
    return FileEntry(name=name, size=atomic.path_size(full), sha256=atomic.file_digest(full))


def _table_info(corpus: Corpus) -> TableInfo:
    notes = corpus.notes
    return TableInfo(
        text_columns=list(corpus.columns),
        encoding=notes.encoding,
        header_row=notes.header_row,
        merged_cells_filled=notes.merged_cells,
    )


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


def _keep_tuned_fusion(meta, old) -> None:
    """Carry the fusion settings ``eval --tune`` stored over to the new build (same
    model, lexical index kept): the rows changed, the parts' reliability hardly did."""
    from simsearch.store.meta import FusionInfo

    tuned = old.meta.get(FusionInfo) if old is not None else None
    if tuned is not None and meta.lexical is not None and old.meta.model == meta.model:
        meta.with_section(tuned)
