"""Korean lexical search (Kiwi terms + bm25s) and rank fusion, pinned against brute force."""

from __future__ import annotations

import csv
import math
from collections import Counter

import numpy as np
import pytest
from conftest import shared_file

from simsearch.retrieval import bm25 as lexical
from simsearch.retrieval import fusion
from simsearch.retrieval.topk import select

DOCS = [
    "본 발명은 리튬 이차전지용 실리콘 음극재에 관한 것이다.",
    "콘크리트 균열을 스스로 보수하는 박테리아를 포함한다.",
    "자율주행 차량의 라이다 센서와 카메라를 융합하였다.",
    "",
    "리튬 금속 전지의 덴드라이트 성장을 억제하는 전해질을 제공한다.",
    "LED 디스플레이의 휘도를 12% 높였다.",
]


@pytest.fixture(scope="module")
def terms():
    return lexical.tokenize(DOCS)


def test_terms_are_content_morphemes(terms):
    first = terms[0]
    assert {"발명", "리튬", "전지", "실리콘", "음극", "관하다"} <= set(first)
    assert not {"은", "에", "것", "이다", "."} & set(first)  # particles, bound nouns, endings
    assert {"led", "12", "디스플레이", "휘도", "높이다"} <= set(terms[5])  # foreign, number, stem
    assert terms[3] == []


def test_terms_keep_negation_quantity_and_pronouns():
    """Adverbs (MAG), determiners (MM), auxiliary verbs (VX), the negative copula (VCN)
    and pronouns (NP) are terms: a paraphrase keeps them (docs/retrieval.md)."""
    (terms,) = lexical.tokenize(["그는 두 사람을 전혀 보지 않았고 그것은 사과가 아니다."])
    assert {"그", "두", "전혀", "않다", "아니다", "사람", "보다", "사과"} <= set(terms)
    assert not {"는", "을", "았", "고", "."} & set(terms)


def test_text_key_changes_with_the_terms_version():
    """Terms cached under an older tag set are analysed again (the key is salted)."""
    import hashlib

    assert lexical.TERMS_VERSION >= 2
    old = hashlib.sha1("리튬".encode()).hexdigest()[:20]
    assert lexical.text_key("리튬") != old
    assert lexical.TokenStore([old], [["낡은"]]).update(["리튬"])[1] == 1


def bm25_lucene(query: list[str], docs: list[list[str]], k1=1.5, b=0.75) -> np.ndarray:
    """BM25 as Lucene scores it, written out: idf = ln(1 + (N - df + 0.5) / (df + 0.5))."""
    n = len(docs)
    avgdl = sum(map(len, docs)) / n
    df = Counter(t for d in docs for t in set(d))
    out = np.zeros(n)
    for i, doc in enumerate(docs):
        tf = Counter(doc)
        for t in set(query):
            if tf[t]:
                idf = math.log(1 + (n - df[t] + 0.5) / (df[t] + 0.5))
                out[i] += idf * tf[t] / (tf[t] + k1 * (1 - b + b * len(doc) / avgdl))
    return out


def test_bm25_scores_equal_the_formula_and_bm25s(terms):
    import bm25s

    index = lexical.LexicalIndex.build(terms)
    reference = bm25s.BM25()
    reference.index(terms, show_progress=False)
    for query in (["리튬", "전지"], ["콘크리트", "균열", "없는말"], ["led", "12"], ["없는말"]):
        np.testing.assert_allclose(index.scores(query), bm25_lucene(query, terms), rtol=1e-5)
        known = [t for t in query if t in reference.vocab_dict]
        if known:
            np.testing.assert_allclose(index.scores(query), reference.get_scores(known),
                                       rtol=1e-6)


def test_lexical_ranking_filters_before_ranking(terms):
    from simsearch.retrieval.modes import Retriever, SearchOptions
    from simsearch.retrieval.rank import Parts, Query, rank
    from simsearch.retrieval.rowfilter import RowFilter

    index = lexical.LexicalIndex.build(terms)
    parts = Parts(Retriever(None, np.arange(len(terms) + 1), index), None)
    lexical_mode = SearchOptions("lexical")
    [got] = rank(parts, Query(terms=[["리튬"]]), 5, lexical_mode)
    assert set(got.rows.tolist()) == {0, 4}  # only rows sharing a term come back
    allowed = RowFilter(np.array([False, True, True, True, True, True]))
    [got] = rank(parts, Query(terms=[["리튬"]]), 1, lexical_mode, allowed)
    assert got.rows.tolist() == [4]


def test_save_load_and_incremental_tokens(tmp_path, terms):
    index, store, n_new = lexical.build_incremental(DOCS)
    assert n_new == len(set(DOCS))  # the empty text counts once: it is a key like the others
    index.save(tmp_path, store=store)
    loaded = lexical.LexicalIndex.load(tmp_path, with_terms=True)
    np.testing.assert_allclose(loaded.scores(["리튬", "led"]), index.scores(["리튬", "led"]))
    assert loaded.document_terms(0)[:3] == ["본", "발명", "리튬"]  # 본: a determiner (MM)
    # The matrix alone gives each row's terms (what similar uses without the terms file).
    bare = lexical.LexicalIndex.load(tmp_path)
    for row, row_terms in bare.rows_terms(range(len(DOCS))).items():
        assert sorted(row_terms) == sorted(set(terms[row]))
    changed = DOCS[:2] + ["새로운 반도체 웨이퍼 세정 방법."] + DOCS[3:]
    previous = lexical.TokenStore.load(tmp_path / lexical.TOKENS_FILE)
    again_index, again, n_new = lexical.build_incremental(changed, previous)
    assert n_new == 1  # only the changed text is analysed again
    assert again.terms[:2] == terms[:2] and "웨이퍼" in again.terms[2]
    fresh = lexical.LexicalIndex.from_texts(changed)  # equals a build from scratch
    query = ["웨이퍼", "리튬"]
    np.testing.assert_allclose(again_index.scores(query), fresh.scores(query))


def test_surface_spans_find_terms_without_kiwi():
    text = "리튬 금속 전지의 LED 성장을 억제하고 높이며 높인다"
    spans = lexical.surface_spans(text, ["리튬", "전지", "led", "억제", "높이다", "없는말"])
    # A stem fused with its ending into one syllable (높인다 = 높이 + ㄴ다) is not found.
    assert [text[a:b] for a, b, _ in spans] == ["리튬", "전지", "LED", "억제", "높이"]


def test_term_spans_highlight_the_matched_words():
    text = DOCS[4]
    spans = lexical.term_spans(text, ["리튬", "전해질", "없는말"])
    assert [(text[a:b], t) for a, b, t in spans] == [("리튬", "리튬"), ("전해질", "전해질")]
    assert lexical.matched_terms(["전해질", "리튬", "리튬", "없는말"], ["리튬", "전해질"]) == [
        "전해질",
        "리튬",
    ]


def test_lexical_finds_korsts_paraphrases():
    """Real data: BM25 over Kiwi terms finds most KorSTS paraphrases among 700 sentences."""
    import pandas as pd

    sts = pd.read_csv(
        shared_file("korsts/sts-dev.tsv"), sep="\t", quoting=csv.QUOTE_NONE
    ).dropna(subset=["sentence1", "sentence2"])[:700]
    corpus = list(dict.fromkeys(sts.sentence2))
    pairs = sts[sts.score >= 4.5].drop_duplicates("sentence1")
    index = lexical.LexicalIndex.from_texts(corpus)
    row_of = {t: i for i, t in enumerate(corpus)}
    hits = 0
    for query, target in zip(pairs.sentence1, pairs.sentence2):
        scores = index.scores(lexical.tokenize([query])[0])
        scores[scores <= 0] = -np.inf  # rows sharing no term with the query never rank
        rows, _ = select(scores, 10)[0]
        hits += row_of[target] in rows.tolist()
    assert hits / len(pairs) > 0.85


# ------------------------------------------------------------------ fusion
def test_rrf_equals_the_formula():
    a, b = np.array([3, 1, 2]), np.array([1, 4])
    fused = fusion.rrf_scores([a, b], 5, [1.0, 1.0], k=60)
    want = np.zeros(5)
    for ranking in (a, b):
        for rank, row in enumerate(ranking, start=1):
            want[row] += 1 / (60 + rank)
    np.testing.assert_allclose(fused, want, rtol=1e-6)
    assert np.argmax(fused) == 1  # in both lists


def test_convex_weights_move_the_winner():
    dense = (np.array([0, 1, 2]), np.array([0.9, 0.5, 0.1]))
    lex = (np.array([2, 1]), np.array([12.0, 3.0]))
    dense_heavy = fusion.fuse(dense, lex, 3, fusion.FusionOptions("convex", 0.8))
    lexical_heavy = fusion.fuse(dense, lex, 3, fusion.FusionOptions("convex", 0.2))
    assert np.argmax(dense_heavy) == 0 and np.argmax(lexical_heavy) == 2
    np.testing.assert_allclose(dense_heavy, [0.8, 0.4, 0.2], rtol=1e-6)


def test_fusion_options_are_checked():
    with pytest.raises(ValueError, match="fusion must be one of"):
        fusion.FusionOptions("sum")
    with pytest.raises(ValueError, match="dense weight"):
        fusion.FusionOptions(dense_weight=1.5)


def test_explain_picks_the_window_and_highlights_terms():
    from simsearch.retrieval.matches import explain, highlight, rarest_first, shared_terms

    text = "본 발명은 도로 포장에 관한 것이다. 콘크리트 균열을 박테리아가 보수한다."
    windows = [(0, 20), (21, len(text))]
    terms = lexical.tokenize(["콘크리트 균열 보수"])[0]
    why = explain(text, windows, None, terms)  # lexical: the window holding the terms
    assert why.window == (21, len(text)) and why.matched_text == text[21:]
    assert why.matched_terms == ["콘크리트", "균열", "보수"]
    assert [why.matched_text[s:e] for s, e in why.spans] == ["콘크리트", "균열", "보수"]
    assert explain(text, windows, 0, terms).matched_text == text[:20]  # dense's best window
    marked = highlight(why.matched_text, why.spans)
    assert "[bold yellow]콘크리트[/]" in marked and "[bold yellow]균열[/]" in marked
    index = lexical.LexicalIndex.build(lexical.tokenize(DOCS))
    assert rarest_first(index, ["리튬", "실리콘", "없는말"]) == ["실리콘", "리튬"]
    shared = shared_terms(index, [["전지", "리튬", "콘크리트"]], [[4, 1, 3]])
    assert shared == [{4: ["전지", "리튬"], 1: ["콘크리트"], 3: []}]
