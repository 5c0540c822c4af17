"""Near-duplicate rows: every pair above a cosine-similarity threshold, and their groups.

Pairs are found exactly: the upper triangle of the similarity matrix is computed in
blocks of rows (one matrix product each, memory bounded by ``block_bytes``) and every
entry at or above the threshold is kept. Groups are the connected components of the
graph of those pairs (``scipy.sparse.csgraph.connected_components``): a chain of
near-copies (A~B, B~C) is one group even when A and C fall below the threshold, which
is what a patent family or a series of re-filings looks like.

Why not sentence-transformers' helpers (read in ``sentence_transformers/util/retrieval.py``):
``paraphrase_mining`` keeps at most ``top_k`` partners per row and ``max_pairs`` overall
(a row with 200 copies loses some), and ``community_detection`` returns communities
around centres of at least ``min_community_size`` members with each row in at most one,
dropping pairs of two; both need torch. Exact pairs plus components give every pair.

Modes (``mode``, default as ``similar``: hybrid when the index has a lexical index): a
near-duplicate pair is always two rows whose cosine similarity (of their row vectors)
is ``>= threshold``. In dense mode every such pair is found by the exact join above. In
hybrid and lexical mode the candidates are each row's top :data:`CANDIDATES` rows by
that mode's ranking (its ``neighbors``, :func:`simsearch.retrieval.rank.rank`), and a
pair is kept when it also reaches the cosine threshold: a subset of the dense pairs,
those the mode ranks near each other (e.g. hybrid keeps copies that share their terms).

The default threshold (:data:`DEFAULT_THRESHOLD`) was chosen by measurement on planted
duplicates among real Korean sentences (``scripts/dedup_threshold.py``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from simsearch.errors import InvalidParameter
from simsearch.retrieval.parts import row_embeddings
from simsearch.retrieval.topk import BLOCK_BYTES
from simsearch.store import index as store

if TYPE_CHECKING:
    import pandas as pd

    from simsearch.searcher import Searcher

ProgressFn = Callable[[int, int], None]

#: Cosine similarity at or above which two rows are near-duplicates by default.
#: Best pair F1 (0.914: precision 0.985, recall 0.853) on 300 planted copies (spacing,
#: punctuation, one-word edits) among 2,471 KorNLI sentences with all-MiniLM-L6-v2, whose
#: similarities crowd near 1 on Korean; a model with spread-out similarities may want a
#: lower one. See scripts/dedup_threshold.py and the README.
DEFAULT_THRESHOLD = 0.96
#: More pairs than this means the threshold is far too low for near-duplicates.
MAX_PAIRS = 5_000_000
#: Candidates per row in hybrid and lexical mode (see the module docstring).
CANDIDATES = 20


@dataclass(frozen=True)
class DedupOptions:
    """What :func:`find_duplicates` looks for.

    Attributes:
        threshold: minimum cosine similarity of a near-duplicate pair, in (0, 1].
        show: source columns to add to the tables (the indexed text is always there).
        block_bytes: memory bound for one block of scores.
        max_pairs: refuse (raise) when more pairs than this pass the threshold.
        mode: ``"hybrid"``, ``"dense"``, ``"lexical"`` or None (the default of
            ``similar``); see the module docstring.
        candidates: rows ranked per row in hybrid and lexical mode.
    """

    threshold: float = DEFAULT_THRESHOLD
    show: tuple[str, ...] = ()
    block_bytes: int = BLOCK_BYTES
    max_pairs: int = MAX_PAIRS
    mode: str | None = None
    candidates: int = CANDIDATES


@dataclass
class Duplicates:
    """Near-duplicates of an index.

    Attributes:
        groups: one row per member of a group of two or more: ``group`` (0 = largest),
            ``size``, ``row``, ``best_match`` (the member's most similar other row),
            ``best_similarity``, the ``show`` columns and ``text``.
        pairs: one row per pair: ``row_a < row_b``, ``similarity``, ``group``, and the
            text of both rows.
        threshold: the cosine similarity used.
    """

    groups: pd.DataFrame
    pairs: pd.DataFrame
    threshold: float


def duplicate_pairs(
    embeddings: np.ndarray,
    threshold: float,
    block_bytes: int = BLOCK_BYTES,
    max_pairs: int = MAX_PAIRS,
    on_progress: ProgressFn | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every pair of rows with cosine similarity ``>= threshold``, exactly.

    Args:
        embeddings: ``(n_docs, dim)`` float32, L2-normalised (zero rows never pair).
        threshold: in ``(0, 1]``.
        block_bytes: bound on one ``(rows_in_block, n_docs)`` float32 score block.
        max_pairs: raise when more pairs than this are found.
        on_progress: called as ``on_progress(rows_done, n_docs)`` after each block.

    Returns:
        ``(rows_a, rows_b, similarities)``: ``(n_pairs,)`` int64, int64, float32 with
        ``rows_a < rows_b``, sorted by descending similarity, then rows.

    Raises:
        ValueError: threshold outside ``(0, 1]``, or more than ``max_pairs`` pairs.
    """
    if not 0 < threshold <= 1:
        raise ValueError(f"threshold must be in (0, 1], got {threshold}")
    n = embeddings.shape[0]
    step = max(1, block_bytes // (4 * max(n, 1)))
    found_a, found_b, found_s = [], [], []
    total = 0
    for start in range(0, n, step):
        stop = min(n, start + step)
        # Upper triangle only: rows of this block against themselves and later rows.
        block = (
            np.asarray(embeddings[start:stop], dtype=np.float32)
            @ np.asarray(embeddings[start:], dtype=np.float32).T
        )
        local, col = np.nonzero(block >= threshold)
        keep = col > local  # col is offset by `start`, like local: j > i
        a, b = local[keep] + start, col[keep] + start
        found_a.append(a)
        found_b.append(b)
        found_s.append(block[local[keep], col[keep]])
        total += len(a)
        if total > max_pairs:
            raise ValueError(
                f"more than {max_pairs:,} pairs reach similarity {threshold}; "
                "that is not near-duplication, raise the threshold"
            )
        if on_progress is not None:
            on_progress(stop, n)
    rows_a = np.concatenate(found_a) if found_a else np.empty(0, np.int64)
    rows_b = np.concatenate(found_b) if found_b else np.empty(0, np.int64)
    sims = np.concatenate(found_s) if found_s else np.empty(0, np.float32)
    order = np.lexsort((rows_b, rows_a, -sims))
    return rows_a[order].astype(np.int64), rows_b[order].astype(np.int64), sims[order]


def _mode(index: store.Index, wanted: str | None) -> str:
    from simsearch.retrieval.modes import MODES, resolve_mode

    if wanted is not None and wanted not in MODES:
        raise InvalidParameter(
            "mode", f"{{name}} must be one of {', '.join(MODES)}, got {wanted!r}"
        )
    try:
        return resolve_mode(wanted, True, index.meta.lexical is not None)
    except ValueError as exc:
        raise InvalidParameter("mode", f"{{name}} {wanted}: {exc}") from None


def ranked_pairs(
    index: store.Index | Searcher, options: DedupOptions,
    on_progress: ProgressFn | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pairs at cosine similarity ``>= options.threshold`` among each row's top
    ``options.candidates`` by the mode's ranking (hybrid, lexical; see the module
    docstring); same return value as :func:`duplicate_pairs`.

    Raises:
        ValueError: more than ``options.max_pairs`` pairs.
    """
    from simsearch.searcher import of
    from simsearch.workflows.neighbors import NeighborsOptions, neighbor_rankings

    opened = of(index)
    index = opened.index
    wanted = NeighborsOptions(k=min(options.candidates, max(index.n_docs - 1, 1)),
                              mode=options.mode)
    rows = np.arange(index.n_docs, dtype=np.int64)
    _, ranked = neighbor_rankings(opened, wanted, rows, on_progress)
    vectors = row_embeddings(index)
    found: dict[tuple[int, int], float] = {}
    for row, one in zip(rows.tolist(), ranked):
        # The cosine of the row vectors (lexical rankings carry no similarity).
        cosine = np.asarray(vectors[one.rows], np.float32) @ np.asarray(vectors[row], np.float32)
        keep = cosine >= np.float32(options.threshold)
        for other, sim in zip(one.rows[keep].tolist(), cosine[keep].tolist()):
            found[(min(row, other), max(row, other))] = sim
        if len(found) > options.max_pairs:
            raise ValueError(f"more than {options.max_pairs:,} pairs")
    pairs = np.array(sorted(found), dtype=np.int64).reshape(-1, 2)
    sims = np.array([found[tuple(p)] for p in pairs.tolist()], dtype=np.float32)
    order = np.lexsort((pairs[:, 1], pairs[:, 0], -sims))
    return pairs[order, 0], pairs[order, 1], sims[order]


def group_labels(n_docs: int, rows_a: np.ndarray, rows_b: np.ndarray) -> np.ndarray:
    """Connected components of the pair graph (scipy.sparse.csgraph).

    Returns:
        ``(n_docs,)`` int64 group of each row: ``0`` is the largest group, ties by
        smallest member row; ``-1`` for rows in no pair.
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    graph = coo_matrix((np.ones(len(rows_a)), (rows_a, rows_b)), shape=(n_docs, n_docs))
    _, comp = connected_components(graph, directed=False)
    sizes = np.bincount(comp)
    first = np.full(len(sizes), n_docs)
    np.minimum.at(first, comp, np.arange(n_docs))
    paired = sizes >= 2
    # Rank the components with two or more members: larger first, then by first row.
    ranked = [c for c in np.lexsort((first, -sizes)) if paired[c]]
    relabel = np.full(len(sizes), -1, dtype=np.int64)
    relabel[ranked] = np.arange(len(ranked))
    return relabel[comp]


def find_duplicates(
    index: store.Index | Searcher,
    options: DedupOptions = DedupOptions(),
    on_progress: ProgressFn | None = None,
) -> Duplicates:
    """Near-duplicate pairs and groups of an opened index or of a
    :class:`~simsearch.searcher.Searcher` (its ranking parts are reused; see
    :class:`Duplicates`).

    Raises:
        InvalidParameter: threshold outside (0, 1] or so low that more than
            ``max_pairs`` pairs pass, an unknown ``show`` column, or a mode the index
            cannot run.
    """
    import pandas as pd

    from simsearch.searcher import of

    opened = of(index)
    index = opened.index
    index.meta.check_columns(options.show)
    if not 0 < options.threshold <= 1:
        raise InvalidParameter(
            "threshold", f"{{name}} must be a cosine similarity in (0, 1], got {options.threshold}"
        )
    try:
        if _mode(index, options.mode) == "dense":
            a, b, sims = duplicate_pairs(
                row_embeddings(index),
                options.threshold,
                options.block_bytes,
                options.max_pairs,
                on_progress,
            )
        else:
            a, b, sims = ranked_pairs(opened, options, on_progress)
    except ValueError:  # too many pairs (the threshold was checked above)
        raise InvalidParameter(
            "threshold",
            f"more than {options.max_pairs:,} pairs reach similarity {options.threshold}; "
            "that is not near-duplication, raise {name}",
        ) from None
    labels = group_labels(index.n_docs, a, b)
    members = np.flatnonzero(labels >= 0)
    records = dict(zip(members.tolist(), index.rows(members.tolist())))
    text = {r: _text(rec.get(index.column)) for r, rec in records.items()}

    pairs = pd.DataFrame(
        {
            "row_a": a,
            "row_b": b,
            "similarity": sims,
            "group": labels[a],
            "text_a": [text[r] for r in a.tolist()],
            "text_b": [text[r] for r in b.tolist()],
        }
    )
    best = _best_match(members, a, b, sims)
    sizes = np.bincount(labels[members]) if members.size else np.empty(0, np.int64)
    groups = pd.DataFrame(
        {
            "group": labels[members],
            "size": sizes[labels[members]],
            "row": members,
            "best_match": [best[r][0] for r in members.tolist()],
            "best_similarity": np.array([best[r][1] for r in members.tolist()], np.float32),
        }
    )
    for col in options.show:
        groups[col] = [records[r].get(col) for r in members.tolist()]
    groups["text"] = [text[r] for r in members.tolist()]
    groups = groups.sort_values(["group", "row"], kind="stable").reset_index(drop=True)
    return Duplicates(groups=groups, pairs=pairs, threshold=options.threshold)


def _best_match(
    members: np.ndarray, a: np.ndarray, b: np.ndarray, sims: np.ndarray
) -> dict[int, tuple[int, float]]:
    """Each member's most similar partner (pairs arrive sorted by descending similarity,
    so the first pair a row appears in is its best)."""
    best: dict[int, tuple[int, float]] = {}
    both = np.concatenate([a, b])
    other = np.concatenate([b, a])
    score = np.concatenate([sims, sims])
    order = np.lexsort((other, both, -score))
    _, first = np.unique(both[order], return_index=True)
    for i in order[first].tolist():
        best[int(both[i])] = (int(other[i]), float(score[i]))
    return best


def _text(value: object) -> str:
    return "" if value is None else str(value)


def dedup(
    threshold: float = DEFAULT_THRESHOLD,
    *,
    show: str | Sequence[str] = (),
    root: str | os.PathLike = store.DEFAULT_ROOT,
    name: str = store.DEFAULT_NAME,
    mode: str | None = None,
) -> Duplicates:
    """Notebook API: near-duplicate pairs and groups of the index (cosine similarity
    ``>= threshold``). ``mode`` (None: hybrid when the index has a lexical index, else
    dense): ``"dense"`` finds every such pair; ``"hybrid"`` and ``"lexical"`` keep those
    among each row's top 20 in that mode.

    Example:
        >>> d = simsearch.dedup(0.96, show="title")  # doctest: +SKIP
        >>> d.groups.head()                          # doctest: +SKIP

    Raises:
        SimsearchError: no index, threshold outside (0, 1], too many pairs, unknown column.
    """
    columns = (show,) if isinstance(show, str) else tuple(show)
    options = DedupOptions(threshold=threshold, show=columns, mode=mode)
    from simsearch.searcher import cached

    return find_duplicates(cached(root, name), options)
