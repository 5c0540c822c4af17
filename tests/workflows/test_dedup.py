"""`dedup`: exact pairs against brute force, groups as connected components, and planted
near-duplicates among real Korean sentences found through a real index."""

from __future__ import annotations

import csv
import random
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import simsearch
from simsearch.errors import InvalidParameter, SimsearchError
from simsearch.retrieval.parts import row_embeddings
from simsearch.tables.write import write_sheets
from simsearch.workflows.dedup import DedupOptions, duplicate_pairs, find_duplicates, group_labels

REPO = Path(__file__).resolve().parents[2]


def shared_file(relative: str) -> Path:
    """A file of the shared data beside the checkout (``../shared/data``, or two levels up
    for a git worktree under a folder of worktrees); skip when absent."""
    for root in (REPO.parent / "shared" / "data", REPO.parents[1] / "shared" / "data"):
        if (root / relative).exists():
            return root / relative
    pytest.skip(f"shared data {relative} not present (../shared/data)")


def unit(n: int, dim: int, seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_pairs_equal_brute_force_in_any_block_size():
    emb = unit(50, 4, 1)  # 4 dims: many pairs pass 0.9
    emb[10] = 0  # an empty document pairs with nothing
    scores = emb @ emb.T
    i, j = np.nonzero(np.triu(scores >= 0.9, k=1))
    expected = set(zip(i.tolist(), j.tolist()))
    assert len(expected) > 10
    for block_bytes in (4 * 50 * 3, 1 << 20):
        a, b, sims = duplicate_pairs(emb, 0.9, block_bytes=block_bytes)
        assert set(zip(a.tolist(), b.tolist())) == expected
        assert (a < b).all() and 10 not in a and 10 not in b
        np.testing.assert_allclose(sims, scores[a, b], atol=1e-6)
        assert (np.diff(sims) <= 0).all()  # most similar first
    with pytest.raises(ValueError, match="raise the threshold"):
        duplicate_pairs(emb, 0.9, max_pairs=5)
    with pytest.raises(ValueError, match=r"threshold must be in \(0, 1\]"):
        duplicate_pairs(emb, 0.0)


def test_groups_are_connected_components_largest_first():
    # 0~1, 1~2 (a chain), 5~7, 8~9 apart; 3, 4, 6 alone.
    labels = group_labels(10, np.array([0, 1, 8, 5]), np.array([1, 2, 9, 7]))
    assert labels.tolist() == [0, 0, 0, -1, -1, 1, -1, 1, 2, 2]


@pytest.fixture
def planted(workdir, tiny_model):
    """150 real KorNLI premises + 30 edited copies, indexed with the tiny model."""
    path = shared_file("kornli/xnli.dev.ko.tsv")
    frame = pd.read_csv(path, sep="\t", quoting=csv.QUOTE_NONE)
    texts = list(dict.fromkeys(frame["sentence1"].dropna().astype(str)))[:150]
    rng = random.Random(3)
    truth = []
    corpus = list(texts)
    for n, source in enumerate(rng.sample(range(len(texts)), 30)):
        text = texts[source]
        if n % 3 == 0:  # spacing
            copy = text.replace(" ", "  ", 1)
        elif n % 3 == 1:  # punctuation
            copy = text.rstrip(".") + "!"
        else:  # one word deleted
            words = text.split()
            copy = " ".join(words[:1] + words[2:])
        truth.append((source, len(corpus)))
        corpus.append(copy)
    pd.DataFrame({"id": range(len(corpus)), "text": corpus}).to_csv(workdir / "c.csv", index=False)
    simsearch.build_index(workdir / "c.csv", "text", model=tiny_model)
    return simsearch.load_index(), set(truth)


def test_planted_duplicates_are_found(planted, workdir):
    index, truth = planted
    found = find_duplicates(index, DedupOptions(threshold=0.997, show=("id",)))
    pairs = set(zip(found.pairs["row_a"], found.pairs["row_b"]))
    recall = len(pairs & truth) / len(truth)
    precision = len(pairs & truth) / max(len(pairs), 1)
    assert recall >= 0.8, (recall, precision)
    assert precision >= 0.8, precision
    # Every pair's two rows share a group; the groups table lists each member once.
    groups = found.groups
    assert groups["row"].is_unique
    group_of = dict(zip(groups["row"], groups["group"]))
    assert all(group_of[a] == group_of[b] for a, b in pairs)
    assert (groups["size"] >= 2).all()
    first = groups.iloc[0]
    assert first["text"] == index.texts[first["row"]]
    assert int(first["id"]) == first["row"]  # the show column comes from the same row
    # A copy's best match is its original (or another copy of the same text).
    for a, b in truth & pairs:
        assert groups.set_index("row").loc[b, "best_match"] == a
    paths = write_sheets({"groups": groups, "pairs": found.pairs}, workdir / "d.xlsx")
    book = pd.read_excel(paths[0], sheet_name=None)
    assert list(book) == ["groups", "pairs"] and len(book["pairs"]) == len(pairs)
    csvs = write_sheets({"groups": groups, "pairs": found.pairs}, workdir / "d.csv")
    assert [p.name for p in csvs] == ["d.csv", "d-pairs.csv"]


def test_dedup_library_errors_name_the_parameter(planted):
    index, _ = planted
    with pytest.raises(InvalidParameter, match="threshold must be a cosine similarity in") as exc:
        find_duplicates(index, DedupOptions(threshold=1.5))
    assert exc.value.param == "threshold"
    with pytest.raises(InvalidParameter, match="more than 10 pairs reach similarity 0.5"):
        find_duplicates(index, DedupOptions(threshold=0.5, max_pairs=10))
    with pytest.raises(SimsearchError, match="no column 'nope' to show"):
        find_duplicates(index, DedupOptions(show=("nope",)))


def test_dedup_modes_are_cosine_thresholded_subsets_of_the_exact_pairs(planted):
    """Dense: every pair at cosine >= threshold (exact join, pinned to brute force);
    hybrid and lexical: the pairs among each row's ranking in that mode that also reach
    the cosine threshold, so a subset of the dense pairs."""
    index, truth = planted
    rows = np.asarray(row_embeddings(index))
    sims = rows @ rows.T
    a, b = np.nonzero(np.triu(sims >= 0.997, k=1))
    dense = find_duplicates(index, DedupOptions(threshold=0.997, mode="dense"))
    dense_pairs = set(zip(dense.pairs["row_a"], dense.pairs["row_b"]))
    assert dense_pairs == set(zip(a.tolist(), b.tolist()))
    # Lexical misses copies whose edits changed their terms; hybrid keeps most.
    for mode, share in (("hybrid", 0.8), ("lexical", 0.6)):
        found = find_duplicates(index, DedupOptions(threshold=0.997, mode=mode))
        pairs = set(zip(found.pairs["row_a"], found.pairs["row_b"]))
        assert pairs <= dense_pairs
        assert len(pairs & truth) >= share * len(truth), (mode, len(pairs & truth))
        assert (found.pairs["similarity"] >= 0.997).all()
    with pytest.raises(InvalidParameter, match="mode must be one of"):
        find_duplicates(index, DedupOptions(mode="sparse"))
