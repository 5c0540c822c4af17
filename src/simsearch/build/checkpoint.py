"""The encoding checkpoint: ``work/pending.npy`` holds the vectors of the texts to
encode, in encoding order, and ``work/job.json`` how many of them are done; a killed or
interrupted build resumes from it when the next run would encode the same texts with
the same model."""

from __future__ import annotations

import hashlib
import json
import os

import numpy as np

from simsearch._fs import atomic
from simsearch.build.generation import Generation
from simsearch.build.matrix import open_memmap
from simsearch.store import generations


def job_key(model: str, precision: str, order: list[bytes]) -> str:
    """The identity of an encoding job: the model, the precision (fp32 adds nothing)
    and the text hashes in encoding order."""
    digest = hashlib.sha256(model.encode("utf-8"))
    if precision != "fp32":
        digest.update(precision.encode("utf-8"))
    for h in order:
        digest.update(h)
    return digest.hexdigest()


def open_pending(gen: Generation, key: str, n: int, dim: int) -> tuple[np.ndarray, int]:
    """The checkpoint matrix ``(n, dim)`` float32 for the job ``key`` and how many of its
    rows are done: the one of an interrupted run of the same job, else a new one (a
    damaged checkpoint is discarded, never trusted).

    Raises:
        SimsearchError: not enough free space for a new checkpoint.
    """
    job_file, pending_file = gen.work / generations.JOURNAL, gen.work / generations.PENDING
    if job_file.exists() and pending_file.exists():
        try:
            job = json.loads(job_file.read_text(encoding="utf-8"))
            if job.get("key") == key:
                pending = np.load(pending_file, mmap_mode="r+")
                if pending.shape == (n, dim) and pending.dtype == np.float32:
                    return pending, int(job["done"])
        except (OSError, ValueError, KeyError):
            pass
    generations.clear_work(gen.path, keep_journal=True)
    gen.work.mkdir(parents=True, exist_ok=True)
    pending = open_memmap(pending_file, (n, dim), "the encoding checkpoint")
    gen.journal(key=key, done=0, total=n, generation=gen.id)
    return pending, 0


def advance(gen: Generation, pending: np.ndarray, done: int) -> None:
    """Record that the first ``done`` rows of ``pending`` are encoded: the rows reach
    the disk before the counter that vouches for them."""
    pending.flush()
    with open(gen.work / generations.PENDING, "rb+") as handle:
        os.fsync(handle.fileno())
    job_file = gen.work / generations.JOURNAL
    job = json.loads(job_file.read_text(encoding="utf-8"))
    job["done"] = done
    atomic.write_json_atomic(job_file, job)
