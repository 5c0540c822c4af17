"""Writing result tables to files an analyst opens as they are: ``.xlsx``, ``.csv`` or
``.parquet``. Every table goes through here: search results (:func:`write_hits`, from
``similar``/``query -o``), neighbours, duplicate groups, map clusters and ``serve``'s
download (:func:`write_frame`, :func:`write_xlsx`).

- ``.xlsx`` (xlsxwriter through pandas): bold frozen header row, autofilter, column widths
  fitted to the content, Korean counted as two cells wide (East Asian wide characters,
  as Excel renders them), longer text wrapped, text kept as text (a code ``'007'`` stays
  ``'007'``), cells cut at Excel's limit of 32,767 characters.
- ``.csv``: UTF-8 with a byte-order mark, which Excel needs to open Korean text without
  mojibake (a plain UTF-8 CSV opens as cp949 in Korean Excel). A text cell that Excel
  would run as a formula (one starting with ``=``, ``+``, ``-``, ``@``, a tab, a carriage
  return or a line feed, e.g. ``=HYPERLINK(...)``) is written with a leading ``'``, as
  OWASP advises against CSV injection (:func:`csv_cell`); numbers stay numbers.
- ``.xlsx`` cells are safe without that: text is always written as a string cell, never
  as a formula (``strings_to_formulas`` off).
- ``.parquet``: pyarrow, types kept.

Every file is written to a temporary name beside the target and renamed into place
(:func:`simsearch._fs.atomic.atomic_path`), so an interrupted write never leaves a half file
where the user's previous one was.
"""

from __future__ import annotations

import os
import re
import unicodedata
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from simsearch.errors import InvalidParameter, SimsearchError

if TYPE_CHECKING:
    import pandas as pd

SUFFIXES = (".xlsx", ".csv", ".parquet")
#: Widest column in Excel character units; longer text is cut visually, never in the cell.
MAX_WIDTH = 60
#: Excel's limit on the characters of one cell.
CELL_LIMIT = 32767
#: Rows sampled per column to fit its width (the width of 1M cells is not worth measuring).
WIDTH_SAMPLE = 500


#: First characters that make Excel (and LibreOffice) read a CSV cell as a formula (OWASP,
#: "CSV Injection"), and their full-width forms, which a Korean or Japanese IME types.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n", "\uff1d", "\uff0b", "\uff0d", "\uff20")
#: Line end of CSV files for Excel (RFC 4180): with it, a cell holding a lone carriage
#: return is quoted, instead of ending the row early for Excel and pandas.
CSV_LINE_END = "\r\n"
_PLAIN_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


def csv_cell(value: Any) -> Any:
    """``value`` safe to open in Excel from a CSV: text starting like a formula
    (:data:`FORMULA_START`, e.g. ``=cmd|' /C calc'!A0``) gets a leading ``'``, so that
    Excel shows it as text instead of running it; numbers, missing values and text
    that is a plain number (``"-0.12"``, which Excel reads as that number and nothing
    else) are returned as they are."""
    if not isinstance(value, str) or not value.startswith(FORMULA_START):
        return value
    if _PLAIN_NUMBER.fullmatch(value):
        return value
    return "'" + value


def csv_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with :func:`csv_cell` applied to its header and its text cells (numeric
    columns untouched)."""
    import pandas as pd

    out = frame.rename(columns=lambda c: csv_cell(c) if isinstance(c, str) else c)
    for i in range(out.shape[1]):
        column = out.iloc[:, i]
        if pd.api.types.is_object_dtype(column) or pd.api.types.is_string_dtype(column):
            out.isetitem(i, column.map(csv_cell, na_action="ignore"))
    return out


def check_output(
    path: str | os.PathLike,
    suffixes: tuple[str, ...] | None = SUFFIXES,
    protect: str | os.PathLike | None = None,
    param: str = "out",
) -> Path:
    """``path`` as a Path when it may be written, checked before any work is done: it is
    not a folder, its folder exists, its suffix is one of ``suffixes`` (any when
    ``None``) and it is not ``protect`` (the indexed source file: writing there would
    destroy the user's data).

    Raises:
        InvalidParameter: (param ``param``) a folder, a missing folder, another suffix,
            or the protected file.
    """
    path = Path(path)
    if path.is_dir():
        raise InvalidParameter(param, f"{{name}} {path} is a folder; give a file name")
    if not path.parent.is_dir():
        raise InvalidParameter(
            param, f"{{name}}: folder {path.parent} does not exist; create it or choose another"
        )
    if suffixes is not None and path.suffix.lower() not in suffixes:
        raise InvalidParameter(
            param, f"cannot write {path.name!r}: {{name}} must end in {', '.join(suffixes)}"
        )
    if protect and path.resolve() == Path(protect).resolve():
        raise InvalidParameter(
            param, f"{{name}} {path} is the indexed source file; choose another file name"
        )
    return path


def display_width(text: str) -> int:
    """Width of ``text`` in Excel character cells: East Asian wide and full-width
    characters (Hangul, CJK) count two, others one (``unicodedata.east_asian_width``)."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def column_widths(frame: pd.DataFrame) -> list[int]:
    """One width per column of ``frame``: the widest of the header and a sample of the
    cells, plus a margin, capped at :data:`MAX_WIDTH`."""
    return [min(MAX_WIDTH, width + 2) for width in _content_widths(frame)]


def _content_widths(frame: pd.DataFrame) -> list[int]:
    """Per column, the display width of the header or the widest sampled cell."""
    widths = []
    for name in frame.columns:
        cells = frame[name].head(WIDTH_SAMPLE)
        longest = max((display_width(_cell_text(v)) for v in cells), default=0)
        widths.append(max(display_width(str(name)), longest))
    return widths


def _cell_text(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    return "" if value is None else str(value)


def write_frame(frame: pd.DataFrame, path: str | os.PathLike, sheet: str = "results") -> Path:
    """Write ``frame`` to ``path`` (format from the suffix), atomically.

    Args:
        frame: the table; its index is not written.
        path: ``.xlsx``, ``.csv`` or ``.parquet``; parent directories must exist.
        sheet: worksheet name for ``.xlsx`` (Excel allows at most 31 characters).

    Returns:
        The path written.

    Raises:
        SimsearchError: unknown suffix, missing parent directory, or the file cannot be
            written (permissions, disk full); the previous file at ``path`` is then intact.
    """
    return write_sheets({sheet: frame}, path)[0]


def hits_frame(hits: Sequence[Any]) -> pd.DataFrame:
    """Search results as a table: the flat fields of
    :meth:`simsearch.retrieval.hit.Hit.flat` (query fields for query results, ``rank``,
    ``row``, ``cosine_distance``, ``similarity``, ``score``, ``mode``, ``matched_text``,
    ``matched_terms``), then every source column in the source's order (as the first
    result lists them); text cut at :data:`CELL_LIMIT` characters.

    Args:
        hits: :class:`~simsearch.retrieval.hit.Hit` objects of ``similar`` / ``query``.

    Returns:
        ``len(hits)`` rows.
    """
    import pandas as pd

    columns: list[str] = []
    for hit in hits:
        columns += [c for c in hit.columns if c not in columns]
    rows = [{k: _excel_value(v) for k, v in hit.flat(columns).items() if k != "text"}
            for hit in hits]
    return pd.DataFrame(rows)


def _excel_value(value: Any) -> Any:
    """Numbers and missing values as they are; anything else as text cut at Excel's limit."""
    if value is None or isinstance(value, (int, float, bool)):
        return value
    return str(value)[:CELL_LIMIT]


def write_hits(
    hits: Sequence[Any], path: str | os.PathLike, sheet: str = "results"
) -> Path:
    """Write search results (:func:`hits_frame`) to ``path`` with :func:`write_frame`.

    Raises:
        SimsearchError: as :func:`write_frame`.
    """
    return write_frame(hits_frame(hits), path, sheet=sheet)


def write_sheets(sheets: dict[str, pd.DataFrame], path: str | os.PathLike) -> list[Path]:
    """Write several tables: one ``.xlsx`` with a worksheet each, or for ``.csv`` and
    ``.parquet`` the first table at ``path`` and each other one beside it as
    ``<stem>-<sheet><suffix>``. Each file is written atomically; CSV text cells that
    start like a formula are neutralised (:func:`csv_cell`).

    Returns:
        The paths written, in the order of ``sheets``.

    Raises:
        SimsearchError: as :func:`write_frame`.
    """
    path = check_output(path, param="path")
    suffix = path.suffix.lower()
    if suffix == ".xlsx":
        atomic_write(path, lambda tmp: write_xlsx(sheets, tmp))
        return [path]
    written = []
    for i, (name, frame) in enumerate(sheets.items()):
        target = path if i == 0 else path.with_name(f"{path.stem}-{name}{path.suffix}")
        if suffix == ".csv":
            atomic_write(
                target,
                lambda tmp, f=frame: csv_frame(f).to_csv(
                    tmp, index=False, encoding="utf-8-sig", lineterminator=CSV_LINE_END
                ),
            )
        else:
            atomic_write(target, lambda tmp, f=frame: f.to_parquet(tmp, index=False))
        written.append(target)
    return written


def write_text(
    path: str | os.PathLike, write: Callable[[IO[str]], None], encoding: str = "utf-8-sig"
) -> None:
    """Run ``write(stream)`` into ``path`` atomically (:func:`atomic_write`), by default
    as UTF-8 with a BOM (``utf-8-sig``, for Excel). ``newline=""`` leaves line endings
    to the writer (the csv module writes them itself).

    Raises:
        SimsearchError: as :func:`atomic_write`; what ``write`` raises passes through,
            with a file already at ``path`` untouched.
    """

    def to_file(tmp: Path) -> None:
        with tmp.open("w", encoding=encoding, newline="") as stream:
            write(stream)

    atomic_write(Path(path), to_file)


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Run ``write(tmp)`` on a temporary file beside ``path``, then rename it into place
    (:func:`simsearch._fs.atomic.atomic_path`); the folder must exist.

    Raises:
        SimsearchError: the folder is missing or the file cannot be written; a file
            already at ``path`` is then untouched.
    """
    from simsearch._fs.atomic import atomic_path

    if not path.parent.is_dir():
        raise SimsearchError(f"cannot write {path}: the folder {path.parent} does not exist")
    try:
        with atomic_path(path) as tmp:
            write(tmp)
            # mkstemp makes the file private (0600); an output file gets the usual mode.
            os.chmod(tmp, 0o666 & ~_umask())
    except OSError as exc:
        raise SimsearchError(f"cannot write {path}: {exc.strerror or exc}") from None


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_xlsx(sheets: dict[str, pd.DataFrame], path: Path) -> None:
    """Each table as one formatted worksheet: bold header frozen in row 1, an
    autofilter, fitted column widths (:func:`column_widths`), text wider than
    :data:`MAX_WIDTH` wrapped, floats shown with 4 decimals (stored in full).

    Args:
        sheets: worksheet name (cut to Excel's 31 characters) to table.
        path: the file, or a binary stream (``serve`` writes into memory).
    """
    import pandas as pd

    # xlsxwriter turns strings that look like numbers or URLs into other cell types
    # unless told not to; analysts' text must come back exactly as it went in.
    options = {"strings_to_numbers": False, "strings_to_urls": False, "strings_to_formulas": False}
    with pd.ExcelWriter(path, engine="xlsxwriter", engine_kwargs={"options": options}) as xl:
        header = xl.book.add_format({"bold": True, "bg_color": "#DDEBF7", "border": 1})
        decimals = xl.book.add_format({"num_format": "0.0000"})
        wrap = xl.book.add_format({"text_wrap": True, "valign": "top"})
        for name, frame in sheets.items():
            sheet = name[:31]
            frame.to_excel(xl, sheet_name=sheet, index=False)
            ws = xl.sheets[sheet]
            for col, (title, content) in enumerate(zip(frame.columns, _content_widths(frame))):
                is_float = pd.api.types.is_float_dtype(frame[title])
                style = decimals if is_float else wrap if content > MAX_WIDTH else None
                # In pixels (7 a character) so that the file stores the width itself;
                # set_column would add xlsxwriter's 5-pixel padding to it.
                ws.set_column_pixels(col, col, 7 * min(MAX_WIDTH, content + 2), style)
                ws.write(0, col, str(title), header)
            ws.freeze_panes(1, 0)
            if len(frame.columns):
                ws.autofilter(0, 0, max(len(frame), 1), len(frame.columns) - 1)
