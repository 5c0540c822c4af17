"""Analyst commands: ``neighbors`` (every row's top-k to a spreadsheet), ``dedup``
(near-duplicate pairs and groups), ``map`` (a 2-D map of the corpus) and ``serve``
(a local web page)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

from simsearch.cli.run import open_index, say, show_list
from simsearch.cli.spec import (
    DEFAULT_NAME,
    DEFAULT_ROOT,
    DenseWeight,
    Fusion,
    IndexName,
    IndexRoot,
    K,
    Mode,
    Opt,
    Rerank,
    RerankDepth,
    Show,
)
from simsearch.errors import InvalidParameter

Quiet = Annotated[bool, Opt("--quiet", "-q", help="No progress bar.")]
TableOut = Annotated[Path, Opt("--out", "-o", help="Output file: .xlsx, .csv or .parquet.")]


def neighbors_command(
    out: TableOut,
    k: K = 10,
    show: Show = None,
    mode: Mode = None,
    dense_weight: DenseWeight = None,
    fusion: Fusion = None,
    quiet: Quiet = False,
    root: IndexRoot = Path(DEFAULT_ROOT),
    name: IndexName = DEFAULT_NAME,
) -> None:
    """The top-k neighbours of every row (each row's similar), written for Excel."""
    from simsearch.cli.progress import progress
    from simsearch.tables.write import check_output, write_frame
    from simsearch.workflows.neighbors import NeighborsOptions, neighbors_frame

    index = open_index(root, name)
    check_output(out, protect=index.meta.source.path)
    start = time.perf_counter()
    options = NeighborsOptions(k=k, show=tuple(show_list(show)), mode=mode,
                               dense_weight=dense_weight, fusion=fusion)
    with progress("neighbours", "rows", enabled=not quiet) as on_progress:
        frame = neighbors_frame(index, options, on_progress=on_progress)
    write_frame(frame, out, sheet="neighbors")
    k_done = sum(c.endswith("_similarity") for c in frame.columns)
    say(
        f"Wrote the {k_done} nearest neighbours of {len(frame):,} rows to {out} "
        f"in {time.perf_counter() - start:.1f} s"
    )


def dedup_command(
    out: Annotated[
        Path | None,
        Opt("--out", "-o", help="Output .xlsx (sheets groups, pairs), or .csv/.parquet."),
    ] = None,
    threshold: Annotated[
        float | None,
        Opt("--threshold", "-t", help="Minimum cosine similarity of a pair (default 0.96)."),
    ] = None,
    show: Show = None,
    mode: Mode = None,
    quiet: Quiet = False,
    root: IndexRoot = Path(DEFAULT_ROOT),
    name: IndexName = DEFAULT_NAME,
) -> None:
    """Near-duplicate pairs and their groups (connected components); without -o, a table."""
    from simsearch.cli.progress import progress
    from simsearch.cli.render import write_groups
    from simsearch.tables.write import check_output, write_sheets
    from simsearch.workflows.dedup import DEFAULT_THRESHOLD, DedupOptions, find_duplicates

    index = open_index(root, name)
    if out is not None:
        check_output(out, protect=index.meta.source.path)
    threshold = DEFAULT_THRESHOLD if threshold is None else threshold
    options = DedupOptions(threshold=threshold, show=tuple(show_list(show)), mode=mode)
    with progress("pairs", "rows", enabled=not quiet) as on_progress:
        found = find_duplicates(index, options, on_progress=on_progress)
    summary = (
        f"{len(found.pairs):,} near-duplicate pairs in {found.groups['group'].nunique():,} "
        f"groups ({len(found.groups):,} rows) at cosine similarity >= {threshold}"
    )
    if out is None:
        write_groups(found.groups, options.show)
        say(summary)
        return
    written = write_sheets({"groups": found.groups, "pairs": found.pairs}, out)
    say(f"{summary}; wrote {', '.join(str(p) for p in written)}")


def map_command(
    out: Annotated[Path, Opt("--out", "-o", help="The interactive page (.html).")] = Path(
        "map.html"
    ),
    png: Annotated[
        Path | None, Opt("--png", help="Static picture (default: -o with .png).")
    ] = None,
    color: Annotated[
        str, Opt("--color", help="Colour by 'cluster' or by any source column.")
    ] = "cluster",
    hover: Annotated[
        str | None, Opt("--hover", help="Columns shown on hover (default: all).")
    ] = None,
    column_out: Annotated[
        Path | None,
        Opt("--column-out", help="Write every non-empty row (with `row`) and its cluster here."),
    ] = None,
    min_cluster_size: Annotated[
        int | None, Opt("--min-cluster-size", help="HDBSCAN's smallest cluster.")
    ] = None,
    max_points: Annotated[
        int, Opt("--max-points", help="Map a random sample of at most this many rows.")
    ] = 20_000,
    root: IndexRoot = Path(DEFAULT_ROOT),
    name: IndexName = DEFAULT_NAME,
) -> None:
    """A 2-D map of the corpus (UMAP), clusters (HDBSCAN) labelled by Korean terms."""
    from simsearch.cli.progress import progress
    from simsearch.tables.write import check_output, write_frame
    from simsearch.workflows import corpus_map as cmap

    index = open_index(root, name)
    source = index.meta.source.path
    check_output(out, (".html",), protect=source)
    png = check_output(out.with_suffix(".png") if png is None else png, (".png",), source, "png")
    if column_out is not None:
        check_output(column_out, protect=source, param="column_out")
    hover_columns = show_list(hover) or [c for c in index.meta.columns if c != index.column]
    cmap.check_columns(index.meta.columns, color, hover_columns)  # before the slow part
    start = time.perf_counter()
    say(f"laying out {index.n_docs:,} documents with UMAP, clustering with HDBSCAN ...")
    options = cmap.MapOptions(min_cluster_size=min_cluster_size, max_points=max_points)
    total = cmap.MAP_STAGES + 1  # the stages of corpus_map, then the pictures
    with progress("mapping", "steps") as bar:
        result = cmap.corpus_map(index, options, on_progress=lambda done, _: bar(done, total))
        cmap.write_html(result, out, color=color, hover=(*hover_columns, index.column))
        cmap.write_png(result, png, log=say)
        bar(total, total)
    if result.sampled:
        say(
            f"mapped a random sample of {max_points:,} rows; every other row takes the "
            "cluster of its nearest sampled row"
        )
    frame = result.frame
    noise = int((frame["drawn"] & (frame["cluster"] < 0)).sum())
    say(
        f"{len(result.terms)} clusters, {noise} rows as noise, in "
        f"{time.perf_counter() - start:.1f} s; wrote {out} and {png}"
    )
    for cluster, terms in sorted(result.terms.items()):
        size = int((frame["cluster"] == cluster).sum())
        print(f"{cluster:3d}  {size:6,d} rows  {' '.join(terms)}")
    if column_out is not None:
        source_columns = [c for c in index.meta.columns if c != "row"]
        columns = ["row", *source_columns, "cluster", "cluster_label"]
        kept = frame.loc[~frame["empty"], columns]
        write_frame(kept, column_out, "map")
        empty = len(frame) - len(kept)
        left = f" ({empty:,} empty row{'' if empty == 1 else 's'} left out)" if empty else ""
        say(f"wrote every non-empty row with its cluster to {column_out}{left}")


def check_port(port: int) -> int:
    """``port`` when it is a TCP port (1 to 65535; 0, "any free port", would leave the
    printed address unknown).

    Raises:
        InvalidParameter: (param ``port``) any other number.
    """
    if not 1 <= port <= MAX_PORT:
        raise InvalidParameter("port", f"{{name}} must be from 1 to {MAX_PORT}, got {port}")
    return port


MAX_PORT = 65535


def serve_command(
    host: Annotated[
        str, Opt("--host", help="Interface to bind (127.0.0.1: this machine only).")
    ] = "127.0.0.1",
    port: Annotated[int, Opt("--port", help="TCP port, 1 to 65535.")] = 8000,
    k: K = 10,
    rerank: Rerank = None,
    rerank_depth: RerankDepth = 50,
    root: IndexRoot = Path(DEFAULT_ROOT),
    name: IndexName = DEFAULT_NAME,
) -> None:
    """A local web page for searching and browsing the index (Ctrl-C stops it)."""
    from simsearch.workflows.serve import ServeOptions, serve

    check_port(port)
    index = open_index(root, name)
    options = ServeOptions(host=host, port=port, k=k, rerank=rerank, rerank_depth=rerank_depth)
    serve(index, options, log=say)
