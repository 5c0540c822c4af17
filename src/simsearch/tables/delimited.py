"""Reading CSV and TSV so that row N of the file is document N, or the file is refused
(issue 13: a TSV cell starting with ``"`` swallowed the following lines, KorNLI dev's
2,490 rows became 1,571 documents; a row with an extra field shifted every column).

* TSV is read without quote processing (``csv.QUOTE_NONE``), as the labeled-data
  reader and the KorNLU files expect: a quote is an ordinary character.
* CSV keeps standard quoting (a quoted cell may hold commas and line breaks).
* Every record must have as many fields as the header; the first one that does not is
  refused with its line number (1-based, the header is line 1).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from simsearch.errors import SimsearchError


def quoting_for(sep: str) -> int:
    """``csv.QUOTE_NONE`` for tab-separated text, ``csv.QUOTE_MINIMAL`` otherwise."""
    return csv.QUOTE_NONE if sep == "\t" else csv.QUOTE_MINIMAL


def check_rows(
    text: str, sep: str, source: str | Path, skip: int = 0, quoting: int | None = None
) -> int:
    """The number of data records in ``text`` after checking each has as many fields as
    the header (blank lines are skipped, as pandas does). The first ``skip`` records
    (title lines above the header) are not checked.

    Raises:
        SimsearchError: the first ragged record, with its line number and the fix.
    """
    kind = "TSV" if sep == "\t" else "CSV"
    # The csv module refuses cells over 128 KiB by default; pandas reads them (and the
    # model keeps only their first tokens anyway).
    csv.field_size_limit(max(csv.field_size_limit(), 2**31 - 1))
    quoting = quoting_for(sep) if quoting is None else quoting
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=sep, quoting=quoting)
    width = None
    n = 0
    try:
        for record in reader:
            if not record or (len(record) == 1 and not record[0].strip() and width != 1):
                continue
            if skip > 0:
                skip -= 1
                continue
            if width is None:
                width = len(record)
                continue
            if len(record) != width:
                # reader.line_num is the line where this record ended.
                fix = (
                    "remove the tab inside a cell"
                    if sep == "\t"
                    else "quote a cell holding a comma"
                )
                raise SimsearchError(
                    f"line {reader.line_num} of {source} has {len(record)} fields but the "
                    f"header has {width}; fix that row ({fix}) so that row N stays document N"
                )
            n += 1
    except csv.Error as exc:
        raise SimsearchError(
            f"cannot read {source} as {kind} near line {reader.line_num}: {exc}"
        ) from None
    return n
