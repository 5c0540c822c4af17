"""Spreadsheets as people make them: title rows, merged cells, several sheets, several text
columns, and CSV files in the encodings Korean Excel writes.

Row numbers: document ``i`` is the ``i``-th *data* row, the first row below the header
being document 0. With the header on Excel row ``h`` (1-based, as Excel shows it),
document ``i`` is Excel row ``h + 1 + i``; with the header on row 1 (the usual case),
document ``i`` is Excel row ``i + 2``. Blank rows inside the data are kept as empty
documents, so the mapping holds for every row; rows below the last non-blank row are
not documents. For CSV files the same holds with line numbers in place of Excel rows
(for files without line breaks inside quoted cells).
"""

from __future__ import annotations

import io
import math
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from simsearch.errors import InvalidParameter, SimsearchError

if TYPE_CHECKING:
    import pandas as pd

#: Rows scanned from the top for the header row.
HEADER_SCAN_ROWS = 20
#: Separator between the cells of several text columns joined into one document.
JOIN_SEPARATOR = "\n"


@dataclass
class TableNotes:
    """How a table was read, for one-line notices and for the index metadata.

    Attributes:
        sheet: the Excel sheet read (``None`` for other formats).
        header_row: 1-based row (Excel row or file line) of the header.
        header_detected: ``True`` when found by :func:`detect_header_row`.
        encoding: the codec of a text file (``None`` for binary formats).
        encoding_detected: ``True`` when detected, ``False`` when given.
        merged_ranges: merged ranges below the header that were filled.
        merged_cells: cells filled from the top-left cell of their merged range.
        sheet_chosen_for: the column the sheet was picked for, when the sheet was not
            given and the first sheet lacks it.
    """

    sheet: str | None = None
    header_row: int = 1
    header_detected: bool = True
    encoding: str | None = None
    encoding_detected: bool = True
    merged_ranges: int = 0
    merged_cells: int = 0
    sheet_chosen_for: str | None = None
    extra: list[str] = field(default_factory=list)

    def lines(self, name: str) -> list[str]:
        """One-line notices worth telling the user (nothing when all is ordinary)."""
        out = []
        if self.sheet_chosen_for:
            out.append(
                f"column {self.sheet_chosen_for!r} is on sheet {self.sheet!r} of {name}; "
                "reading that sheet"
            )
        if self.encoding and (
            self.encoding not in ("utf-8", "utf-8-sig") or not self.encoding_detected
        ):
            how = "detected" if self.encoding_detected else "as given"
            out.append(f"read {name} as {_shown(self.encoding)} ({how})")
        if self.header_row != 1:
            how = "detected" if self.header_detected else "as given"
            out.append(
                f"header on row {self.header_row} ({how}; rows above it skipped): "
                f"document 0 is row {self.header_row + 1} of {name}"
            )
        if self.merged_cells:
            out.append(
                f"filled {self.merged_ranges:,} merged ranges ({self.merged_cells:,} cells) "
                "with their top-left value"
            )
        return out + self.extra

    def as_meta(self) -> dict[str, Any]:
        """The part worth recording in the index metadata."""
        return {
            "encoding": self.encoding,
            "header_row": self.header_row,
            "merged_cells_filled": self.merged_cells,
        }


def _shown(encoding: str) -> str:
    return {"utf-8-sig": "UTF-8 with BOM", "utf-8": "UTF-8", "utf-16": "UTF-16"}.get(
        encoding, encoding
    )


# ------------------------------------------------------------------ header row
def _is_blank(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and not value.strip()


def _is_label(value: Any) -> bool:
    """A cell that can name a column: non-empty text that is not a number."""
    if not isinstance(value, str) or not value.strip():
        return False
    try:
        float(value.replace(",", ""))
    except ValueError:
        return True
    return False


def detect_header_row(rows: Sequence[Sequence[Any]], scan: int = HEADER_SCAN_ROWS) -> int:
    """The 0-based position of the header among ``rows``: the first row whose cells are
    mostly (more than half of the table's width) non-empty, distinct, non-numeric strings.

    A title line ("2024 특허 목록" over the first row) fills one cell, so it is passed
    over. When no row of the first ``scan`` qualifies, the first row is the header
    (pandas' default).

    Args:
        rows: the table's rows as read, top first, cells unfilled (merged cells blank).
        scan: how many rows from the top to consider.

    Returns:
        An index into ``rows`` (0 when nothing better is found).
    """
    top = [list(r) for r in rows[:scan]]
    width = max((_width(r) for r in top), default=0)
    for position, row in enumerate(top):
        cells = [c for c in row if not _is_blank(c)]
        labels = [c.strip() for c in cells if _is_label(c)]
        mostly = 2 * len(labels) > width or (width <= 1 and len(labels) == width)
        if labels and mostly and len(labels) == len(cells) and len(set(labels)) == len(labels):
            return position
    return 0


def _width(row: Sequence[Any]) -> int:
    """Columns up to the last non-blank cell."""
    for i in range(len(row), 0, -1):
        if not _is_blank(row[i - 1]):
            return i
    return 0


def frame_from_rows(
    rows: list[list[Any]], header: int, drop_trailing_blank: bool = True
) -> pd.DataFrame:
    """A DataFrame with ``rows[header]`` as column names and the rows below as data.

    Blank names become ``Unnamed: i`` and repeated names get ``.1``, ``.2`` (pandas'
    conventions); columns past the widest row are dropped, and with
    ``drop_trailing_blank`` the all-blank rows after the last data row (a sheet's
    formatting can reach far below its data).

    Returns:
        ``(n_data_rows, n_columns)`` object DataFrame, index ``0..n-1``.
    """
    import pandas as pd

    body = rows[header + 1 :]
    while drop_trailing_blank and body and all(_is_blank(c) for c in body[-1]):
        body.pop()
    width = max([_width(rows[header])] + [_width(r) for r in body] or [0])
    names = _column_names(list(rows[header])[:width], width)
    data = [(list(r) + [None] * width)[:width] for r in body]
    return pd.DataFrame(data, columns=names, dtype=object)


def _column_names(cells: list[Any], width: int) -> list[str]:
    names: list[str] = []
    seen: dict[str, int] = {}
    for i in range(width):
        cell = cells[i] if i < len(cells) else None
        name = f"Unnamed: {i}" if _is_blank(cell) else _name(cell)
        if name in seen:
            seen[name] += 1
            name = f"{name}.{seen[name]}"
        else:
            seen[name] = 0
        names.append(name)
    return names


def _name(cell: Any) -> str:
    if isinstance(cell, float) and cell.is_integer():
        return str(int(cell))
    return str(cell).strip()


def choose_header(rows: list[list[Any]], header_row: int | None, source: Any) -> int:
    """0-based header position: ``header_row`` (1-based, as Excel shows it) or detected.

    Raises:
        SimsearchError: ``header_row`` is below 1 or past the last row.
    """
    if header_row is None:
        return detect_header_row(rows)
    if not 1 <= header_row <= len(rows):
        raise InvalidParameter(
            "header_row",
            f"{{name}} {header_row} is outside {source}, which has {len(rows):,} rows "
            "(rows count from 1, as Excel numbers them)",
        )
    return header_row - 1


# ---------------------------------------------------------------- delimited text
def read_delimited(
    path: Path,
    sep: str,
    encoding: str | None = None,
    header_row: int | None = None,
    quoting: int | None = None,
    data: bytes | None = None,
) -> tuple[pd.DataFrame, TableNotes]:
    """Read a CSV/TSV in any encoding Korean Excel writes, with its header row found.

    Args:
        path: the file.
        sep: ``","`` or ``"\\t"``; a ``","`` file whose first line has tabs and no
            commas (Excel's "Unicode text" saved as .csv) is read tab-separated.
        encoding: codec name, default detected (:mod:`simsearch.tables.charsets`).
        header_row: 1-based line of the header; default detected.
        quoting: a :mod:`csv` quoting constant; default standard quoting for CSV and
            none for TSV (a quote is text there: see :mod:`simsearch.tables.delimited`).
        data: the file's bytes as already read (default: read ``path``).

    Returns:
        ``(frame, notes)``: every cell a ``str`` (empty cells ``""``), and how it was read.

    Raises:
        SimsearchError: undecodable bytes, a header row outside the file, or a data row
            with another number of fields than the header (with its line number).
    """
    import pandas as pd

    from simsearch.tables.charsets import read_text
    from simsearch.tables.delimited import check_rows, quoting_for

    decoded = read_text(path, encoding, data)
    text = decoded.text.lstrip("\ufeff")
    first = text.split("\n", 1)[0]
    if sep == "," and "\t" in first and "," not in first:
        sep = "\t"
    if quoting is None:
        quoting = quoting_for(sep)
    options: dict[str, Any] = {"sep": sep, "dtype": str, "keep_default_na": False}
    options["quoting"] = quoting
    # header=None: every line is data here; the header is chosen below (dtype=str and
    # keep_default_na=False keep "NA"/"null" as words and empty cells as "").
    # Blank lines are skipped and ",," rows kept, as pandas always read these files.
    try:
        raw = pd.read_csv(io.StringIO(text), header=None, **options)
    except pd.errors.ParserError:
        # A short title line fixes the field count for the rows below; name every field.
        options["names"] = range(_max_fields(text, sep, quoting))
        raw = pd.read_csv(io.StringIO(text), header=None, **options)
    rows = raw.values.tolist()
    header = choose_header(rows, header_row, path)
    # Row N must stay document N: every record below the header has its field count.
    check_rows(text, sep, path, skip=header, quoting=quoting)
    rows = [["" if c is None else c for c in r] for r in rows]
    frame = frame_from_rows(rows, header, drop_trailing_blank=False)
    frame = frame.fillna("")
    notes = TableNotes(
        header_row=header + 1,
        header_detected=header_row is None,
        encoding=decoded.encoding,
        encoding_detected=decoded.detected,
    )
    return frame, notes


def _max_fields(text: str, sep: str, quoting: int | None) -> int:
    import csv

    reader = csv.reader(io.StringIO(text), delimiter=sep, quoting=quoting or csv.QUOTE_MINIMAL)
    return max((len(row) for row in reader), default=1)


# ---------------------------------------------------------------------- workbooks
def open_workbook(path: Path, data: bytes | None = None) -> Any:
    """The workbook opened with openpyxl (full mode: merged ranges are known), from
    ``data`` (the file's bytes as already read) when given.

    Raises:
        SimsearchError: not a zip archive (encrypted, or another format renamed).
    """
    from openpyxl import load_workbook

    source: Any = path if data is None else io.BytesIO(data)
    if not zipfile.is_zipfile(source):
        # Encrypted (password-protected) workbooks are OLE files, not zip archives.
        raise SimsearchError(
            f"{path} is not a readable .xlsx workbook (password-protected, or another format "
            "renamed to .xlsx?); save it unprotected as .xlsx or export it to CSV"
        )
    return load_workbook(source, data_only=True)


def fill_merged(sheet: Any, below_row: int = 0) -> tuple[int, int]:
    """Give every cell of each merged range its top-left value, in place.

    Excel keeps a merged range's value in its top-left cell only, so a vertically
    merged applicant reads as blank in all rows but the first.

    Args:
        sheet: an openpyxl worksheet (not read-only).
        below_row: count only ranges that reach below this 1-based row (the header), so
            a merged title line is not reported.

    Returns:
        ``(ranges, cells)``: merged ranges reaching below ``below_row`` and the cells
        filled in them.
    """
    ranges = cells = 0
    for merged in list(sheet.merged_cells.ranges):
        value = sheet.cell(merged.min_row, merged.min_col).value
        bounds = (merged.min_row, merged.min_col, merged.max_row, merged.max_col)
        sheet.unmerge_cells(str(merged))
        filled = 0
        for row in range(bounds[0], bounds[2] + 1):
            for col in range(bounds[1], bounds[3] + 1):
                if (row, col) != bounds[:2]:
                    sheet.cell(row, col).value = value
                    filled += row > below_row
        if value is not None and bounds[2] > below_row and filled:
            ranges += 1
            cells += filled
    return ranges, cells


def sheet_rows(sheet: Any) -> list[list[Any]]:
    """The sheet's cell values, row by row (``None`` for blank cells)."""
    return [list(r) for r in sheet.iter_rows(values_only=True)]


def choose_sheet(names: list[str], sheet: str | None, path: Path) -> str:
    """The sheet name for ``sheet`` (a name, or a 0-based number as a string).

    Raises:
        SimsearchError: no such sheet (the message lists them).
    """
    if sheet is None:
        return names[0]
    if sheet in names:
        return sheet
    if sheet.isdigit() and int(sheet) < len(names):
        return names[int(sheet)]
    listed = ", ".join(repr(n) for n in names)
    raise InvalidParameter("sheet", f"no sheet {sheet!r} in {path}; choose {{name}} from: {listed}")


def read_sheet(
    book: Any, name: str, header_row: int | None, path: Path
) -> tuple[pd.DataFrame, TableNotes]:
    """One sheet as a DataFrame: header found (or given), merged ranges filled.

    Returns:
        ``(frame, notes)``: cells as Excel holds them (numbers, dates, text, ``None``).
    """
    sheet = book[name]
    raw = sheet_rows(sheet)  # unfilled: a merged title fills one cell, not the row
    if not raw:
        return frame_from_rows([[]], 0), TableNotes(sheet=name)
    header = choose_header(raw, header_row, f"sheet {name!r} of {path}")
    ranges, cells = fill_merged(sheet, below_row=header + 1)
    frame = frame_from_rows(sheet_rows(sheet), header)
    notes = TableNotes(
        sheet=name,
        header_row=header + 1,
        header_detected=header_row is None,
        merged_ranges=ranges,
        merged_cells=cells,
    )
    return frame, notes


def sheet_headers(book: Any, header_row: int | None = None) -> list[tuple[int, str, list[str]]]:
    """``(position, name, columns)`` of every sheet with a header (found or given)."""
    found = []
    for position, name in enumerate(book.sheetnames):
        raw = sheet_rows(book[name])
        if not raw:
            continue
        try:
            header = choose_header(raw, header_row, name)
        except SimsearchError:
            continue
        found.append((position, name, _column_names(list(raw[header]), _width(raw[header]))))
    return found


def sheets_with_columns(
    book: Any, columns: Sequence[str], header_row: int | None = None
) -> list[tuple[int, str]]:
    """``(position, name)`` of every sheet whose header holds all of ``columns``."""
    return [
        (position, name)
        for position, name, names in sheet_headers(book, header_row)
        if all(c in names for c in columns)
    ]


def missing_column_error(
    book: Any, column: str, path: Path, header_row: int | None = None
) -> InvalidParameter:
    """The error for a ``column`` on no sheet of a workbook of several sheets: it lists
    the columns of the data sheets, so a cover sheet (a title, a note: one column) is
    not offered as the table. Data sheets are those whose header has two or more
    columns; when none has, every sheet is listed."""
    headers = [h for h in sheet_headers(book, header_row) if any(_is_label(c) for c in h[2])]
    data = [h for h in headers if len(h[2]) >= 2] or headers
    listed = "; or ".join(
        f"sheet {name!r}: " + ", ".join(repr(c) for c in columns) for _, name, columns in data
    )
    return InvalidParameter(
        "column", f"no column {column!r} on any sheet of {path}; choose {{name}} from {listed}"
    )


def read_workbook(
    path: Path,
    sheet: str | None = None,
    header_row: int | None = None,
    columns: Sequence[str] = (),
    data: bytes | None = None,
) -> tuple[pd.DataFrame, TableNotes]:
    """Read one sheet of an .xlsx/.xlsm workbook the way a person reads it.

    Without ``sheet``, the first sheet is read, unless it lacks one of ``columns`` and
    exactly one other sheet has them all: then that sheet is read (and the notes say so).

    Args:
        path: the workbook.
        sheet: sheet name or 0-based number (as a string); default see above.
        header_row: 1-based header row; default :func:`detect_header_row`.
        columns: the columns the caller needs (for choosing the sheet and the hint).
        data: the workbook's bytes as already read (default: read ``path``).

    Returns:
        ``(frame, notes)``.

    Raises:
        SimsearchError: unreadable workbook, unknown sheet, or the columns are on other
            sheets than the one asked for (the message names them and their numbers);
            InvalidParameter (``column``) when, the sheet not given, no sheet of several
            has them (the message lists the data sheets' columns, not a cover sheet's).
    """
    book = open_workbook(path, data)
    try:
        names = list(book.sheetnames)
        chosen = choose_sheet(names, sheet, path)
        frame, notes = read_sheet(book, chosen, header_row, path)
        missing = [c for c in columns if c not in frame.columns]
        if not missing:
            return frame, notes
        others = [s for s in sheets_with_columns(book, columns, header_row) if s[1] != chosen]
        if sheet is None and len(others) == 1:
            frame, notes = read_sheet(book, others[0][1], header_row, path)
            notes.sheet_chosen_for = ", ".join(columns)
            return frame, notes
        if others:
            where = " and ".join(f"sheet {n!r} ({{name}} {i})" for i, n in others)
            raise InvalidParameter(
                "sheet", f"no column {missing[0]!r} on sheet {chosen!r} of {path}; it is on {where}"
            )
        if sheet is None and len(names) > 1:
            raise missing_column_error(book, missing[0], path, header_row)
        return frame, notes
    finally:
        book.close()


# ------------------------------------------------------------- several columns
def split_columns(values: Sequence[str] | str, available: Sequence[str] = ()) -> list[str]:
    """Column names from repeated and/or comma-separated values.

    ``["title,abstract"]`` and ``["title", "abstract"]`` both give
    ``["title", "abstract"]``; a value that is itself a column name (commas included)
    is kept whole.

    Raises:
        SimsearchError: no name, or a name given twice.
    """
    if isinstance(values, str):
        values = [values]
    names: list[str] = []
    for value in values:
        if value in available:
            names.append(value)
        else:
            names += [part.strip() for part in value.split(",") if part.strip()]
    if not names:
        raise SimsearchError("no text column named; name one or more columns")
    twice = [n for n in names if names.count(n) > 1]
    if twice:
        raise SimsearchError(f"column {twice[0]!r} is named twice; name each column once")
    return names


def join_columns(
    frame: pd.DataFrame, columns: Sequence[str], separator: str = JOIN_SEPARATOR
) -> list[str]:
    """One document per row: the non-empty cells of ``columns`` joined by ``separator``.

    Returns:
        ``len(frame)`` strings (``""`` where every named cell is empty).
    """
    from simsearch.tables.cells import cell_text

    parts = [[cell_text(v).strip() for v in frame[c].tolist()] for c in columns]
    return [separator.join(p for p in row if p) for row in zip(*parts)]
