"""The retrieval parts of an index generation: the window map (long documents as
windows) and the lexical index (BM25 over Kiwi terms), built incrementally and opened as
a :class:`~simsearch.retrieval.modes.Retriever`.

Files of generation ``G`` (roles in ``meta.json``):

* ``windows``: ``windows-G.npy``, ``(n_windows, 3)`` int64 row/start/end
  (:func:`simsearch.text.windows.save_window_map`); absent when no document was split, so an
  index of short documents is exactly today's;
* ``lexical_matrix`` / ``lexical_vocab`` / ``lexical_terms``: ``bm25-G.npz``,
  ``vocab-G.json``, ``terms-G.jsonl`` (:class:`simsearch.retrieval.bm25.LexicalIndex`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from simsearch.retrieval import bm25 as lexical
from simsearch.text import windows as chunking

CHUNKINGS = ("auto", "none")
LEXICAL_ROLES = {"matrix": "lexical_matrix", "vocab": "lexical_vocab", "terms": "lexical_terms"}
LogFn = Callable[[str], None]


@dataclass(frozen=True)
class WindowPlan:
    """The windows of a corpus for one model: what is encoded, and the row map."""

    windows: chunking.Windows
    max_tokens: int
    overlap_tokens: int

    @property
    def split(self) -> bool:
        """True when some row has more than one window (the map must be stored)."""
        return self.windows.n_windows != self.windows.n_rows


def plan_windows(st, texts: Sequence[str], overlap_tokens: int | None = None) -> WindowPlan:
    """Cut ``texts`` into windows that fit the SentenceTransformer ``st``.

    Args:
        st: a loaded SentenceTransformer (its tokenizer and ``max_seq_length`` are used).
        texts: the row texts.
        overlap_tokens: see :class:`simsearch.text.windows.WindowOptions`.

    Returns:
        :class:`WindowPlan`.
    """
    options = chunking.WindowOptions(chunking.model_max_tokens(st), overlap_tokens)
    windows = chunking.make_windows(texts, chunking.hf_token_spans(st.tokenizer), options)
    return WindowPlan(windows, options.max_tokens, options.overlap())


def write_windows(directory: Path, generation: str, plan: WindowPlan | None) -> dict[str, str]:
    """Write the window map of a split corpus; returns ``{role: file name}`` (empty when
    nothing was split)."""
    if plan is None or not plan.split:
        return {}
    name = f"windows-{generation}.npy"
    chunking.save_window_map(directory / name, plan.windows)
    return {"windows": name}


def build_lexical(
    directory: Path,
    generation: str,
    texts: Sequence[str],
    previous_terms: Path | None,
    log: LogFn,
) -> tuple[dict[str, str], lexical.LexicalIndex, int]:
    """Build and write the lexical index of ``texts``, reusing the Kiwi terms of texts
    already analysed in the previous build (``previous_terms``, a terms file).

    Returns:
        ``({role: file name}, index, n_tokenized)``.
    """
    previous = None
    if previous_terms is not None and previous_terms.exists():
        try:
            previous = lexical.TokenStore.load(previous_terms)
        except (OSError, ValueError, KeyError):
            log("ignoring the previous lexical terms (unreadable); analysing every text")
    index, store, n_new = lexical.build_incremental(texts, previous)
    names = {
        "matrix": f"bm25-{generation}.npz",
        "vocab": f"vocab-{generation}.json",
        "terms": f"terms-{generation}.jsonl",
    }
    index.save(directory, names, store)
    return {LEXICAL_ROLES[k]: v for k, v in names.items()}, index, n_new


def lexical_names(files: dict) -> dict[str, str] | None:
    """``{matrix, vocab, terms}`` file names from an index's ``files`` map (values with a
    ``name`` attribute or plain names), or ``None`` when the index has no lexical part."""
    if LEXICAL_ROLES["matrix"] not in files:
        return None
    return {k: getattr(files[r], "name", files[r]) for k, r in LEXICAL_ROLES.items()}


def open_retriever(
    directory: Path,
    files: dict,
    embeddings: np.ndarray | None,
    n_rows: int,
    load_lexical: bool = True,
):
    """The :class:`~simsearch.retrieval.modes.Retriever` of an index directory.

    Args:
        directory: the index directory.
        files: its ``files`` map (role -> entry with ``name``, or plain names).
        embeddings: the search matrix (windows or rows), or ``None``.
        n_rows: number of rows.
        load_lexical: read the lexical index (when the index has one).
    """
    from simsearch.retrieval.modes import Retriever

    offsets = np.arange(n_rows + 1, dtype=np.int64)
    window_map = None
    if "windows" in files:
        name = getattr(files["windows"], "name", files["windows"])
        window_map = chunking.load_window_map(directory / name)
        offsets = chunking.row_offsets(np.asarray(window_map[:, 0]), n_rows)
    names = lexical_names(files) if load_lexical else None
    lex = None
    if names is not None:
        lex = lexical.LexicalIndex.load(directory, names)
    return Retriever(embeddings, offsets, lex, window_map)
