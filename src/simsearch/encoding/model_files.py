"""Fingerprints of a local model directory, so an index notices a model retrained in
place (issue 13: ``simsearch train -o SAME_DIR`` keeps the path, changes the weights).

A fingerprint lists every file of the directory that shapes the embeddings (weights,
configs, tokenizer; not READMEs or trainer checkpoints) with its size and mtime, plus
one sha256 over their contents. :func:`changed` compares sizes and mtimes first (a few
``stat`` calls, cheap enough for every cold ``query``) and hashes only when they
differ, so a copied or touched but identical model is still accepted.

A hub id has no fingerprint (``None``): a hub revision does not change under a name in
the local cache.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

#: Directory entries that never shape the embeddings.
SKIP_PREFIXES = ("checkpoint-", ".", "README", "runs", "eval")
MAX_DEPTH = 3


def model_files(directory: Path) -> list[Path]:
    """The files of a model directory that shape its embeddings, in a stable order."""
    found: list[Path] = []

    def walk(path: Path, depth: int) -> None:
        for entry in sorted(os.scandir(path), key=lambda e: e.name):
            if entry.name.startswith(SKIP_PREFIXES):
                continue
            if entry.is_dir(follow_symlinks=False) and depth < MAX_DEPTH:
                walk(Path(entry.path), depth + 1)
            elif entry.is_file():
                found.append(Path(entry.path))

    walk(directory, 0)
    return found


def _stats(directory: Path, files: list[Path]) -> dict[str, list[int]]:
    out = {}
    for path in files:
        st = path.stat()
        out[str(path.relative_to(directory))] = [st.st_size, st.st_mtime_ns]
    return out


def _digest(directory: Path, files: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in files:
        digest.update(str(path.relative_to(directory)).encode("utf-8") + b"\0")
        with open(path, "rb") as handle:
            while block := handle.read(1 << 22):
                digest.update(block)
    return digest.hexdigest()


def fingerprint(model: str) -> dict[str, Any] | None:
    """``{"files": {relative path: [size, mtime_ns]}, "sha256": hex}`` of the local
    model directory ``model``, or ``None`` for a hub id."""
    directory = Path(model)
    if not directory.is_dir():
        return None
    files = model_files(directory)
    return {"files": _stats(directory, files), "sha256": _digest(directory, files)}


def changed(model: str, recorded: dict[str, Any] | None) -> bool:
    """Whether the local model directory ``model`` differs from its ``recorded``
    fingerprint (``False`` when nothing was recorded or ``model`` is a hub id)."""
    directory = Path(model)
    if not recorded or not directory.is_dir():
        return False
    try:
        files = model_files(directory)
        if _stats(directory, files) == recorded.get("files"):
            return False
        return _digest(directory, files) != recorded.get("sha256")
    except OSError:
        return True


def looks_like_path(model: str) -> bool:
    """Whether ``model`` is meant as a local path rather than a hub id (``org/name``)."""
    return model.startswith((".", "/", "~")) or os.sep + os.sep in model or Path(model).exists()


def check_local_model(model: str) -> None:
    """Refuse a ``model`` meant as a local path that cannot be a SentenceTransformer
    directory, before anything slow is imported (torch takes seconds).

    Raises:
        SimsearchError: the path is missing, is a file, or is a directory without a
            model configuration.
    """
    from simsearch.errors import InvalidParameter

    if not looks_like_path(model):
        return
    path = Path(model).expanduser()
    if not path.exists():
        raise InvalidParameter(
            "model",
            f"model directory not found: {model}; pass {{name}} a directory saved with "
            "SentenceTransformer.save (or a hub id such as jhgan/ko-sroberta-multitask)",
        )
    if not path.is_dir():
        raise InvalidParameter(
            "model",
            f"{{name}} {model} is a file, not a directory; pass the directory that holds "
            "the model (its config.json and weights)",
        )
    if not any((path / name).is_file() for name in ("modules.json", "config.json")):
        raise InvalidParameter(
            "model",
            f"{model} is not a SentenceTransformer model directory (no modules.json or "
            "config.json in it); pass {name} a directory saved with SentenceTransformer.save",
        )
