"""Filters: which rows of an index a search may return, from an SQL expression.

A filter is the ``WHERE`` clause of SQL as DuckDB speaks it
(https://duckdb.org/docs/sql/expressions/overview), evaluated over a columnar copy
of the source table's columns that the index keeps in a parquet file
(:data:`COLUMNS_FILE`). Examples::

    year >= 2020 and applicant == '삼성전자'
    topic in ('battery', 'display') and title like '%전극%'
    "출원인" = 'LG에너지솔루션'            -- names with spaces or Hangul: double quotes

The result is a sorted array of allowed row numbers; searches turn it into a
:class:`~simsearch.retrieval.rowfilter.RowFilter` applied *before* top-k
(:func:`simsearch.retrieval.rank.rank`), so ``k`` hits come back whenever ``k`` rows match.

Why DuckDB and not ``pandas.DataFrame.query``: a filter may come from a web page, so
it must not read files or run code. ``DataFrame.query`` evaluates a Python-syntax
expression with attribute access and method calls (``engine="python"``), and ``@name``
reaches the caller's variables; its safety is not a documented contract. DuckDB's is:
each filter runs on an in-memory connection with ``enable_external_access = false``
(no files, no network, no extensions; https://duckdb.org/docs/operations_manual/securing_duckdb/overview)
and ``lock_configuration = true`` (the expression cannot switch it back), and the only
table is the index's own columns. The expression is also parsed first
(``json_serialize_sql``) and refused unless it is one plain expression: no subquery,
no second statement, nothing outside the ``WHERE`` clause. Speed: see
``scripts/bench_filters.py`` (1M rows, both libraries).

Heavy imports (duckdb, pyarrow) happen inside the functions that need them.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from simsearch.errors import InvalidParameter, SimsearchError

if TYPE_CHECKING:
    import pandas as pd

#: The parquet file that holds the source columns (an index names it
#: ``columns-<generation>.parquet``, file role :data:`ROLE` in its metadata).
COLUMNS_FILE = "columns.parquet"
#: The file role of the column file in the index metadata.
ROLE = "columns"
#: The table name a filter sees (only in messages: expressions name columns, not tables).
TABLE = "docs"
#: Hidden column with each row's position in the index.
ROW_COLUMN = "__simsearch_row"
#: Memory a single filter may use inside DuckDB (an expression such as
#: ``repeat('a', 10^10)`` fails with an out-of-memory error instead of exhausting the host).
MEMORY_LIMIT = "1GB"


class InvalidFilter(InvalidParameter):
    """A filter expression that cannot be evaluated: bad syntax, an unknown column, a
    type mismatch, or something that is not a plain expression.

    ``str(error)`` names the parameter ``where``; the CLI spells it ``--where``.

    Attributes:
        param: the parameter that held the expression (``"where"``).
        expression: the expression as given.
        columns: the column names a filter can use.
        reason: the problem, in DuckDB's words where DuckDB found it.
    """

    def __init__(self, expression: str, reason: str, columns: Sequence[str]) -> None:
        self.expression = expression
        self.reason = reason
        self.columns = list(columns)
        shown = ", ".join(_quote_if_needed(c) for c in self.columns) or "(none)"
        quoted = repr(expression).replace("{name}", "{ name}")  # keep the placeholder unique
        super().__init__("where", f"{{name}} {quoted}: {reason}; available columns: {shown}")


@dataclass
class ColumnTable:
    """The source columns of one index, for any number of filters.

    Columns are read from the parquet file only when an expression names them (a
    filter on ``year`` never decodes a million abstracts) and kept for later filters.

    Attributes:
        path: the parquet file.
        n_rows: number of rows (= documents in the index).
        columns: column names in file order (the hidden row column excluded).
    """

    path: Path
    n_rows: int
    columns: list[str]
    _loaded: dict[str, Any] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _con: Any = field(default=None, repr=False)

    def select(self, expression: str) -> np.ndarray:
        """Row numbers where ``expression`` is true (NULL counts as false).

        Args:
            expression: a DuckDB SQL boolean expression over :attr:`columns`.

        Returns:
            ``(n_allowed,)`` int64, sorted ascending, each in ``[0, n_rows)``.

        Raises:
            InvalidFilter: empty or not a single plain expression (subquery, second
                statement, ...), unknown column, syntax or type error, non-boolean
                result, or any other DuckDB error while evaluating it.
        """
        import duckdb

        text = expression.strip()
        if not text:
            raise InvalidFilter(expression, "the expression is empty", self.columns)
        sql = f"SELECT {_ident(ROW_COLUMN)} FROM {TABLE} WHERE ({text})"
        with self._lock:  # one DuckDB connection is not safe across threads
            con = self._connection()
            where = _plain_condition(con, sql, expression, self.columns)
            self._load(con, _column_refs(where, self.columns))
            try:
                rows = con.execute(sql).fetchnumpy()[ROW_COLUMN]
            except duckdb.Error as error:
                raise InvalidFilter(expression, _first_line(error), self.columns) from None
        rows = np.asarray(rows, dtype=np.int64)
        rows.sort()
        return rows

    def _connection(self) -> Any:
        if self._con is None:
            self._con = _locked_connection()
            self._load(self._con, [])
        return self._con

    def _load(self, con: Any, names: list[str]) -> None:
        """Read the named columns not read yet and show DuckDB the table of all read
        columns plus the row numbers (registering is a view on Arrow memory, no copy)."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        missing = [n for n in names if n not in self._loaded]
        if self._loaded and not missing:
            return
        if missing:
            read = pq.read_table(self.path, columns=missing)
            self._loaded.update(zip(read.column_names, read.columns, strict=True))
        arrays = dict(self._loaded)
        arrays[ROW_COLUMN] = pa.array(np.arange(self.n_rows, dtype=np.int64))
        con.register(TABLE, pa.table(arrays))


def write_columns(frame: pd.DataFrame, path: str | os.PathLike[str]) -> dict[str, str]:
    """Write the columns of ``frame`` as the parquet file a filter reads.

    Row ``i`` of ``frame`` must be document ``i`` of the index. Column names become
    strings; an object column that pyarrow cannot type (mixed numbers and text, as
    spreadsheets have) is stored as text, so every source column stays filterable.
    Written crash-safely (:func:`simsearch._fs.atomic.atomic_path`): a crash leaves the old
    file intact.

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
        try:
            array = pa.array(column, from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
            array = pa.array(column.map(_as_text), type=pa.string(), from_pandas=True)
        arrays.append(array)
        names.append(str(name))
    table = pa.Table.from_arrays(arrays, names=names) if arrays else pa.table({})
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)
    _CACHE.pop(path.resolve(), None)
    return {name: str(array.type) for name, array in zip(names, arrays, strict=True)}


_CACHE: dict[Path, tuple[tuple[int, int], ColumnTable]] = {}


def load_columns(path: str | os.PathLike[str]) -> ColumnTable:
    """The column table of a parquet file written by :func:`write_columns`, cached per
    file (a rewritten file is reloaded: the cache key includes size and mtime).

    Raises:
        SimsearchError: the file is missing (the index was built without columns).
    """
    import pyarrow.parquet as pq

    path = Path(path).resolve()
    try:
        stat = path.stat()
    except OSError:
        raise SimsearchError(
            f"this index has no column file ({path.name}); rebuild it with the current "
            "version to filter by column"
        ) from None
    key = (stat.st_size, stat.st_mtime_ns)
    cached = _CACHE.get(path)
    if cached is not None and cached[0] == key:
        return cached[1]
    meta = pq.read_metadata(path)
    loaded = ColumnTable(path=path, n_rows=meta.num_rows, columns=list(meta.schema.names))
    _CACHE[path] = (key, loaded)
    return loaded


def filter_rows(path: str | os.PathLike[str], expression: str) -> np.ndarray:
    """Row numbers of the index whose columns satisfy ``expression``.

    Args:
        path: the index's parquet column file (:data:`COLUMNS_FILE`).
        expression: a DuckDB SQL boolean expression, e.g.
            ``"year >= 2020 and applicant == '삼성전자'"``.

    Returns:
        ``(n_allowed,)`` int64 row numbers, sorted ascending.

    Raises:
        InvalidFilter: see :meth:`ColumnTable.select`.
        SimsearchError: no column file.
    """
    return load_columns(path).select(expression)


def index_rows(index: Any, where: str | None) -> np.ndarray | None:
    """The rows of an opened index (:class:`simsearch.store.index.Index`) that ``where``
    allows, or None when ``where`` is None (no filter).

    Returns:
        ``(n_allowed,)`` int64 row numbers, sorted ascending, or None.

    Raises:
        InvalidFilter: see :meth:`ColumnTable.select`.
        SimsearchError: the index has no column file (built before filters existed).
    """
    if where is None:
        return None
    try:
        path = index.file(ROLE)
    except KeyError:
        raise SimsearchError(
            f"the index at {index.path} has no column file to filter on; run "
            "'simsearch index' on its source again (embeddings are reused)"
        ) from None
    return filter_rows(path, where)


def _locked_connection() -> Any:
    """An in-memory DuckDB connection that sees one table (:data:`TABLE`) and can
    reach nothing else: no files, no network, no extensions, no Python variables,
    configuration locked."""
    import duckdb

    con = duckdb.connect(":memory:", config={"threads": 1, "memory_limit": MEMORY_LIMIT})
    # Python replacement scans would let `FROM some_name` read a Python variable.
    con.execute("SET python_enable_replacements = false")
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")
    return con


def _plain_condition(con: Any, sql: str, expression: str, columns: Sequence[str]) -> Any:
    """The parse tree of the WHERE condition of ``sql``; refuses anything but
    ``SELECT row FROM docs WHERE (<one expression>)`` without subqueries, judged on
    DuckDB's own parser (``json_serialize_sql``)."""
    parsed = json.loads(con.execute("SELECT json_serialize_sql(?)", [sql]).fetchall()[0][0])
    if parsed.get("error"):
        raise InvalidFilter(expression, _first_line(parsed.get("error_message", "")), columns)
    statements = parsed.get("statements", [])
    node = statements[0].get("node", {}) if len(statements) == 1 else {}
    plain = (
        node.get("type") == "SELECT_NODE"
        and len(node.get("select_list", [])) == 1
        and (node.get("from_table") or {}).get("table_name") == TABLE
        and not node.get("modifiers")
        and not (node.get("cte_map") or {}).get("map")
        and not node.get("group_expressions")
        and node.get("having") is None
        and node.get("qualify") is None
        and node.get("sample") is None
    )
    if not plain:
        reason = "not a single expression (only a WHERE condition is allowed)"
        raise InvalidFilter(expression, reason, columns)
    where = node.get("where_clause")
    if _has_subquery(where):
        raise InvalidFilter(expression, "subqueries are not allowed in a filter", columns)
    return where


def _column_refs(tree: Any, columns: Sequence[str]) -> list[str]:
    """The columns of ``columns`` that the parse tree names (SQL names are
    case-insensitive); all of them when it holds ``*`` or ``COLUMNS(...)``."""
    by_lower = {c.lower(): c for c in columns}
    found: dict[str, None] = {}

    def walk(node: Any) -> bool:
        if isinstance(node, list):
            return any([walk(v) for v in node])
        if not isinstance(node, dict):
            return False
        if node.get("class") == "STAR":
            return True
        if node.get("class") == "COLUMN_REF":
            name = by_lower.get(str(node.get("column_names", [""])[-1]).lower())
            if name is not None:
                found[name] = None
        return any([walk(v) for v in node.values()])

    return list(columns) if walk(tree) else list(found)


def _has_subquery(tree: Any) -> bool:
    if isinstance(tree, dict):
        if tree.get("class") == "SUBQUERY" or "subquery" in tree:
            return True
        return any(_has_subquery(v) for v in tree.values())
    if isinstance(tree, list):
        return any(_has_subquery(v) for v in tree)
    return False


def _first_line(error: object) -> str:
    """DuckDB's message, first line only, with long quoted values cut (a cast error
    quotes the whole cell, e.g. an abstract)."""
    import re

    text = str(error).strip()
    line = text.splitlines()[0] if text else "invalid expression"
    return re.sub(r"'([^']{40})[^']{20,}'", r"'\1…'", line)


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _quote_if_needed(name: str) -> str:
    simple = name.isascii() and name.replace("_", "a").isalnum() and not name[:1].isdigit()
    return name if simple else _ident(name)


def _as_text(value: Any) -> Any:
    if value is None or (isinstance(value, float) and value != value):
        return None
    return str(value)
