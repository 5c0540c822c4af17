"""The copy of the source columns that ``--where`` filters read: one parquet file per
generation (``columns-G.parquet``), row ``i`` being document ``i``, with the types a
reader would expect (CSV text columns typed as pandas' CSV reader would type them).
:mod:`simsearch.retrieval.filters` runs the filters over it.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd


def write_columns(frame: pd.DataFrame, path: str | os.PathLike[str]) -> dict[str, str]:
    """Write the columns of ``frame`` as the parquet file a filter reads.

    Row ``i`` of ``frame`` must be document ``i`` of the index. Column names become
    strings; a column of text only (a CSV/TSV file, read cell by cell as text) gets the
    type pandas' CSV reader would infer (:func:`typed_text`: whole numbers, decimals,
    unambiguous dates, booleans; empty cells NULL); an object column that pyarrow
    cannot type (mixed numbers and text, as spreadsheets have) is stored as text, so
    every source column stays filterable. Only this copy gets types: the texts an
    index encodes are read separately. Written crash-safely
    (:func:`simsearch._fs.atomic.atomic_path`): a crash leaves the old file intact.

    Args:
        frame: the source table, ``n_docs`` rows.
        path: destination, in an index ``columns-<generation>.parquet``.

    Returns:
        Column name -> Arrow type name (``"int64"``, ``"string"``, ...), in file order.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    from simsearch._fs.atomic import atomic_path

    path = Path(path)
    arrays, names = [], []
    for name in frame.columns:
        column = frame[name]
        array = typed_text(column)
        if array is None:
            try:
                array = pa.array(column, from_pandas=True)
            except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
                array = pa.array(column.map(_as_text), type=pa.string(), from_pandas=True)
        arrays.append(array)
        names.append(str(name))
    table = pa.Table.from_arrays(arrays, names=names) if arrays else pa.table({})
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)
    return {name: str(array.type) for name, array in zip(names, arrays, strict=True)}


_INTEGER = r"[+-]?(?:0|[1-9][0-9]*)"
_DECIMAL = r"[+-]?(?:(?:0|[1-9][0-9]*)(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
_DATE = r"[0-9]{4}(?P<sep>[-./])[0-9]{2}(?P=sep)[0-9]{2}"
_TIME = r"[ T][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]+)?)?"


def typed_text(column: pd.Series) -> Any:
    """A column of text cells (as the CSV reader gives them) as the Arrow array of the
    type pandas' ``read_csv`` would infer, or None when ``column`` is not all text.

    Blank and missing cells are NULL whatever the type. Then, if every other cell is:

    - a whole number (``-12``, no leading zero: ``"01234"`` is a code) within int64:
      ``int64``;
    - a decimal number (``0.5``, ``1e3``, whole numbers too, not only whole numbers
      beyond int64: those stay text): ``double``;
    - a date written year first (``2020-01-31``, ``2020.01.31``, ``2020/01/31``; one
      separator in the column, every date valid): ``date32``; with a time
      (``2020-01-31 10:00[:00]``, ``T`` also): ``timestamp``;
    - ``true``/``false`` in any case: ``bool``;

    else ``string``. Words pandas reads as missing (``NA``, ``null``) stay text, as the
    CSV reader keeps them.

    Returns:
        a ``pyarrow.Array`` of ``len(column)``, or None (numbers, mixed objects...).
    """
    import pyarrow as pa

    if column.dtype != object:
        return None
    values = column.tolist()
    if not all(isinstance(v, str) or _as_text(v) is None for v in values):
        return None
    cells = [v.strip() if isinstance(v, str) else "" for v in values]
    unique = list(dict.fromkeys(c for c in cells if c))  # years, dates: few distinct
    for convert in (_as_integers, _as_decimals, _as_dates, _as_booleans) if unique else ():
        found = convert(unique)
        if found is not None:
            typed, kind = found
            return pa.array([typed[c] if c else None for c in cells], type=kind)
    return pa.array([c or None for c in cells], type=pa.string())


def _all_match(pattern: str, texts: list[str]) -> bool:

    match = re.compile(pattern).fullmatch
    return all(match(t) for t in texts)  # stops at the first word in a text column


def _as_integers(texts: list[str]) -> tuple[dict[str, Any], Any] | None:
    import pyarrow as pa

    if not _all_match(_INTEGER, texts):
        return None
    numbers = {t: int(t) for t in texts}
    if not all(-(2**63) <= n < 2**63 for n in numbers.values()):
        return None
    return numbers, pa.int64()


def _as_decimals(texts: list[str]) -> tuple[dict[str, Any], Any] | None:
    import pyarrow as pa

    if not _all_match(_DECIMAL, texts) or _all_match(_INTEGER, texts):
        return None  # (whole numbers beyond int64, long codes: a double would round them)
    return {t: float(t) for t in texts}, pa.float64()


def _as_dates(texts: list[str]) -> tuple[dict[str, Any], Any] | None:
    from datetime import datetime

    import pyarrow as pa

    first = re.fullmatch(_DATE, texts[0][:10])
    if first is None:
        return None
    sep = re.escape(first["sep"])
    date = _DATE.replace("(?P<sep>[-./])", f"(?P<sep>{sep})")
    if not _all_match(f"{date}(?:{_TIME})?", texts):
        return None
    timed = any(len(t) > 10 for t in texts)
    try:
        parsed = {t: datetime.fromisoformat(t.replace(first["sep"], "-", 2)) for t in texts}
    except ValueError:  # 2020-02-30
        return None
    if timed:
        return parsed, pa.timestamp("us")
    return {t: d.date() for t, d in parsed.items()}, pa.date32()


def _as_booleans(texts: list[str]) -> tuple[dict[str, Any], Any] | None:
    import pyarrow as pa

    if not all(t.lower() in ("true", "false") for t in texts):
        return None
    return {t: t.lower() == "true" for t in texts}, pa.bool_()


def _as_text(value: Any) -> Any:
    if value is None or (isinstance(value, float) and value != value):
        return None
    return str(value)
