"""Benchmark: a --where filter over N rows, DuckDB (simsearch.retrieval.filters) against
pandas ``DataFrame.query``, side by side in one run, plus filtered top-k.

Builds a synthetic table shaped like a patent list (year int, applicant and topic
strings from small vocabularies, a 400-character abstract), writes it with
``simsearch.retrieval.filters.write_columns`` and times:
  - load: reading the parquet column file (cold, once per index; cached after);
  - filter: one expression -> sorted allowed rows (warm, median of repeats);
  - the same with pandas ``DataFrame.query`` on the loaded DataFrame;
  - the filtered exact scan (``ExactDense`` with a ``RowFilter``: exact cosine top-10 over
    the allowed rows) against an unfiltered
    ``ranking.top_k`` over all rows, 384-dim embeddings.

Run (from the project root):
    OMP_NUM_THREADS=1 nice -n 10 python scripts/bench_filters.py --rows 1000000
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from simsearch.retrieval import filters
from simsearch.retrieval.topk import top_k

APPLICANTS = ["삼성전자", "LG에너지솔루션", "SK하이닉스", "현대자동차", "LG디스플레이",
              "삼성SDI", "한국전자통신연구원", "CJ제일제당", "현대건설", "농촌진흥청"]
TOPICS = ["battery", "semiconductor", "display", "telecom", "food", "construction"]
#: (expression, the columns it reads): valid in both DuckDB SQL and pandas query syntax.
EXPRESSIONS = [
    ("year >= 2020 and applicant == '삼성전자'", ["year", "applicant"]),
    ("topic in ('battery', 'display') and year >= 2018 and year <= 2021", ["topic", "year"]),
    ("(applicant == 'LG디스플레이' or topic == 'food') and year != 2019",
     ["applicant", "topic", "year"]),
]


def make_table(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    words = np.array(["전극", "음극재", "기판", "센서", "제어", "방법", "장치", "조성물"])
    title = pd.Series(words[rng.integers(0, len(words), n)]).str.cat(
        pd.Series(words[rng.integers(0, len(words), n)]), sep=" ")
    return pd.DataFrame({
        "number": [f"10-{y}-{i:07d}" for i, y in enumerate(rng.integers(2010, 2025, n))],
        "title": title,
        "abstract": "본 발명은 " + "가" * 400,
        "topic": np.array(TOPICS)[rng.integers(0, len(TOPICS), n)],
        "year": rng.integers(2010, 2025, n),
        "applicant": np.array(APPLICANTS)[rng.integers(0, len(APPLICANTS), n)],
    })


def timed(fn, repeat: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--dim", type=int, default=384)
    args = parser.parse_args()

    frame = make_table(args.rows)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / filters.COLUMNS_FILE
        start = time.perf_counter()
        filters.write_columns(frame, path)
        write_s = time.perf_counter() - start
        size_mb = path.stat().st_size / 2**20
        print(f"{args.rows:,} rows, parquet {size_mb:.1f} MiB, written in {write_s:.2f} s")
        print("cold: first filter on a freshly opened index (reads the named columns); "
              "warm: median of repeats")
        print(f"{'expression':<66} {'rows':>8} {'duckdb cold':>11} {'warm':>6} "
              f"{'pandas cold':>11} {'warm':>6}")
        for expr, needed in EXPRESSIONS:
            filters._CACHE.clear()
            cold_s, rows = timed(lambda e=expr: filters.filter_rows(path, e), 1)
            table = filters.load_columns(path)
            warm_s, rows = timed(lambda e=expr, t=table: t.select(e), args.repeat)
            pandas_cold_s, loaded = timed(lambda n=needed: pd.read_parquet(path, columns=n), 1)
            pandas_s, sel = timed(
                lambda e=expr, d=loaded: np.flatnonzero(d.eval(e, engine="python").to_numpy()),
                args.repeat)
            assert np.array_equal(rows, sel), expr  # same rows from both libraries
            print(f"{expr:<66} {len(rows):>8,} {cold_s:>11.3f} {warm_s:>6.3f} "
                  f"{pandas_cold_s + pandas_s:>11.3f} {pandas_s:>6.3f}")
        table = filters.load_columns(path)

        rng = np.random.default_rng(1)
        emb = rng.standard_normal((args.rows, args.dim), dtype=np.float32)
        emb /= np.linalg.norm(emb, axis=1, keepdims=True)
        query = emb[:1].copy()
        full_s, _ = timed(lambda: top_k(emb, query, 10), args.repeat)
        print(f"top-10 cosine, {args.dim}-dim: all {args.rows:,} rows {full_s:.3f} s")
        for expr, _ in EXPRESSIONS[:2]:
            rows = table.select(expr)
            within_s, (idx, _) = timed(lambda r=rows: top_k_w(emb, query, r), args.repeat)
            assert np.isin(idx, rows).all()
            print(f"  within {len(rows):>9,} allowed rows ({expr[:40]}...): {within_s:.3f} s")


def top_k_w(emb, query, rows):
    """The exact dense scan with the filter applied before selection (what rank() runs)."""
    from simsearch.retrieval.dense_index import DenseParts, ExactDense
    from simsearch.retrieval.rowfilter import RowFilter

    offsets = np.arange(len(emb) + 1, dtype=np.int64)
    dense = ExactDense(DenseParts(emb, offsets, emb))
    [(idx, sims)] = dense.search(query, 10, RowFilter.of_rows(rows, len(emb)), None, "max")
    return idx, sims


if __name__ == "__main__":
    main()
