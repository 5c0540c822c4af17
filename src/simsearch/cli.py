"""The ``simsearch`` command line: a thin layer over the library.

Every command turns :class:`~simsearch.errors.SimsearchError` into one line on stderr
and exit code 2. Messages go to stderr so stdout carries only results (safe to pipe).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from simsearch import cli_science, commands
from simsearch import index as store

app = typer.Typer(
    name="simsearch",
    help="Sentence-embedding similarity search over the rows of a spreadsheet.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


IndexRoot = Annotated[
    Path,
    typer.Option("--index", help="Directory holding the indexes.", show_default=True),
]
IndexName = Annotated[str, typer.Option("--name", help="Which index under --index.")]
Format = Annotated[str, typer.Option("--format", "-f", help="table, json or csv.")]
Show = Annotated[
    str | None,
    typer.Option("--show", help="Comma-separated source columns to add to the output."),
]
K = Annotated[int, typer.Option("--k", "-k", help="Number of results.")]


say = commands.say


handle_errors = commands.handle_errors


ModelCheck = Annotated[
    str | None,
    typer.Option("--model", "-m", help="Refuse to run unless the index was built with this model."),
]


@app.command("index")
@handle_errors
def index_command(
    file: Annotated[Path, typer.Argument(help="Spreadsheet or table: .xlsx, .csv, .tsv, ...")],
    column: Annotated[str, typer.Option("--column", "-c", help="Text column to encode.")],
    sheet: Annotated[
        str | None, typer.Option("--sheet", help="Excel sheet (name or 0-based number).")
    ] = None,
    model: Annotated[
        str, typer.Option("--model", "-m", help="Hub id or local SentenceTransformer directory.")
    ] = "jhgan/ko-sroberta-multitask",
    device: Annotated[
        str | None, typer.Option("--device", help="cpu, cuda, cuda:1, mps (default: auto).")
    ] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Texts per batch.")] = 32,
    embeddings: Annotated[
        Path | None,
        typer.Option("--embeddings", help="Import a precomputed (n_rows, dim) .npy matrix."),
    ] = None,
    rebuild: Annotated[bool, typer.Option("--rebuild", help="Ignore the cache.")] = False,
    backend: Annotated[
        str, typer.Option("--backend", help="torch, or onnx (onnxruntime on CPU, faster).")
    ] = "torch",
    precision: Annotated[
        str,
        typer.Option("--precision", help="fp32; fp16/bf16 on a GPU (torch); int8 with onnx."),
    ] = "fp32",
    whiten: Annotated[
        bool, typer.Option("--whiten", help="Search BERT-whitened embeddings (Su et al. 2021).")
    ] = False,
    whiten_dim: Annotated[
        int | None, typer.Option("--whiten-dim", help="Keep this many whitened dimensions.")
    ] = None,
    root: IndexRoot = Path(store.DEFAULT_ROOT),
    name: IndexName = store.DEFAULT_NAME,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Encode a column of FILE once and cache the embeddings for similar and query."""
    from simsearch.build import build_index
    from simsearch.progress import encode_progress

    with encode_progress(enabled=not quiet) as on_progress:
        report = build_index(
            file,
            column,
            sheet=sheet,
            model=model,
            root=root,
            name=name,
            device=device,
            batch_size=batch_size,
            rebuild=rebuild,
            embeddings=embeddings,
            on_progress=on_progress,
            log=say,
            whiten=whiten,
            whiten_dim=whiten_dim,
            backend=backend,
            precision=precision,
        )
    _report_build(report)


def _report_build(report: Any) -> None:
    meta = report.meta
    where = report.path
    if report.status == "up-to-date":
        say(
            f"Index is up to date: {report.n_docs:,} documents, model {meta['model']}, "
            f"column {meta['source']['column']!r} ({where}); nothing re-encoded."
        )
        return
    if report.reasons != ["no index yet"]:
        say(f"Re-indexing: {'; '.join(report.reasons)}.")
    if report.status == "imported":
        what = "imported the embeddings matrix"
    else:
        what = f"encoded {report.encoded:,}, reused {report.reused:,}, dropped {report.dropped:,}"
    n_empty = meta["n_empty"]
    empty = f"; {n_empty:,} empty documents kept as empty rows" if n_empty else ""
    say(
        f"Indexed {meta['n_docs']:,} documents x {meta['dim']} dims from column "
        f"{meta['source']['column']!r} with {meta['model']}: {what}{empty} "
        f"in {report.seconds:.1f} s -> {where}"
    )


@app.command("similar")
@handle_errors
def similar_command(
    doc: Annotated[int, typer.Option("--doc", "-d", help="0-based row of the query document.")],
    k: K = 10,
    include_self: Annotated[
        bool, typer.Option("--include-self", help="Keep the document itself (rank 1).")
    ] = False,
    show: Show = None,
    fmt: Format = "table",
    model: ModelCheck = None,
    root: IndexRoot = Path(store.DEFAULT_ROOT),
    name: IndexName = store.DEFAULT_NAME,
) -> None:
    """Documents nearest to document --doc, by cosine distance."""
    commands.similar(doc, k, include_self, show, fmt, model, root, name)


@app.command("query")
@handle_errors
def query_command(
    text: Annotated[str | None, typer.Argument(help="The query sentence.")] = None,
    file: Annotated[
        str | None, typer.Option("--file", help="One query per line; '-' reads stdin.")
    ] = None,
    k: K = 10,
    show: Show = None,
    fmt: Format = "table",
    device: Annotated[str | None, typer.Option("--device", help="Encoding device.")] = None,
    model: ModelCheck = None,
    root: IndexRoot = Path(store.DEFAULT_ROOT),
    name: IndexName = store.DEFAULT_NAME,
) -> None:
    """Documents nearest to a query sentence, encoded with the index's own model."""
    commands.query(text, file, k, show, fmt, device, model, root, name)


@app.command("list")
@handle_errors
def list_command(root: IndexRoot = Path(store.DEFAULT_ROOT)) -> None:
    """The indexes under --index: source, column, model, size, and whether stale."""
    from simsearch.inventory import describe_all, write_list

    write_list(describe_all(root))


@app.command("info")
@handle_errors
def info_command(
    root: IndexRoot = Path(store.DEFAULT_ROOT),
    name: IndexName = store.DEFAULT_NAME,
    verify: Annotated[
        bool, typer.Option("--verify", help="Also check every file's sha256.")
    ] = False,
    fmt: Format = "table",
) -> None:
    """One index in detail (metadata, files, sizes); --verify checks checksums."""
    from simsearch.inventory import describe, write_info

    index = store.load_index(root, name)
    if verify:
        index.verify()
    write_info(describe(index), fmt=commands.check_format(fmt), verified=verify)


cli_science.register(app)


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
