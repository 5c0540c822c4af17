"""Spreadsheets in and out: reading a corpus from .xlsx/.csv (encodings, header rows, merged
cells, joined columns), labelled data sets, and writing result tables for Excel.

Modules: :mod:`~simsearch.tables.read` (``read_table``, ``read_corpus``),
:mod:`~simsearch.tables.sheets`, :mod:`~simsearch.tables.charsets`,
:mod:`~simsearch.tables.delimited`, :mod:`~simsearch.tables.cells`,
:mod:`~simsearch.tables.labeled` (KorSTS/KorNLI and retrieval pairs) and
:mod:`~simsearch.tables.write` (``write_frame``).
"""
