"""Typer declarations of the analyst commands (``neighbors``, ``dedup``, ``map``,
``serve``); :func:`register` adds them to the ``simsearch`` app. Bodies live in
:mod:`simsearch.workflow_commands`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from simsearch import index as store
from simsearch import workflow_commands as body
from simsearch.commands import handle_errors
from simsearch.duplicates import DEFAULT_THRESHOLD

IndexRoot = Annotated[Path, typer.Option("--index", help="Directory holding the indexes.")]
IndexName = Annotated[str, typer.Option("--name", help="Which index under --index.")]
Show = Annotated[str | None, typer.Option("--show", help="Comma-separated source columns to add.")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")]


def neighbors_command(
    out: Annotated[Path, typer.Option("--out", "-o", help="Output .xlsx, .csv or .parquet.")],
    k: Annotated[int, typer.Option("--k", "-k", help="Neighbours per row.")] = 10,
    show: Show = None,
    quiet: Quiet = False,
    index: IndexRoot = Path(store.DEFAULT_ROOT),
    name: IndexName = store.DEFAULT_NAME,
) -> None:
    """The top-k neighbours of every row, one line per row, written for Excel."""
    body.neighbors(out, k, show, quiet, index, name)


def dedup_command(
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Output .xlsx (groups + pairs sheets), .csv, .parquet."),
    ] = None,
    threshold: Annotated[
        float, typer.Option("--threshold", "-t", help="Minimum cosine similarity of a pair.")
    ] = DEFAULT_THRESHOLD,
    show: Show = None,
    quiet: Quiet = False,
    index: IndexRoot = Path(store.DEFAULT_ROOT),
    name: IndexName = store.DEFAULT_NAME,
) -> None:
    """Near-duplicate pairs and their groups (connected components)."""
    body.dedup(out, threshold, show, quiet, index, name)


def map_command(
    out: Annotated[Path, typer.Option("--out", "-o", help="Interactive page (.html).")] = Path(
        "map.html"
    ),
    png: Annotated[
        Path | None, typer.Option("--png", help="Static picture (default: beside -o).")
    ] = None,
    color: Annotated[
        str, typer.Option("--color", help="Colour by 'cluster' or by any source column.")
    ] = "cluster",
    hover: Annotated[
        str | None, typer.Option("--hover", help="Columns shown on hover (default: all).")
    ] = None,
    column_out: Annotated[
        Path | None,
        typer.Option("--column-out", help="Write every row with its cluster to this .xlsx."),
    ] = None,
    min_cluster_size: Annotated[
        int | None, typer.Option("--min-cluster-size", help="HDBSCAN's smallest cluster.")
    ] = None,
    max_points: Annotated[
        int, typer.Option("--max-points", help="Map a random sample of at most this many rows.")
    ] = 20_000,
    index: IndexRoot = Path(store.DEFAULT_ROOT),
    name: IndexName = store.DEFAULT_NAME,
) -> None:
    """A 2-D map of the corpus (UMAP), clusters (HDBSCAN) labelled by Korean terms."""
    body.corpus_map(out, png, color, hover, column_out, min_cluster_size, max_points, index, name)


def serve_command(
    host: Annotated[str, typer.Option("--host", help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="TCP port.")] = 8000,
    k: Annotated[int, typer.Option("--k", "-k", help="Results per search.")] = 10,
    index: IndexRoot = Path(store.DEFAULT_ROOT),
    name: IndexName = store.DEFAULT_NAME,
) -> None:
    """A local web page for searching and browsing the index."""
    body.serve(host, port, k, index, name)


def register(app: typer.Typer) -> None:
    """Add the four commands to ``app``."""
    app.command("neighbors")(handle_errors(neighbors_command))
    app.command("dedup")(handle_errors(dedup_command))
    app.command("map")(handle_errors(map_command))
    app.command("serve")(handle_errors(serve_command))
