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
no second statement, nothing outside the ``WHERE`` clause, and no function outside
:data:`FUNCTIONS` (``range``, ``repeat``, ``lpad``... allocate without bound: DuckDB's
``memory_limit`` does not cover the vectors an expression computes). The columns are
scanned in batches of at most :data:`BATCH_BYTES`, and a filter running longer than
:data:`TIME_LIMIT_S` is interrupted. CSV columns (all text) get inferred types in the
column copy (:func:`typed_text`). Speed: see
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
#: Hidden column with each row's position in the index (a source column of that name
#: keeps its name: the hidden one then takes a suffix, :attr:`ColumnTable.row_column`).
ROW_COLUMN = "__simsearch_row"
#: Memory DuckDB's buffer manager may use for one filter. It does not cover the vectors
#: an expression computes (``list_sum(range(300000000))`` reached 15 GB under it), which
#: :data:`FUNCTIONS` bounds instead.
MEMORY_LIMIT = "1GB"
#: Seconds a filter may run before it is interrupted (``connection.interrupt()``).
TIME_LIMIT_S = 5.0
#: Bytes of column data DuckDB evaluates a filter on at a time (see :func:`_small_batches`).
BATCH_BYTES = 8 << 20
#: Characters of an expression that an error message echoes.
ECHO_CHARS = 160

#: Functions whose result is at most about as large as their arguments (no size or
#: count argument: ``repeat``, ``range``, ``lpad``, ``printf``, ``replace``... are not
#: here), by the names DuckDB's parser gives operators too (``~~`` is LIKE). A filter
#: may call only these; lambdas are refused.
BOOLEAN_FUNCTIONS = frozenset({
    "~~", "!~~", "~~*", "!~~*", "~~~", "!~~~", "^@", "like_escape", "not_like_escape",
    "ilike_escape", "not_ilike_escape", "regexp_matches", "regexp_full_match",
    "contains", "starts_with", "ends_with", "suffix", "prefix", "isnan", "isinf",
    "isfinite", "list_contains", "list_has", "array_contains", "array_has",
})
NUMBER_FUNCTIONS = frozenset({
    "+", "-", "*", "/", "//", "%", "**", "^", "@", "abs", "round", "floor", "ceil",
    "ceiling", "trunc", "sign", "sqrt", "cbrt", "ln", "log", "log2", "log10", "exp",
    "pow", "power", "mod", "greatest", "least", "length", "len", "strlen",
    "char_length", "character_length", "length_grapheme", "octet_length", "strpos",
    "instr", "position", "array_length", "year", "month", "day", "quarter", "week",
    "weekofyear", "weekday", "dayofweek", "isodow", "dayofyear", "dayofmonth",
    "yearweek", "hour", "minute", "second", "millisecond", "microsecond", "epoch",
    "epoch_ms", "date_part", "datepart", "date_diff", "datediff", "date_sub", "datesub",
    "make_date", "make_time", "make_timestamp", "date_trunc", "datetrunc", "last_day",
    "to_years", "to_months", "to_weeks", "to_days", "to_hours", "to_minutes",
    "to_seconds", "to_milliseconds", "to_microseconds", "today", "current_date",
    "strptime", "try_strptime", "to_timestamp", "age", "ascii", "unicode", "ord",
    "list_value", "array_extract", "list_extract", "struct_extract",
})
#: Text functions: each result is a vector as large as its argument (or a few times,
#: for case mapping); a filter may nest at most :data:`MAX_TEXT_CALLS` of them.
TEXT_FUNCTIONS = frozenset({
    "lower", "upper", "lcase", "ucase", "trim", "ltrim", "rtrim", "substr", "substring",
    "substring_grapheme", "left", "right", "left_grapheme", "right_grapheme", "reverse",
    "regexp_extract", "strftime", "nfc_normalize", "strip_accents", "dayname",
    "monthname", "array_slice", "list_slice",
})
FUNCTIONS = BOOLEAN_FUNCTIONS | NUMBER_FUNCTIONS | TEXT_FUNCTIONS
#: Text functions and casts one filter may hold (each holds a column-sized vector).
MAX_TEXT_CALLS = 32


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
        quoted = _excerpt(expression).replace("{name}", "{ name}")  # keep the placeholder unique
        super().__init__("where", f"{{name}} {quoted}: {reason}; available columns: {shown}")


def _excerpt(expression: str) -> str:
    """The expression quoted, or its first :data:`ECHO_CHARS` characters and its length
    (a 10 KB filter is not echoed whole)."""
    if len(expression) <= ECHO_CHARS:
        return repr(expression)
    return f"{expression[:ECHO_CHARS]!r}... ({len(expression):,} characters)"


@dataclass
class ColumnTable:
    """The source columns of one index, for any number of filters.

    Columns are read from the parquet file only when an expression names them (a
    filter on ``year`` never decodes a million abstracts) and kept for later filters.

    Attributes:
        path: the parquet file.
        n_rows: number of rows (= documents in the index).
        columns: column names in file order (the hidden row column excluded).
        time_limit_s: a filter running longer is interrupted (:data:`TIME_LIMIT_S`).
    """

    path: Path
    n_rows: int
    columns: list[str]
    time_limit_s: float = TIME_LIMIT_S
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
                statement, ...), a function outside :data:`FUNCTIONS` or a lambda, an
                unknown or ambiguous column (``Year`` beside ``year``), syntax or type
                error (a text column compared with a number suggests a cast),
                non-boolean result, longer than :attr:`time_limit_s`, or any other
                DuckDB error while evaluating it.
        """
        text = expression.strip()
        if not text:
            raise InvalidFilter(expression, "the expression is empty", self.columns)
        row = self.row_column
        sql = f"SELECT {_ident(row)} FROM {TABLE} WHERE ({text})"
        with self._lock:  # one DuckDB connection is not safe across threads
            con = self._connection()
            where = _plain_condition(con, sql, expression, self.columns)
            named = _column_refs(where, self.columns, expression)
            self._load(con, named)
            rows = self._run(con, sql, expression, named)[row]
        rows = np.asarray(rows, dtype=np.int64)
        rows.sort()
        return rows

    @property
    def row_column(self) -> str:
        """The hidden row-number column: :data:`ROW_COLUMN`, suffixed when a source
        column has that name (SQL names ignore case)."""
        taken = {c.lower() for c in self.columns}
        name, n = ROW_COLUMN, 0
        while name.lower() in taken:
            n += 1
            name = f"{ROW_COLUMN}_{n}"
        return name

    def _run(self, con: Any, sql: str, expression: str, named: list[str]) -> dict[str, Any]:
        """Run ``sql``, interrupted after :attr:`time_limit_s` (a timer thread calls
        ``con.interrupt()``; an interrupt with no query running is a no-op)."""
        import duckdb

        timer = threading.Timer(self.time_limit_s, con.interrupt)
        timer.daemon = True
        timer.start()
        try:
            return con.execute(sql).fetchnumpy()
        except duckdb.InterruptException:
            reason = (f"stopped after {self.time_limit_s:g} s (filters are limited in time); "
                      "simplify the expression")
            raise InvalidFilter(expression, reason, self.columns) from None
        except duckdb.Error as error:
            reason = _first_line(error) + self._cast_hint(error, named)
            raise InvalidFilter(expression, reason, self.columns) from None
        finally:
            timer.cancel()

    def _cast_hint(self, error: object, named: list[str]) -> str:
        """A cast to suggest when DuckDB refused text against a number: the column
        DuckDB names, else the first text column the expression names (an index built
        before typed columns, or a column with a word among its numbers)."""
        import re

        import pyarrow as pa

        message = str(error)
        clash = "VARCHAR" in message and (
            "Cannot compare" in message or "No function matches" in message
        )
        if not (clash or "Could not convert string" in message):
            return ""
        source = re.search(r"from source column (.+?)(?:$|\s)", message)
        if source:
            named = [n for n in named if n.lower() == source[1].strip('"').lower()] + named
        text = [n for n in named if n in self._loaded and (
            pa.types.is_string(self._loaded[n].type)
            or pa.types.is_large_string(self._loaded[n].type))]
        if not text:
            return ""
        name = _quote_if_needed(text[0])
        return (f" (column {name} holds text: convert it, e.g. cast({name} as integer), "
                f"or try_cast({name} as integer) to read non-numbers as NULL)")

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
        arrays[self.row_column] = pa.array(np.arange(self.n_rows, dtype=np.int64))
        con.register(TABLE, _small_batches(pa.table(arrays)))


def _small_batches(table: Any) -> Any:
    """``table`` cut into record batches of at most :data:`BATCH_BYTES` (DuckDB scans
    one batch per vector of at most 2048 rows): what an expression computes per vector,
    and the time between two checks of the interrupt, stay small with large cells."""
    import pyarrow as pa

    per_row = table.nbytes / max(table.num_rows, 1)
    rows = int(max(1, min(2048, BATCH_BYTES // max(per_row, 1))))
    return pa.Table.from_batches(table.to_batches(max_chunksize=rows), schema=table.schema)


def write_columns(frame: pd.DataFrame, path: str | os.PathLike[str]) -> dict[str, str]:
    """:func:`simsearch.store.columns.write_columns`, and the file's cached table
    forgotten (a filter then reads the new file)."""
    from simsearch.store import columns

    types = columns.write_columns(frame, path)
    _CACHE.pop(Path(path).resolve(), None)
    return types


def typed_text(column: pd.Series) -> Any:
    """:func:`simsearch.store.columns.typed_text`."""
    from simsearch.store import columns

    return columns.typed_text(column)


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
    from simsearch.store.index import part_errors

    try:
        path = index.columns_file()  # its row count checked against n_docs
    except KeyError:
        raise SimsearchError(
            f"the index at {index.path} has no column file to filter on; run "
            "'simsearch index' on its source again (embeddings are reused)"
        ) from None
    with part_errors(index.path, path.name):  # an unreadable file is a damaged index
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
    reason = _refused_call(where)
    if reason:
        raise InvalidFilter(expression, reason, columns)
    return where


def _refused_call(tree: Any) -> str | None:
    """Why the parse tree may allocate without bound, or None: a function outside
    :data:`FUNCTIONS` (``range``, ``repeat``, ``lpad``, ``printf``, ``||``...), a
    lambda, or more than :data:`MAX_TEXT_CALLS` text functions and casts."""
    nodes = list(_nodes(tree))
    for node in nodes:
        kind = node.get("class")
        if kind == "LAMBDA":
            return "lambdas are not allowed in a filter"
        name = str(node.get("function_name", "")).lower()
        if kind == "FUNCTION" and name not in FUNCTIONS:
            return (f"function {name!r} is not allowed in a filter (it may allocate without "
                    "bound, or is not one of the functions filters allow; see "
                    "docs/filters.md)")
    text = sum(1 for n in nodes if _holds_a_column_copy(n))
    if text > MAX_TEXT_CALLS:
        return (f"{text} text functions and casts; a filter may hold {MAX_TEXT_CALLS} "
                "(each one holds a copy of its column in memory)")
    return None


def _holds_a_column_copy(node: dict) -> bool:
    """A text function, a list, or a cast of anything but a literal (``date '2020-01-01'``
    is a cast of a constant, computed once)."""
    if node.get("class") == "CAST":
        return (node.get("child") or {}).get("class") != "CONSTANT"
    name = str(node.get("function_name", "")).lower()
    return node.get("class") == "FUNCTION" and name in TEXT_FUNCTIONS | {"list_value"}


def _nodes(tree: Any):
    """Every expression node (a dict with a ``class``) of a parse tree."""
    if isinstance(tree, list):
        for value in tree:
            yield from _nodes(value)
    elif isinstance(tree, dict):
        if "class" in tree:
            yield tree
        for value in tree.values():
            yield from _nodes(value)


def _column_refs(tree: Any, columns: Sequence[str], expression: str = "") -> list[str]:
    """The columns of ``columns`` that the parse tree names (SQL names are
    case-insensitive); all of them when it holds ``*`` or ``COLUMNS(...)``.

    Raises:
        InvalidFilter: a name matches several columns that differ only in case
            (``Year`` and ``year``: DuckDB would pick one of them silently).
    """
    by_lower: dict[str, list[str]] = {}
    for c in columns:
        by_lower.setdefault(c.lower(), []).append(c)
    star = False
    found: dict[str, None] = {}
    for node in _nodes(tree):
        if node.get("class") == "STAR":
            star = True
        elif node.get("class") == "COLUMN_REF":
            for name in node.get("column_names", [])[-1:]:
                found.update(dict.fromkeys(by_lower.get(str(name).lower(), [])))
    names = list(columns) if star else list(found)
    clashes = sorted({c.lower() for c in names if len(by_lower[c.lower()]) > 1})
    if clashes:
        both = " and ".join(_quote_if_needed(c) for c in by_lower[clashes[0]])
        reason = (f"column name {clashes[0]!r} is ambiguous: the source has {both}, and SQL "
                  "names ignore case; rename one of them in the source and index again")
        raise InvalidFilter(expression, reason, columns)
    return names


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
    line = re.sub(r"'([^']{40})[^']{20,}'", r"'\1…'", line)
    return line if len(line) <= 300 else line[:300] + "…"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _quote_if_needed(name: str) -> str:
    simple = name.isascii() and name.replace("_", "a").isalnum() and not name[:1].isdigit()
    return name if simple else _ident(name)
