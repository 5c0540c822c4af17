"""The encoder protocol and its base classes: what every encoder offers (``dim``,
``encode``, ``count_truncated``, ``max_tokens``, ``token_spans``, ``cut_long_texts``,
``stream``, ``close``), with the defaults. The concrete encoders (torch, ONNX, Ray,
multi-GPU) build on these; :mod:`simsearch.encoding.encoders` chooses among them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol

import numpy as np

#: texts -> per text an ``(n_tokens, 2)`` int64 array of character offsets (no special
#: tokens); see :func:`simsearch.text.windows.hf_token_spans`.
TokenSpans = Callable[[Sequence[str]], list[np.ndarray]]


class Encoder(Protocol):
    """What building and querying need from an encoder."""

    backend: str
    precision: str
    dim: int

    def encode(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        """``(len(texts), dim)`` float32, L2-normalised rows; zero rows for empty texts."""
        ...

    def count_truncated(self, texts: Sequence[str]) -> int:
        """How many of ``texts`` exceed the model's max sequence length (and are cut)."""
        ...

    @property
    def max_tokens(self) -> int:
        """Tokens the model sees per input, special tokens excluded."""
        ...

    def token_spans(self) -> TokenSpans:
        """The model's tokenizer as character spans (for the window planner)."""
        ...

    def cut_long_texts(self, texts: list[str]) -> tuple[list[str], int]:
        """``(texts to encode, how many are longer than the model sees)``."""
        ...

    def stream(self, texts: Sequence[str], batch_size: int, chunk: int) -> Iterator[np.ndarray]:
        """The embeddings of ``texts`` chunk by chunk, in order."""
        ...

    def close(self) -> None:
        """Release what the encoder holds (processes, a Ray session)."""
        ...


class BaseEncoder:
    """Defaults of the :class:`Encoder` protocol for encoders that encode in this
    process: ``stream`` encodes one chunk after the other, ``close`` does nothing, and
    ``cut_long_texts`` only counts (subclasses that know their tokenizer cut)."""

    backend: str
    precision: str
    dim: int

    def encode(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        raise NotImplementedError

    def count_truncated(self, texts: Sequence[str]) -> int:
        raise NotImplementedError

    @property
    def max_tokens(self) -> int:
        raise NotImplementedError

    def token_spans(self) -> TokenSpans:
        raise NotImplementedError

    def cut_long_texts(self, texts: list[str]) -> tuple[list[str], int]:
        return texts, self.count_truncated(texts)

    def stream(self, texts: Sequence[str], batch_size: int, chunk: int) -> Iterator[np.ndarray]:
        """``encode`` of ``texts[0:chunk]``, ``texts[chunk:2*chunk]``, ... in order."""
        for start in range(0, len(texts), max(1, chunk)):
            yield self.encode(texts[start : start + chunk], batch_size)

    def close(self) -> None:
        return None


class SbertEncoder(BaseEncoder):
    """The parts of an encoder over a loaded SentenceTransformer ``self.st``: its
    tokenizer (a transformers fast tokenizer) and ``max_seq_length``."""

    st: Any

    def count_truncated(self, texts: Sequence[str]) -> int:
        from simsearch.encoding.sbert import count_truncated

        return count_truncated(self.st, texts)

    @property
    def max_tokens(self) -> int:
        from simsearch.text.windows import model_max_tokens

        return model_max_tokens(self.st)

    def token_spans(self) -> TokenSpans:
        from simsearch.text.windows import hf_token_spans

        return hf_token_spans(self.st.tokenizer)

    def cut_long_texts(self, texts: list[str]) -> tuple[list[str], int]:
        """Huge texts cut to a prefix with the same first tokens (see
        :mod:`simsearch.encoding.truncation`), so a 5 MB cell costs what a window costs."""
        from simsearch.encoding.truncation import cut_long_texts, hf_counter

        if getattr(self.st, "tokenizer", None) is None or not self.st.max_seq_length:
            return super().cut_long_texts(texts)
        return cut_long_texts(texts, hf_counter(self.st.tokenizer), int(self.st.max_seq_length))
