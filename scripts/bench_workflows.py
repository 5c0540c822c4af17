"""Benchmark `neighbors` (every row's top-k) side by side with its baselines, one run.

    OMP_NUM_THREADS=2 nice -n 10 python scripts/bench_workflows.py --n 100000 --dim 768 --k 10

Compares, on the same random unit vectors (float32, seed 0):
- simsearch's dense ranking (ExactDense, what neighbors runs): blocked matrix products +
  partial selection;
- faiss ``IndexFlatIP.search`` with k+1 (exact inner product, then the row itself dropped);
- a Python loop calling ``top_k`` once per row, as ``similar`` would be called per row
  (timed on ``--loop-rows`` rows and extrapolated to all rows).
Reports wall time, rows/s, the peak of traced allocations (tracemalloc sees numpy's
buffers), and checks that the neighbours agree.
"""

from __future__ import annotations

import argparse
import time
import tracemalloc

import numpy as np


def unit_vectors(n: int, dim: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, dim), dtype=np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def timed(fn):
    tracemalloc.start()
    t0 = time.perf_counter()
    out = fn()
    seconds = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return out, seconds, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=768)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument(
        "--rows",
        type=int,
        default=0,
        help="rank only the first ROWS rows (against all n) and extrapolate to n; 0: all",
    )
    parser.add_argument("--loop-rows", type=int, default=300)
    parser.add_argument("--no-faiss", action="store_true")
    args = parser.parse_args()

    from simsearch.retrieval.dense_index import DenseParts, ExactDense
    from simsearch.retrieval.topk import BLOCK_BYTES, top_k

    def neighbor_arrays(emb, k, rows):
        """Every row's k nearest other rows through the dense index of rank() (dense mode)."""
        dense = ExactDense(DenseParts(emb, np.arange(len(emb) + 1, dtype=np.int64), emb))
        found = dense.search(emb[rows], k, None, rows, "max")
        return np.stack([f[0] for f in found]), np.stack([f[1] for f in found])

    emb = unit_vectors(args.n, args.dim)
    print(f"corpus {args.n:,} x {args.dim} float32 ({emb.nbytes / 2**20:.0f} MiB), k={args.k}")
    print(f"block bound {BLOCK_BYTES / 2**20:.0f} MiB")

    m_rows = args.rows or args.n
    scale = args.n / m_rows
    if scale > 1:
        print(f"timing the first {m_rows:,} rows against all {args.n:,}; x{scale:g} for all rows")
    rows = np.arange(m_rows)
    (idx, sims), s_part, peak = timed(lambda: neighbor_arrays(emb, args.k, rows))
    s_ours = s_part * scale
    print(
        f"simsearch neighbors   {s_ours:8.1f} s  {args.n / s_ours:9.0f} rows/s  "
        f"peak traced {peak / 2**20:.0f} MiB (output {(idx.nbytes + sims.nbytes) / 2**20:.0f} MiB)"
    )

    m = min(args.loop_rows, args.n)

    def loop() -> None:
        for row in range(m):
            top_k(emb, emb[row], args.k, exclude=np.array([row]))

    t0 = time.perf_counter()
    loop()
    s_loop = time.perf_counter() - t0
    loop_all = s_loop / m * args.n
    print(
        f"loop of top_k per row {loop_all:8.1f} s  {args.n / loop_all:9.0f} rows/s  "
        f"(timed on {m} rows, extrapolated)  -> neighbors {loop_all / s_ours:.1f}x faster"
    )

    if not args.no_faiss:
        import faiss

        def flat() -> tuple[np.ndarray, np.ndarray]:
            index = faiss.IndexFlatIP(args.dim)
            index.add(emb)
            return index.search(emb[:m_rows], args.k + 1)

        (f_sims, f_idx), s_faiss, f_peak = timed(flat)
        s_faiss *= scale
        print(
            f"faiss IndexFlatIP     {s_faiss:8.1f} s  {args.n / s_faiss:9.0f} rows/s  "
            f"peak traced {f_peak / 2**20:.0f} MiB  -> neighbors {s_faiss / s_ours:.2f}x its speed"
        )
        # faiss returns the row itself first (similarity 1); compare the rest as sets,
        # since float ties may order differently.
        agree = np.mean(
            [
                len(set(a) & set(b[b != r][: args.k])) / args.k
                for r, (a, b) in enumerate(zip(idx[:2000], f_idx[:2000]))
            ]
        )
        print(f"agreement with faiss on the first 2,000 rows: {agree:.4f}")
    print(f"faiss threads: {faiss.omp_get_max_threads() if not args.no_faiss else '-'}")


if __name__ == "__main__":
    main()
