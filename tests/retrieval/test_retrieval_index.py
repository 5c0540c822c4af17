"""Windows and the lexical index inside a real index (tiny model): build, incremental
update, search modes, why-it-matched, and chunking none."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from simsearch import load_index
from simsearch.build import build_index
from simsearch.errors import InvalidParameter
from simsearch.retrieval.modes import SearchOptions
from simsearch.retrieval.parts import open_parts, row_embeddings
from simsearch.retrieval.rank import Query, rank
from simsearch.search import query_hits, search_options, similar_hits

FILLER = "본 발명은 리튬 이차전지용 실리콘 음극재의 제조 방법에 관한 것으로 입자를 코팅한다. "
TEXTS = [
    FILLER * 3 + "마지막 문장에는 잉크젯 프린팅 유기 발광층이 나온다.",  # long: split
    "콘크리트 균열을 박테리아로 보수한다.",
    "",
    "자율주행 차량의 라이다 센서를 카메라와 융합한다.",
    FILLER * 2 + "끝으로 폐수 처리용 멤브레인 필터를 세척한다.",  # long: split
    "리튬 금속 전지의 전해질을 개선한다.",
]


def _build(directory, tiny_model):
    source = directory / "docs.csv"
    pd.DataFrame({"id": range(len(TEXTS)), "text": TEXTS}).to_csv(source, index=False)
    return source, build_index(source, "text", model=tiny_model, root=directory / "idx")


@pytest.fixture(scope="module")
def shared(tmp_path_factory, tiny_model):
    """One index for the tests that only read it (a build costs seconds)."""
    directory = tmp_path_factory.mktemp("retrieval-index")
    _, report = _build(directory, tiny_model)
    return load_index(directory / "idx"), report


@pytest.fixture
def built(workdir, tiny_model):
    """A fresh index in the current directory, for tests that rebuild it."""
    return _build(workdir, tiny_model)


def test_long_documents_become_windows_and_lexical_index_is_built(shared):
    index, report = shared
    windows = index.meta.windows
    assert report.n_split == windows.n_split == 2
    assert index.embeddings.shape[0] == windows.n_windows == report.n_windows > len(TEXTS)
    assert report.tokenized == len(TEXTS)  # every text analysed by Kiwi once
    retriever = open_parts(index).retriever
    assert retriever.n_rows == len(TEXTS) and retriever.lexical is not None
    # Dense ranking over windows equals the brute-force best window per row.
    q = np.asarray(index.embeddings[3])
    parts = open_parts(index)
    [ranking] = rank(parts, Query(vectors=q[None, :]), 3, SearchOptions("dense"))
    off = retriever.offsets
    best = [max(index.embeddings[off[r] : off[r + 1]] @ q) for r in range(len(TEXTS))]
    assert ranking.rows.tolist() == np.argsort(-np.array(best), kind="stable")[:3].tolist()
    # The build stored the row vectors (mean of windows, L2-normalised) and the empty row.
    assert {"row_vectors", "empty_rows"} <= set(index.meta.files)
    for r in range(len(TEXTS)):
        mean = np.asarray(index.embeddings[off[r] : off[r + 1]]).mean(axis=0)
        want = mean / max(np.linalg.norm(mean), 1e-12)
        np.testing.assert_allclose(row_embeddings(index)[r], want, atol=1e-6)
    assert parts.nonempty.rows.tolist() == [r for r, t in enumerate(TEXTS) if t]


def test_a_phrase_at_the_end_of_a_long_document_is_found_and_shown(shared):
    index, _ = shared
    for mode in ("lexical", "hybrid"):
        [hit, *_] = query_hits(index, ["잉크젯 프린팅 발광층"], 3, options=search_options(mode))
        assert hit.row == 0 and hit.mode == mode
        assert "잉크젯" in hit.matched_text and hit.matched_text != TEXTS[0]
        assert {"잉크젯", "프린팅"} <= set(hit.matched_terms)
    [lexical_hit] = query_hits(index, ["멤브레인"], 5, options=search_options("lexical"))
    assert lexical_hit.row == 4 and lexical_hit.similarity is None  # no model loaded


def test_incremental_update_reanalyses_and_reencodes_only_what_changed(built, tiny_model):
    source, first = built
    changed = list(TEXTS)
    changed[1] = "반도체 웨이퍼를 세정하는 방법."
    pd.DataFrame({"id": range(len(changed)), "text": changed}).to_csv(source, index=False)
    root = source.parent / "idx"
    report = build_index(source, "text", model=tiny_model, root=root)
    assert report.tokenized == 1 and report.encoded == 1
    [hit] = query_hits(load_index(root), ["웨이퍼"], 1, options=search_options("lexical"))
    assert hit.row == 1


def test_similar_modes_and_json_why(shared):
    index, _ = shared
    for mode in ("dense", "lexical", "hybrid"):
        hits = similar_hits(index, 0, 2, options=search_options(mode))
        assert 0 not in [h.row for h in hits]
    [top] = similar_hits(index, 0, 1, options=search_options("lexical"))
    assert top.row == 4  # the other lithium-anode document
    assert {"리튬", "음극"} <= set(top.matched_terms)
    record = json.loads(json.dumps(top.to_json()))
    assert {"matched_text", "matched_terms", "score", "mode"} <= set(record)


def test_chunking_sentences_gives_one_window_per_sentence(built, tiny_model):
    """``chunking="sentences"``: every sentence its own window, also in short rows; the
    dense ranking is still the brute-force best window per row."""
    from simsearch.text.windows import kiwi_sentence_spans

    source, _ = built
    root = source.parent / "idx"
    report = build_index(source, "text", model=tiny_model, root=root, chunking="sentences",
                         lexical=False)
    assert "chunking changed (auto -> sentences)" in report.reasons
    index = load_index(root)
    assert index.meta.windows.chunking == "sentences"
    want = [max(len(kiwi_sentence_spans(t)), 1) for t in TEXTS]
    off = open_parts(index).retriever.offsets
    assert np.diff(off).tolist() == want
    q = np.asarray(index.embeddings[off[4] + 1])
    [ranking] = rank(open_parts(index), Query(vectors=q[None, :]), 2, SearchOptions("dense"))
    best = [max(index.embeddings[off[r] : off[r + 1]] @ q) for r in range(len(TEXTS))]
    assert ranking.rows.tolist() == np.argsort(-np.array(best), kind="stable")[:2].tolist()


def test_chunking_none_truncates_as_before(built, tiny_model):
    source, _ = built
    root = source.parent / "idx"
    report = build_index(source, "text", model=tiny_model, root=root, chunking="none",
                         lexical=False)
    assert "chunking changed (auto -> none)" in report.reasons
    index = load_index(root)
    assert index.meta.windows is None and "windows" not in index.meta.files
    assert index.embeddings.shape[0] == len(TEXTS)
    with pytest.raises(InvalidParameter, match="lexical index"):
        query_hits(index, ["리튬"], 2, options=search_options("lexical"))
    with pytest.raises(InvalidParameter, match="mode must be one of"):
        search_options("sparse")


def test_an_index_without_the_row_parts_computes_them_and_ranks_the_same(built):
    """An index written before row vectors and empty rows were stored opens, computes
    them, and gives the same results (never wrong ones)."""
    source, _ = built
    root = source.parent / "idx"
    index = load_index(root)
    before = {mode: similar_hits(index, 0, 5, options=search_options(mode))
              for mode in ("dense", "hybrid")}
    meta_path = root / "default" / "meta.json"
    meta = json.loads(meta_path.read_text())
    for role in ("row_vectors", "empty_rows"):
        (root / "default" / meta["files"].pop(role)["name"]).unlink()
    meta_path.write_text(json.dumps(meta))  # as the current release writes it
    old = load_index(root)
    assert "row_vectors" not in old.meta.files
    for mode, hits in before.items():
        again = similar_hits(old, 0, 5, options=search_options(mode))
        assert [h.row for h in again] == [h.row for h in hits]
        np.testing.assert_allclose([h.score for h in again], [h.score for h in hits], atol=1e-6)
        assert TEXTS.index("") not in [h.row for h in again]


def test_running_index_again_adds_the_row_parts_to_an_older_index(built, tiny_model):
    """``simsearch index`` over an index written before the row parts were stored adds
    them, reusing every vector and every Kiwi analysis."""
    source, _ = built
    root = source.parent / "idx"
    meta_path = root / "default" / "meta.json"
    meta = json.loads(meta_path.read_text())
    for role in ("row_vectors", "empty_rows"):
        (root / "default" / meta["files"].pop(role)["name"]).unlink()
    meta_path.write_text(json.dumps(meta))
    report = build_index(source, "text", model=tiny_model, root=root)
    assert report.encoded == 0 and report.tokenized == 0
    assert {"row_vectors", "empty_rows"} <= set(load_index(root).meta.files)
