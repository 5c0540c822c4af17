"""Batch queries from a spreadsheet: each row of a table is one query, and the result has
one row per (query row, rank), the query row's columns beside the hit's.

``simsearch query --file new.xlsx --query-column abstract --k 10 -o matches.xlsx`` is
prior-art search for an analyst: "for each of my 50 new applications, the 10 most
similar patents in the corpus". The queries are read with the same reader as ``index``
(:func:`simsearch.tables.read.read_table_notes`: sheets, encodings, header rows, merged
cells), encoded in batches of :data:`BLOCK_QUERIES` with the index's own model (loaded
once, Kiwi analysing every query in a thread meanwhile) and ranked per batch by
:func:`simsearch.retrieval.rank.rank`, exactly as ``query`` ranks them: the hits of a
row are ``query``'s hits for its text (the tests check this).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from simsearch.errors import InvalidParameter, SimsearchError
from simsearch.store import index as store

if TYPE_CHECKING:
    from simsearch.retrieval.hit import Hit

LogFn = Callable[[str], None]
ProgressFn = Callable[[int, int], None]
#: Queries encoded and ranked per call (one progress step each).
BLOCK_QUERIES = 256
#: Suffixes read as a table by ``query --file`` without ``--query-column``; a ``.txt``
#: (and stdin) stays one query per line.
TABLE_SUFFIXES = (".xlsx", ".xlsm", ".xls", ".csv", ".tsv", ".parquet", ".jsonl", ".json")


def _quiet(_msg: str) -> None:
    pass


def is_table(file: str | None, query_column: str | None) -> bool:
    """Whether ``query --file FILE`` reads a table (one query per row): a
    ``--query-column`` is given, or FILE is a spreadsheet or table by its suffix
    (:data:`TABLE_SUFFIXES`). A ``.txt`` file and stdin (``-``) hold one query per line."""
    if file is None:
        return False
    return query_column is not None or (file != "-" and Path(file).suffix.lower() in TABLE_SUFFIXES)


@dataclass(frozen=True)
class QueryTableOptions:
    """Where the queries are in the table (the reading options of ``index``).

    Attributes:
        query_column: the column holding the query texts; None: the table's only column.
        sheet: Excel sheet name or 0-based number (default: the first, or the one sheet
            holding ``query_column``).
        header_row: 1-based row of the header as Excel numbers rows (default detected).
        encoding: codec of a CSV/TSV (default detected).
    """

    query_column: str | None = None
    sheet: str | None = None
    header_row: int | None = None
    encoding: str | None = None


@dataclass
class QueryRows:
    """The queries of a table.

    Attributes:
        texts: the non-empty query texts, in row order.
        rows: ``len(texts)`` 0-based data rows of the table they come from.
        records: ``len(texts)`` dicts of those rows' columns (column -> value).
        column: the query column.
        skipped: data rows whose query cell is empty (not searched).
    """

    texts: list[str]
    rows: list[int]
    records: list[dict[str, Any]]
    column: str
    skipped: list[int] = field(default_factory=list)


def read_query_rows(
    path: str | Path, options: QueryTableOptions = QueryTableOptions()
) -> QueryRows:
    """Read the queries of a table with ``index``'s reader.

    Args:
        path: an ``.xlsx``/``.xls``/``.csv``/``.tsv``/... file (see
            :func:`simsearch.tables.read.read_table`).
        options: the query column and how to read the table.

    Returns:
        the non-empty query cells and their rows (rows with an empty cell are listed in
        ``skipped``).

    Raises:
        SimsearchError: the file cannot be read (as ``index``), has no data rows, or no
            row holds a query.
        InvalidParameter: (``query_column``) no such column, or none given and the table
            has several (the message lists them).
    """
    from simsearch.tables.cells import cell_text
    from simsearch.tables.read import TableOptions, read_table_notes

    column = options.query_column
    wanted = (column,) if column else ()
    table = TableOptions(options.sheet, options.header_row, options.encoding, columns=wanted)
    frame, _notes = read_table_notes(path, table)
    names = [str(c) for c in frame.columns]
    listed = ", ".join(repr(c) for c in names)
    if column is None:
        if len(names) != 1:
            raise InvalidParameter(
                "query_column", f"{Path(path).name} has {len(names)} columns: name the one "
                f"holding the queries with {{name}} (one of {listed})"
            )
        column = names[0]
    if column not in names:
        raise InvalidParameter(
            "query_column", f"no column {column!r} in {path}; choose {{name}} from: {listed}"
        )
    if len(frame) == 0:
        raise SimsearchError(f"{path} has no data rows; add rows below the header")
    records = frame.to_dict("records")
    texts, rows, kept, skipped = [], [], [], []
    for row, record in enumerate(records):
        text = cell_text(record.get(column)).strip()
        if text:
            texts.append(text)
            rows.append(row)
            kept.append({str(k): v for k, v in record.items()})
        else:
            skipped.append(row)
    if not texts:
        raise SimsearchError(f"column {column!r} in {path} is empty in every row; no query to run")
    return QueryRows(texts, rows, kept, column, skipped)


def batch_hits(  # noqa: PLR0913 - the keyword options of query
    index: store.Index,
    queries: QueryRows,
    k: int | None = 10,
    *,
    device: str | None = None,
    batch_size: int = 32,
    log: LogFn = _quiet,
    min_similarity: float | None = None,
    where: str | None = None,
    exact: bool = False,
    options: Any = None,
    on_progress: ProgressFn | None = None,
    block: int = BLOCK_QUERIES,
) -> list[Hit]:
    """The ``k`` hits of every query row, as :func:`simsearch.search.query_hits` ranks
    each text (same options), each hit carrying its query row.

    The model loads once (Kiwi analyses every query in a thread meanwhile); the queries
    are encoded and ranked ``block`` at a time, ``on_progress(done, total)`` after each.

    Returns:
        up to ``len(queries.texts) * k`` :class:`~simsearch.retrieval.hit.Hit`, grouped by
        query row in table order: ``query_index`` numbers the searched rows from 0,
        ``query_row`` is the row in the table, ``query_columns`` its cells.

    Raises:
        SimsearchError: as :func:`~simsearch.search.query_hits`.
    """
    from concurrent.futures import ThreadPoolExecutor

    from simsearch.retrieval.rank import check_min_similarity
    from simsearch.search import open_parts, row_filter, search_options

    check_min_similarity(min_similarity)
    allow = row_filter(index, where, None, log)
    options = options or search_options()
    parts = open_parts(index, options.mode, exact)
    mode = parts.mode(options.mode)
    texts = queries.texts
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(_terms, texts) if mode != "dense" else None
        encoder = _encoder(index, device, log) if mode != "lexical" else None
        terms = pending.result() if pending is not None else None
    run = _Run(index, parts, queries, k, options, allow, min_similarity, _once(log), encoder,
               device, batch_size, mode, terms)
    out: list[Hit] = []
    block = max(1, block)
    for start in range(0, len(texts), block):
        stop = min(start + block, len(texts))
        out += _block(run, start, stop)
        if on_progress is not None:
            on_progress(stop, len(texts))
    return out


@dataclass(frozen=True)
class _Run:
    """What every block of one batch shares."""

    index: store.Index
    parts: Any
    queries: QueryRows
    k: int | None
    options: Any
    allow: Any
    min_similarity: float | None
    log: LogFn
    encoder: Any
    device: str | None
    batch_size: int
    mode: str
    terms: list[list[str]] | None


def _block(run: _Run, start: int, stop: int) -> list[Hit]:
    """The hits of queries ``start:stop``."""
    from simsearch.retrieval.rank import Query, rank
    from simsearch.search import encode_queries, make_hits

    texts = run.queries.texts[start:stop]
    vectors = None
    if run.mode != "lexical":
        vectors = encode_queries(run.index, texts, run.device, run.batch_size, run.encoder,
                                 run.log)
    terms = None if run.terms is None else run.terms[start:stop]
    ranked = rank(run.parts, Query(vectors=vectors, terms=terms), run.k, run.options, run.allow,
                  run.min_similarity, run.log)
    hits = make_hits(run.index, run.parts, ranked, run.mode, terms or [None] * len(texts),
                     queries=texts)
    out = []
    for hit in hits:
        q = start + int(hit.query_index or 0)
        out.append(dataclasses.replace(
            hit, query_index=q, query_row=run.queries.rows[q],
            query_columns=run.queries.records[q],
        ))
    return out


def _terms(texts: Sequence[str]) -> list[list[str]]:
    from simsearch.retrieval import bm25 as lexical

    return lexical.tokenize(texts)


def _encoder(index: store.Index, device: str | None, log: LogFn) -> Any:
    from simsearch.encoding.encoders import query_encoder

    return query_encoder(index, device, log)


def _once(log: LogFn) -> LogFn:
    """``log`` that says each distinct message once (the blocks repeat ``k``'s note)."""
    seen: set[str] = set()

    def say(message: str) -> None:
        if str(message) not in seen:
            seen.add(str(message))
            log(message)

    return say

