"""The encode stage: the build's one encoder (opened once, on first use, for the
window planner or for encoding), and the chunked, checkpointed, resumable loop that
encodes the texts the cache lacks."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simsearch.build import checkpoint
from simsearch.build.generation import Generation
from simsearch.build.options import BuildOptions, check_whiten_dim
from simsearch.build.plan import ReusePlan
from simsearch.encoding.encoders import Encoder


class EncoderSlot:
    """The build's encoder, opened on the first call (see
    :func:`simsearch.encoding.encoders.open_encoder`) and kept: the model is loaded once
    per build, whether the window planner or the encode loop needs it first.

    Args:
        model: the resolved model name.
        options: the build's options (device, precision, Ray).
        backend: the resolved backend (:func:`simsearch.build.preflight.check_encoding`).
        gen: the generation (the ONNX export goes beside the index directory).
    """

    def __init__(self, model: str, options: BuildOptions, backend: str, gen: Generation):
        self.model, self.options, self.backend, self.gen = model, options, backend, gen
        self.opened: Encoder | None = None

    def __call__(self) -> Encoder:
        if self.opened is None:
            from simsearch.encoding.encoders import open_encoder

            self.opened = open_encoder(
                self.model,
                device=self.options.device,
                backend=self.backend,
                precision=self.options.precision,
                root=self.gen.path.parent,
                log=self.gen.log,
                ray=self.options.ray,
            )
        return self.opened

    def close(self) -> None:
        """Release what the encoder holds (a Ray session, device processes); a loaded
        SentenceTransformer stays usable (the ONNX export for queries reuses it)."""
        if self.opened is not None:
            self.opened.close()


@dataclass(frozen=True)
class Encoded:
    """What the encode stage produced.

    Attributes:
        pending: ``(len(order), dim)`` float32 vectors in encoding order, ``None`` when
            nothing was encoded.
        dim: the embedding dimension.
        encoded: texts encoded in this run; ``resumed``: taken from a checkpoint;
        truncated: texts longer than the model's max sequence length.
    """

    pending: np.ndarray | None
    dim: int
    encoded: int = 0
    resumed: int = 0
    truncated: int = 0


def encode_missing(
    gen: Generation, reuse: ReusePlan, encoder: EncoderSlot, options: BuildOptions, dim: int
) -> Encoded:
    """Encode the texts of ``reuse.order`` into the checkpoint, resuming an interrupted
    run of the same job; ``dim`` is the cached dimension when nothing is to encode.

    Raises:
        InvalidParameter: ``whiten_dim`` above the model's dimension (before encoding).
        SimsearchError: no space for the checkpoint, the model cannot be loaded.
    """
    if not reuse.order:
        return Encoded(None, dim)
    model = encoder()
    check_whiten_dim(options.whiten_dim, model.dim)  # before hours of encoding
    key = checkpoint.job_key(encoder.model, options.precision, reuse.order)
    pending, done = checkpoint.open_pending(gen, key, len(reuse.order), model.dim)
    total = len(reuse.order)
    if done:
        gen.log(f"resuming an interrupted run: {done:,} of {total:,} texts done")
    if gen.on_progress:
        gen.on_progress(done, total)
    try:
        remaining = [reuse.texts[h] for h in reuse.order[done:]]
        truncated = _encode_chunks(gen, model, remaining, pending, done, options)
    finally:
        encoder.close()
    if truncated:
        gen.log(
            f"{truncated:,} texts are longer than the model's max sequence length "
            "and were truncated when encoded"
        )
    return Encoded(pending, model.dim, total - done, done, truncated)


def _encode_chunks(
    gen: Generation,
    encoder: Encoder,
    texts: list[str],
    pending: np.ndarray,
    done: int,
    options: BuildOptions,
) -> int:
    """Encode ``texts`` into ``pending[done:]`` chunk by chunk (``encoder.stream``
    yields them in order), checkpointing after each; returns how many were truncated."""
    texts, truncated = encoder.cut_long_texts(texts)
    offset, total = 0, done + len(texts)
    for block in encoder.stream(texts, options.batch_size, options.chunk):
        start = done + offset
        pending[start : start + len(block)] = block
        offset += len(block)
        checkpoint.advance(gen, pending, done + offset)
        if gen.on_progress:
            gen.on_progress(done + offset, total)
    return truncated
