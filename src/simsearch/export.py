"""Results written to files that Excel opens as they are: CSV in UTF-8 with a BOM, and .xlsx.

Korean Excel reads a CSV without a byte-order mark as cp949, so UTF-8 Hangul shows as
mojibake; with the BOM (``utf-8-sig``) it reads UTF-8. The .xlsx holds every source column
of each result beside ``rank``, ``row``, ``cosine_distance`` and ``similarity``, with column
widths measured in display cells (a Hangul syllable is two) and long text wrapped.

Files are written to a temporary name and renamed into place, so a failure never leaves a
half-written file where a good one was.
"""

from __future__ import annotations

import os
import unicodedata
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from simsearch.errors import SimsearchError

#: File formats results can be written in (``table`` is for the terminal only).
FILE_FORMATS = ("csv", "json", "xlsx")
#: Widest column in the .xlsx, in Excel's character units; longer text wraps.
MAX_WIDTH = 60
#: Excel's limit on the characters of one cell.
CELL_LIMIT = 32767


def display_width(text: str) -> int:
    """Terminal/Excel cells ``text`` takes: East Asian wide and full-width characters
    count two (Unicode East Asian Width, UAX #11), others one."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _temporary(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def check_output(path: str | Path, fmt: str) -> Path:
    """The output path for ``fmt``, checked before any work is done.

    Raises:
        SimsearchError: the folder does not exist, the path is a folder, or an ``xlsx``
            file name does not end in ``.xlsx``.
    """
    path = Path(path)
    if path.is_dir():
        raise SimsearchError(f"{path} is a folder; give a file name for the results")
    if not path.parent.is_dir():
        raise SimsearchError(f"folder {path.parent} does not exist; create it or choose another")
    if fmt == "xlsx" and path.suffix.lower() != ".xlsx":
        raise SimsearchError(f"an Excel workbook needs a name ending in .xlsx, not {path.name}")
    return path


def write_text_file(path: Path, write: Any, encoding: str = "utf-8-sig") -> None:
    """Run ``write(stream)`` into ``path`` atomically, by default as UTF-8 with a BOM
    (``utf-8-sig``, for Excel).

    ``newline=""`` leaves line endings to the writer (the csv module writes them itself).
    """
    temporary = _temporary(path)
    try:
        with temporary.open("w", encoding=encoding, newline="") as stream:
            write(stream)
        temporary.replace(path)
    finally:
        temporary.unlink(missing_ok=True)


def result_rows(hits: Sequence[dict[str, Any]]) -> tuple[list[str], list[list[Any]]]:
    """Header and rows for a spreadsheet of results: query fields, ranking fields, then
    every source column (in the source's order, as the first result lists them).

    Returns:
        ``(header, rows)``: ``len(hits)`` rows of cells.
    """
    lead = ["query_index", "query"] if hits and "query" in hits[0] else []
    ranking = ["rank", "row", "cosine_distance", "similarity"]
    columns: list[str] = []
    for hit in hits:
        columns += [c for c in hit["columns"] if c not in columns]
    header = lead + ranking + columns
    rows = [
        [hit[k] for k in lead + ranking] + [_excel_value(hit["columns"].get(c)) for c in columns]
        for hit in hits
    ]
    return header, rows


def _excel_value(value: Any) -> Any:
    """A cell value openpyxl writes as is: numbers and text; text cut at Excel's limit."""
    if value is None or isinstance(value, (int, float, bool)):
        return value
    text = str(value)
    return text[:CELL_LIMIT]


def write_xlsx(hits: Sequence[dict[str, Any]], path: str | Path, title: str = "results") -> None:
    """Write results to an .xlsx workbook with openpyxl: one header row (frozen, bold),
    one row per result, widths fitted to the content (at most :data:`MAX_WIDTH`, longer
    text wrapped), similarities with 4 decimals.

    Args:
        hits: result dicts (``rank``, ``row``, ``cosine_distance``, ``similarity``,
            ``columns``; ``query_index``/``query`` for query results).
        path: the ``.xlsx`` file to write (replaced atomically).
        title: the sheet name (Excel allows 31 characters).

    Raises:
        SimsearchError: see :func:`check_output`.
    """
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font
    from openpyxl.utils import get_column_letter

    path = check_output(path, "xlsx")
    header, rows = result_rows(hits)
    book = Workbook()
    sheet = book.active
    sheet.title = title[:31]
    sheet.append(header)
    for row in rows:
        sheet.append(row)
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    sheet.freeze_panes = "A2"
    wrap = Alignment(wrap_text=True, vertical="top")
    for position, name in enumerate(header, start=1):
        letter = get_column_letter(position)
        widest = max([display_width(name)] + [display_width(_shown(r[position - 1])) for r in rows])
        sheet.column_dimensions[letter].width = min(MAX_WIDTH, widest + 2)
        if name in ("cosine_distance", "similarity"):
            for (cell,) in sheet.iter_rows(min_row=2, min_col=position, max_col=position):
                cell.number_format = "0.0000"
        elif widest > MAX_WIDTH:
            for (cell,) in sheet.iter_rows(min_row=2, min_col=position, max_col=position):
                cell.alignment = wrap
    temporary = _temporary(path)
    try:
        book.save(temporary)
        temporary.replace(path)
    finally:
        temporary.unlink(missing_ok=True)


def _shown(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)
