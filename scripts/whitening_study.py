"""What BERT-whitening does to KorSTS dev Spearman, per model (Su et al. 2021).

    PYTHONPATH=src python scripts/whitening_study.py MODEL [MODEL ...]

Each model encodes the dev sentences and the KorSTS train sentences once; the whitening is
fitted either on the dev sentences themselves (what `eval --whiten` does) or on the train
sentences (`eval --whiten --whiten-corpus sts-train.tsv`), keeping all or 256/128/64 dims.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

from simsearch.encoding.sbert import encode, load_model
from simsearch.science.evaluate import sts_correlations
from simsearch.tables.labeled import read_sts_pairs, read_texts
from simsearch.transforms.whitening import fit_whitening

DATA = (Path(__file__).resolve().parents[1] / ".." / "shared" / "data").resolve()


def main(models: list[str]) -> None:
    dev = read_sts_pairs(DATA / "korsts" / "sts-dev.tsv")
    dev_texts = list(dict.fromkeys([*dev["sentence1"], *dev["sentence2"]]))
    # A seeded 3,000-sentence sample of train keeps this cheap on a 2-core CPU.
    train_all = read_texts(DATA / "korsts" / "sts-train.tsv")
    train_texts = [
        train_all[i] for i in np.random.default_rng(0).choice(len(train_all), 3000, False)
    ]
    row = {t: i for i, t in enumerate(dev_texts)}
    i1 = [row[t] for t in dev["sentence1"]]
    i2 = [row[t] for t in dev["sentence2"]]
    print("| model | whitening fitted on | dims | dev Spearman | change |")
    print("| --- | --- | --- | --- | --- |")
    for name in models:
        model = load_model(name)
        start = time.perf_counter()
        e_dev = encode(model, dev_texts, batch_size=64)
        e_train = encode(model, train_texts, batch_size=64)
        print(f"<!-- encoded in {time.perf_counter() - start:.0f} s -->", file=sys.stderr)

        def score(e: np.ndarray) -> float:
            return sts_correlations(np.einsum("ij,ij->i", e[i1], e[i2]), dev["score"].to_numpy())[0]

        base = score(e_dev)
        label = Path(name).name if Path(name).name != "model" else "all-MiniLM-L6-v2"
        print(f"| {label} | (none) | {e_dev.shape[1]} | {base:.2f} | |")
        for fit_name, fit_emb in (
            ("dev sentences", e_dev),
            ("3,000 KorSTS train sentences", e_train),
        ):
            for dim in (None, 256, 128, 64):
                if dim is not None and dim >= e_dev.shape[1]:
                    continue
                w = fit_whitening(fit_emb, dim)
                s = score(w.apply(e_dev))
                print(f"| {label} | {fit_name} | {w.dim} | {s:.2f} | {s - base:+.2f} |")
        sys.stdout.flush()


if __name__ == "__main__":
    main(sys.argv[1:])
