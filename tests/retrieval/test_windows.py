"""Windows over long documents (chunking) and ranking rows by their windows, pinned against
brute force."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from conftest import shared_file

from simsearch.retrieval import dense as window_ranking
from simsearch.retrieval.dense_index import DenseParts, ExactDense
from simsearch.retrieval.parts import row_vectors_of
from simsearch.retrieval.rowfilter import RowFilter
from simsearch.retrieval.topk import top_k
from simsearch.text import windows as chunking


def word_spans(texts):
    """One token per whitespace-separated word (a tokenizer we can count by eye)."""
    import re

    return [
        np.array([m.span() for m in re.finditer(r"\S+", t)], dtype=np.int64).reshape(-1, 2)
        for t in texts
    ]


SENTENCES = [
    f"문장{i} " + " ".join(f"w{i}_{j}" for j in range(i % 4 + 2)) + "." for i in range(30)
]
LONG = " ".join(SENTENCES)


def _tokens_in(text: str) -> int:
    return len(text.split())


def test_short_text_is_one_window():
    text = "짧은 문서 입니다."
    spans = word_spans([text])[0]
    assert chunking.split_document(text, spans, chunking.WindowOptions(8)) == [(0, len(text))]


@pytest.mark.parametrize("max_tokens,overlap", [(12, 3), (7, 0), (20, 6), (4, 1)])
def test_windows_fit_cover_and_overlap(max_tokens, overlap):
    options = chunking.WindowOptions(max_tokens, overlap)
    spans = word_spans([LONG])[0]
    windows = chunking.split_document(LONG, spans, options)
    assert len(windows) > 1
    covered = set()
    for start, end in windows:
        piece = LONG[start:end]
        assert _tokens_in(piece) <= max_tokens  # never truncated by the model
        covered |= {i for i, (a, b) in enumerate(spans) if a >= start and b <= end}
    assert covered == set(range(len(spans)))  # every token is in some window
    for (a0, a1), (b0, b1) in zip(windows, windows[1:]):
        assert a0 < b0 and a1 < b1  # windows advance
        shared = LONG[b0:a1] if b0 < a1 else ""
        assert _tokens_in(shared) <= max(overlap, 0)


def test_windows_keep_whole_sentences_when_they_fit():
    spans = word_spans([LONG])[0]
    for start, end in chunking.split_document(LONG, spans, chunking.WindowOptions(12, 3)):
        piece = LONG[start:end]
        assert piece.startswith("문장") and piece.endswith(".")


def test_make_windows_row_map_and_empty_rows():
    texts = [LONG, "", "짧다.", LONG]
    windows = chunking.make_windows(
        texts, word_spans, chunking.WindowOptions(12, 3), chunking.regex_sentence_spans
    )
    offsets = windows.offsets
    assert offsets[0] == 0 and offsets[-1] == windows.n_windows
    assert np.all(np.diff(offsets) >= 1)
    assert windows.n_split == 2
    assert windows.texts[offsets[1]] == "" and windows.texts[offsets[2]] == "짧다."
    for w in range(windows.n_windows):
        row = windows.row[w]
        assert texts[row][windows.start[w] : windows.end[w]] == windows.texts[w]


def test_row_offsets_refuses_a_row_without_window():
    with pytest.raises(ValueError, match="at least one window"):
        chunking.row_offsets(np.array([0, 0, 2]), 3)


def test_minilm_windows_fit_its_tokenizer(minilm):
    """Real Korean documents and the real tokenizer: every window fits max_seq_length."""
    path = shared_file("korsts/sts-dev.tsv")
    import pandas as pd
    from transformers import AutoTokenizer

    sts = pd.read_csv(path, sep="\t", quoting=csv.QUOTE_NONE).dropna(subset=["sentence1"])
    sentences = sts.sentence1.tolist()[:48]
    docs = [" ".join(sentences[i : i + 12]) for i in range(0, 48, 12)]
    tokenizer = AutoTokenizer.from_pretrained(minilm)
    spans = chunking.hf_token_spans(tokenizer)
    windows = chunking.make_windows(docs, spans, chunking.WindowOptions(254))
    assert windows.n_split == 4  # ~400 Hangul characters are ~1000 jamo word pieces
    lengths = [len(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in windows.texts]
    assert max(lengths) <= 254
    # Kiwi's splitter: every window starts at a sentence start of its document.
    for w in range(windows.n_windows):
        doc = docs[windows.row[w]]
        assert windows.start[w] == 0 or doc[windows.start[w] - 1] == " "


# ------------------------------------------------------------------ ranking over windows
def _random_windows(seed=0, n_rows=40, dim=16):
    rng = np.random.default_rng(seed)
    counts = rng.integers(1, 5, size=n_rows)
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    emb = rng.normal(size=(offsets[-1], dim)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    queries = rng.normal(size=(3, dim)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    return emb, offsets, queries


@pytest.mark.parametrize("how", ["max", "mean"])
def test_aggregate_matches_loops(how):
    emb, offsets, queries = _random_windows()
    scores = queries @ emb.T
    got = window_ranking.aggregate(scores, offsets, how)
    fn = np.max if how == "max" else np.mean
    want = np.array(
        [[fn(s[offsets[r] : offsets[r + 1]]) for r in range(len(offsets) - 1)] for s in scores]
    )
    np.testing.assert_allclose(got, want, rtol=1e-6)


def _exact(emb, offsets):
    return ExactDense(DenseParts(emb, offsets, row_vectors_of(emb, offsets)))


def test_exact_dense_with_one_window_per_row_equals_top_k():
    emb, _, queries = _random_windows()
    ident = np.arange(len(emb) + 1)
    found = ExactDense(DenseParts(emb, ident, emb)).search(queries, 7, None, None, "max")
    rows, sims = top_k(emb, queries, 7)
    np.testing.assert_array_equal(np.stack([f[0] for f in found]), rows)
    np.testing.assert_allclose(np.stack([f[1] for f in found]), sims)


def test_exact_dense_best_window_and_filter():
    emb, offsets, queries = _random_windows()
    allowed = np.zeros(len(offsets) - 1, dtype=bool)
    allowed[[3, 5, 8, 13, 21]] = True
    found = _exact(emb, offsets).search(queries, 10, RowFilter(allowed), None, "max")
    assert [len(f[0]) for f in found] == [5, 5, 5]  # every allowed row, no more
    assert set(found[0][0].tolist()) == {3, 5, 8, 13, 21}
    scores = queries @ emb.T
    for q in range(3):
        for r, s in zip(*found[q]):
            assert s == pytest.approx(scores[q, offsets[r] : offsets[r + 1]].max())
    # Filtering before ranking: the top 3 of the allowed rows, not the allowed part of a top 3.
    top3 = _exact(emb, offsets).search(queries, 3, RowFilter(allowed), None, "max")
    for q in range(3):
        np.testing.assert_array_equal(top3[q][0], found[q][0][:3])


def test_document_scores_match_definitions():
    emb, offsets, _ = _random_windows(seed=1, n_rows=12)
    doc = 4
    own = emb[offsets[doc] : offsets[doc + 1]]
    for r in range(12):
        other = emb[offsets[r] : offsets[r + 1]]
        s = own @ other.T
        best_match = (s.max(axis=1).mean() + s.max(axis=0).mean()) / 2
        a, b = own.mean(axis=0), other.mean(axis=0)
        centroid = a @ b / np.linalg.norm(a) / np.linalg.norm(b)
        for method, want in [("best_match", best_match), ("centroid", centroid),
                             ("best_pair", s.max())]:
            got = window_ranking.document_scores(emb, offsets, doc, method)[r]
            assert got == pytest.approx(want, abs=1e-5), method
    rows = row_vectors_of(emb, offsets)
    [(found, scores)] = _exact(emb, offsets).search(rows[doc], 5, None, np.array([doc]), "row")
    assert doc not in found and len(found) == 5
    centroids = window_ranking.document_scores(emb, offsets, doc, "centroid")
    np.testing.assert_allclose(scores, centroids[found], atol=1e-5)


def test_cuts_inside_a_long_sentence_never_split_a_character(minilm):
    """MiniLM spells Hangul in jamo (several tokens per character): a cut between them
    would put more tokens into a window than counted, and the model would truncate it."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(minilm)
    text = " ".join(["가나다라마바사아"] * 60)  # one "sentence" far longer than a window
    for max_tokens, overlap in [(50, 10), (37, 5)]:
        windows = chunking.make_windows(
            [text], chunking.hf_token_spans(tokenizer),
            chunking.WindowOptions(max_tokens, overlap), chunking.regex_sentence_spans,
        )
        assert windows.n_windows > 1
        counts = [len(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in windows.texts]
        assert max(counts) <= max_tokens


def test_per_sentence_windows_are_the_sentences():
    """``per_sentence``: one window per sentence, also in a text that fits, each the
    sentence splitter's span (trimmed to its tokens); a long sentence is still cut."""
    text = "짧은 문장 하나. 둘째 문장 입니다. 셋째."
    spans = word_spans([text])[0]
    options = chunking.WindowOptions(50, per_sentence=True)
    windows = chunking.split_document(text, spans, options)
    expected = chunking.regex_sentence_spans(text)
    assert windows == expected
    assert [text[a:b] for a, b in windows] == ["짧은 문장 하나.", "둘째 문장 입니다.", "셋째."]
    assert chunking.split_document("한 문장.", word_spans(["한 문장."])[0], options) == [(0, 5)]
    long = chunking.split_document(LONG, word_spans([LONG])[0],
                                   chunking.WindowOptions(3, 0, per_sentence=True))
    assert all(_tokens_in(LONG[a:b]) <= 3 for a, b in long)
    assert len(long) > len(SENTENCES)  # sentences of 3-6 tokens were cut
    corpus = chunking.make_windows([text, "", "한 문장."], word_spans, options,
                                   chunking.regex_sentence_spans)
    assert corpus.row.tolist() == [0, 0, 0, 1, 2]  # the empty row keeps its one window
