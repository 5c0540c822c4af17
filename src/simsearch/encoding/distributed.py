"""Encoding past one process: a Ray cluster, or several GPUs of one machine.

Two encoders with the interface the index build uses (``dim``, ``backend``,
``precision``, ``encode(texts, batch_size)``, ``count_truncated(texts)``) plus
``stream(texts, batch_size, chunk)``, which yields the embeddings of consecutive chunks
of ``chunk`` texts in input order, so the build writes and checkpoints each chunk as it
arrives (a crash loses at most the chunks in flight; the next run resumes after the
last checkpoint, and texts already in the cache, keyed by the hash of their text, are
never sent at all):

* :class:`RayEncoder`: `Ray Data <https://docs.ray.io/en/latest/data/data.html>`_.
  The texts become a dataset of ``(pos, text)`` rows; ``map_batches`` runs a callable
  class over an actor pool (``ActorPoolStrategy``), one actor per GPU of the cluster, or
  per CPU slot when it has none; each actor loads the model once and encodes whole
  chunks of ``chunk`` texts with sentence-transformers exactly as a local build does
  (same chunk boundaries, same ``batch_size``, same normalisation), so on the same
  hardware the vectors are the same as a single-process build's.
  ``address="local"`` starts a Ray instance on this machine.
* :class:`MultiDeviceEncoder`: sentence-transformers' multi-process pool
  (``SentenceTransformer.start_multi_process_pool``), one process per device, e.g.
  ``cuda:0,cuda:1``: several GPUs of one machine without Ray.

Ray is an optional extra (``pip install -e ".[ray]"``); it is imported only here, inside
the functions that need it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from simsearch.encoding.base import SbertEncoder
from simsearch.errors import SimsearchError


def require_ray() -> Any:
    """The ``ray`` module, or a SimsearchError saying how to install it."""
    try:
        import ray
        import ray.data  # noqa: F401 - Ray Data is a separate extra of ray
    except ImportError:
        raise SimsearchError(
            'encoding on Ray needs Ray Data; install it with pip install -e ".[ray]" '
            "(or pip install 'ray[data]')"
        ) from None
    return ray


def parse_devices(device: str | None) -> list[str] | None:
    """``"cuda:0,cuda:1"`` -> ``["cuda:0", "cuda:1"]``; one device (or none) -> ``None``.

    Raises:
        SimsearchError: an empty entry, e.g. ``"cuda:0,"``.
    """
    if not device or "," not in device:
        return None
    devices = [d.strip() for d in device.split(",")]
    if not all(devices):
        raise SimsearchError(f"device list {device!r} has an empty entry; e.g. cuda:0,cuda:1")
    return devices


def encode_texts(
    st: Any, texts: Sequence[str], batch_size: int, **encode_kwargs: Any
) -> np.ndarray:
    """Encode like :func:`simsearch.encoding.sbert.encode` (empty texts: zero rows; others
    L2-normalised float32), passing ``encode_kwargs`` (e.g. ``pool``) to
    ``SentenceTransformer.encode``.

    Returns:
        ``(len(texts), dim)`` float32.
    """
    from simsearch.encoding.sbert import embedding_dim

    out = np.zeros((len(texts), embedding_dim(st)), dtype=np.float32)
    keep = [i for i, t in enumerate(texts) if t.strip()]
    if keep:
        vectors = st.encode(
            [texts[i] for i in keep],
            batch_size=batch_size,
            show_progress_bar=False,
            convert_to_numpy=True,
            normalize_embeddings=True,
            **encode_kwargs,
        )
        out[keep] = np.asarray(vectors, dtype=np.float32)
    return out


class _LocalModel(SbertEncoder):
    """The model on this process's CPU: its dimension and tokenizer (truncation counts,
    windows)."""

    backend = "torch"
    precision = "fp32"

    def __init__(self, model: str) -> None:
        from simsearch.encoding.sbert import embedding_dim, load_model

        self.st = load_model(model, "cpu")
        self.dim = embedding_dim(self.st)


# --------------------------------------------------------------------------- Ray


@dataclass(frozen=True)
class RayOptions:
    """Where and how to encode on Ray.

    Attributes:
        address: ``"local"`` (start a Ray instance on this machine), ``"auto"`` (the
            cluster this machine belongs to), or a head address such as
            ``ray://10.0.0.1:10001`` or ``10.0.0.1:6379``.
        num_actors: encoder actors; default one per GPU of the cluster, else one per
            ``cpus_per_actor`` CPUs.
        gpus_per_actor: GPUs each actor reserves when the cluster has GPUs (0.5 puts two
            actors on one GPU).
        cpus_per_actor: CPUs each actor reserves (and its torch threads) without GPUs.
        num_cpus: CPUs of the local instance (``address="local"`` only; default all).
    """

    address: str = "local"
    num_actors: int | None = None
    gpus_per_actor: float = 1.0
    cpus_per_actor: int = 1
    num_cpus: int | None = None


class EncodeActor:
    """Ray Data callable class: loads the model once per actor, encodes whole batches.

    Each batch is a dict of numpy arrays ``pos`` (int64) and ``text`` (str); the result
    adds ``embedding`` (``(len, dim)`` float32) and keeps ``pos``.
    """

    def __init__(self, model: str, batch_size: int, threads: int) -> None:
        import torch

        from simsearch.encoding.sbert import load_model

        torch.set_num_threads(max(1, threads))
        device = "cuda" if torch.cuda.is_available() else "cpu"
        self.st = load_model(model, device)
        self.batch_size = batch_size

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        texts = [str(t) for t in batch["text"]]
        embedding = encode_texts(self.st, texts, self.batch_size)
        return {"pos": np.asarray(batch["pos"], dtype=np.int64), "embedding": embedding}


def connect(options: RayOptions) -> Any:
    """Connect to (or start) Ray as ``options.address`` says; returns the ray module.

    Raises:
        SimsearchError: Ray missing, or no cluster at the address.
    """
    ray = require_ray()
    if ray.is_initialized():
        return ray
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    # Ray waits ~20 s for a new local head's GCS by default; a loaded machine needs more.
    os.environ.setdefault("RAY_gcs_server_port_wait_time_s", "120")
    kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
    try:
        if options.address == "local":
            ray.init(num_cpus=options.num_cpus, **kwargs)
        else:
            ray.init(address=options.address, **kwargs)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise SimsearchError(
            f"cannot connect to Ray at {options.address!r}: {str(exc).splitlines()[0]}; "
            "give the head node's address (ray://HOST:10001 or HOST:6379) or 'local'"
        ) from None
    return ray


def _ray_running() -> bool:
    import ray

    return bool(ray.is_initialized())


def _pool_size(ray: Any, options: RayOptions) -> tuple[int, float, float]:
    """(actors, GPUs per actor, CPUs per actor) for the cluster Ray is connected to."""
    resources = ray.cluster_resources()
    gpus = float(resources.get("GPU", 0))
    cpus = float(resources.get("CPU", 1))
    if gpus >= options.gpus_per_actor > 0:
        size = options.num_actors or int(gpus // options.gpus_per_actor)
        return max(1, size), options.gpus_per_actor, 1.0
    size = options.num_actors or int(cpus // options.cpus_per_actor)
    return max(1, size), 0.0, float(options.cpus_per_actor)


class RayEncoder(_LocalModel):
    """Encode on a Ray cluster with Ray Data (see the module docstring).

    Args:
        model: hub id or local directory; must be loadable on every node (a hub id is
            downloaded by each node; a local path must exist on each node).
        options: :class:`RayOptions`.

    Raises:
        SimsearchError: Ray missing, no cluster at the address, the model unloadable.
    """

    backend = "ray"

    def __init__(self, model: str, options: RayOptions | None = None) -> None:
        super().__init__(model)
        self.model = model
        self.options = options or RayOptions()
        self._started = not _ray_running()
        self.ray = connect(self.options)

    def close(self) -> None:
        """Shut Ray down if this encoder started or joined it (the cluster itself stays
        up; a local instance stops)."""
        if self._started and self.ray.is_initialized():
            self.ray.shutdown()

    def encode(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        """``(len(texts), dim)`` float32 embeddings of ``texts``, in order."""
        blocks = list(self.stream(texts, batch_size, max(len(texts), 1)))
        return np.concatenate(blocks) if blocks else np.zeros((0, self.dim), np.float32)

    def stream(self, texts: Sequence[str], batch_size: int, chunk: int) -> Iterator[np.ndarray]:
        """Embeddings of ``texts[0:chunk]``, ``texts[chunk:2*chunk]``, ... in order, each
        ``(len, dim)`` float32, yielded as soon as it and every chunk before it are done."""
        if not texts:
            return
        data = self.ray.data
        context = data.DataContext.get_current()
        context.execution_options.preserve_order = True
        context.enable_progress_bars = False
        actors, gpus, cpus = _pool_size(self.ray, self.options)
        # Blocks built here and put in the object store: no shuffle and no remote task
        # before the actors start.
        items = [{"pos": i, "text": t} for i, t in enumerate(texts)]
        n_blocks = max(1, min(len(texts) // chunk, 4 * actors))
        dataset = data.from_items(items, override_num_blocks=n_blocks).map_batches(
            EncodeActor,
            fn_constructor_kwargs={
                "model": self.model,
                "batch_size": batch_size,
                "threads": int(cpus) or 1,
            },
            batch_size=chunk,
            batch_format="numpy",
            compute=data.ActorPoolStrategy(size=actors),
            num_gpus=gpus or None,
            num_cpus=cpus,
        )
        yield from _in_order(
            dataset.iter_batches(batch_size=None, batch_format="numpy"), len(texts), chunk
        )


def _in_order(batches: Any, total: int, chunk: int) -> Iterator[np.ndarray]:
    """Reassemble ``(pos, embedding)`` batches, whatever their order and sizes, into
    consecutive blocks of ``chunk`` rows (the last may be shorter)."""
    done = np.zeros(total, dtype=bool)
    buffer: dict[int, np.ndarray] = {}
    next_start = 0
    for batch in batches:
        for pos, vector in zip(batch["pos"].tolist(), batch["embedding"]):
            buffer[pos] = vector
            done[pos] = True
        while next_start < total:
            stop = min(next_start + chunk, total)
            if not done[next_start:stop].all():
                break
            yield np.stack([buffer.pop(p) for p in range(next_start, stop)]).astype(np.float32)
            next_start = stop
    if next_start < total:
        raise SimsearchError(
            f"Ray returned {int(done.sum()):,} of {total:,} embeddings; run the index again "
            "to resume"
        )


def ray_encode(
    texts: Sequence[str],
    model: str,
    options: RayOptions | None = None,
    batch_size: int = 32,
    chunk: int | None = None,
) -> np.ndarray:
    """Encode ``texts`` on Ray (see :class:`RayEncoder`).

    Args:
        texts: documents; empty ones get zero rows.
        model: SentenceTransformer hub id or local directory.
        options: :class:`RayOptions` (default: a local Ray instance).
        batch_size: texts per forward pass.
        chunk: texts per ``map_batches`` batch (default ``8 * batch_size``, the chunk of
            a local build, so both encode the same groups of texts).

    Returns:
        ``(len(texts), dim)`` float32, non-empty rows L2-normalised.
    """
    encoder = RayEncoder(model, options)
    try:
        blocks = list(encoder.stream(texts, batch_size, chunk or 8 * batch_size))
    finally:
        encoder.close()
    return np.concatenate(blocks) if blocks else np.zeros((0, encoder.dim), np.float32)


# --------------------------------------------------------------------------- several GPUs


class MultiDeviceEncoder(_LocalModel):
    """Encode on several devices of this machine with sentence-transformers'
    multi-process pool (one process per device; no Ray needed).

    Args:
        model: hub id or local directory.
        devices: e.g. ``["cuda:0", "cuda:1"]`` (``["cpu", "cpu"]`` works too, for tests).

    Use as a context manager, or call :meth:`close`, to stop the worker processes.
    """

    backend = "torch-multi-process"

    def __init__(self, model: str, devices: Sequence[str]) -> None:
        super().__init__(model)
        self.devices = list(devices)
        self.pool: dict[str, Any] | None = None

    def _pool(self) -> dict[str, Any]:
        if self.pool is None:
            try:
                self.pool = self.st.start_multi_process_pool(target_devices=self.devices)
            except (RuntimeError, ValueError, AssertionError) as exc:
                raise SimsearchError(
                    f"cannot start encoders on {','.join(self.devices)}: {str(exc).splitlines()[0]}"
                ) from None
        return self.pool

    def encode(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        """``(len(texts), dim)`` float32 embeddings, the texts split over the devices."""
        return encode_texts(self.st, texts, batch_size, pool=self._pool())

    def close(self) -> None:
        """Stop the worker processes."""
        if self.pool is not None:
            self.st.stop_multi_process_pool(self.pool)
            self.pool = None

    def __enter__(self) -> MultiDeviceEncoder:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
