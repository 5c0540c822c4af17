"""Core commands: ``index`` (build), ``similar`` and ``query`` (search).

Each command is a plain function whose parameters are declared once with
:mod:`simsearch.cli.spec`; it reads its options, calls the library and renders. Heavy
libraries are imported inside the functions (``similar`` must start fast).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from simsearch.cli.run import open_index, read_queries, say, show_list
from simsearch.cli.spec import (
    DEFAULT_NAME,
    DEFAULT_ROOT,
    Arg,
    BatchSize,
    Device,
    Format,
    IndexName,
    IndexRoot,
    K,
    ModelCheck,
    Opt,
    Show,
)


def index_command(
    file: Annotated[Path, Arg(help="Spreadsheet or table: .xlsx, .csv, .tsv, ...")],
    column: Annotated[str, Opt("--column", "-c", help="Text column to encode.")],
    sheet: Annotated[
        str | None, Opt("--sheet", help="Excel sheet (name or 0-based number).")
    ] = None,
    model: Annotated[
        str, Opt("--model", "-m", help="Hub id or local SentenceTransformer directory.")
    ] = "jhgan/ko-sroberta-multitask",
    device: Device = None,
    batch_size: BatchSize = 32,
    embeddings: Annotated[
        Path | None, Opt("--embeddings", help="Import a precomputed (n_rows, dim) .npy matrix.")
    ] = None,
    rebuild: Annotated[bool, Opt("--rebuild", help="Ignore the cache.")] = False,
    backend: Annotated[
        str, Opt("--backend", help="torch, or onnx (onnxruntime on CPU, faster).")
    ] = "torch",
    precision: Annotated[
        str, Opt("--precision", help="fp32; fp16/bf16 on a GPU (torch); int8 with onnx.")
    ] = "fp32",
    whiten: Annotated[
        bool, Opt("--whiten", help="Search BERT-whitened embeddings (Su et al. 2021).")
    ] = False,
    whiten_dim: Annotated[
        int | None, Opt("--whiten-dim", help="Keep this many whitened dimensions.")
    ] = None,
    flow: Annotated[
        bool, Opt("--flow", help="Search BERT-flow embeddings (Li et al. 2020).")
    ] = False,
    root: IndexRoot = Path(DEFAULT_ROOT),
    name: IndexName = DEFAULT_NAME,
    quiet: Annotated[bool, Opt("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Encode a column of FILE once and cache the embeddings for similar and query."""
    from simsearch.build import BuildOptions, build
    from simsearch.options import options_from
    from simsearch.progress import encode_progress
    from simsearch.render import build_summary

    options = options_from(BuildOptions, locals())  # the options are named like its fields
    with encode_progress(enabled=not quiet) as on_progress:
        report = build(file, column, options, on_progress=on_progress, log=say)
    for line in build_summary(report):
        say(line)


def similar_command(
    doc: Annotated[int, Opt("--doc", "-d", help="0-based row of the query document.")],
    k: K = 10,
    include_self: Annotated[
        bool, Opt("--include-self", help="Keep the document itself (rank 1).")
    ] = False,
    show: Show = None,
    fmt: Format = "table",
    model: ModelCheck = None,
    root: IndexRoot = Path(DEFAULT_ROOT),
    name: IndexName = DEFAULT_NAME,
) -> None:
    """Documents nearest to document --doc, by cosine distance."""
    from simsearch import render
    from simsearch.search import similar_hits

    fmt = render.check_format(fmt)
    index = open_index(root, name, model)
    columns = show_list(show)
    render.check_show(columns, index.meta.columns)
    hits = similar_hits(index, doc, k, include_self=include_self, log=say)
    render.write(hits, fmt, columns, title=f"documents similar to row {doc}")


def query_command(
    text: Annotated[str | None, Arg(help="The query sentence.")] = None,
    file: Annotated[str | None, Opt("--file", help="One query per line; '-' reads stdin.")] = None,
    k: K = 10,
    show: Show = None,
    fmt: Format = "table",
    device: Annotated[str | None, Opt("--device", help="Encoding device.")] = None,
    model: ModelCheck = None,
    root: IndexRoot = Path(DEFAULT_ROOT),
    name: IndexName = DEFAULT_NAME,
) -> None:
    """Documents nearest to a query sentence, encoded with the index's own model."""
    from simsearch import render
    from simsearch.search import query_hits

    fmt = render.check_format(fmt)
    queries = read_queries(text, file)
    index = open_index(root, name, model)
    columns = show_list(show)
    render.check_show(columns, index.meta.columns)
    hits = query_hits(index, queries, k, device=device, log=say)
    render.write(hits, fmt, columns)


#: name -> (function, fast): ``fast`` commands load no model on their usual path and
#: are parsed by :mod:`simsearch.cli.fast` without importing typer.
COMMANDS = {
    "index": (index_command, False),
    "similar": (similar_command, True),
    "query": (query_command, True),
}
