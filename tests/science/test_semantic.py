"""Semantic checks with a real trained model (all-MiniLM-L6-v2, offline) on real
Korean data: retrieval must beat chance by a wide margin."""

from __future__ import annotations

import csv

import numpy as np
import pandas as pd
import pytest
from conftest import SAMPLE, shared_file

from simsearch import load_index
from simsearch.build import build_index
from simsearch.search import query_hits, similar_hits


def read_korsts(path):
    frame = pd.read_csv(path, sep="\t", quoting=csv.QUOTE_NONE)
    return frame.dropna(subset=["sentence1", "sentence2"]).reset_index(drop=True)


@pytest.fixture(scope="module")
def korsts_index(tmp_path_factory, minilm):
    dev = read_korsts(shared_file("korsts/sts-dev.tsv"))
    corpus = pd.DataFrame({"sentence": dev["sentence2"].drop_duplicates().tolist()})
    root = tmp_path_factory.mktemp("korsts")
    corpus.to_csv(root / "corpus.csv", index=False)
    build_index(root / "corpus.csv", "sentence", model=minilm, root=root / "index", batch_size=64)
    return dev, corpus, load_index(root / "index")


@pytest.mark.slow  # encodes 1,400 KorSTS sentences with MiniLM (about 30 s on 2 cores)
def test_query_finds_the_paraphrase_far_more_often_than_chance(korsts_index):
    dev, corpus, index = korsts_index
    pairs = dev[dev["score"] >= 4.5]
    hits = query_hits(index, pairs["sentence1"].tolist(), k=10, batch_size=64)
    found = {}
    for hit in hits:
        target = pairs["sentence2"].iloc[hit.query_index]
        found[hit.query_index] = found.get(hit.query_index, False) or hit.text == target
    recall_at_10 = np.mean(list(found.values()))
    chance = 10 / len(corpus)
    print(
        f"KorSTS dev, {len(pairs)} pairs >= 4.5, {len(corpus)} docs: recall@10 "
        f"{recall_at_10:.3f} vs chance {chance:.4f}"
    )
    assert len(pairs) > 100
    assert recall_at_10 >= 0.5 and recall_at_10 >= 50 * chance


@pytest.mark.slow
def test_similar_ranks_same_topic_documents_above_chance(tmp_path, minilm):
    if not SAMPLE.exists():
        pytest.skip("data/patents.xlsx missing")
    build_index(SAMPLE, "abstract", model=minilm, root=tmp_path)
    index = load_index(tmp_path)
    topics = pd.read_excel(SAMPLE)["topic"].tolist()
    texts = index.texts
    docs = [i for i, t in enumerate(texts) if t]
    precision = []
    for doc in docs:
        hits = similar_hits(index, doc, k=5)
        precision.append(np.mean([topics[h.row] == topics[doc] for h in hits]))
    chance = np.mean([(topics.count(topics[d]) - 1) / (len(docs) - 1) for d in docs])
    print(f"sample patents: same-topic precision@5 {np.mean(precision):.3f} vs chance {chance:.3f}")
    assert np.mean(precision) >= 1.4 * chance
