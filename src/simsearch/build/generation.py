"""One build's generation: its id and directory, its journal (``work/job.json``) and
the undo of a failed attempt (see :mod:`simsearch.store.generations`)."""

from __future__ import annotations

import contextlib
import errno
import os
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from simsearch._fs import atomic
from simsearch._fs import safe as safe_files
from simsearch.errors import SimsearchError
from simsearch.store import generations, layout
from simsearch.store import index as store
from simsearch.store.meta import META, Generations

ProgressFn = Callable[[int, int], None]
LogFn = Callable[[str], None]


@dataclass(frozen=True)
class Generation:
    """The generation a build writes: files ``<role>-<id>.<ext>`` in ``path``.

    Attributes:
        path: the index directory (claimed and locked by the build).
        id: ``YYYYmmddHHMMSS-xxxxxx``.
        log: one-line status messages.
        on_progress: ``(done, total)`` texts while encoding, or ``None``.
    """

    path: Path
    log: LogFn
    on_progress: ProgressFn | None = None
    id: str = field(
        default_factory=lambda: time.strftime("%Y%m%d%H%M%S") + "-" + uuid.uuid4().hex[:6]
    )

    @property
    def work(self) -> Path:
        """The work directory (checkpoint and journal)."""
        return self.path / generations.WORK

    def name(self, role: str, ext: str) -> str:
        """The file name of ``role`` in this generation, e.g. ``embeddings-<id>.npy``."""
        return f"{role}-{self.id}.{ext}"

    def journal(self, **fields: Any) -> None:
        """Record in ``work/job.json`` what this build will write or retire, so a
        later run can finish or undo it."""
        job = generations.read_journal(self.path)
        job.update(fields)
        self.work.mkdir(exist_ok=True)
        atomic.write_json_atomic(self.work / generations.JOURNAL, job)

    @contextlib.contextmanager
    def attempt(self) -> Iterator[None]:
        """Undo what this build wrote when it fails: its generation's files always;
        the checkpoint too when the disk is full (keeping it would keep the disk full),
        not when interrupted (the next run resumes from it)."""
        try:
            yield
        except BaseException as exc:
            if not ((self.path / META).is_file() and self._is_committed()):
                generations.discard(self.path, self.id)
                full = isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)
                resumable = (self.work / generations.PENDING).is_file()
                if full or getattr(exc, "no_space", False) or not resumable:
                    generations.clear_work(self.path)
            raise

    def _is_committed(self) -> bool:
        try:
            text = safe_files.read_bounded(self.path / META, self.path, 64 << 20)
        except (OSError, SimsearchError):
            return False
        return self.name("embeddings", "npy").encode() in text

    def start(self, previous: store.Index | None) -> set[str]:
        """Discard the files of an earlier run killed mid-write, journal this generation,
        and return the names this build retires once it commits (the generation before
        the previous one)."""
        listed, retire = _listed(self.path, previous)
        earlier = generations.read_journal(self.path).get("generation")
        if isinstance(earlier, str) and not any(earlier in n for n in listed):
            generations.discard(self.path, earlier)
        self.journal(generation=self.id)
        return retire


def kept_names(meta: Any) -> set[str]:
    """Names of the current generation of ``meta`` and of the previous one (kept for
    readers)."""
    kept = meta.get(Generations)
    return {f.name for f in meta.files.values()} | set(kept.previous if kept else [])


def _listed(path: Path, previous: store.Index | None) -> tuple[set[str], set[str]]:
    """``(names the previous index lists, names this build retires)``. An index of an
    earlier version lists no previous generation: its directory held only simsearch's
    own files (its meta.json says so), so unlisted generations go."""
    current = {f.name for f in previous.meta.files.values()} if previous is not None else set()
    kept = previous.meta.get(Generations) if previous is not None else None
    if kept:
        return current | set(kept.previous), set(kept.previous)
    if not (path / META).is_file():
        return current, set()
    unlisted = {
        n for n in os.listdir(path) if layout.GENERATION_NAME.match(n) and n not in current
    }
    return current, unlisted
