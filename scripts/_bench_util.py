"""Helpers of ``scripts/bench.py``: timing, tables and the cached benchmark indexes.

The indexes are built through the command line, as a user would (``python -m simsearch
index ...``), and cached under ``~/.cache/simsearch-bench`` (``SIMSEARCH_BENCH_CACHE`` or
``--cache`` to move it). Each index carries a stamp: a hash of ``src/simsearch`` and of
the index's inputs. When the stamp differs (the code changed, e.g. after a merge) the
same ``index`` command runs again over the cached directory, so the build's own reuse
keeps the rebuild short and the index is what the current code writes; an index the
current code refuses is rebuilt with ``--rebuild``.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
PY = sys.executable
ENV = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONPATH=str(REPO / "src"), COLUMNS="120")
#: Bump when the corpus, the tiny model or the index commands change.
FORMAT = 1


# --------------------------------------------------------------------------- reporting


def load() -> str:
    """The machine load now, as printed beside every table."""
    one, five, _ = os.getloadavg()
    return f"load average {one:.1f} (1 min) / {five:.1f} (5 min) on {os.cpu_count()} cores"


def table(title: str, header: list[str], rows: list[list[object]]) -> None:
    """Print a Markdown table under a ``##`` title."""
    cells = [[str(c) for c in header]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    print(f"\n## {title}\n")
    print("| " + " | ".join(c.ljust(w) for c, w in zip(cells[0], widths)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in cells[1:]:
        print("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths)) + " |")
    sys.stdout.flush()


def log(message: str) -> None:
    """Progress on stderr (the tables go to stdout)."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- timing


@dataclass(frozen=True)
class Timing:
    """Seconds of repeated runs of one thing."""

    times: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    @property
    def best(self) -> float:
        return min(self.times)


def run_checked(args: list[str], cwd: Path, env: dict | None = None, stdin: str | None = None):
    """Run a command; raise with its stderr when it fails."""
    done = subprocess.run(
        args, cwd=cwd, env=env or ENV, capture_output=True, text=True, input=stdin
    )
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, args))} failed ({done.returncode}):\n{done.stderr}")
    return done


def time_commands(
    commands: dict[str, list[str]] | Callable[[int], dict[str, list[str]]],
    cwd: Path,
    rounds: int,
    budget_s: float = float("inf"),
    min_rounds: int = 3,
) -> dict[str, Timing]:
    """Wall seconds of fresh processes, interleaved: each round runs every command once,
    so a burst of load on a shared machine hits them all alike. One untimed round first
    (page cache, ``.pyc`` files). ``commands`` may be a function of the round number
    (0 is the untimed round), e.g. to query another row each round. After
    ``min_rounds`` timed rounds, no new round starts once ``budget_s`` seconds are spent
    (a slow command on a loaded machine must not make the bench run for an hour)."""
    times: dict[str, list[float]] = {}
    started = time.perf_counter()
    for i in range(rounds + 1):
        if i > min_rounds and time.perf_counter() - started > budget_s:
            break
        for name, args in (commands(i) if callable(commands) else commands).items():
            start = time.perf_counter()
            run_checked(args, cwd)
            if i:
                times.setdefault(name, []).append(time.perf_counter() - start)
    return {name: Timing(t) for name, t in times.items()}


def time_calls(
    fns: dict[str, Callable[[], object]], rounds: int, warmup: bool = True
) -> dict[str, Timing]:
    """Seconds of in-process calls, interleaved round-robin (one warm-up call each first
    unless ``warmup`` is false)."""
    for fn in fns.values() if warmup else ():
        fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: Timing(t) for name, t in times.items()}


def imported(args: list[str], cwd: Path, modules: tuple[str, ...]) -> dict[str, bool]:
    """Which of ``modules`` a command imports (``python -X importtime``: no internals)."""
    done = run_checked([PY, "-X", "importtime", *args], cwd)
    names = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines()}
    return {m: m in names for m in modules}


# --------------------------------------------------------------------------- data


def random_unit(n: int, dim: int, seed: int = 0) -> np.ndarray:
    """``(n, dim)`` float32 random unit vectors."""
    rng = np.random.default_rng(seed)
    out = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, 100_000):
        block = rng.standard_normal((min(100_000, n - start), dim), dtype=np.float32)
        block /= np.linalg.norm(block, axis=1, keepdims=True)
        out[start : start + len(block)] = block
    return out


def korsts_dir() -> Path:
    """``shared/data/korsts`` beside the checkout or one of its parents (a worktree
    sits deeper than the main checkout); ``SIMSEARCH_BENCH_KORSTS`` overrides."""
    if "SIMSEARCH_BENCH_KORSTS" in os.environ:
        return Path(os.environ["SIMSEARCH_BENCH_KORSTS"])
    for parent in REPO.parents:
        candidate = parent / "shared" / "data" / "korsts"
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError("KorSTS not found: set SIMSEARCH_BENCH_KORSTS to its directory")


def korsts(split: str = "dev") -> tuple[list[str], list[str], np.ndarray]:
    """``(sentence1, sentence2, score)`` of a KorSTS split."""
    import pandas as pd

    frame = pd.read_csv(korsts_dir() / f"sts-{split}.tsv", sep="\t", quoting=csv.QUOTE_NONE)
    frame = frame.dropna(subset=["sentence1", "sentence2"])
    return list(frame["sentence1"]), list(frame["sentence2"]), frame["score"].to_numpy(float)


def synthetic_korean(n: int, seed: int = 0) -> list[str]:
    """``n`` distinct short Korean texts: 4-6 eojeols drawn from the KorSTS train
    sentences (the data stays in the shared folder; only the cache holds these)."""
    s1, s2, _ = korsts("train")
    words = sorted({w for s in s1 + s2 for w in s.split()})
    rng = random.Random(seed)
    seen: dict[str, None] = {}
    while len(seen) < n:
        seen.setdefault(" ".join(rng.choices(words, k=rng.randint(4, 6))) + ".", None)
    return list(seen)


def tiny_model_768(directory: Path, max_seq_length: int) -> Path:
    """A fast SentenceTransformer whose vectors have 768 dimensions: a 2-layer, 32-dim
    BERT with a character (jamo) vocabulary and random weights, mean pooling, then a
    Dense 32 -> 768 layer. Its short ``max_seq_length`` splits the synthetic texts into
    windows. Built once (imports torch)."""
    if (directory / "modules.json").is_file():
        return directory
    import torch
    from sentence_transformers import SentenceTransformer
    from transformers import BertConfig, BertModel, BertTokenizerFast

    try:  # sentence-transformers >= 6
        from sentence_transformers.sentence_transformer.modules import (
            Dense,
            Pooling,
            Transformer,
        )
    except ImportError:  # 5.x
        from sentence_transformers.models import Dense, Pooling, Transformer

    hf_dir = directory.with_name(directory.name + "-hf")
    hf_dir.mkdir(parents=True, exist_ok=True)
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    chars = [chr(c) for c in range(33, 127) if not chr(c).isupper()]
    jamo = [chr(c) for c in range(0x1100, 0x1200)]
    pieces = chars + jamo + ["##" + c for c in chars + jamo]
    (hf_dir / "vocab.txt").write_text("\n".join(specials + pieces) + "\n", encoding="utf-8")
    tokenizer = BertTokenizerFast(vocab=str(hf_dir / "vocab.txt"), do_lower_case=True)
    config = BertConfig(
        vocab_size=len(specials) + len(pieces),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=256,
    )
    torch.manual_seed(0)
    BertModel(config).save_pretrained(hf_dir)
    tokenizer.save_pretrained(hf_dir)
    word = Transformer(str(hf_dir), max_seq_length=max_seq_length)
    pooling = Pooling(config.hidden_size, pooling_mode="mean")
    dense = Dense(config.hidden_size, 768, activation_function=torch.nn.Identity())
    model = SentenceTransformer(modules=[word, pooling, dense], device="cpu")
    model.save(str(directory))
    return directory


# --------------------------------------------------------------------------- indexes


def source_hash() -> str:
    """Hash of every ``.py`` file of ``src/simsearch`` (the stamp of a cached index)."""
    digest = hashlib.sha256()
    for path in sorted((REPO / "src" / "simsearch").rglob("*.py")):
        digest.update(str(path.relative_to(REPO)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def ensure_index(cache: Path, name: str, args: list[str], inputs: str) -> float:
    """Make ``cache/idx/<name>`` current: run ``python -m simsearch index ARGS --index idx
    --name NAME -q`` in ``cache`` unless the stamp (source hash, inputs) matches; retry
    with ``--rebuild`` if the current code refuses the cached index.

    Returns:
        Seconds spent (0 when the cached index was current).
    """
    stamp_file = cache / f"stamp-{name}.json"
    stamp = {"format": FORMAT, "source": source_hash(), "inputs": inputs, "args": args}
    if stamp_file.is_file() and json.loads(stamp_file.read_text()) == stamp:
        return 0.0
    command = [PY, "-m", "simsearch", "index", *args, "--index", "idx", "--name", name, "-q"]
    log(f"indexing {name} (first run or code changed): {' '.join(command[2:])}")
    start = time.perf_counter()
    try:
        run_checked(command, cache)
    except RuntimeError as exc:
        log(f"re-indexing {name} with --rebuild: {str(exc).splitlines()[-1]}")
        run_checked([*command, "--rebuild"], cache)
    spent = time.perf_counter() - start
    stamp_file.write_text(json.dumps(stamp))
    log(f"indexed {name} in {spent:.0f} s")
    return spent


def cold_indexes(cache: Path, n: int) -> tuple[str, str, float]:
    """The two 100k x 768 (``n`` rows) indexes of goal (a), sharing one corpus of
    short Korean texts with a lexical (BM25) index, so the default mode is hybrid:

    * ``rows-N``: one vector per row, random unit vectors imported with ``--embeddings``;
    * ``windows-N``: built by the real builder with :func:`tiny_model_768`, whose
      32-token limit cuts most rows into 2-3 windows.

    Returns:
        ``(rows name, windows name, seconds spent building)``.
    """
    cache.mkdir(parents=True, exist_ok=True)
    corpus, vectors = cache / f"corpus-{n}.csv", cache / f"rows-{n}.npy"
    if not corpus.is_file():
        log(f"writing {n:,} synthetic Korean texts")
        import pandas as pd

        pd.DataFrame({"text": synthetic_korean(n)}).to_csv(corpus.with_suffix(".tmp"), index=False)
        corpus.with_suffix(".tmp").rename(corpus)
    if not vectors.is_file():
        np.save(cache / "tmp.npy", random_unit(n, 768, seed=1))
        (cache / "tmp.npy").rename(vectors)
    model = tiny_model_768(cache / f"tiny768-{FORMAT}", max_seq_length=32)
    rows, windows = f"rows-{n}", f"windows-{n}"
    spent = ensure_index(
        cache, rows, [corpus.name, "-c", "text", "--embeddings", vectors.name], f"{n}"
    )
    spent += ensure_index(
        cache,
        windows,
        [corpus.name, "-c", "text", "-m", str(model), "--backend", "torch", "--batch-size", "256"],
        f"{n}",
    )
    return rows, windows, spent


def query_index(cache: Path, model: str, n_docs: int) -> tuple[str, float]:
    """A small index of ``n_docs`` KorSTS dev sentences built with ``model`` (MiniLM):
    ``index`` exports it to ONNX, which cold ``query`` runs without torch."""
    cache.mkdir(parents=True, exist_ok=True)
    corpus = cache / f"korsts-{n_docs}.csv"
    if not corpus.is_file():
        import pandas as pd

        s1, s2, _ = korsts("dev")
        docs = list(dict.fromkeys(s1 + s2))[:n_docs]
        pd.DataFrame({"text": docs}).to_csv(corpus, index=False)
    name = f"query-{n_docs}"
    spent = ensure_index(cache, name, [corpus.name, "-c", "text", "-m", model], model)
    return name, spent
