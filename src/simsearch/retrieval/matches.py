"""Why a row matched: the window that matched best and the query terms it shares.

For a hit, :func:`explain` returns the matched window's text (the best window by cosine
when the search had a query vector, else the window holding most matched terms), the
query terms found in the row (Kiwi terms, as the lexical index uses), and their
character spans inside the window text for highlighting.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from simsearch.retrieval import bm25 as lexical

#: At most this many shared terms are listed for ``similar`` (rarest first).
MAX_TERMS = 12


@dataclass(frozen=True)
class Why:
    """Attributes:
    matched_text: the text of the best window (the whole text without windows).
    matched_terms: the query terms present in the row, as given by the caller (see
        :func:`shared_terms`; ``similar``: the rarest shared terms first).
    spans: ``[(start, end), ...]`` character spans of those terms in ``matched_text``.
    window: ``(start, end)`` of ``matched_text`` in the row's text.
    """

    matched_text: str
    matched_terms: list[str] = field(default_factory=list)
    spans: list[tuple[int, int]] = field(default_factory=list)
    window: tuple[int, int] = (0, 0)


def explain(
    text: str,
    windows: Sequence[tuple[int, int]],
    best: int | None,
    query_terms: Sequence[str] | None,
) -> Why:
    """Explain one hit.

    Args:
        text: the row's text.
        windows: the row's windows as ``(start, end)`` character ranges (one covering the
            whole text when it was not split).
        best: index into ``windows`` of the best window by cosine, or ``None`` (lexical
            search): then the window holding most matched terms is shown.
        query_terms: the query's terms that the row contains (``None``: no lexical
            explanation), from :func:`shared_terms`.

    Returns:
        :class:`Why`.
    """
    windows = list(windows) or [(0, len(text))]
    # Surface matching, not Kiwi: explaining must not start the analyser (similar stays
    # fast); the terms themselves were matched on Kiwi terms by the caller.
    all_spans = lexical.surface_spans(text, query_terms) if query_terms else []
    if best is None:
        counts = [sum(a <= s and e <= b for s, e, _ in all_spans) for a, b in windows]
        best = int(np.argmax(counts)) if counts else 0
    start, end = windows[best]
    spans = [(s - start, e - start) for s, e, _ in all_spans if start <= s and e <= end]
    return Why(text[start:end], list(dict.fromkeys(query_terms or [])), spans, (start, end))


def shared_terms(
    index: lexical.LexicalIndex, query_terms: Sequence[Sequence[str]], rows: Sequence[Sequence[int]]
) -> list[dict[int, list[str]]]:
    """For each query ``q`` and each of its hit rows, the query's terms that the row
    contains (query order), read from the BM25 matrix in one pass.

    Returns:
        ``[{row: [term, ...]}, ...]``, one dict per query.
    """
    return [_shared(index, terms, one) for terms, one in zip(query_terms, rows)]


def _shared(index: lexical.LexicalIndex, terms: Sequence[str], rows: Sequence[int]
            ) -> dict[int, list[str]]:
    """One query's :func:`shared_terms`: each term's postings (the column of the BM25
    matrix) are looked up for the hit rows, so the cost is that of the query's terms,
    not of the whole matrix."""
    hits = np.asarray([int(r) for r in rows], dtype=np.int64)
    out: dict[int, list[str]] = {int(r): [] for r in hits.tolist()}
    if not len(hits):
        return out
    mark = np.zeros(index.n_rows, dtype=bool)  # rows holding the term, set and cleared
    for term in dict.fromkeys(terms):
        t = index.vocab.get(term)
        if t is None or t + 1 >= len(index.indptr):
            continue
        postings = index.indices[index.indptr[t] : index.indptr[t + 1]]
        mark[postings] = True
        for row in hits[mark[hits]].tolist():
            out[row].append(term)
        mark[postings] = False
    return out


def rarest_first(index: lexical.LexicalIndex, terms: Sequence[str], limit: int = MAX_TERMS):
    """``terms`` ordered by ascending document frequency in ``index`` (the most telling
    first), unknown terms dropped, at most ``limit``."""
    df = {t: int(index.indptr[i + 1] - index.indptr[i]) for t in terms
          if (i := index.vocab.get(t)) is not None}
    return sorted(df, key=lambda t: (df[t], t))[:limit]


def highlight(text: str, spans: Sequence[tuple[int, int]], style: str = "bold yellow") -> str:
    """``text`` as rich console markup with ``spans`` styled (other text escaped)."""
    from rich.markup import escape

    out, at = [], 0
    for s, e in sorted(spans):
        if s < at:
            continue
        out.append(escape(text[at:s]))
        out.append(f"[{style}]{escape(text[s:e])}[/]")
        at = e
    out.append(escape(text[at:]))
    return "".join(out)
