"""Encoders: sentence-transformers on torch, or the ONNX runtime, behind one interface.

* ``torch`` (default): ``SentenceTransformer.encode``; ``precision`` ``fp32``, or on a
  GPU ``fp16``/``bf16`` (the model's weights are cast after loading; embeddings come
  back as float32).
* ``onnx``: the model's ONNX export run by onnxruntime on CPU (:mod:`simsearch.encoding.onnx`),
  ``fp32`` (same embeddings as torch to ~1e-6) or ``int8`` (dynamic quantisation:
  faster, slightly different embeddings).

Every encoder is an :class:`Encoder`: ``dim``, ``backend``, ``precision``,
``encode(texts, batch_size)`` (L2-normalised float32, zero rows for empty texts),
``count_truncated(texts)``, and what a build needs from the model besides its vectors:
``max_tokens`` and ``token_spans()`` (the window planner cuts long documents with the
encoder's own tokenizer, so a build loads the model once), ``cut_long_texts(texts)``,
``stream(texts, batch_size, chunk)`` and ``close()``. :class:`BaseEncoder` gives the
defaults; :class:`SbertEncoder` the parts shared by encoders over a loaded
SentenceTransformer.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

# The protocol and base classes live in their own module, below the concrete encoders
# that build on them (no import cycle); re-exported here, where callers look for them.
from simsearch.encoding.base import BaseEncoder, Encoder, SbertEncoder, TokenSpans  # noqa: F401
from simsearch.errors import InvalidParameter, SimsearchError

BACKENDS = ("torch", "onnx")
PRECISIONS = ("fp32", "fp16", "bf16", "int8")
LogFn = Callable[[str], None]


def resolve_backend(
    backend: str, device: str | None, precision: str = "fp32", ray: str | None = None
) -> str:
    """The backend ``auto`` stands for: ``onnx`` when onnx and onnxruntime are installed,
    the device is the CPU (given or chosen) and the precision runs there, else ``torch``.

    On 2,000 KorSTS dev sentences with all-MiniLM-L6-v2 on a CPU (``scripts/bench.py``,
    section 4), the ONNX fp32 export encodes 1.9x to 3.5x as many documents per second
    as sentence-transformers on torch with the same KorSTS Spearman (41.05 both): its
    embeddings equal torch's to ~1e-6, so an index built either way serves the same
    results and reuses the same cache. ``int8`` is faster still but changes the
    vectors, so it stays a choice, not the default.

    Returns:
        ``backend`` itself unless it is ``auto``.
    """
    if backend != "auto":
        return backend
    if ray:  # Ray actors encode with sentence-transformers
        return "torch"
    from importlib.util import find_spec

    if device not in (None, "cpu") or precision not in ("fp32", "int8"):
        return "torch"
    if find_spec("onnxruntime") is None or find_spec("onnx") is None:
        return "torch"
    if device is None and _torch_may_have_a_gpu():
        import torch

        if torch.cuda.is_available():
            return "torch"
    return "onnx"


def _torch_may_have_a_gpu() -> bool:
    """False when the installed torch is a CPU-only build, read from ``torch/version.py``
    without importing torch (about 2 s): the README's CPU install then never pays for it
    in ``index``. True when unsure (a CUDA or ROCm build, or an unreadable file)."""
    from importlib.util import find_spec

    spec = find_spec("torch")
    if spec is None or not spec.submodule_search_locations:
        return False
    version = Path(next(iter(spec.submodule_search_locations))) / "version.py"
    try:
        text = version.read_text(encoding="utf-8")
    except OSError:
        return True
    gpu_builds = ("cuda", "hip", "rocm", "xpu")
    return not all(f"\n{name}: Optional[str] = None" in text for name in gpu_builds)


def check_options(backend: str, precision: str, device: str | None, ray: str | None = None) -> None:
    """Refuse combinations that cannot run, before anything slow is loaded.

    Raises:
        InvalidParameter: unknown backend or precision, int8 on torch, fp16/bf16 on ONNX,
            the ONNX backend on a GPU device or without onnxruntime; Ray or a device list
            with anything but torch fp32, Ray not installed.
    """
    if ray is not None or (device and "," in device):
        _check_distributed(backend, precision, device, ray)
    if backend not in BACKENDS:
        raise InvalidParameter(
            "backend", f"unknown {{name}} {backend!r}; use one of: {', '.join(BACKENDS)}"
        )
    if precision not in PRECISIONS:
        raise InvalidParameter(
            "precision", f"unknown {{name}} {precision!r}; use one of: {', '.join(PRECISIONS)}"
        )
    if backend == "torch" and precision == "int8":
        raise InvalidParameter("precision", "{name} int8 needs the onnx backend")
    if backend == "onnx" and precision in ("fp16", "bf16"):
        raise InvalidParameter(
            "precision",
            f"{{name}} {precision} is for GPUs with the torch backend; "
            "the onnx backend runs fp32 or int8 on CPU",
        )
    if backend == "onnx":
        from importlib.util import find_spec

        if find_spec("onnxruntime") is None or find_spec("onnx") is None:
            raise InvalidParameter(
                "backend", "{name} onnx needs onnx and onnxruntime: pip install 'simsearch[onnx]'"
            )
    if backend == "onnx" and device not in (None, "cpu"):
        raise InvalidParameter(
            "device", f"the onnx backend runs on the CPU, not {{name}} {device!r}; use torch"
        )


def _check_distributed(backend: str, precision: str, device: str | None, ray: str | None) -> None:
    param = "ray" if ray is not None else "device"
    if backend != "torch" or precision != "fp32":
        raise InvalidParameter(
            param, "{name} encodes with sentence-transformers (the torch backend) in fp32"
        )
    if ray is not None and device and "," in device:
        raise InvalidParameter("ray", "{name} places the encoders itself; give no device list")
    if ray is not None:
        from simsearch.encoding.distributed import require_ray

        require_ray()
    else:
        from simsearch.encoding.distributed import parse_devices

        parse_devices(device)


class TorchEncoder(SbertEncoder):
    """sentence-transformers on torch, optionally in half precision on a GPU."""

    backend = "torch"

    def __init__(self, model: str, device: str | None = None, precision: str = "fp32"):
        from simsearch.encoding.sbert import embedding_dim, load_model, resolve_device

        if precision in ("fp16", "bf16"):
            resolved = resolve_device(device)
            if not resolved.startswith(("cuda", "mps")):
                raise InvalidParameter(
                    "precision",
                    f"{{name}} {precision} needs a GPU device (cuda), but the device is "
                    f"{resolved!r}; on CPU use the onnx backend (optionally precision int8)",
                )
        self.st = load_model(model, device)
        self.precision = precision
        half_precision(self.st, precision)
        self.dim = embedding_dim(self.st)

    def encode(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        from simsearch.encoding.sbert import encode

        return encode(self.st, texts, batch_size)


def half_precision(st: Any, precision: str) -> Any:
    """Cast a loaded SentenceTransformer to ``fp16``/``bf16`` in place (``fp32``: as is).
    ``encoding.encode`` returns float32 whatever the model computes in."""
    if precision == "fp16":
        st.half()
    elif precision == "bf16":
        import torch

        st.to(torch.bfloat16)
    return st


def open_encoder(
    model: str,
    *,
    device: str | None = None,
    backend: str = "torch",
    precision: str = "fp32",
    root: str | os.PathLike = ".simsearch",
    log: LogFn | None = None,
    ray: str | None = None,
) -> Encoder:
    """An encoder for ``index`` builds (see the module doc); the ONNX backend exports
    the model under ``root`` first when no export exists yet. ``ray`` (an address or
    ``"local"``) encodes on Ray, a device list (``"cuda:0,cuda:1"``) on several devices
    (see :mod:`simsearch.encoding.distributed`)."""
    check_options(backend, precision, device, ray)
    if ray is not None:
        from simsearch.encoding.distributed import RayEncoder, RayOptions

        return RayEncoder(model, RayOptions(address=ray))
    if device and "," in device:
        from simsearch.encoding.distributed import MultiDeviceEncoder, parse_devices

        return MultiDeviceEncoder(model, parse_devices(device) or [device])
    if backend == "torch":
        return TorchEncoder(model, device, precision)
    from simsearch.encoding.onnx import OnnxEncoder, export

    return OnnxEncoder(export(model, root, log=log), precision)


class QuerySource(Protocol):
    """What encoding queries for an index needs, as plain values; an opened
    :class:`~simsearch.store.index.Index` has them, and so has :class:`QueryModel`.

    Attributes:
        model: the model id (hub id or absolute local path) the index was built with.
        path: the index directory (its parent holds the ONNX exports; named in messages).
        imported: the embeddings were imported with no model named.
        precision: the precision the documents were encoded in (``int8``: the same
            quantised ONNX model encodes the queries).
        model_files: the local model directory's fingerprint recorded at build time
            (:func:`simsearch.encoding.model_files.changed`), or None.
        onnx_key: optional: the key of the ONNX export the index recorded
            (:func:`simsearch.encoding.onnx.cache_key`), or None.
    """

    @property
    def model(self) -> str: ...
    @property
    def path(self) -> Path: ...
    @property
    def imported(self) -> bool: ...
    @property
    def precision(self) -> str: ...
    @property
    def model_files(self) -> dict[str, Any] | None: ...


@dataclass(frozen=True)
class QueryModel:
    """A :class:`QuerySource` given by value, for callers without an opened index."""

    model: str
    path: Path
    imported: bool = False
    precision: str = "fp32"
    model_files: dict[str, Any] | None = None
    onnx_key: str | None = None


def query_encoder(
    index: QuerySource, device: str | None = None, log: LogFn | None = None
) -> Encoder:
    """The encoder for query texts of ``index``: its ONNX export when one exists and the
    device is the CPU (fast start, no torch import), else sentence-transformers. An
    index encoded in int8 is queried with the same int8 model.

    Raises:
        InvalidParameter: (``model``) the index holds imported embeddings, no model.
        SimsearchError: the local model's files changed since the index was built.
    """
    from simsearch.encoding import onnx as onnx_encoder

    model = index.model
    if index.imported:
        raise InvalidParameter(
            "model",
            f"the index at {index.path} holds imported embeddings with no model recorded, so "
            "query texts cannot be encoded; build it again naming the model that made the "
            "embeddings ({name} MODEL at index time), or search it by document (similar)",
        )
    check_model_files(index)
    if onnx_encoder.enabled() and device in (None, "cpu"):
        found = _onnx_query_encoder(index, log)
        if found is not None:
            return found
    return TorchEncoder(model, device)


def _onnx_query_encoder(index: QuerySource, log: LogFn | None) -> Encoder | None:
    """The ONNX encoder of the export ``index`` needs (the key it recorded, else the
    key of its model), or None after one line through ``log`` when that export is
    missing (only when the index recorded one) or damaged."""
    from simsearch.encoding import onnx as onnx_encoder

    root = Path(index.path).parent
    recorded = getattr(index, "onnx_key", None)
    key = recorded or onnx_encoder.cache_key(index.model)
    directory = onnx_encoder.find_export(root, key)
    if directory is None:
        if recorded and log:
            log(
                f"Warning: the ONNX export this index needs ({key}) is missing from "
                f"{onnx_encoder.shared_dir(key).parent}; using sentence-transformers "
                "(run 'simsearch index' again to make it)"
            )
        return None
    precision = "int8" if index.precision == "int8" else "fp32"
    why = onnx_encoder.damage(directory, full=False)
    if why is None:
        try:
            # No spinning between queries (see OnnxEncoder: it fights numpy's BLAS).
            return onnx_encoder.OnnxEncoder(directory, precision, spin=False)
        except Exception as exc:  # noqa: BLE001 - any damage: fall back, say so once
            why = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if log:
        log(
            f"Warning: the ONNX export at {directory} is damaged ({why}); using "
            f"sentence-transformers; {onnx_encoder.REPAIR}"
        )
    return None


def check_model_files(index: QuerySource) -> None:
    """Refuse to encode queries with a local model whose files changed since the index
    was built (a model retrained into the same directory): its vectors would not be
    comparable with the index's.

    Raises:
        SimsearchError: the model directory's files differ from the recorded ones.
    """
    from simsearch.encoding.model_files import changed

    recorded = index.model_files
    if recorded is not None and changed(index.model, recorded):
        raise SimsearchError(
            f"the model at {index.model} changed since this index was built (its files "
            "differ); run 'simsearch index' again to re-encode with it"
        )
