"""Huge cells cost bounded time (issue 13: a 5 MB cell took 142 s and 3.4 GB because
the whole text was tokenized only to count its truncation, and again to encode it).

A model keeps its first ``max_seq_length`` tokens. Tokenizers split words left to
right, so the first ``limit`` tokens of a text are the first ``limit`` tokens of any
prefix that ends at a word boundary and already holds more than ``limit`` tokens.
:func:`cut_long_texts` finds such a prefix by tokenizing growing prefixes (8, then 32,
128 ... characters per allowed token), so the work is bounded by the model's window,
not the cell, and the embedding is the same as for the whole text.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

#: Tokens beyond the limit a prefix must hold before it is trusted as a cut point (the
#: special tokens and the last, possibly split, word).
MARGIN = 8
#: Characters per allowed token of the first prefix tried.
FIRST_CHARS_PER_TOKEN = 8


def _prefix(text: str, size: int) -> str:
    """``text[:size]`` shortened to the last whitespace in its last quarter, if any."""
    prefix = text[:size]
    cut = max(prefix.rfind(" ", size * 3 // 4), prefix.rfind("\n", size * 3 // 4))
    return prefix[:cut] if cut > 0 else prefix


def cut_long_text(text: str, count_tokens: Callable[[str], int], limit: int) -> tuple[str, bool]:
    """``(text to encode, truncated)`` for one text: the text itself when it fits in
    ``limit`` tokens, else a prefix with the same first ``limit`` tokens."""
    # No tokenizer makes more than 4 tokens of one character (byte-level BPE: 4 UTF-8
    # bytes; WordPiece on Hangul: 3 jamo): shorter texts cannot overflow.
    if 4 * len(text) <= limit:
        return text, False
    size = max(limit * FIRST_CHARS_PER_TOKEN, 256)
    while size < len(text):
        prefix = _prefix(text, size)
        if count_tokens(prefix) > limit + MARGIN:
            return prefix, True
        size *= 4
    return text, count_tokens(text) > limit


def cut_long_texts(
    texts: Sequence[str], count_tokens: Callable[[str], int], limit: int
) -> tuple[list[str], int]:
    """:func:`cut_long_text` over ``texts``: the texts to encode and how many of them
    are longer than ``limit`` tokens (and so truncated by the model)."""
    out, truncated = [], 0
    for text in texts:
        cut, was_truncated = cut_long_text(text, count_tokens, limit)
        out.append(cut)
        truncated += was_truncated
    return out, truncated


def hf_counter(tokenizer: object) -> Callable[[str], int]:
    """Token count (with special tokens, no truncation) of a transformers tokenizer."""

    def count(text: str) -> int:
        return len(tokenizer(text, add_special_tokens=True, truncation=False)["input_ids"])  # type: ignore[operator]

    return count


def tokenizers_counter(encoder: object) -> Callable[[str], int]:
    """Token count (with special tokens, no truncation) for an encoder holding a
    ``tokenizers.Tokenizer`` (the ONNX runtime); counts on a copy, so the encoder's
    own truncation and padding settings are untouched."""
    from tokenizers import Tokenizer

    copy = Tokenizer.from_str(encoder.tokenizer.to_str())  # type: ignore[attr-defined]
    copy.no_truncation()
    copy.no_padding()

    def count(text: str) -> int:
        return len(copy.encode(text).ids)

    return count
