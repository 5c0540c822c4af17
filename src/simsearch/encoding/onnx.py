"""A light encoding runtime: the model's transformer exported to ONNX, run with
onnxruntime, tokenized with the model's own ``tokenizers`` tokenizer, then the model's
pooling and L2 normalisation in numpy.

Why: importing sentence-transformers costs 5-7 s on a 2-core machine, more than the
whole budget of a cold ``simsearch query``; onnxruntime + tokenizers start in a few
hundred milliseconds and, on CPU, also encode faster than torch.

Where the export lives: one content-addressed cache per user, shared by every index
built with the same model, ``<cache>/onnx/<key>/`` (:func:`cache_root`: the directory
named by ``SIMSEARCH_CACHE_DIR``, else ``$XDG_CACHE_HOME/simsearch`` or the platform's
user cache directory). ``key`` (:func:`cache_key`) hashes the model id and, for a local
model directory, the size and mtime of its weight files, so a retrained model in the
same directory gets a fresh export. An index records the key it needs (the
``onnx_export`` section of its ``meta.json``); a missing export is named in one line at
query time and made again by the next ``simsearch index``. Indexes built before the
shared cache keep their copy in ``<index root>/onnx/<key>/``, which is still used
(:func:`find_export`). A key directory is complete or absent: the export is written
to a temporary directory that is renamed into place. It holds::

    model.onnx           transformer -> token embeddings (fp32)
    model-int8.onnx      dynamically quantised copy (made on demand)
    *.opt.onnx           graphs optimised by onnxruntime for this CPU (made on first use)
    tokenizer.json       the model's fast tokenizer
    simsearch-onnx.json  pooling mode, max_seq_length, lower-casing, dim, input names

Only models made of the standard modules Transformer -> Pooling (mean, cls or max) ->
optional Normalize are exported; others (Dense layers, custom modules) keep using
sentence-transformers. Set ``SIMSEARCH_ONNX=0`` to disable the ONNX path entirely.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import sys
import uuid
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from simsearch.encoding.base import BaseEncoder, TokenSpans
from simsearch.errors import SimsearchError

CONFIG = "simsearch-onnx.json"
#: Files up to this size are checked by sha256 even at query time (``tokenizer.json``,
#: under 1 MB: about a millisecond), so same-size damage to the tokenizer is found before
#: it maps a query to other ids; the model weights are checked by size only then.
QUICK_CHECK_BYTES = 4 << 20
#: How a damaged export is repaired: ``index`` checks the export's sha256 and exports
#: it again (also with ``--rebuild``).
REPAIR = "repair it with 'simsearch index FILE --column COL' (the command that built the index)"
FORMAT = 1
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin", "model.onnx")
LogFn = Callable[[str], None]


def enabled() -> bool:
    """Whether the ONNX path may be used: onnxruntime and onnx are installed (the
    ``simsearch[onnx]`` extra) and ``SIMSEARCH_ONNX`` is not ``0``/``false``."""
    if os.environ.get("SIMSEARCH_ONNX", "1").strip().lower() in ("0", "false", "no"):
        return False
    from importlib.util import find_spec

    return find_spec("onnxruntime") is not None and find_spec("onnx") is not None


def cache_key(model: str) -> str:
    """Key of a model's export: the model id plus, for a local directory, the size and
    mtime of its weight files (a retrained model gets a new key)."""
    digest = hashlib.sha256(f"simsearch-onnx-{FORMAT}\0{model}".encode())
    path = Path(model)
    if path.is_dir():
        for name in WEIGHT_FILES:
            try:
                stat = (path / name).stat()
            except OSError:
                continue
            digest.update(f"\0{name}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:20]


def cache_root() -> Path:
    """The user's simsearch cache directory: ``SIMSEARCH_CACHE_DIR`` when set, else
    ``$XDG_CACHE_HOME/simsearch`` (``~/.cache/simsearch``), ``%LOCALAPPDATA%\\simsearch``
    on Windows, ``~/Library/Caches/simsearch`` on macOS."""
    override = os.environ.get("SIMSEARCH_CACHE_DIR", "").strip()
    if override:
        return Path(override).expanduser()
    if sys.platform == "win32" and os.environ.get("LOCALAPPDATA"):
        return Path(os.environ["LOCALAPPDATA"]) / "simsearch"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "simsearch"
    xdg = os.environ.get("XDG_CACHE_HOME", "").strip()
    return (Path(xdg) if xdg else Path.home() / ".cache") / "simsearch"


def shown(path: Path) -> str:
    """``path`` for messages: the home directory as ``~``."""
    try:
        return str(Path("~") / path.relative_to(Path.home()))
    except (ValueError, RuntimeError):
        return str(path)


def shared_dir(key: str) -> Path:
    """Directory of the export with ``key`` in the shared cache (:func:`cache_root`)."""
    return cache_root() / "onnx" / key


def legacy_dir(root: str | os.PathLike, key: str) -> Path:
    """Where indexes built before the shared cache keep the export: under their root."""
    return Path(root) / "onnx" / key


def export_dir(root: str | os.PathLike, model: str) -> Path:
    """Directory of ``model``'s export: the shared cache's (``root``, an index root, is
    only a fallback, see :func:`find_export`)."""
    del root  # kept for callers of the older signature
    return shared_dir(cache_key(model))


def find_export(root: str | os.PathLike, key: str) -> Path | None:
    """The complete export with ``key``: in the shared cache, else the copy an older
    build left under the index root ``root``; None when neither exists."""
    for directory in (shared_dir(key), legacy_dir(root, key)):
        if (directory / CONFIG).is_file():
            return directory
    return None


def has_export(root: str | os.PathLike, model: str) -> bool:
    """Whether a complete export of ``model`` exists (shared, or under ``root``)."""
    return find_export(root, cache_key(model)) is not None


# --------------------------------------------------------------------------- export


def _pooling_mode(module: Any) -> str | None:
    config = module.get_config_dict() if hasattr(module, "get_config_dict") else {}
    mode = config.get("pooling_mode")
    if mode is None:  # sentence-transformers < 5 wrote one boolean per mode
        chosen = [m for m in ("cls", "max", "mean") if config.get(f"pooling_mode_{m}_token")]
        chosen += [m for m in ("mean", "max") if config.get(f"pooling_mode_{m}_tokens")]
        if config.get("pooling_mode_mean_sqrt_len_tokens") or len(chosen) != 1:
            return None
        mode = chosen[0]
    if isinstance(mode, (list, tuple)):
        if len(mode) != 1:
            return None
        mode = mode[0]
    mode = str(mode).replace("_tokens", "").replace("_token", "")
    return mode if mode in ("mean", "cls", "max") else None


def _describe(st: Any) -> dict[str, Any]:
    """What the ONNX runtime must reproduce of ``st``; raises SimsearchError when the
    model has modules this runtime does not implement."""
    kinds = [type(m).__name__ for m in st]
    if len(kinds) < 2 or kinds[0] != "Transformer" or kinds[1] != "Pooling":
        raise SimsearchError(f"modules {kinds} are not Transformer -> Pooling")
    if any(k != "Normalize" for k in kinds[2:]):
        raise SimsearchError(f"modules {kinds} include more than Transformer/Pooling/Normalize")
    mode = _pooling_mode(st[1])
    if mode is None:
        raise SimsearchError(f"pooling {st[1].get_config_dict()} is not mean, cls or max")
    tokenizer = st.tokenizer
    if not hasattr(tokenizer, "backend_tokenizer"):
        raise SimsearchError("the model has no fast (tokenizers) tokenizer")
    getter = getattr(st, "get_embedding_dimension", None) or st.get_sentence_embedding_dimension
    return {
        "format": FORMAT,
        "pooling": mode,
        "max_seq_length": int(st.max_seq_length),
        "do_lower_case": bool(getattr(st[0], "do_lower_case", False)),
        "dim": int(getter()),
        "inputs": [
            n
            for n in tokenizer.model_input_names
            if n in ("input_ids", "attention_mask", "token_type_ids")
        ],
        "pad_id": int(tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0),
        "pad_token": str(tokenizer.pad_token or "[PAD]"),
    }


def export(model: str, root: str | os.PathLike, st: Any = None, log: LogFn | None = None) -> Path:
    """Export ``model``'s transformer to ONNX under ``root`` (see the module doc) and
    return the export directory. Uses ``st`` (a loaded SentenceTransformer on CPU in
    fp32) when given, else loads the model on CPU.

    An existing export is checked first (:func:`damage`, sha256 of every file): a
    sound one is returned as is, a damaged one (a truncated ``tokenizer.json``...) is
    removed and made again, so every build (``index``, ``index --rebuild``) repairs it.

    Raises:
        SimsearchError: the model cannot be loaded or is not exportable, or a damaged
            export cannot be removed.
    """
    target = export_dir(root, model)
    if _sound_export(target, log):
        return target  # torch is imported only to make an export
    import torch

    from simsearch.encoding.sbert import load_model

    if st is None or str(getattr(st, "device", "cpu")) != "cpu":
        st = load_model(model, "cpu")
    config = _describe(st)
    config["model"] = model
    hf = getattr(st[0], "auto_model", None) or st[0].model
    names = config["inputs"]

    class _Wrapper(torch.nn.Module):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
            return self.inner(**dict(zip(names, tensors))).last_hidden_state

    tmp = target.parent / f".tmp-{uuid.uuid4().hex[:8]}"
    tmp.mkdir(parents=True)
    try:
        ids = torch.ones((2, 8), dtype=torch.long)
        sample = tuple(torch.zeros_like(ids) if n == "token_type_ids" else ids for n in names)
        axes = {n: {0: "batch", 1: "tokens"} for n in [*names, "token_embeddings"]}
        param = next(hf.parameters())
        if param.dtype != torch.float32:
            raise SimsearchError(f"the loaded model is {param.dtype}, not float32")
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                _Wrapper(hf).eval(),
                sample,
                str(tmp / "model.onnx"),
                input_names=names,
                output_names=["token_embeddings"],
                dynamic_axes=axes,
                opset_version=17,
                dynamo=False,
            )
        st.tokenizer.backend_tokenizer.save(str(tmp / "tokenizer.json"))
        # What the export must hold, to tell a damaged one (verify_export) from ours.
        config["files"] = {n: _file_record(tmp / n) for n in ("model.onnx", "tokenizer.json")}
        (tmp / CONFIG).write_text(json.dumps(config, indent=2), encoding="utf-8")
        try:
            os.replace(tmp, target)
        except OSError:  # another process finished the same export first
            if not (target / CONFIG).is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if log:
        log(f"exported {model} to ONNX for fast queries -> {shown(target)}")
    return target


def quantized(directory: Path) -> Path:
    """``model-int8.onnx`` in an export directory, made with onnxruntime's dynamic int8
    quantisation (weights int8, activations quantised per batch) when missing."""
    target = directory / "model-int8.onnx"
    if target.is_file():
        return target
    from simsearch._fs.atomic import atomic_path

    root_logger = logging.getLogger()
    level = root_logger.level
    # quantize_dynamic logs advice ("consider pre-processing") on the root logger.
    root_logger.setLevel(logging.ERROR)
    try:
        with atomic_path(target) as tmp, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _quantize(directory / "model.onnx", tmp)
    finally:
        root_logger.setLevel(level)
    return target


def _quantize(source: Path, target: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(
        str(source),
        str(target),
        weight_type=QuantType.QInt8,
        per_channel=True,
        # 7-bit weights: avoids the int16 saturation of VPMADDUBSW on AVX2/AVX-512 CPUs;
        # on 600 KorSTS dev pairs it kept Spearman within 0.12 of fp32, where full-range
        # per-channel int8 lost 1.4 points.
        reduce_range=True,
    )


def _file_record(path: Path) -> list[Any]:
    """``[size, sha256]`` of a file of the export."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(1 << 22):
            digest.update(block)
    return [path.stat().st_size, digest.hexdigest()]


def read_config(directory: Path) -> dict[str, Any]:
    """The export's ``simsearch-onnx.json`` (a regular file of bounded size).

    Raises:
        SimsearchError: missing, not a regular file, or not a JSON object.
    """
    from simsearch._fs.safe import read_bounded

    try:
        config = json.loads(read_bounded(directory / CONFIG, directory, 1 << 20))
    except (OSError, ValueError) as exc:
        raise SimsearchError(f"{directory / CONFIG} is unreadable: {exc}") from None
    if not isinstance(config, dict):
        raise SimsearchError(f"{directory / CONFIG} is not a JSON object")
    return config


def damage(directory: Path, full: bool = True) -> str | None:
    """Why the export in ``directory`` cannot be used, or None when it is sound.
    ``full`` compares the sha256 of every file (index time); otherwise the config, the
    sizes, and the sha256 of the files up to :data:`QUICK_CHECK_BYTES` (the tokenizer)
    are checked (query time: a few ``stat`` calls and a millisecond of hashing)."""
    try:
        config = read_config(directory)
        for key in ("pooling", "max_seq_length", "dim", "inputs", "pad_id", "pad_token"):
            if key not in config:
                return f"{CONFIG} lacks {key!r}"
        records = config.get("files")
        if not isinstance(records, dict):
            return None  # an export of an earlier version: nothing recorded to compare
        for name, (size, sha256) in records.items():
            path = directory / Path(name).name
            if not path.is_file() or path.stat().st_size != size:
                return f"{name} is missing or has another size"
            if (full or size <= QUICK_CHECK_BYTES) and _file_record(path)[1] != sha256:
                return f"{name} fails its sha256 check"
    except (SimsearchError, OSError, ValueError, TypeError) as exc:
        return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return None


def _sound_export(target: Path, log: LogFn | None) -> bool:
    """Whether ``target`` holds a sound export; a damaged one is removed (and logged).

    Raises:
        SimsearchError: a damaged export that cannot be removed.
    """
    if not (target / CONFIG).is_file():
        return False
    why = damage(target)
    if why is None:
        return True
    if log:
        log(f"the ONNX export at {target} is damaged ({why}); exporting it again")
    try:
        _remove_export(target)
    except OSError as exc:
        raise SimsearchError(f"cannot remove the damaged ONNX export {target}: {exc}") from None
    return False


def _remove_export(directory: Path) -> None:
    """Delete a damaged export: only the files an export holds, then the directory."""
    names = {CONFIG, "tokenizer.json", "model.onnx", "model-int8.onnx"}
    for entry in os.listdir(directory):
        if entry in names or entry.endswith(".opt.onnx"):
            (directory / entry).unlink(missing_ok=True)
    directory.rmdir()


def ensure_export(model: str, root: str | os.PathLike, st: Any = None, log: LogFn | None = None):
    """Best effort :func:`export`: returns the directory, or ``None`` after logging one
    line when the model cannot be exported (queries then use sentence-transformers).
    A damaged export (see :func:`damage`) is removed and made again."""
    if not enabled():
        return None
    target = export_dir(root, model)
    if target.is_dir() and not target.is_symlink():
        why = damage(target)
        if why is None:
            return target
        if log:
            log(f"the ONNX export at {target} is damaged ({why}); exporting it again")
        try:
            _remove_export(target)
        except OSError:
            return None
    try:
        return export(model, root, st=st, log=log)
    except Exception as exc:  # noqa: BLE001 - an optional speed-up never fails a build
        if log:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            log(f"no ONNX export ({first}); queries will load sentence-transformers")
        return None


# --------------------------------------------------------------------------- runtime


def _session(ort: Any, path: Path, threads: int, spin: bool = True) -> Any:
    """An onnxruntime CPU session for ``path``. The first one saves its optimised graph
    beside it (``*.opt.onnx``, this machine's CPU) and later ones load that instead,
    which cuts session start-up by about two thirds (1.9 s -> 0.7 s on a busy 2-core
    machine). An unreadable or incompatible optimised file falls back to ``path``.
    ``spin=False`` turns off onnxruntime's busy-waiting of idle intra-op threads
    (``session.intra_op.allow_spinning``; see :class:`OnnxEncoder`)."""
    optimised = path.with_name(path.stem + ".opt.onnx")

    def options(save: Path | None = None) -> Any:
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.intra_op_num_threads = threads
        opts.log_severity_level = 3
        if not spin:
            opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        if save is not None:
            opts.optimized_model_filepath = str(save)
        return opts

    providers = ["CPUExecutionProvider"]
    # onnxruntime prints its fallback banners ("EP Error ...") with print(): keep them
    # off stdout, which carries only results.
    with contextlib.redirect_stdout(sys.stderr):
        if optimised.is_file():
            try:
                return ort.InferenceSession(str(optimised), options(), providers=providers)
            except Exception:  # noqa: BLE001 - e.g. made on another CPU: use the original
                pass
            return ort.InferenceSession(str(path), options(), providers=providers)
        if not os.access(path.parent, os.W_OK):  # a read-only index: optimise in memory
            return ort.InferenceSession(str(path), options(), providers=providers)
        tmp = path.with_name(f".{path.stem}.{uuid.uuid4().hex[:8]}.opt.onnx")
        try:
            session = ort.InferenceSession(str(path), options(tmp), providers=providers)
            if tmp.is_file():
                os.replace(tmp, optimised)
        except Exception:  # noqa: BLE001 - cannot save it: run it optimised in memory
            session = ort.InferenceSession(str(path), options(), providers=providers)
        finally:
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
        return session


class OnnxEncoder(BaseEncoder):
    """Encodes texts like ``SentenceTransformer.encode(..., normalize_embeddings=True)``
    with the export in ``directory``.

    Args:
        directory: an export directory (see :func:`export`).
        precision: ``"fp32"`` or ``"int8"`` (the dynamically quantised model).
        threads: onnxruntime intra-op threads (0: one per core).
        spin: let idle intra-op threads busy-wait for the next run (onnxruntime's
            default): right for a build's back-to-back batches. Queries pass False:
            between two queries the process ranks with numpy, whose BLAS threads then
            compete with the spinning ones; on 2 cores that doubled a warm hybrid query
            (32.7 -> 20.0 ms median, p95 65.8 -> 40.4 ms, 100 queries on 20,000
            sentences; ``scripts/peers.py``).
    """

    backend = "onnx"

    def __init__(self, directory: str | os.PathLike, precision: str = "fp32", threads: int = 0,
                 spin: bool = True):
        import onnxruntime as ort
        from tokenizers import Tokenizer

        self.directory = Path(directory)
        self.config = read_config(self.directory)
        if precision not in ("fp32", "int8"):
            raise SimsearchError(f"the ONNX backend runs fp32 or int8, not {precision}")
        self.precision = precision
        path = quantized(self.directory) if precision == "int8" else self.directory / "model.onnx"
        self.session = _session(ort, path, threads, spin)
        self.inputs = [i.name for i in self.session.get_inputs()]
        self.max_seq_length = int(self.config["max_seq_length"])
        self.tokenizer = Tokenizer.from_file(str(self.directory / "tokenizer.json"))
        self.tokenizer.enable_truncation(max_length=self.max_seq_length)
        self.tokenizer.enable_padding(
            pad_id=int(self.config["pad_id"]), pad_token=str(self.config["pad_token"])
        )
        self.dim = int(self.config["dim"])

    @staticmethod
    def _prepare(texts: Sequence[str]) -> list[str]:
        # As sentence-transformers 6: no stripping (byte-level BPE sees a leading space);
        # do_lower_case is already a Lowercase normaliser inside the saved tokenizer.json.
        return [str(t) for t in texts]

    def _batch(self, texts: list[str]) -> np.ndarray:
        encodings = self.tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self.inputs:
            feeds["token_type_ids"] = np.array([e.type_ids for e in encodings], dtype=np.int64)
        feeds = {k: v for k, v in feeds.items() if k in self.inputs}
        try:
            tokens = self.session.run(None, feeds)[0]  # (batch, seq, hidden) float32
        except Exception as exc:  # noqa: BLE001 - onnxruntime's errors have no common base
            why = (str(exc).splitlines() or [type(exc).__name__])[0][:200]
            raise SimsearchError(
                f"the ONNX export at {self.directory} is damaged ({why}); {REPAIR}"
            ) from None
        mode = self.config["pooling"]
        if mode == "cls":
            pooled = tokens[:, 0]
        elif mode == "max":
            masked = np.where(mask[:, :, None] > 0, tokens, np.float32(-1e9))
            pooled = masked.max(axis=1)
        else:
            weights = mask[:, :, None].astype(np.float32)
            pooled = (tokens * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.maximum(norms, 1e-12)).astype(np.float32, copy=False)

    def encode(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        """``(len(texts), dim)`` float32, L2-normalised; empty texts get zero rows."""
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        keep = [i for i, t in enumerate(texts) if str(t).strip()]
        if not keep:
            return out
        prepared = self._prepare([texts[i] for i in keep])
        # Longest first (as sentence-transformers does): little padding per batch.
        order = sorted(range(len(prepared)), key=lambda i: -len(prepared[i]))
        vectors = np.empty((len(prepared), self.dim), dtype=np.float32)
        for start in range(0, len(order), max(1, batch_size)):
            chosen = order[start : start + batch_size]
            vectors[chosen] = self._batch([prepared[i] for i in chosen])
        out[keep] = vectors
        return out

    def count_truncated(self, texts: Sequence[str]) -> int:
        """How many of ``texts`` exceed ``max_seq_length`` tokens (and are cut)."""
        long_texts = [t for t in self._prepare(texts) if 4 * len(t) > self.max_seq_length]
        if not long_texts:
            return 0
        self.tokenizer.no_truncation()
        self.tokenizer.no_padding()
        try:
            lengths = [len(e.ids) for e in self.tokenizer.encode_batch(long_texts)]
        finally:
            self.tokenizer.enable_truncation(max_length=self.max_seq_length)
            self.tokenizer.enable_padding(
                pad_id=int(self.config["pad_id"]), pad_token=str(self.config["pad_token"])
            )
        return sum(1 for n in lengths if n > self.max_seq_length)

    def _plain_tokenizer(self) -> Any:
        """A copy of the tokenizer without truncation and padding (the encoder's own
        settings stay as they are)."""
        from tokenizers import Tokenizer

        copy = Tokenizer.from_str(self.tokenizer.to_str())
        copy.no_truncation()
        copy.no_padding()
        return copy

    @property
    def max_tokens(self) -> int:
        """``max_seq_length`` minus the special tokens added to one text (as
        :func:`simsearch.text.windows.model_max_tokens` for a SentenceTransformer)."""
        return self.max_seq_length - int(self.tokenizer.num_special_tokens_to_add(False))

    def token_spans(self) -> TokenSpans:
        """Character offsets of every token, special and zero-width tokens left out: the
        same spans as :func:`simsearch.text.windows.hf_token_spans` over the
        SentenceTransformer's tokenizer, whose backend this export saved (no torch)."""
        plain = self._plain_tokenizer()

        def spans(texts: Sequence[str]) -> list[np.ndarray]:
            out = []
            for enc in plain.encode_batch(list(texts), add_special_tokens=False):
                arr = np.asarray(enc.offsets, dtype=np.int64).reshape(-1, 2)
                out.append(arr[arr[:, 1] > arr[:, 0]])
            return out

        return spans

    def cut_long_texts(self, texts: list[str]) -> tuple[list[str], int]:
        """Huge texts cut to a prefix with the same first tokens (see
        :mod:`simsearch.encoding.truncation`)."""
        from simsearch.encoding.truncation import cut_long_texts, tokenizers_counter

        return cut_long_texts(texts, tokenizers_counter(self), self.max_seq_length)
