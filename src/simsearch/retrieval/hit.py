"""One search result, one shape: :class:`Hit`, written out one way.

The table, JSON, CSV and ``.xlsx`` outputs of ``similar`` and ``query``, the ``serve``
API and its download, and the notebook DataFrame all read the same fields
(:data:`FLAT_FIELDS` for flat tables), so each carries ``score``, ``mode`` and the
matched text.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

#: The fields of every flat output (CSV, ``.xlsx``, the serve download), in order, after
#: ``query_index`` and ``query`` (query results) and before the shown source columns and
#: ``text``.
FLAT_FIELDS = (
    "rank", "row", "cosine_distance", "similarity", "score", "mode", "matched_text",
    "matched_terms",
)
#: The keys of the JSON object of one hit (``--format json`` and the serve API), in order.
JSON_FIELDS = (
    "rank", "row", "cosine_distance", "similarity", "text", "score", "mode", "matched_text",
    "matched_terms",
)

#: Prefix of the query row's columns in a flat output (``query.abstract`` beside the
#: hit's own ``abstract``).
QUERY_PREFIX = "query."


@dataclass(frozen=True)
class Hit:
    """One ranked row.

    Attributes:
        rank: 1-based rank within its query.
        row: 0-based row of the source.
        score: the mode's score (cosine similarity in dense mode, BM25 in lexical, the
            fused score in hybrid); results are ordered by it.
        mode: ``"dense"``, ``"lexical"`` or ``"hybrid"``.
        similarity: cosine similarity to the query (None in lexical mode).
        cosine_distance: ``1 - similarity`` (None in lexical mode).
        text: the row's indexed text.
        matched_text: the part of ``text`` that matched (its best window).
        matched_terms: shared lexical terms, rarest first.
        spans: ``(start, end)`` character ranges of the matched terms in ``text``.
        columns: the row's source columns (column -> value).
        query: the query text (query results only).
        query_index: 0-based number of the query (query results only).
        rerank_score: the cross-encoder's score when the hits were reranked
            (``--rerank``; they are then ordered by it, ``score`` keeping the first
            stage's), else None.
        query_row: 0-based data row of the query in its spreadsheet (batch queries from
            a table, ``query --file X.xlsx --query-column C``), else None.
        query_columns: that query row's source columns (column -> value), written
            beside the hit's own ones with the prefix :data:`QUERY_PREFIX`.
    """

    rank: int
    row: int
    score: float
    mode: str
    similarity: float | None
    cosine_distance: float | None
    text: str
    matched_text: str
    matched_terms: list[str] = field(default_factory=list)
    spans: list[tuple[int, int]] = field(default_factory=list)
    columns: dict[str, Any] = field(default_factory=dict)
    query: str | None = None
    query_index: int | None = None
    rerank_score: float | None = None
    query_row: int | None = None
    query_columns: dict[str, Any] = field(default_factory=dict)

    def _query_fields(self) -> dict[str, Any]:
        """``query_index`` and ``query`` (query results), then ``query_row`` (batch
        queries from a table)."""
        out: dict[str, Any] = {}
        if self.query is not None:
            out.update(query_index=self.query_index, query=self.query)
        if self.query_row is not None:
            out["query_row"] = self.query_row
        return out

    def _fields(self, names: Sequence[str]) -> dict[str, Any]:
        """``names`` with ``rerank_score`` after ``score`` when the hit was reranked."""
        out: dict[str, Any] = {}
        for name in names:
            out[name] = getattr(self, name)
            if name == "score" and self.rerank_score is not None:
                out["rerank_score"] = self.rerank_score
        return out

    def to_dict(self) -> dict[str, Any]:
        """Every field (``query`` and ``query_index`` first, only for query results)."""
        out = self._query_fields()
        if self.query_columns:
            out["query_columns"] = self.query_columns
        out.update(self._fields(("rank", "row", "cosine_distance", "similarity", "score",
                                 "mode", "text", "matched_text", "matched_terms", "spans",
                                 "columns")))
        return out

    def to_json(self, show: Sequence[str] = ()) -> dict[str, Any]:
        """The JSON object of the output contract: :data:`JSON_FIELDS` (after
        ``query_index`` and ``query`` for query results, then ``query_row`` and
        ``query_columns`` for batch queries from a table; ``rerank_score`` after
        ``score`` when reranked), and ``columns`` holding the ``show`` columns (a missing
        cell, NaN in pandas, as null)."""
        out = self._query_fields()
        if self.query_columns:
            out["query_columns"] = {c: _finite(v) for c, v in self.query_columns.items()}
        out.update(self._fields(JSON_FIELDS))
        if show:
            out["columns"] = {c: _finite(self.columns.get(c)) for c in show}
        return out

    def flat(self, show: Sequence[str] | None = None) -> dict[str, Any]:
        """One row of a flat table: query fields (with ``query_row`` and the query row's
        columns as ``query.<column>`` for batch queries from a table),
        :data:`FLAT_FIELDS` (``matched_terms`` joined with ``", "``; ``rerank_score``
        after ``score`` when reranked), then the ``show`` columns and ``text``, or
        without ``show`` every source column (which holds the text)."""
        out = self._query_fields()
        out.update({QUERY_PREFIX + c: _finite(v) for c, v in self.query_columns.items()})
        out.update(self._fields(FLAT_FIELDS))
        out["matched_terms"] = ", ".join(self.matched_terms)
        names = list(self.columns) if show is None else list(show)
        out.update({c: _finite(self.columns.get(c)) for c in names})
        if show is not None:
            out["text"] = self.text
        return out


def flat_header(hits: Sequence[Hit]) -> list[str]:
    """The field columns of the flat rows of ``hits`` (everything :meth:`Hit.flat` writes
    before the source columns): :data:`FLAT_FIELDS` after the query fields, with the
    batch and rerank fields when the first hit has them."""
    if not hits:
        return list(FLAT_FIELDS)
    return [k for k in hits[0].flat(()) if k != "text"]


def _finite(value: Any) -> Any:
    """JSON has no NaN: a missing source cell becomes None."""
    return None if isinstance(value, float) and not math.isfinite(value) else value
