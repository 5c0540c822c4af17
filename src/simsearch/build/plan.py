"""What a build encodes: the units (the rows, or with chunking ``auto`` their windows,
cut with the encoder's own tokenizer), and the reuse diff against the previous index."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from simsearch.encoding.encoders import Encoder
from simsearch.retrieval.parts import WindowPlan
from simsearch.store import index as store

#: Characters of a row's text that an index holds: Excel's own cell limit (32,767). A
#: longer cell (only a CSV, JSON or Parquet file can hold one) is indexed, stored and
#: searched by its first ``MAX_TEXT_CHARS`` characters, which bounds the cost of one row
#: (its windows, its Kiwi terms) whatever its size: a 1.6 MB cell took 271 s before.
MAX_TEXT_CHARS = 32_767


def cap_texts(
    texts: Sequence[str], limit: int = MAX_TEXT_CHARS
) -> tuple[list[str], list[int]]:
    """``texts`` with each cut to its first ``limit`` characters.

    Returns:
        ``(texts, cut)``: the texts, and the 0-based rows that were longer (ascending).
    """
    cut = [i for i, text in enumerate(texts) if len(text) > limit]
    if not cut:
        return list(texts), []
    out = list(texts)
    for i in cut:
        out[i] = out[i][:limit]
    return out, cut


def cap_notice(cut: Sequence[int], limit: int = MAX_TEXT_CHARS) -> str:
    """The one-line notice naming the rows :func:`cap_texts` cut (data rows,
    0-based as ``--doc`` numbers them; the first 10 named)."""
    shown = ", ".join(str(i) for i in cut[:10]) + (f" and {len(cut) - 10:,} more"
                                                   if len(cut) > 10 else "")
    rows = "row" if len(cut) == 1 else f"{len(cut):,} rows"
    return (f"{rows} longer than {limit:,} characters (Excel's cell limit) indexed by "
            f"the first {limit:,} only: {shown}")


@dataclass(frozen=True)
class Units:
    """The texts that get one embedding each.

    Attributes:
        texts: the rows, or the windows when some row was split.
        hashes: ``(n,)`` text hashes (:func:`simsearch.store.index.text_hashes`).
        empty: ``(n,)`` bool, the texts with nothing but white space.
        windows: the window plan with chunking ``auto`` (also when nothing was split),
            ``None`` with chunking ``none``.
    """

    texts: list[str]
    hashes: np.ndarray
    empty: np.ndarray
    windows: WindowPlan | None = None

    @classmethod
    def of(cls, texts: Sequence[str], windows: WindowPlan | None = None) -> Units:
        texts = list(texts)
        empty = np.array([not t.strip() for t in texts], dtype=bool)
        return cls(texts, store.text_hashes(texts), empty, windows)


def plan_units(rows: Sequence[str], chunking: str, encoder: Callable[[], Encoder]) -> Units:
    """The units of ``rows``: with chunking ``auto``, documents longer than the model's
    max sequence length are cut into windows (:mod:`simsearch.text.windows`) with the
    tokenizer of ``encoder()`` (the build's one loaded model); ``sentences``: every
    sentence its own window; ``none``: the rows."""
    if chunking == "none":
        return Units.of(rows)
    plan = plan_windows(encoder(), rows, per_sentence=chunking == "sentences")
    return Units.of(plan.windows.texts if plan.split else rows, plan)


def plan_windows(
    encoder: Encoder, texts: Sequence[str], overlap_tokens: int | None = None,
    per_sentence: bool = False,
) -> WindowPlan:
    """Cut ``texts`` into windows that fit ``encoder``'s model (its ``max_tokens`` and
    ``token_spans``), one per sentence with ``per_sentence``; see
    :class:`simsearch.text.windows.WindowOptions`."""
    from simsearch.text import windows as chunking

    options = chunking.WindowOptions(encoder.max_tokens, overlap_tokens, per_sentence)
    windows = chunking.make_windows(texts, encoder.token_spans(), options)
    return WindowPlan(windows, options.max_tokens, options.overlap(),
                      "sentences" if per_sentence else "auto")


@dataclass(frozen=True)
class ReusePlan:
    """The diff of the units against the previous index's vectors.

    Attributes:
        order: hashes of the texts to encode, each once, longest text first (as
            sentence-transformers orders a batch: little padding, truncations met at once).
        texts: hash -> text, for ``order``.
        cached: hash -> row of the previous index's matrix holding that text's vector.
        dropped: cached texts no longer among the units.
        reused: distinct non-empty texts whose vector comes from the cache (with
            ``order``, every distinct text of the units once).
    """

    order: list[bytes]
    texts: dict[bytes, str]
    cached: dict[bytes, int]
    dropped: int
    reused: int


def plan_reuse(units: Units, old: store.Index | None) -> ReusePlan:
    """Which units to encode and which to copy from ``old`` (an index of the same
    model and precision, or ``None`` to encode everything)."""
    cached = {h: i for i, h in enumerate(old.hashes().tolist())} if old is not None else {}
    hashes = units.hashes.tolist()
    new: dict[bytes, None] = {}
    for h, is_empty in zip(hashes, units.empty.tolist()):
        if not is_empty and h not in cached:
            new[h] = None
    texts = dict(zip(hashes, units.texts))
    order = sorted(new, key=lambda h: -len(texts[h]))
    return ReusePlan(
        order=order,
        texts={h: texts[h] for h in order},
        cached=cached,
        dropped=len(set(cached) - set(hashes)),
        reused=len({h for h, e in zip(hashes, units.empty.tolist()) if not e and h in cached}),
    )
