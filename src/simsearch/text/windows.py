"""Long documents as overlapping windows that fit the model's max sequence length.

A sentence-transformers model silently truncates its input at ``max_seq_length`` tokens
(``jhgan/ko-sroberta-multitask``: 128; all-MiniLM-L6-v2: 256 word pieces, and it splits
Hangul into jamo), so most of a 300-600 character Korean abstract is never seen. Here each
document longer than the limit becomes several windows:

* lengths are measured with the model's own tokenizer (its character offsets), so a window
  is never truncated when encoded;
* windows are packed from whole sentences (Kiwi's Korean sentence splitter,
  :meth:`kiwipiepy.Kiwi.split_into_sents`) where possible; a sentence longer than the
  limit is cut at token boundaries;
* consecutive windows overlap by up to ``overlap_tokens`` (whole trailing sentences of the
  previous window), so a statement that straddles a boundary is seen whole at least once
  when it fits in the overlap.

With ``per_sentence`` (``index --chunking sentences``) every sentence is its own window
(a sentence longer than the limit still cut at token boundaries), also in documents that
fit: a one-sentence query then meets the one sentence it paraphrases instead of that
sentence diluted by its neighbours (docs/retrieval.md, the buried-sentence task).

Every row gets at least one window (an empty document gets one empty window), and windows
are stored in row order, so the window -> row map is a non-decreasing array and a row's
windows are the slice ``offsets[row]:offsets[row + 1]``.

This module imports only numpy; Kiwi and the tokenizer are passed in or imported lazily.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

#: ``token_spans(texts)`` -> for each text an ``(n_tokens, 2)`` int array of character
#: ``[start, end)`` offsets of the model's tokens, special tokens excluded.
TokenSpans = Callable[[Sequence[str]], list[np.ndarray]]
#: ``sentence_spans(text)`` -> ``[(start, end), ...]`` character offsets of its sentences.
SentenceSpans = Callable[[str], list[tuple[int, int]]]


@dataclass(frozen=True)
class WindowOptions:
    """How documents are cut into windows.

    Attributes:
        max_tokens: tokens per window, special tokens excluded (for a sentence-transformers
            model: ``max_seq_length`` minus the 2 special tokens, see :func:`model_max_tokens`).
        overlap_tokens: at most this many tokens (whole trailing sentences, or the tail of
            a cut sentence) are repeated at the start of the next window. Default when
            ``None``: a quarter of ``max_tokens``.
        per_sentence: one window per sentence instead of packed windows (no overlap
            between sentences; only a sentence longer than ``max_tokens`` is cut, with
            the overlap).
    """

    max_tokens: int
    overlap_tokens: int | None = None
    per_sentence: bool = False

    def overlap(self) -> int:
        """Overlap in tokens, always ``< max_tokens`` so windows advance."""
        value = self.max_tokens // 4 if self.overlap_tokens is None else self.overlap_tokens
        return max(0, min(value, self.max_tokens - 1))


@dataclass(frozen=True)
class Windows:
    """The windows of a corpus and the window -> row map.

    Attributes:
        texts: the window texts, ``n_windows`` strings, in row order.
        row: ``(n_windows,)`` int64, the source row of each window (non-decreasing).
        start, end: ``(n_windows,)`` int64 character offsets of the window in its row's text.
        n_rows: number of source rows (every row has at least one window).
    """

    texts: list[str]
    row: np.ndarray
    start: np.ndarray
    end: np.ndarray
    n_rows: int

    @property
    def n_windows(self) -> int:
        return len(self.texts)

    @property
    def offsets(self) -> np.ndarray:
        """``(n_rows + 1,)`` int64: row ``r``'s windows are ``offsets[r]:offsets[r + 1]``."""
        return row_offsets(self.row, self.n_rows)

    @property
    def n_split(self) -> int:
        """Number of rows cut into more than one window."""
        return int(np.count_nonzero(np.diff(self.offsets) > 1))


def row_offsets(window_row: np.ndarray, n_rows: int) -> np.ndarray:
    """CSR-style offsets of a non-decreasing window -> row map.

    Returns:
        ``(n_rows + 1,)`` int64 with ``offsets[r]:offsets[r + 1]`` the windows of row ``r``.

    Raises:
        ValueError: the map is not non-decreasing, or a row in ``range(n_rows)`` has no window.
    """
    window_row = np.asarray(window_row, dtype=np.int64)
    offsets = np.searchsorted(window_row, np.arange(n_rows + 1), side="left").astype(np.int64)
    if len(window_row) and (np.any(np.diff(window_row) < 0) or window_row[-1] >= n_rows):
        raise ValueError("the window -> row map must be non-decreasing and below n_rows")
    if np.any(np.diff(offsets) < 1):
        raise ValueError("every row needs at least one window")
    return offsets


_SENTENCE_END = re.compile(r"(?<=[.!?。])\s+")


def regex_sentence_spans(text: str) -> list[tuple[int, int]]:
    """Sentence spans by end punctuation followed by whitespace (the fallback splitter)."""
    spans, start = [], 0
    for match in _SENTENCE_END.finditer(text):
        spans.append((start, match.start()))
        start = match.end()
    if start < len(text):
        spans.append((start, len(text)))
    return spans


def kiwi_sentence_spans(text: str) -> list[tuple[int, int]]:
    """Sentence spans from Kiwi's Korean sentence splitter (``Kiwi.split_into_sents``),
    which also splits sentences that end without punctuation (``...했다 그리고``)."""
    from simsearch.text.kiwi import get_kiwi

    return [(s.start, s.end) for s in get_kiwi().split_into_sents(text, return_tokens=False)]


def hf_token_spans(tokenizer) -> TokenSpans:
    """A :data:`TokenSpans` for a Hugging Face *fast* tokenizer (``model.tokenizer`` of a
    SentenceTransformer): character offsets of every token, without special tokens.

    Raises:
        ValueError: the tokenizer is not a fast tokenizer (no offset mapping).
    """
    if not getattr(tokenizer, "is_fast", False):
        raise ValueError("windows need a fast tokenizer (with character offsets)")

    def spans(texts: Sequence[str]) -> list[np.ndarray]:
        enc = tokenizer(
            list(texts),
            add_special_tokens=False,
            return_offsets_mapping=True,
            return_attention_mask=False,
            verbose=False,
        )
        out = []
        for offsets in enc["offset_mapping"]:
            arr = np.asarray(offsets, dtype=np.int64).reshape(-1, 2)
            out.append(arr[arr[:, 1] > arr[:, 0]])  # drop zero-width tokens
        return out

    return spans


def model_max_tokens(model) -> int:
    """Tokens a SentenceTransformer sees per input, special tokens excluded
    (``max_seq_length`` minus ``tokenizer.num_special_tokens_to_add()``)."""
    specials = model.tokenizer.num_special_tokens_to_add(pair=False)
    return int(model.max_seq_length) - int(specials)


def _units(
    spans: np.ndarray, sentences: list[tuple[int, int]], max_tokens: int, overlap: int
) -> list[tuple[int, int]]:
    """Token ranges ``[t0, t1)`` of the packing units: whole sentences, and sentences longer
    than ``max_tokens`` cut into pieces that advance by ``max_tokens - overlap`` tokens."""
    starts = spans[:, 0]
    units: list[tuple[int, int]] = []
    for s_start, s_end in sentences:
        t0 = int(np.searchsorted(starts, s_start, side="left"))
        t1 = int(np.searchsorted(starts, s_end, side="left"))
        if t1 <= t0:
            continue
        if t1 - t0 <= max_tokens:
            units.append((t0, t1))
            continue
        a = t0
        while a < t1:
            end = _char_boundary(starts, a, min(a + max_tokens, t1))
            units.append((a, end))
            if end >= t1:
                break
            a = max(_char_boundary(starts, a, end - overlap), a + 1)
    return units


def _char_boundary(starts: np.ndarray, low: int, end: int) -> int:
    """``end`` moved back so that it does not split the tokens of one character (a
    tokenizer that spells Hangul in jamo gives several tokens the same character
    offsets; cutting between them would put the whole character, and more tokens than
    counted, into the window)."""
    while end > low + 1 and end < len(starts) and starts[end] == starts[end - 1]:
        end -= 1
    return end


def _pack(units: list[tuple[int, int]], max_tokens: int, overlap: int) -> list[tuple[int, int]]:
    """Greedy packing of consecutive units into windows of at most ``max_tokens`` tokens;
    the next window restarts at the trailing units that fit in ``overlap`` tokens."""
    windows: list[tuple[int, int]] = []
    i, n = 0, len(units)
    while i < n:
        j = i + 1
        while j < n and units[j][1] - units[i][0] <= max_tokens:
            j += 1
        windows.append((i, j))
        if j >= n:
            break
        s = j
        while s - 1 > i and units[j - 1][1] - units[s - 1][0] <= overlap:
            s -= 1
        i = s
    return windows


def split_document(
    text: str,
    spans: np.ndarray,
    options: WindowOptions,
    sentence_spans: SentenceSpans = regex_sentence_spans,
) -> list[tuple[int, int]]:
    """Character ranges ``[(start, end), ...]`` of the windows of one document.

    Args:
        text: the document.
        spans: ``(n_tokens, 2)`` int character offsets of its model tokens (sorted).
        options: window size and overlap.
        sentence_spans: the sentence splitter (only called when the text is too long).

    Returns:
        ``[(0, len(text))]`` when the text fits (and is one sentence, with
        ``per_sentence``), else the overlapping windows in order (one per sentence with
        ``per_sentence``); each covers at most ``options.max_tokens`` tokens.
    """
    if len(spans) <= options.max_tokens and not options.per_sentence:
        return [(0, len(text))]
    overlap = options.overlap()
    units = _units(spans, sentence_spans(text), options.max_tokens, overlap)
    if options.per_sentence:
        if len(units) <= 1 and len(spans) <= options.max_tokens:
            return [(0, len(text))]
        packed = [(i, i + 1) for i in range(len(units))]
    else:
        packed = _pack(units, options.max_tokens, overlap)
    out = []
    for i, j in packed:
        t0, t1 = units[i][0], units[j - 1][1]
        out.append((int(spans[t0, 0]), int(spans[t1 - 1, 1])))
    return out


def make_windows(
    texts: Sequence[str],
    token_spans: TokenSpans,
    options: WindowOptions,
    sentence_spans: SentenceSpans = kiwi_sentence_spans,
    batch_size: int = 256,
) -> Windows:
    """Cut a corpus into windows (see the module docstring).

    Args:
        texts: ``n_rows`` document texts (``""`` for an empty row).
        token_spans: the model tokenizer's character offsets (:func:`hf_token_spans`).
        options: window size and overlap (:class:`WindowOptions`).
        sentence_spans: sentence splitter for the documents that are too long
            (:func:`kiwi_sentence_spans` by default; :func:`regex_sentence_spans` needs
            no Kiwi).
        batch_size: texts tokenized per call.

    Returns:
        :class:`Windows` with at least one window per row.

    Raises:
        ValueError: ``options.max_tokens < 1``.
    """
    if options.max_tokens < 1:
        raise ValueError(f"max_tokens must be at least 1, got {options.max_tokens}")
    out_texts: list[str] = []
    rows: list[int] = []
    starts: list[int] = []
    ends: list[int] = []
    texts = list(texts)
    for b in range(0, len(texts), batch_size):
        batch = texts[b : b + batch_size]
        for offset, (text, spans) in enumerate(zip(batch, token_spans(batch))):
            for start, end in split_document(text, spans, options, sentence_spans):
                out_texts.append(text[start:end])
                rows.append(b + offset)
                starts.append(start)
                ends.append(end)
    return Windows(
        texts=out_texts,
        row=np.asarray(rows, dtype=np.int64),
        start=np.asarray(starts, dtype=np.int64),
        end=np.asarray(ends, dtype=np.int64),
        n_rows=len(texts),
    )


def save_window_map(path, windows: Windows) -> None:
    """Write the window -> row map as one ``(n_windows, 3)`` int64 ``.npy``: the row and
    the ``[start, end)`` character offsets of each window in that row's text."""
    np.save(path, np.stack([windows.row, windows.start, windows.end], axis=1).astype(np.int64))


def load_window_map(
    path, n_windows: int | None = None, n_rows: int | None = None
) -> np.ndarray:
    """Read a map written by :func:`save_window_map` (memory-mapped), checked against
    the index it belongs to when ``n_windows`` (rows of the search matrix) and
    ``n_rows`` (documents) are given.

    Returns:
        ``(n_windows, 3)`` int64: row, start, end.

    Raises:
        ValueError: the file is not a ``.npy`` array (numpy's parse errors, e.g. of a
            damaged header), or not an ``(n_windows, 3)`` int64 map whose rows are
            non-decreasing and in ``range(n_rows)``, with ``0 <= start <= end``.
    """
    try:
        window_map = np.load(path, mmap_mode="r", allow_pickle=False)
    except (SyntaxError, OSError) as exc:  # numpy's header parser raises these too
        raise ValueError(f"not a window map ({exc})") from None
    if not isinstance(window_map, np.ndarray) or window_map.dtype != np.int64 \
            or window_map.ndim != 2 or window_map.shape[1] != 3:
        raise ValueError(f"not an (n, 3) int64 window map: {getattr(window_map, 'shape', '?')}")
    if n_windows is not None and window_map.shape[0] != n_windows:
        raise ValueError(f"{window_map.shape[0]} windows, the search matrix has {n_windows}")
    rows, starts, ends = (np.asarray(window_map[:, i]) for i in range(3))
    if n_rows is not None and len(rows) and (rows.min() < 0 or rows.max() >= n_rows):
        raise ValueError(f"windows of rows outside 0..{n_rows - 1}")
    if len(rows) and (np.any(starts < 0) or np.any(ends < starts)):
        raise ValueError("a window ends before it starts")
    return window_map
