"""Reading tables: THE one reader for corpora and labeled data, with one error contract.

Row N of the source file is document N everywhere in simsearch. Missing or empty
cells stay in place as empty documents so that positions never shift. Every problem
(missing, unsupported, empty, damaged, non-UTF-8 file, unknown sheet or column) raises
:class:`~simsearch.errors.SimsearchError` with the fix in the message.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from simsearch.errors import InvalidParameter, SimsearchError
from simsearch.tables.cells import cell_text
from simsearch.tables.sheets import (
    TableNotes,
    choose_header,
    choose_sheet,
    frame_from_rows,
    join_columns,
    read_delimited,
    read_workbook,
    split_columns,
)

if TYPE_CHECKING:
    import pandas as pd

#: File extensions simsearch reads, mapped to a short format name.
SUPPORTED = {
    ".xlsx": "excel",
    ".xlsm": "excel",
    ".xls": "excel",
    ".csv": "csv",
    ".tsv": "tsv",
    ".txt": "tsv",
    ".parquet": "parquet",
    ".jsonl": "jsonl",
    ".json": "json",
}


@dataclass
class Corpus:
    """A table read from disk plus the text column chosen as documents.

    Attributes:
        frame: the whole source table, one row per document, in file order.
        column: the name of the text column (several joined: their names joined by
            ``" + "``).
        texts: ``len(frame)`` strings; missing cells are ``""``.
        n_empty: how many documents are empty (missing, blank or whitespace only).
        sheet: the Excel sheet name that was read, ``None`` for other formats.
        columns: the text columns, in order (one, or several joined into each document).
        notes: how the file was read (encoding, header row, merged cells).
    """

    frame: pd.DataFrame
    column: str
    texts: list[str]
    n_empty: int
    sheet: str | None
    columns: list[str] = field(default_factory=list)
    notes: TableNotes = field(default_factory=TableNotes)
    sha256: str = ""
    size_bytes: int = -1
    mtime: float = 0.0


@dataclass(frozen=True)
class SourceBytes:
    """The bytes of a source file as read once, with their sha256 and the file's size
    and modification time taken at the same moment (so a file replaced or edited while
    simsearch reads it is never recorded with another version's hash)."""

    data: bytes
    sha256: str
    size_bytes: int
    mtime: float


def read_source_bytes(path: Path) -> SourceBytes:
    """Read ``path`` (a regular file only: a FIFO or device is refused, never waited on).

    Raises:
        SimsearchError: not a regular file, or unreadable.
    """
    import hashlib
    import os

    from simsearch._fs.safe import open_regular

    try:
        with open_regular(path) as handle:
            before = os.fstat(handle.fileno())
            data = handle.read()
    except SimsearchError:
        raise
    except OSError as exc:
        raise SimsearchError(f"cannot read {path}: {exc.strerror or exc}") from None
    return SourceBytes(data, hashlib.sha256(data).hexdigest(), len(data), before.st_mtime)


def check_source(path: str | Path) -> Path:
    """Return ``path`` as a Path after checking it is a readable file of a known type.

    Raises:
        SimsearchError: the path is missing, is a directory, or has an unsupported extension.
    """
    path = Path(path)
    if not path.exists():
        raise SimsearchError(f"file not found: {path} (check the path and try again)")
    if path.is_dir():
        raise SimsearchError(f"{path} is a directory; give the path of an .xlsx, .csv or .tsv file")
    if path.suffix.lower() not in SUPPORTED:
        known = ", ".join(sorted(SUPPORTED))
        raise SimsearchError(
            f"unsupported file type '{path.suffix or '(none)'}' for {path}; use one of {known}"
        )
    if path.stat().st_size == 0:
        raise SimsearchError(f"{path} is empty (0 bytes); give a file with a header row and data")
    return path


@dataclass(frozen=True)
class TableOptions:
    """How to read a table (the keyword arguments of :func:`read_table`).

    Attributes:
        sheet: Excel sheet name or 0-based number as a string; default the first sheet
            (or the one sheet holding ``columns``, see
            :func:`simsearch.tables.sheets.read_workbook`).
        header_row: 1-based row of the header, as Excel numbers rows; default detected
            (:func:`simsearch.tables.sheets.detect_header_row`).
        encoding: codec of a text file (``cp949``, ``utf-8``, ``utf-16``...); default
            detected (:mod:`simsearch.tables.charsets`).
        raw_quotes: kept for callers of the earlier API: ``.tsv``/``.txt`` files are
            always read with ``quoting=csv.QUOTE_NONE`` (quote characters are text; a
            quoted parse merged the KorNLU files' rows), and a row with another number of
            fields than the header is refused with its line number.
        columns: the columns the caller needs (to pick the sheet that has them).
    """

    sheet: str | None = None
    header_row: int | None = None
    encoding: str | None = None
    raw_quotes: bool = False
    columns: tuple[str, ...] = ()


def read_table(
    path: str | Path,
    sheet: str | None = None,
    *,
    raw_quotes: bool = False,
    header_row: int | None = None,
    encoding: str | None = None,
) -> tuple[pd.DataFrame, str | None]:
    """Read a whole table, every cell kept as the file holds it.

    Args:
        path: an ``.xlsx``/``.xlsm``/``.xls``, ``.csv``, ``.tsv``/``.txt``, ``.parquet``,
            ``.jsonl`` or ``.json`` (records) file.
        sheet, raw_quotes, header_row, encoding: see :class:`TableOptions`.

    Returns:
        ``(frame, sheet_name)``: the data rows in file order with a fresh 0..n-1 index,
        and the sheet that was read (``None`` for non-Excel files).

    Raises:
        SimsearchError: see :func:`read_table_notes`.
    """
    options = TableOptions(sheet, header_row, encoding, raw_quotes)
    frame, notes = read_table_notes(path, options)
    return frame, notes.sheet


def read_table_notes(
    path: str | Path, options: TableOptions = TableOptions()
) -> tuple[pd.DataFrame, TableNotes]:
    """:func:`read_table` that also tells how the table was read.

    Text files are decoded in the encoding Korean Excel wrote them in (detected, or
    ``options.encoding``); the header row is detected (or given), rows above it are
    skipped; in .xlsx/.xlsm workbooks merged ranges are filled with their top-left value.
    Row ``i`` of the frame is the ``i``-th data row below the header (see
    :mod:`simsearch.tables.sheets` for the mapping to Excel's row numbers).

    Returns:
        ``(frame, notes)``: see :class:`simsearch.tables.sheets.TableNotes`.

    Raises:
        SimsearchError: missing/unsupported/empty/corrupt file, undecodable text, an
            unknown sheet (the message lists the sheets), a header row outside the file.
    """
    frame, notes, _ = _read_table(path, options)
    return frame, notes


def _read_table(
    path: str | Path, options: TableOptions
) -> tuple[pd.DataFrame, TableNotes, SourceBytes]:
    """:func:`read_table_notes` from the bytes read once, which it returns too (their
    sha256 is what the index records, never a later version of the file)."""
    import pandas as pd

    path = check_source(path)
    kind = SUPPORTED[path.suffix.lower()]
    if options.sheet is not None and kind != "excel":
        raise InvalidParameter(
            "sheet", f"{{name}} applies to Excel workbooks; {path.name} is {kind}, which has none"
        )
    source = read_source_bytes(path)
    try:
        if kind == "excel" and path.suffix.lower() != ".xls":
            frame, notes = read_workbook(
                path, options.sheet, options.header_row, options.columns, data=source.data
            )
        elif kind == "excel":
            frame, notes = _read_legacy_excel(path, options, source.data)
        elif kind in ("csv", "tsv"):
            sep = "," if kind == "csv" else "\t"
            frame, notes = read_delimited(
                path, sep, options.encoding, options.header_row, data=source.data
            )
        elif kind == "parquet":
            frame, notes = pd.read_parquet(io.BytesIO(source.data)), TableNotes()
        else:
            frame = pd.read_json(io.BytesIO(source.data), lines=(kind == "jsonl"), dtype=False)
            notes = TableNotes()
    except SimsearchError:
        raise
    except ImportError as exc:
        raise SimsearchError(f"reading {path.suffix} files needs an extra package: {exc}") from None
    except Exception as exc:  # pandas/openpyxl raise many types for damaged files
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise SimsearchError(
            f"cannot read {path} as {kind}: {reason} (is the file damaged or of another type?)"
        ) from None
    frame.columns = [str(c) for c in frame.columns]
    return frame.reset_index(drop=True), notes, source


def _read_legacy_excel(
    path: Path, options: TableOptions, data: bytes
) -> tuple[pd.DataFrame, TableNotes]:
    """An old binary .xls (pandas with xlrd): header detected, no merged-cell filling."""
    import pandas as pd

    with pd.ExcelFile(io.BytesIO(data)) as book:
        names = [str(n) for n in book.sheet_names]
        chosen = choose_sheet(names, options.sheet, path)
        raw = pd.read_excel(book, sheet_name=chosen, header=None, dtype=object)
    rows = raw.where(raw.notna(), None).values.tolist()
    header = choose_header(rows, options.header_row, path)
    notes = TableNotes(
        sheet=chosen, header_row=header + 1, header_detected=options.header_row is None
    )
    return frame_from_rows(rows, header), notes


def select_column(frame: pd.DataFrame, column: str, source: str | Path = "the file") -> list[str]:
    """The text of ``column`` as ``len(frame)`` strings (missing cells become ``""``).

    Raises:
        SimsearchError: the column does not exist (the message lists the columns), or
            every cell of it is empty.
    """
    _require_column(frame, column, source)
    texts = [cell_text(v) for v in frame[column].tolist()]
    if texts and not any(t.strip() for t in texts):
        raise SimsearchError(
            f"column {column!r} in {source} is empty in every row; choose a column with text"
        )
    return texts


def _require_column(frame: pd.DataFrame, column: str, source: str | Path) -> None:
    if column not in frame.columns:
        listed = ", ".join(repr(c) for c in frame.columns)
        raise InvalidParameter(
            "column", f"no column {column!r} in {source}; choose {{name}} from: {listed}"
        )


def read_corpus(
    path: str | Path,
    column: str | Sequence[str],
    sheet: str | None = None,
    *,
    header_row: int | None = None,
    encoding: str | None = None,
) -> Corpus:
    """Read ``path`` and pick ``column`` as the documents.

    Args:
        path: the table file (see :func:`read_table`).
        column: the text column; several (a list, or one comma-separated string) are
            joined per row with a line break into one document.
        sheet, header_row, encoding: see :class:`TableOptions`.

    Returns:
        A :class:`Corpus`; ``corpus.texts[i]`` is data row ``i`` of the file.

    Raises:
        SimsearchError: see :func:`read_table_notes` and :func:`select_column`; also when
            the file has a header but no data rows.
    """
    wanted = split_columns(column if isinstance(column, str) else list(column))
    options = TableOptions(sheet, header_row, encoding, columns=tuple(wanted))
    frame, notes, source = _read_table(path, options)
    if len(frame) == 0:
        raise SimsearchError(f"{path} has no data rows; add rows below the header")
    wanted = split_columns(column if isinstance(column, str) else list(column), frame.columns)
    if len(wanted) == 1:
        texts = select_column(frame, wanted[0], path)
    else:
        for name in wanted:
            _require_column(frame, name, path)
        texts = join_columns(frame, wanted)
        if not any(t.strip() for t in texts):
            raise SimsearchError(f"columns {wanted} in {path} are empty in every row")
    n_empty = sum(1 for t in texts if not t.strip())
    return Corpus(
        frame=frame,
        column=" + ".join(wanted),
        texts=texts,
        n_empty=n_empty,
        sheet=notes.sheet,
        columns=wanted,
        notes=notes,
        sha256=source.sha256,
        size_bytes=source.size_bytes,
        mtime=source.mtime,
    )
