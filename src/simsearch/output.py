"""Printing results: a rich table for people, JSON and CSV for pipes.

JSON contract (stable): an array of objects with the keys ``rank`` (1-based), ``row``
(0-based position in the source file), ``cosine_distance``, ``similarity``, ``text``;
query results add ``query_index`` and ``query``; ``--show`` adds ``columns``, an object
of the requested source columns.
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Sequence
from typing import Any, TextIO

from simsearch.search import Hit

FORMATS = ("table", "json", "csv")
CORE_KEYS = ("rank", "row", "cosine_distance", "similarity", "text")


def check_show(show: Sequence[str], columns: Sequence[str]) -> None:
    """Raises SimsearchError if a ``--show`` column is not in the index's source columns."""
    from simsearch.errors import SimsearchError

    missing = [c for c in show if c not in columns]
    if missing:
        listed = ", ".join(repr(c) for c in columns)
        raise SimsearchError(f"no column {missing[0]!r} to --show; choose from: {listed}")


def plain(hit: Hit, show: Sequence[str]) -> dict[str, Any]:
    """One result as the JSON object of the output contract."""
    out: dict[str, Any] = {}
    if "query" in hit:
        out["query_index"] = hit["query_index"]
        out["query"] = hit["query"]
    out.update({key: hit[key] for key in CORE_KEYS})
    if show:
        out["columns"] = {c: hit["columns"].get(c) for c in show}
    return out


def write_json(hits: list[Hit], show: Sequence[str], stream: TextIO | None = None) -> None:
    """Write results as a JSON array (UTF-8, non-ASCII kept as is)."""
    # sys.stdout looked up at call time: a default bound at import time keeps writing to
    # a stream that redirect_stdout, CliRunner or capsys has since replaced (and closed).
    stream = sys.stdout if stream is None else stream
    json.dump([plain(h, show) for h in hits], stream, ensure_ascii=False, indent=2)
    stream.write("\n")


def write_csv(hits: list[Hit], show: Sequence[str], stream: TextIO | None = None) -> None:
    """Write results as CSV with a header row; shown columns come before ``text``."""
    stream = sys.stdout if stream is None else stream
    has_query = bool(hits) and "query" in hits[0]
    header = (["query_index", "query"] if has_query else []) + list(CORE_KEYS[:4])
    header += list(show) + ["text"]
    writer = csv.writer(stream, lineterminator="\n")
    writer.writerow(header)
    for hit in hits:
        lead = [hit["query_index"], hit["query"]] if has_query else []
        values = [hit[k] for k in CORE_KEYS[:4]]
        shown = [_cell(hit["columns"].get(c)) for c in show]
        writer.writerow(lead + values + shown + [hit["text"]])


def _cell(value: Any) -> str:
    return "" if value is None else str(value)


def _one_line(text: str) -> Any:
    """A cell for the table: whitespace runs (newlines, tabs) folded to one space, other
    control characters shown as U+FFFD, and never parsed as rich markup ("[bold]" in a
    document stays literal text)."""
    from rich.text import Text

    folded = " ".join(text.split())
    return Text("".join(c if c.isprintable() else "\ufffd" for c in folded))


def write_table(hits: list[Hit], show: Sequence[str], title: str | None = None) -> None:
    """Print results as tables (one per query), the text cut to the terminal width.

    rich measures Korean (and other East Asian wide) characters as two cells, so the
    cut falls on the right column even for Hangul.
    """
    from rich import box
    from rich.console import Console
    from rich.table import Table

    console = Console(soft_wrap=False)
    groups: dict[int, list[Hit]] = {}
    for hit in hits:
        groups.setdefault(hit.get("query_index", 0), []).append(hit)
    for group in groups.values():
        heading = _one_line(f"query: {group[0]['query']}") if "query" in group[0] else title
        table = Table(
            title=heading, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False, expand=True
        )
        # The numbers keep their width; the text takes what is left of the terminal and
        # is cut with an ellipsis (never wrapped), so each result stays on one line.
        widths = {
            "rank": 4,
            "row": max(3, len(str(max(h["row"] for h in group)))),
            "distance": 8,
            "similarity": 10,
        }
        for name, width in widths.items():
            table.add_column(name, justify="right", no_wrap=True, min_width=width)
        for column in show:
            values = [_one_line(_cell(h["columns"].get(column))).cell_len for h in group]
            width = min(24, max([len(column), *values]))
            table.add_column(
                column, no_wrap=True, overflow="ellipsis", min_width=width, max_width=24
            )
        table.add_column("text", no_wrap=True, overflow="ellipsis", ratio=1)
        for hit in group:
            shown = [_one_line(_cell(hit["columns"].get(c))) for c in show]
            table.add_row(
                str(hit["rank"]),
                str(hit["row"]),
                f"{hit['cosine_distance']:.4f}",
                f"{hit['similarity']:.4f}",
                *shown,
                _one_line(hit["text"]),
            )
        console.print(table)


def write(hits: list[Hit], fmt: str, show: Sequence[str], title: str | None = None) -> None:
    """Write results to stdout in ``fmt`` (``table``, ``json`` or ``csv``)."""
    if fmt == "json":
        write_json(hits, show)
    elif fmt == "csv":
        write_csv(hits, show)
    else:
        write_table(hits, show, title)
