"""Core commands: ``index`` (build), ``similar`` and ``query`` (search).

Each command is a plain function whose parameters are declared once with
:mod:`simsearch.cli.spec`; it reads its options, calls the library and renders. Heavy
libraries are imported inside the functions (``similar`` must start fast).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from simsearch.cli.run import open_index, read_queries, say, show_list
from simsearch.cli.spec import (
    DEFAULT_NAME,
    DEFAULT_ROOT,
    Aggregate,
    Arg,
    BatchSize,
    DenseWeight,
    Device,
    Exact,
    Fusion,
    IndexName,
    IndexRoot,
    K,
    MinSimilarity,
    Mode,
    ModelCheck,
    Opt,
    Output,
    Rerank,
    RerankDepth,
    ResultFormat,
    Show,
    Where,
)
from simsearch.errors import SimsearchError


def index_command(
    file: Annotated[Path, Arg(help="Spreadsheet or table: .xlsx, .csv, .tsv, ...")],
    column: Annotated[
        list[str],
        Opt(
            "--column",
            "-c",
            help="Text column to encode; repeat it (or separate by commas) to join several "
            "columns into one document per row.",
        ),
    ],
    sheet: Annotated[
        str | None,
        Opt(
            "--sheet",
            help="Excel sheet (name or 0-based number); default the first, or the one "
            "sheet that has the column.",
        ),
    ] = None,
    header_row: Annotated[
        int | None,
        Opt(
            "--header-row",
            help="Row of the header as Excel numbers rows (from 1); default detected. "
            "Document 0 is the row below it.",
        ),
    ] = None,
    encoding: Annotated[
        str | None,
        Opt(
            "--encoding", help="Encoding of a CSV/TSV (cp949, utf-8, utf-16...); default detected."
        ),
    ] = None,
    model: Annotated[
        str | None,
        Opt(
            "--model",
            "-m",
            help="Hub id or local SentenceTransformer directory "
            "[default: jhgan/ko-sroberta-multitask; none with --embeddings].",
        ),
    ] = None,
    device: Device = None,
    batch_size: BatchSize = 32,
    embeddings: Annotated[
        Path | None, Opt("--embeddings", help="Import a precomputed (n_rows, dim) .npy matrix.")
    ] = None,
    rebuild: Annotated[bool, Opt("--rebuild", help="Ignore the cache.")] = False,
    backend: Annotated[
        str,
        Opt(
            "--backend",
            help="auto (onnx on a CPU when onnxruntime is installed, else torch), torch, onnx.",
        ),
    ] = "auto",
    precision: Annotated[
        str, Opt("--precision", help="fp32; fp16/bf16 on a GPU (torch); int8 with onnx.")
    ] = "fp32",
    whiten: Annotated[
        bool, Opt("--whiten", help="Search BERT-whitened embeddings (Su et al. 2021).")
    ] = False,
    whiten_dim: Annotated[
        int | None,
        Opt("--whiten-dim",
            help="Keep this many whitened dimensions (at most (n-1)//2 for n documents)."),
    ] = None,
    ann: Annotated[
        bool,
        Opt("--ann", help="Also build an approximate index (usearch HNSW, int8) for millions."),
    ] = False,
    ray: Annotated[
        str | None,
        Opt("--ray", help="Encode on Ray: 'local', 'auto' or the head address (the ray extra)."),
    ] = None,
    chunking: Annotated[
        str,
        Opt("--chunking", help="auto: long documents as overlapping windows; "
            "sentences: one window per sentence; none: truncate."),
    ] = "auto",
    lexical: Annotated[
        bool, Opt("--lexical/--no-lexical", help="Build the BM25 index over Kiwi terms.")
    ] = True,
    flow: Annotated[
        bool, Opt("--flow", help="Search BERT-flow embeddings (Li et al. 2020).")
    ] = False,
    root: IndexRoot = Path(DEFAULT_ROOT),
    name: IndexName = DEFAULT_NAME,
    quiet: Annotated[bool, Opt("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Encode a column of FILE once and cache the embeddings for similar and query."""
    from simsearch.build import BuildOptions, build
    from simsearch.cli.progress import encode_progress
    from simsearch.cli.render import build_summary
    from simsearch.cli.spec import options_from

    options = options_from(BuildOptions, locals())  # the options are named like its fields
    with encode_progress(enabled=not quiet) as on_progress:
        report = build(file, list(column), options, on_progress=on_progress, log=say)
    for line in build_summary(report):
        say(line)


def similar_command(
    doc: Annotated[int, Opt("--doc", "-d", help="0-based row of the query document.")],
    k: K = None,
    min_similarity: MinSimilarity = None,
    include_self: Annotated[
        bool, Opt("--include-self", help="Keep the document itself (rank 1).")
    ] = False,
    show: Show = None,
    fmt: ResultFormat = "table",
    output: Output = None,
    mode: Mode = None,
    dense_weight: DenseWeight = None,
    fusion: Fusion = None,
    model: ModelCheck = None,
    where: Where = None,
    exact: Exact = False,
    rerank: Rerank = None,
    rerank_depth: RerankDepth = 50,
    root: IndexRoot = Path(DEFAULT_ROOT),
    name: IndexName = DEFAULT_NAME,
) -> None:
    """Documents most similar to document --doc (hybrid, dense or lexical)."""
    from simsearch.cli import render
    from simsearch.search import search_options, similar_hits

    fmt = render.check_output(fmt, output)
    second = second_stage(rerank, rerank_depth)
    index = open_index(root, name, model)
    columns = show_list(show)
    index.meta.check_columns(columns)
    options = search_options(mode, dense_weight=dense_weight, fusion=fusion)
    first_k, log = first_stage(second, k, min_similarity)
    hits = similar_hits(
        index, doc, first_k, include_self=include_self, log=log, min_similarity=min_similarity,
        exact=exact, options=options, where=where,
    )
    if second is not None:
        value = index.rows([doc])[0].get(index.column)
        hits = reranked(hits, ["" if value is None else str(value)], second, k, min_similarity)
    render.write(hits, fmt, columns, title=f"documents similar to row {doc}", output=output)


def query_command(
    text: Annotated[str | None, Arg(help="The query sentence.")] = None,
    file: Annotated[
        str | None,
        Opt(
            "--file",
            help="Many queries: one per line of a text FILE ('-' reads stdin), or one per row "
            "of a spreadsheet (.xlsx, .csv, ...; with --query-column): each result row then "
            "carries the query row's columns as query.<column>.",
        ),
    ] = None,
    query_column: Annotated[
        str | None,
        Opt(
            "--query-column",
            help="The column of the --file spreadsheet holding the queries (default: its "
            "only column).",
        ),
    ] = None,
    sheet: Annotated[
        str | None,
        Opt("--sheet", help="Excel sheet of the --file spreadsheet (name or 0-based number)."),
    ] = None,
    header_row: Annotated[
        int | None,
        Opt("--header-row", help="Header row of the --file spreadsheet (from 1; default: "
            "detected)."),
    ] = None,
    encoding: Annotated[
        str | None, Opt("--encoding", help="Encoding of a --file CSV/TSV; default detected.")
    ] = None,
    text_file: Annotated[
        Path | None,
        Opt(
            "--text-file",
            help="One query: the whole of FILE (e.g. an abstract over several lines); "
            "--file splits lines into queries, this does not.",
        ),
    ] = None,
    k: K = None,
    min_similarity: MinSimilarity = None,
    show: Show = None,
    fmt: ResultFormat = "table",
    output: Output = None,
    device: Annotated[str | None, Opt("--device", help="Encoding device.")] = None,
    mode: Mode = None,
    aggregate: Aggregate = "max",
    dense_weight: DenseWeight = None,
    fusion: Fusion = None,
    model: ModelCheck = None,
    where: Where = None,
    exact: Exact = False,
    rerank: Rerank = None,
    rerank_depth: RerankDepth = 50,
    root: IndexRoot = Path(DEFAULT_ROOT),
    name: IndexName = DEFAULT_NAME,
    quiet: Annotated[bool, Opt("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Documents nearest to a query sentence, encoded with the index's own model."""
    from simsearch.cli import render
    from simsearch.search import query_hits, search_options
    from simsearch.workflows.batch import is_table

    fmt = render.check_output(fmt, output)
    second = second_stage(rerank, rerank_depth)
    table = is_table(file, query_column)
    if table:
        from simsearch.cli.spec import options_from
        from simsearch.workflows.batch import QueryTableOptions, read_query_rows

        if text is not None or text_file is not None:
            raise SimsearchError("give one of TEXT, --file or --text-file, not several")
        rows = read_query_rows(file, options_from(QueryTableOptions, locals()))
    else:
        reading = {"--query-column": query_column, "--sheet": sheet,
                   "--header-row": header_row, "--encoding": encoding}
        given = [flag for flag, value in reading.items() if value is not None]
        if given:
            raise SimsearchError(f"{given[0]} reads a spreadsheet given with --file")
        queries = read_queries(text, file, text_file)
    index = open_index(root, name, model)
    columns = show_list(show)
    index.meta.check_columns(columns)
    options = search_options(mode, aggregate, dense_weight, fusion)
    # Kiwi is not started in a thread here: its set-up holds the GIL (1.3-1.8 s), so it
    # would stall the encoder's loading instead of overlapping it (measured: no gain).
    first_k, log = first_stage(second, k, min_similarity)
    if table:
        hits = _batch(index, rows, first_k, options, quiet, device=device, log=log,
                      min_similarity=min_similarity, exact=exact, where=where)
        queries = rows.texts
    else:
        hits = query_hits(
            index, queries, first_k, device=device, log=log, min_similarity=min_similarity,
            exact=exact, options=options, where=where,
        )
    if second is not None:
        hits = reranked(hits, queries, second, k, min_similarity, device)
    render.write(hits, fmt, columns, output=output)


def second_stage(rerank: str | None, depth: int) -> Any:
    """The :class:`~simsearch.retrieval.rerank.RerankOptions` of ``--rerank`` (checked
    before anything loads), or None.

    Raises:
        InvalidParameter: an empty model name or a depth below 1.
    """
    if rerank is None:
        return None
    from simsearch.retrieval.rerank import RerankOptions

    second = RerankOptions(rerank, depth)
    second.check()
    from simsearch.encoding.cross_encoder import model_location

    model_location(rerank)  # a missing directory fails before any work
    return second


def first_stage(second: Any, k: int | None, min_similarity: float | None) -> tuple[Any, Any]:
    """(hits the first stage returns, its log): ``k`` without a reranker; with one, at
    least its depth, and the note on ``--k`` being clamped left out (it would name a
    ``k`` the user did not give)."""
    if second is None:
        return k, say
    final = final_k(k, min_similarity)

    def log(message: str) -> None:
        if getattr(message, "param", None) != "k":
            say(message)

    return second.first_k(final), log


def final_k(k: int | None, min_similarity: float | None) -> int | None:
    """The hits shown per query: ``k``, 10 by default, None (no limit) with only a
    similarity threshold."""
    if k is None:
        return None if min_similarity is not None else 10
    return k


def reranked(hits: list[Any], queries: list[str], second: Any, k: int | None,
             min_similarity: float | None, device: str | None = None) -> list[Any]:
    """``hits`` reordered by the cross-encoder of ``second``, ``k`` kept per query."""
    from simsearch.retrieval.rerank import rerank_with

    return rerank_with(hits, queries, second, final_k(k, min_similarity), device)


def _batch(index: Any, rows: Any, k: int | None, options: Any, quiet: bool, log: Any,
           **search: Any) -> list[Any]:
    """``query``'s hits for every row of a query table, with a progress bar over the
    queries when there are several blocks of them."""
    from simsearch.cli.progress import progress
    from simsearch.workflows.batch import BLOCK_QUERIES, batch_hits

    if rows.skipped:
        n = len(rows.skipped)
        say(f"{n:,} row{'s' if n > 1 else ''} with an empty {rows.column!r} skipped "
            f"(the first: data row {rows.skipped[0]}, counted from 0)")
    say(f"{len(rows.texts):,} queries from column {rows.column!r}")
    enabled = not quiet and len(rows.texts) > BLOCK_QUERIES
    with progress("querying", "queries", enabled) as on_progress:
        return batch_hits(index, rows, k, log=log, options=options, on_progress=on_progress,
                          **search)


def show_command(
    doc: Annotated[int, Opt("--doc", "-d", help="0-based row of the document.")],
    root: IndexRoot = Path(DEFAULT_ROOT),
    name: IndexName = DEFAULT_NAME,
) -> None:
    """One document printed whole: its text and every source column."""
    from simsearch.cli import render
    from simsearch.search import check_doc

    index = open_index(root, name)
    check_doc(doc, index)
    record = index.rows([doc])[0]
    text = record.get(index.column)
    header = index.meta.table.header_row
    where = f"row {header + 1 + doc} of {Path(index.meta.source.path).name}"
    if index.meta.source.sheet:
        where += f", sheet {index.meta.source.sheet!r}"
    render.write_document(record, doc, "" if text is None else str(text), where)
