"""Rendering output: rich tables for people, JSON and CSV for pipes. Search hits,
index listings and details, and metric tables (eval/inspect) all go through here, and
every table is made by one builder (:func:`rich_table`).

JSON contract (stable): an array of objects with the keys ``rank`` (1-based), ``row``
(0-based position in the source file), ``cosine_distance``, ``similarity``, ``text``,
``score``, ``mode``, ``matched_text``, ``matched_terms``; query results add
``query_index`` and ``query``; ``--show`` adds ``columns``, an object of the requested
source columns (:meth:`simsearch.retrieval.hit.Hit.to_json`).
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from simsearch.errors import InvalidParameter

if TYPE_CHECKING:
    from simsearch.retrieval.hit import Hit

FORMATS = ("table", "json", "csv")
#: Formats of search results: the above, and Excel workbooks (to a file only).
RESULT_FORMATS = (*FORMATS, "xlsx")


def check_format(fmt: str, allowed: Sequence[str] = FORMATS) -> str:
    """``fmt`` if it is one of ``allowed``.

    Raises:
        InvalidParameter: (param ``fmt``) any other value.
    """
    if fmt not in allowed:
        raise InvalidParameter("fmt", f"unknown {{name}} {fmt!r}; use one of: {', '.join(allowed)}")
    return fmt


@dataclass(frozen=True)
class Col:
    """One column of a rich table (the keyword arguments of ``Table.add_column``)."""

    name: str
    justify: str = "left"
    no_wrap: bool = False
    overflow: str = "ellipsis"
    min_width: int | None = None
    max_width: int | None = None
    ratio: int | None = None


def rich_table(columns: Sequence[Col], rows: Sequence[Sequence[Any]], **table: Any) -> Any:
    """A ``rich.table.Table`` with ``columns`` and ``rows`` (``table``: Table options)."""
    from rich.table import Table

    out = Table(**table)
    for col in columns:
        out.add_column(
            col.name,
            justify=col.justify,  # type: ignore[arg-type]
            no_wrap=col.no_wrap,
            overflow=col.overflow,  # type: ignore[arg-type]
            min_width=col.min_width,
            max_width=col.max_width,
            ratio=col.ratio,
        )
    for row in rows:
        out.add_row(*row)
    return out


def write_json(hits: list[Hit], show: Sequence[str], stream: TextIO | None = None) -> None:
    """Write results as a JSON array (UTF-8, non-ASCII kept as is)."""
    # sys.stdout looked up at call time: a default bound at import time keeps writing to
    # a stream that redirect_stdout, CliRunner or capsys has since replaced (and closed).
    stream = sys.stdout if stream is None else stream
    json.dump([h.to_json(show) for h in hits], stream, ensure_ascii=False, indent=2)
    stream.write("\n")


def write_csv(
    hits: list[Hit], show: Sequence[str], stream: TextIO | None = None, excel: bool = False
) -> None:
    """Write results as CSV with a header row; shown columns come before ``text``.
    ``excel``: the file is for a spreadsheet (``-o FILE.csv``), so text cells that start
    like a formula get a leading ``'`` (:func:`simsearch.tables.write.csv_cell`); CSV on
    stdout is for programs and carries the text exactly. Rows end in CRLF for a file
    (a cell with a carriage return is then quoted), LF on stdout."""
    stream = sys.stdout if stream is None else stream
    rows = csv_rows(hits, show)
    end = "\n"
    if excel:
        from simsearch.tables.write import CSV_LINE_END, csv_cell

        rows = [[csv_cell(cell) for cell in row] for row in rows]
        end = CSV_LINE_END
    csv.writer(stream, lineterminator=end).writerows(rows)


def csv_rows(hits: list[Hit], show: Sequence[str]) -> list[list[Any]]:
    """The header row, then one row per result, of the CSV of results: the flat fields
    of :meth:`~simsearch.retrieval.hit.Hit.flat` (``score``, ``mode`` and the matched
    text included), the shown columns, then ``text``."""
    from simsearch.retrieval.hit import flat_header

    header = flat_header(hits)
    rows: list[list[Any]] = [header + list(show) + ["text"]]
    for hit in hits:
        flat = hit.flat(show)
        rows.append([*(flat[k] for k in header), *(_cell(flat[c]) for c in show), hit.text])
    return rows


def _cell(value: Any) -> str:
    return "" if value is None else str(value)


def _one_line(text: str) -> Any:
    """A cell for the table: whitespace runs (newlines, tabs) folded to one space, other
    control characters shown as U+FFFD, and never parsed as rich markup ("[bold]" in a
    document stays literal text)."""
    from rich.text import Text

    folded = " ".join(text.split())
    return Text("".join(c if c.isprintable() else "\ufffd" for c in folded))


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


def _matched(hit: Hit) -> Any:
    """The text cell: the matched window with the matched terms highlighted (``…`` marks
    a window that starts inside the document)."""
    from rich.text import Text

    window = hit.matched_text
    cell = Text("… " if not hit.text.startswith(window) else "")
    at = 0
    for s, e in sorted(hit.spans or []):
        if s < at:
            continue
        cell.append(_fold(window[at:s]))
        cell.append(_fold(window[s:e]), style="bold yellow")
        at = e
    cell.append(_fold(window[at:]))
    return cell


def _fold(text: str) -> str:
    """Whitespace runs as one space, other control characters as U+FFFD (edges kept)."""
    import re

    return "".join(c if c.isprintable() else "\ufffd" for c in re.sub(r"\s+", " ", text))


#: Narrower terminals than this drop the distance column (1 - similarity) from the table.
WIDE = 100


def write_table(
    hits: list[Hit], show: Sequence[str], title: str | None = None, console: Any = None
) -> None:
    """Print results for a person: on a terminal (or with ``COLUMNS`` set, the width to
    lay out for) as tables, one per query, the text wrapped at word boundaries over
    several lines and never cut; through a pipe as :func:`write_lines`.

    The text column gets at least half the width (the numbers and the ``--show`` columns
    share the rest, wrapping at words too); below :data:`WIDE` columns the distance
    (1 - similarity, in JSON and CSV) is left out. rich measures Korean (and other East
    Asian wide) characters as two cells, so the wrap falls right even for Hangul.
    """
    import os

    from rich.console import Console

    console = Console(soft_wrap=False) if console is None else console
    if not console.is_terminal and "COLUMNS" not in os.environ:
        write_lines(hits, show, console.file)
        return
    groups: dict[int, list[Hit]] = {}
    for hit in hits:
        groups.setdefault(hit.query_index or 0, []).append(hit)
    for group in groups.values():
        console.print(_hits_table(group, show, title, console.width))


def _hits_table(group: list[Hit], show: Sequence[str], title: str | None, width: int) -> Any:
    """The rich table of one query's hits for a terminal ``width`` cells wide."""
    from rich import box

    first = group[0]
    heading = _one_line(f"query: {first.query}") if first.query is not None else title
    numbers = {"rank": 4, "row": max(3, len(str(max(h.row for h in group))))}
    if width >= WIDE:
        numbers["distance"] = 8
    numbers |= {"similarity": 10, "score": 6}
    if first.rerank_score is not None:
        numbers["rerank"] = 7
    cols = [Col(n, "right", True, min_width=w) for n, w in numbers.items()]
    text_width = max(20, width // 2)
    padding = 2 * (len(numbers) + len(show))  # one cell each side between columns
    left = width - text_width - sum(numbers.values()) - padding
    share = max(8, min(24, left // max(1, len(show))))
    for column in show:
        values = [_one_line(_cell(h.columns.get(column))).cell_len for h in group]
        cols.append(Col(column, overflow="fold", max_width=min(share, max([len(column), *values]))))
    cols.append(Col("text", overflow="fold", ratio=1, min_width=text_width))
    rows = []
    for hit in group:
        values = {
            "rank": str(hit.rank), "row": str(hit.row),
            "distance": _number(hit.cosine_distance), "similarity": _number(hit.similarity),
            "score": _number(hit.score), "rerank": _number(hit.rerank_score),
        }
        rows.append([
            *(values[n] for n in numbers),
            *[_one_line(_cell(hit.columns.get(c))) for c in show],
            _matched(hit),
        ])
    return rich_table(
        cols, rows, title=heading, title_justify="left", caption=f"mode: {first.mode}",
        caption_justify="left", box=box.SIMPLE_HEAD, pad_edge=False, expand=True,
    )


def write_lines(hits: list[Hit], show: Sequence[str], stream: TextIO | None = None) -> None:
    """Results for a pipe (``grep``, ``cut -f``, ``sort``, ``head``): a header line, then
    one line per hit, tab-separated: (``query_index``, ``query``,) ``rank``, ``row``,
    ``similarity``, ``score`` (and ``rerank_score`` when reranked), ``mode``, the
    ``--show`` columns and the matched text, whitespace in cells folded to one space."""
    stream = sys.stdout if stream is None else stream
    has_query = bool(hits) and hits[0].query is not None
    reranked = bool(hits) and hits[0].rerank_score is not None
    head = (["query_index", "query"] if has_query else []) + [
        "rank", "row", "similarity", "score", *(["rerank_score"] if reranked else []), "mode",
        *show, "text"]
    stream.write("\t".join(_fold(h).strip() for h in head) + "\n")
    for hit in hits:
        cells = ([str(hit.query_index), hit.query or ""] if has_query else []) + [
            str(hit.rank), str(hit.row), _number(hit.similarity), _number(hit.score),
            *([_number(hit.rerank_score)] if reranked else []), hit.mode,
            *[_cell(hit.columns.get(c)) for c in show], _matched(hit).plain,
        ]
        stream.write("\t".join(_fold(c).strip() for c in cells) + "\n")


def check_output(fmt: str, output: Path | None) -> str:
    """The results format for ``fmt`` and an ``output`` file: ``table`` with a file takes
    the format from the file's suffix (``.csv``, ``.json``, ``.xlsx``).

    Raises:
        InvalidParameter: an unknown format; ``xlsx`` without a file (param ``output``);
            a table to a file whose suffix names no format.
    """
    fmt = check_format(fmt, RESULT_FORMATS)
    if output is None:
        if fmt == "xlsx":
            raise InvalidParameter(
                "output", "an Excel workbook is written to a file: add {name} results.xlsx"
            )
        return fmt
    if fmt == "table":
        fmt = output.suffix.lower().lstrip(".")
        if fmt not in RESULT_FORMATS[1:]:
            raise InvalidParameter(
                "output",
                f"{{name}} {output.name}: name a .csv, .json or .xlsx file (or set the format)",
            )
    from simsearch.tables.write import check_output as check_file

    check_file(output, (".xlsx",) if fmt == "xlsx" else None, param="output")
    return fmt


def write(
    hits: list[Hit],
    fmt: str,
    show: Sequence[str],
    title: str | None = None,
    output: Path | None = None,
) -> None:
    """Write results to stdout in ``fmt`` (``table``, ``json`` or ``csv``), or to the
    file ``output``: CSV in UTF-8 with a BOM (Korean Excel reads it as UTF-8), JSON in
    UTF-8, ``xlsx`` with every source column (all by :mod:`simsearch.tables.write`)."""
    if output is not None:
        from simsearch.tables import write as table_writer

        if fmt == "xlsx":
            table_writer.write_hits(hits, output, sheet="results")
        elif fmt == "csv":
            table_writer.write_text(
                output, lambda stream: write_csv(hits, show, stream, excel=True)
            )
        else:
            table_writer.write_text(
                output, lambda stream: write_json(hits, show, stream), encoding="utf-8"
            )
        return
    if fmt == "json":
        write_json(hits, show)
    elif fmt == "csv":
        write_csv(hits, show)
    else:
        write_table(hits, show, title)


def write_document(record: dict[str, Any], row: int, text: str, where: str) -> None:
    """Print one document whole: its row, where it is in the source, its text, and every
    source column, each value wrapped (never cut)."""
    from rich import box
    from rich.console import Console
    from rich.text import Text

    cols = [Col("column", no_wrap=True), Col("value", overflow="fold", ratio=1)]
    rows = [[Text(str(name)), Text(_cell(value))] for name, value in record.items()]
    table = rich_table(cols, rows, box=box.SIMPLE_HEAD, pad_edge=False, expand=True)
    console = Console(soft_wrap=False)
    console.print(Text(f"document {row} ({where})"))
    console.print(Text(text))
    console.print(table)


# --------------------------------------------------------------------------- indexes


def human_bytes(n: float) -> str:
    """``1536`` -> ``"1.5 KiB"``."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"  # pragma: no cover


def write_list(items: list[dict[str, Any]]) -> None:
    """Print one table row per index (items from :func:`simsearch.store.index.describe_all`)."""
    from rich.console import Console

    names = ("name", "source", "column", "model", "rows", "dim", "size", "status")
    rows = []
    for item in items:
        if "error" in item:
            rows.append([item["name"], "", "", "", "", "", "", f"damaged: {item['error']}"])
            continue
        rows.append(
            [
                item["name"],
                Path(item["source"]).name,
                item["column"],
                item["model"],
                f"{item['rows']:,}",
                str(item["dim"]),
                human_bytes(item["size_bytes"]),
                "stale" if item["stale"] else "up to date",
            ]
        )
    Console().print(rich_table([Col(n, overflow="fold") for n in names], rows, pad_edge=False))


def write_info(item: dict[str, Any], fmt: str = "table", verified: bool = False) -> None:
    """Print one index in detail (``fmt="json"`` prints the metadata as JSON)."""
    if fmt == "json":
        json.dump(item, sys.stdout, ensure_ascii=False, indent=2, default=str)
        sys.stdout.write("\n")
        return
    lines = [
        ("index", item["path"]),
        ("source", item["source"]),
        ("sheet", item["sheet"] or "-"),
        ("column", item["column"]),
        ("documents", f"{item['rows']:,} ({item['empty']:,} empty)"),
        ("model", item["model"]),
        ("dimension", str(item["dim"])),
        ("search space", _search_space(item["meta"].get("sections") or {})),
        ("size on disk", human_bytes(item["size_bytes"])),
        *_retrieval_lines(item["meta"].get("sections", {})),
        ("created", item["created_at"]),
        ("status", item["stale"] or "up to date with its source"),
        ("checksums", "verified" if verified else "not checked (use --verify)"),
        ("versions", ", ".join(f"{k} {v}" for k, v in item["meta"]["versions"].items())),
    ]
    ann = item["meta"].get("sections", {}).get("ann")
    if ann:
        lines.insert(-3, ("approximate", _ann_line(ann)))
    width = max(len(k) for k, _ in lines)
    for key, value in lines:
        print(f"{key.ljust(width)}  {value}")


def _ann_line(ann: dict[str, Any]) -> str:
    return (
        f"{ann['library']} {ann['kind'].upper()} over {ann['dtype']} vectors, "
        f"{ann['n_vectors']:,} vectors, {human_bytes(ann['bytes'])} "
        f"({ann['bytes_per_vector']:,.0f} bytes per vector); similar/query use it "
        "unless --exact"
    )


def _retrieval_lines(sections: dict[str, Any]) -> list[tuple[str, str]]:
    """``info`` lines for the windows and lexical sections of the metadata."""
    lines = []
    windows = sections.get("windows")
    if windows:
        lines.append((
            "windows",
            f"{windows['n_windows']:,} ({windows['n_split']:,} documents split; "
            f"{windows['max_tokens']} tokens, overlap {windows['overlap_tokens']})",
        ))
    lexical = sections.get("lexical")
    if lexical:
        lines.append((
            "lexical",
            f"BM25 over Kiwi terms ({lexical['n_terms']:,} terms); hybrid = "
            f"{lexical['fusion']} fusion, dense weight {lexical['dense_weight']}",
        ))
    return lines


def _search_space(sections: dict[str, Any]) -> str:
    """What the search matrix holds: the raw embeddings, or a whitened / flowed copy."""
    white, flow = sections.get("whitening"), sections.get("flow")
    if white:
        return f"BERT-whitened, {white['dim']} dims (fitted on {white['fitted_on']:,} documents)"
    if flow:
        return (
            f"BERT-flow, {flow['dim']} dims (fitted on {flow['fitted_on']:,} documents, "
            f"{flow['epochs']} epochs)"
        )
    return "the model's embeddings"


# --------------------------------------------------------------------------- metrics


def write_metrics(title: str, columns: list[str], rows: list[list[Any]], digits: int = 2) -> None:
    """Metric rows (eval, inspect) as a table; floats with ``digits`` decimals."""
    from rich.console import Console

    cols = [Col(c, "left" if i == 0 else "right") for i, c in enumerate(columns)]
    cells = [
        [f"{v + 0.0:.{digits}f}" if isinstance(v, float) else str(v) for v in row] for row in rows
    ]
    Console(width=160).print(rich_table(cols, cells, title=title))


def write_json_value(value: Any) -> None:
    """Print ``value`` as indented JSON (ASCII-escaped) on stdout."""
    print(json.dumps(value, indent=2))


# --------------------------------------------------------------------------- builds


def build_summary(report: Any) -> list[str]:
    """The lines ``simsearch index`` prints about a :class:`~simsearch.build.BuildReport`."""
    meta = report.meta
    where = report.path
    if report.status == "up-to-date":
        return [
            f"Index is up to date: {report.n_docs:,} documents, model {meta.model}, "
            f"column {meta.column!r} ({where}); nothing re-encoded."
        ]
    lines = []
    if report.reasons and report.reasons != ["no index yet"]:
        lines.append(f"Re-indexing: {'; '.join(report.reasons)}.")
    if report.status == "imported":
        what = "imported the embeddings matrix"
    else:
        what = f"{report.n_texts:,} distinct texts (encoded {report.encoded:,}, "
        if report.resumed:
            what += f"resumed {report.resumed:,}, "
        what += f"reused {report.reused:,})"
        if report.dropped:
            what += f", {report.dropped:,} cached texts dropped"
    empty = ""
    if meta.n_empty:
        plural = "s" if meta.n_empty > 1 else ""
        empty = f"; {meta.n_empty:,} empty document{plural} kept as empty rows"
    read = f" ({_encoding_name(meta.table.encoding)})" if meta.table.encoding else ""
    backend = f", backend {meta.encode.backend}" if meta.encode.backend else ""
    windows = meta.windows
    if windows is not None and windows.n_split:
        lines.append(
            f"{windows.n_split:,} of {report.n_docs:,} documents are longer than the model's "
            f"{windows.max_tokens} tokens and were split into overlapping windows: "
            f"{windows.n_windows:,} windows, {report.n_texts:,} distinct texts"
        )
    if meta.lexical is not None:
        lines.append(
            f"Lexical index: BM25 over {meta.lexical.n_terms:,} Kiwi terms "
            f"({report.tokenized:,} texts analysed, "
            f"{meta.n_docs - report.tokenized:,} documents reused terms)"
        )
    lines.append(
        f"Indexed {meta.n_docs:,} documents x {meta.dim} dims from column "
        f"{meta.column!r}{read} with {meta.model}{backend}: {what}{empty} "
        f"in {report.seconds:.1f} s -> {where}"
    )
    return lines


# ---------------------------------------------------------------------- duplicates


def write_groups(groups: Any, show: Sequence[str], limit: int = 20) -> None:
    """Print the members of the first ``limit`` near-duplicate groups as one table
    (``groups``: :attr:`simsearch.workflows.dedup.Duplicates.groups`)."""
    from rich import box
    from rich.console import Console

    columns = [
        Col(name, justify="right", no_wrap=True)
        for name in ("group", "size", "row", "best_match", "similarity")
    ]
    columns += [Col(name, no_wrap=True, max_width=24) for name in show]
    columns.append(Col("text", no_wrap=True, ratio=1))
    rows = []
    for rec in groups[groups["group"] < limit].to_dict("records"):
        rows.append(
            [
                str(rec["group"]),
                str(rec["size"]),
                str(rec["row"]),
                str(rec["best_match"]),
                f"{rec['best_similarity']:.4f}",
            ]
            + [_one_line(_cell(rec[c])) for c in show]
            + [_one_line(rec["text"])]
        )
    table = rich_table(columns, rows, box=box.SIMPLE_HEAD, pad_edge=False, expand=True)
    Console(soft_wrap=False).print(table)


def _encoding_name(encoding: str) -> str:
    return {"utf-8-sig": "UTF-8 with BOM", "utf-8": "UTF-8", "utf-16": "UTF-16"}.get(
        encoding, encoding
    )
