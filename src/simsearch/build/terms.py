"""The Kiwi analysis of the lexical part, started before the encoding and run beside it.

The lexical part needs every new text's Kiwi terms (:mod:`simsearch.text.kiwi`). They do
not depend on the embeddings, so the build starts the analysis in a thread as soon as
the corpus is read and the previous index is open, and the lexical part takes the
result after the encoding. Kiwi's analysis runs in C++ and lets other threads run
meanwhile (a pure-Python loop keeps its pace beside it). What it saves depends on the
cores the encoder leaves idle: on 2 cores, which the ONNX encoder keeps busy, 1.7 s of
Kiwi's 5.7 s in a 72 s build of 6,000 sentences, within the noise
(``scripts/bench.py --only build``); with more cores up to Kiwi's whole time.

The analysis goes in chunks, and leaving a ``with Terms(...)`` block stops it at the
next chunk and waits for that, so a build that fails or is interrupted does not leave it running on.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Sequence
from typing import Any

#: Texts analysed between two checks of the stop flag.
CHUNK = 256
#: Longest wait, in seconds, for a stopped analysis to finish its chunk.
JOIN_S = 10.0

#: Whether builds analyse beside the encoding (``scripts/bench.py`` turns it off to
#: measure the sequential build; nothing else should need to).
BESIDE = True


class Terms:
    """The Kiwi terms of ``texts``, reusing ``previous``'s for unchanged texts: computed in
    a background thread from construction (``beside=True``) or on the first
    :meth:`result` call.

    Args:
        texts: ``n_rows`` texts (``""`` for empty rows).
        previous: the previous build's :class:`simsearch.retrieval.bm25.TokenStore`, or
            ``None`` (analyse every text).
        beside: start the thread now.
    """

    def __init__(self, texts: Sequence[str], previous: Any = None, beside: bool = True):
        self._texts, self._previous = list(texts), previous
        self._stop = threading.Event()
        self._done: tuple[Any, int] | None = None
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None
        if beside:
            _import_here()
            self._thread = threading.Thread(target=self._run, name="kiwi-terms", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        try:
            self._done = self._analyse(self._stop.is_set)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            self._error = exc

    def _analyse(self, stopped: Callable[[], bool]) -> tuple[Any, int]:
        from simsearch.retrieval.bm25 import TokenStore

        previous = self._previous or TokenStore([], [])
        return previous.update(self._texts, chunk=CHUNK, stopped=stopped)

    def result(self) -> tuple[Any, int]:
        """``(store, n_analysed)``: the :class:`~simsearch.retrieval.bm25.TokenStore` in
        the order of the texts and how many texts Kiwi analysed (the rest were reused).

        Raises:
            whatever the analysis raised (e.g. a missing ``kiwipiepy``).
        """
        if self._thread is None:
            return self._analyse(lambda: False)
        self._thread.join()
        if self._error is not None:
            raise self._error
        assert self._done is not None
        return self._done

    def stop(self) -> None:
        """Stop the analysis at its next chunk (idempotent; a no-op once finished)."""
        self._stop.set()

    def __enter__(self) -> Terms:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()
        # No Kiwi call left in flight when the process exits (a failed or interrupted
        # build): the analysis stops at its chunk's end, well within this bound.
        if self._thread is not None:
            self._thread.join(timeout=JOIN_S)


def _import_here() -> None:
    """Import what the thread needs in the caller's thread first: two threads importing
    at once share Python's module locks, and a Ctrl-C landing in one import can leave a
    lock the other then waits on for ever. The thread then only runs Kiwi. A missing
    package is left for the analysis to report, as without the thread."""
    import simsearch.retrieval.bm25  # noqa: F401
    import simsearch.text.kiwi  # noqa: F401

    with contextlib.suppress(ImportError):
        import kiwipiepy  # noqa: F401
        import kiwipiepy_model  # noqa: F401 - Kiwi() imports it lazily for its model path
