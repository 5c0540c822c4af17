"""Which files of an index directory simsearch may delete, and when (issue 13: never
delete what simsearch did not write; interrupted commits leaked ``work/pending.npy``
and old generations forever).

A build writes generation ``G`` as files named ``kind-G.ext``. Before it writes them it
records ``G`` and the names it will retire in ``work/job.json`` (the journal). After
the commit (``meta.json`` replaced) :func:`clean` deletes exactly:

* the retired names (the generation before the previous one; the previous one stays
  one build longer for readers that opened it a moment ago);
* files of a journaled generation that never became current (a failed attempt);
* the journal, the checkpoint ``work/pending.npy`` and temporary files simsearch
  names ``.<name>.<random>.tmp`` for those names.

Nothing is found by globbing: a name is deleted only when our own records list it, so a
user's ``embeddings-mine.npy`` beside an index survives whatever happens. An "up to
date" run calls :func:`clean` too, which finishes the work of a run killed between its
commit and its clean-up.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from simsearch._fs.safe import read_bounded
from simsearch.store.layout import GENERATION_NAME

WORK = "work"
JOURNAL = "job.json"
PENDING = "pending.npy"


def journal_path(index_dir: Path) -> Path:
    return index_dir / WORK / JOURNAL


def read_journal(index_dir: Path) -> dict[str, Any]:
    """The journal of the last unfinished build (``{}`` when none or unreadable)."""
    try:
        data = json.loads(read_bounded(journal_path(index_dir), index_dir / WORK, 1 << 24))
    except (OSError, ValueError, Exception):  # noqa: BLE001 - a bad journal is no journal
        return {}
    return data if isinstance(data, dict) else {}


def _unlink(path: Path) -> None:
    """Remove a file, a symlink (never what it points to) or, for a generation's
    directory (a feature's index, e.g. a lexical index), the whole directory."""
    import shutil

    with contextlib.suppress(FileNotFoundError, NotADirectoryError):
        if path.is_symlink() or path.is_file():
            path.unlink()
        elif path.is_dir():
            shutil.rmtree(path, ignore_errors=True)


def _temporaries(directory: Path, names: set[str]) -> list[Path]:
    """``.<name>.<random>.tmp`` files that simsearch's atomic writes make for ``names``."""
    out = []
    with contextlib.suppress(OSError):
        for entry in os.listdir(directory):
            if entry.startswith(".") and entry.endswith(".tmp"):
                base = entry[1:].rsplit(".", 2)[0]
                if base in names:
                    out.append(directory / entry)
    return out


def generation_names(index_dir: Path, generation: str) -> set[str]:
    """Existing files of ``generation`` in ``index_dir`` (``kind-G.ext`` names only)."""
    out = set()
    with contextlib.suppress(OSError):
        for entry in os.listdir(index_dir):
            match = GENERATION_NAME.match(entry)
            if match and match["gen"] == generation:
                out.add(entry)
    return out


def clean(index_dir: Path, keep: Iterable[str], retire: Iterable[str] = ()) -> None:
    """Delete what our records say is no longer needed (see the module doc).

    Args:
        index_dir: the index directory (already known to be ours).
        keep: names of the current and previous generation (never deleted).
        retire: names to delete now (in addition to the journal's).
    """
    keep = set(keep)
    journal = read_journal(index_dir)
    doomed = {n for n in retire if isinstance(n, str)}
    doomed |= {n for n in journal.get("retire", []) if isinstance(n, str)}
    generation = journal.get("generation")
    if isinstance(generation, str):
        doomed |= generation_names(index_dir, generation)
    doomed = {n for n in doomed - keep if GENERATION_NAME.match(n)}
    for name in doomed:
        _unlink(index_dir / name)
    for tmp in _temporaries(index_dir, doomed | keep | {"meta.json"}):
        _unlink(tmp)
    clear_work(index_dir)


def clear_work(index_dir: Path, keep_journal: bool = False) -> None:
    """Remove the checkpoint, the journal (unless ``keep_journal``) and their temporary
    files; ``work/`` itself when nothing else is in it."""
    work = index_dir / WORK
    if not work.is_dir() or work.is_symlink():
        return
    names = {PENDING} if keep_journal else {JOURNAL, PENDING}
    for name in names:
        _unlink(work / name)
    for tmp in _temporaries(work, names):
        _unlink(tmp)
    with contextlib.suppress(OSError):
        work.rmdir()


def discard(index_dir: Path, generation: str) -> None:
    """Delete the files (and temporary files) of a ``generation`` that never became
    current: what a failed or interrupted build wrote."""
    names = generation_names(index_dir, generation)
    for name in names:
        _unlink(index_dir / name)
    with contextlib.suppress(OSError):
        for entry in os.listdir(index_dir):
            if entry.startswith(".") and entry.endswith(".tmp") and f"-{generation}." in entry:
                _unlink(index_dir / entry)
