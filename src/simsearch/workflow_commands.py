"""The bodies of the analyst commands: ``neighbors``, ``dedup``, ``map`` and ``serve``.

The CLI declares the options and calls these; each opens the index, runs the library
function, writes the file and says what it wrote on stderr (stdout carries results
only). Nothing here imports pandas, torch or plotly at module level.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from simsearch import index as store
from simsearch.errors import SimsearchError


def say(message: str) -> None:
    from simsearch.commands import say as _say

    _say(message)


@contextlib.contextmanager
def row_progress(label: str, enabled: bool = True) -> Iterator[Callable[[int, int], None]]:
    """An ``on_progress(done, total)`` callback driving a rich bar on stderr (``label``,
    rows done / total, elapsed, eta). The bar starts on the first call, so a command
    that fails before any work prints none; ``enabled=False`` gives a no-op."""
    state: dict[str, Any] = {}

    def update(done: int, total: int) -> None:
        if not enabled:
            return
        if "bar" not in state:
            state["bar"] = _start_bar(label)
            state["task"] = state["bar"].add_task(label, total=total)
        state["bar"].update(state["task"], completed=done, total=total)

    try:
        yield update
    finally:
        if "bar" in state:
            state["bar"].stop()


def _start_bar(label: str) -> Any:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    bar = Progress(
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("rows"),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        console=Console(stderr=True),
    )
    bar.start()
    return bar


def check_output(path: Path, index: store.Index, suffixes: tuple[str, ...]) -> Path:
    """``path`` if its suffix is one of ``suffixes`` and it is not the index's source file.

    Raises:
        SimsearchError: another suffix, or the path of the indexed source file (writing
            there would destroy the user's data).
    """
    if path.suffix.lower() not in suffixes:
        raise SimsearchError(f"cannot write {path.name!r}: -o must end in {', '.join(suffixes)}")
    source = index.meta.get("source", {}).get("path")
    if source and path.resolve() == Path(source).resolve():
        raise SimsearchError(f"-o {path} is the indexed source file; choose another file name")
    return path


def _show(show: str | None) -> tuple[str, ...]:
    return tuple(c.strip() for c in show.split(",") if c.strip()) if show else ()


def neighbors(
    out: Path, k: int, show: str | None, quiet: bool, root: str | Path, name: str
) -> None:
    """``simsearch neighbors``: write every row's top-k neighbours to ``out``."""
    from simsearch.commands import open_index
    from simsearch.knn import NeighborsOptions, neighbors_frame
    from simsearch.table_writer import SUFFIXES, write_frame

    index = open_index(root, name)
    check_output(out, index, SUFFIXES)
    start = time.perf_counter()
    options = NeighborsOptions(k=k, show=_show(show))
    with row_progress("neighbours", enabled=not quiet) as progress:
        frame = neighbors_frame(index, options, on_progress=progress)
    write_frame(frame, out, sheet="neighbors")
    k_done = sum(c.endswith("_similarity") for c in frame.columns)
    say(
        f"Wrote the {k_done} nearest neighbours of {len(frame):,} rows to {out} "
        f"in {time.perf_counter() - start:.1f} s"
    )


def dedup(
    out: Path | None,
    threshold: float,
    show: str | None,
    quiet: bool,
    root: str | Path,
    name: str,
) -> None:
    """``simsearch dedup``: near-duplicate groups and pairs, to ``out`` or as a table."""
    from simsearch.commands import open_index
    from simsearch.duplicates import DedupOptions, find_duplicates
    from simsearch.table_writer import SUFFIXES, write_sheets

    index = open_index(root, name)
    if out is not None:
        check_output(out, index, SUFFIXES)
    options = DedupOptions(threshold=threshold, show=_show(show))
    with row_progress("pairs", enabled=not quiet) as progress:
        found = find_duplicates(index, options, on_progress=progress)
    n_groups = found.groups["group"].nunique()
    summary = (
        f"{len(found.pairs):,} near-duplicate pairs in {n_groups:,} groups "
        f"({len(found.groups):,} rows) at cosine similarity >= {threshold}"
    )
    if out is None:
        print_groups(found, _show(show))
        say(summary)
        return
    written = write_sheets({"groups": found.groups, "pairs": found.pairs}, out)
    say(f"{summary}; wrote {', '.join(str(p) for p in written)}")


def print_groups(found: Any, show: tuple[str, ...], limit: int = 20) -> None:
    """The first ``limit`` groups' members as a rich table on stdout."""
    from rich import box
    from rich.console import Console
    from rich.table import Table

    from simsearch.output import _one_line

    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, expand=True)
    for column in ("group", "size", "row", "best_match", "similarity"):
        table.add_column(column, justify="right", no_wrap=True)
    for column in show:
        table.add_column(column, no_wrap=True, overflow="ellipsis", max_width=24)
    table.add_column("text", no_wrap=True, overflow="ellipsis", ratio=1)
    groups = found.groups[found.groups["group"] < limit]
    for rec in groups.itertuples(index=False):
        values = rec._asdict()
        table.add_row(
            str(values["group"]),
            str(values["size"]),
            str(values["row"]),
            str(values["best_match"]),
            f"{values['best_similarity']:.4f}",
            *[_one_line("" if values[c] is None else str(values[c])) for c in show],
            _one_line(values["text"]),
        )
    Console(soft_wrap=False).print(table)


def corpus_map(
    out: Path,
    png: Path | None,
    color: str,
    hover: str | None,
    column_out: Path | None,
    min_cluster_size: int | None,
    max_points: int,
    root: str | Path,
    name: str,
) -> None:
    """``simsearch map``: the interactive page, a PNG and optionally the clusters as a
    column of an ``.xlsx``."""
    from simsearch import corpus_map as cmap
    from simsearch.commands import open_index
    from simsearch.table_writer import write_frame

    index = open_index(root, name)
    check_output(out, index, (".html",))
    png = out.with_suffix(".png") if png is None else check_output(png, index, (".png",))
    if column_out is not None:
        check_output(column_out, index, (".xlsx", ".csv", ".parquet"))
    hover_columns = _show(hover) or tuple(c for c in index.meta["columns"] if c != index.column)
    start = time.perf_counter()
    say(f"laying out {index.n_docs:,} documents with UMAP and clustering with HDBSCAN ...")
    options = cmap.MapOptions(min_cluster_size=min_cluster_size, max_points=max_points)
    result = cmap.corpus_map(index, options)
    if result.sampled:
        say(
            f"mapped a random sample of {max_points:,} rows; every other row takes the "
            "cluster of its nearest sampled row"
        )
    cmap.write_html(result, out, color=color, hover=(*hover_columns, index.column))
    cmap.write_png(result, png, log=say)
    frame = result.frame
    n_clusters = int(frame["cluster"].max()) + 1
    noise = int((frame["drawn"] & (frame["cluster"] < 0)).sum())
    say(
        f"{n_clusters} clusters, {noise} rows as noise, in {time.perf_counter() - start:.1f} s;"
        f" wrote {out} and {png}"
    )
    for cluster, terms in sorted(result.terms.items()):
        size = int((frame["cluster"] == cluster).sum())
        print(f"{cluster:3d}  {size:6,d} rows  {' '.join(terms)}")
    if column_out is not None:
        columns = [*index.meta["columns"], "cluster", "cluster_label"]
        write_frame(frame[columns], column_out, sheet="clusters")
        say(f"wrote every row with its cluster to {column_out}")


def serve(host: str, port: int, k: int, root: str | Path, name: str) -> None:
    """``simsearch serve``: run the web page until Ctrl-C."""
    from simsearch.commands import open_index
    from simsearch.serve import ServeOptions
    from simsearch.serve import serve as run_server

    index = open_index(root, name)
    run_server(index, ServeOptions(host=host, port=port, k=k), log=say)
