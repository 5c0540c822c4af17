"""Reading tables: THE one reader for corpora and labeled data, with one error contract.

Row N of the source file is document N everywhere in simsearch. Missing or empty
cells stay in place as empty documents so that positions never shift. Every problem
(missing, unsupported, empty, damaged, non-UTF-8 file, unknown sheet or column) raises
:class:`~simsearch.errors.SimsearchError` with the fix in the message.
"""

from __future__ import annotations

import csv
import math
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from simsearch.errors import InvalidParameter, SimsearchError

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
        column: the name of the text column.
        texts: ``len(frame)`` strings; missing cells are ``""``.
        n_empty: how many documents are empty (missing, blank or whitespace only).
        sheet: the Excel sheet name that was read, ``None`` for other formats.
    """

    frame: pd.DataFrame
    column: str
    texts: list[str]
    n_empty: int
    sheet: str | None


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


def read_table(
    path: str | Path, sheet: str | None = None, *, raw_quotes: bool = False
) -> tuple[pd.DataFrame, str | None]:
    """Read a whole table with pandas, every cell kept as the file holds it.

    Args:
        path: an ``.xlsx``/``.xlsm``/``.xls``, ``.csv``, ``.tsv``/``.txt``, ``.parquet``,
            ``.jsonl`` or ``.json`` (records) file.
        sheet: the Excel sheet name (or 0-based index as a string); default the first sheet.
            Ignored for other formats.
        raw_quotes: read ``.tsv``/``.txt`` with ``quoting=csv.QUOTE_NONE``: quote
            characters are text (the KorNLU files hold stray quotes inside sentences,
            which a quoted parse would merge into one row).

    Returns:
        ``(frame, sheet_name)``: the table in file order with a fresh 0..n-1 index, and the
        sheet that was read (``None`` for non-Excel files).

    Raises:
        SimsearchError: missing/unsupported/empty/corrupt file, or an unknown sheet
            (the message lists the sheets).
    """
    import pandas as pd

    path = check_source(path)
    kind = SUPPORTED[path.suffix.lower()]
    try:
        if kind == "excel":
            frame, sheet = _read_excel(path, sheet)
        elif kind in ("csv", "tsv"):
            sep = "," if kind == "csv" else "\t"
            quoting = csv.QUOTE_NONE if raw_quotes and kind == "tsv" else csv.QUOTE_MINIMAL
            # dtype=str + keep_default_na=False keeps cells exactly as written
            # ("NA", "null" are real words in some corpora); empty cells become "".
            frame = pd.read_csv(
                path,
                sep=sep,
                dtype=str,
                keep_default_na=False,
                encoding="utf-8-sig",
                quoting=quoting,
            )
            sheet = None
        elif kind == "parquet":
            frame, sheet = pd.read_parquet(path), None
        else:
            frame, sheet = pd.read_json(path, lines=(kind == "jsonl"), dtype=False), None
    except SimsearchError:
        raise
    except UnicodeDecodeError:
        raise SimsearchError(f"{path} is not UTF-8 text; save it as UTF-8 CSV and retry") from None
    except ImportError as exc:
        raise SimsearchError(f"reading {path.suffix} files needs an extra package: {exc}") from None
    except Exception as exc:  # pandas/openpyxl raise many types for damaged files
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise SimsearchError(
            f"cannot read {path} as {kind}: {reason} (is the file damaged or of another type?)"
        ) from None
    frame.columns = [str(c) for c in frame.columns]
    return frame.reset_index(drop=True), sheet


def _read_excel(path: Path, sheet: str | None) -> tuple[pd.DataFrame, str]:
    import pandas as pd

    legacy = path.suffix.lower() == ".xls"  # the old binary format: pandas uses xlrd
    if not legacy and not zipfile.is_zipfile(path):
        # Encrypted (password-protected) workbooks are OLE files, not zip archives.
        raise SimsearchError(
            f"{path} is not a readable .xlsx workbook (password-protected, or another format "
            "renamed to .xlsx?); save it unprotected as .xlsx or export it to CSV"
        )
    with pd.ExcelFile(path, engine=None if legacy else "openpyxl") as book:
        names = [str(n) for n in book.sheet_names]
        chosen = _choose_sheet(names, sheet, path)
        frame = pd.read_excel(book, sheet_name=chosen, dtype=object)
    return frame, chosen


def _choose_sheet(names: list[str], sheet: str | None, path: Path) -> str:
    if sheet is None:
        return names[0]
    if sheet in names:
        return sheet
    if sheet.isdigit() and int(sheet) < len(names):
        return names[int(sheet)]
    listed = ", ".join(repr(n) for n in names)
    raise InvalidParameter("sheet", f"no sheet {sheet!r} in {path}; choose {{name}} from: {listed}")


def cell_text(value: Any) -> str:
    """The text form of one cell: ``""`` for missing values, ``str(value)`` otherwise.

    Whole floats from Excel (``3.0``) are written as integers (``"3"``) so a column of
    numbers reads as the user sees it in the spreadsheet.
    """
    if value is None:
        return ""
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        if value.is_integer():
            return str(int(value))
    try:
        import pandas as pd

        if value is pd.NaT or value is pd.NA:
            return ""
    except ImportError:  # pragma: no cover - pandas is a dependency
        pass
    return str(value)


def select_column(frame: pd.DataFrame, column: str, source: str | Path = "the file") -> list[str]:
    """The text of ``column`` as ``len(frame)`` strings (missing cells become ``""``).

    Raises:
        SimsearchError: the column does not exist (the message lists the columns), or
            every cell of it is empty.
    """
    if column not in frame.columns:
        listed = ", ".join(repr(c) for c in frame.columns)
        raise InvalidParameter(
            "column", f"no column {column!r} in {source}; choose {{name}} from: {listed}"
        )
    texts = [cell_text(v) for v in frame[column].tolist()]
    if texts and not any(t.strip() for t in texts):
        raise SimsearchError(
            f"column {column!r} in {source} is empty in every row; choose a column with text"
        )
    return texts


def read_corpus(path: str | Path, column: str, sheet: str | None = None) -> Corpus:
    """Read ``path`` and pick ``column`` as the documents.

    Returns:
        A :class:`Corpus`; ``corpus.texts[i]`` is row ``i`` of the file.

    Raises:
        SimsearchError: see :func:`read_table` and :func:`select_column`; also when the
            file has a header but no data rows.
    """
    frame, sheet_name = read_table(path, sheet)
    if len(frame) == 0:
        raise SimsearchError(f"{path} has no data rows; add rows below the header")
    texts = select_column(frame, column, path)
    n_empty = sum(1 for t in texts if not t.strip())
    return Corpus(frame=frame, column=column, texts=texts, n_empty=n_empty, sheet=sheet_name)
