"""The Kiwi analysis of the lexical part runs beside the encoding (issue 20, part 3):
the index it gives is byte for byte the one the sequential build gives, a repeated text
is analysed once, and the analysis stops when asked."""

from __future__ import annotations

import csv

import pandas as pd
import pytest
from conftest import shared_file

from simsearch import load_index
from simsearch.build import build_index
from simsearch.build import terms as beside
from simsearch.retrieval.bm25 import AnalysisStopped, TokenStore

PARTS = ("lexical_matrix", "lexical_vocab", "lexical_terms")


def korsts_rows(n: int) -> list[str]:
    path = shared_file("korsts", "sts-dev.tsv")
    frame = pd.read_csv(path, sep="\t", quoting=csv.QUOTE_NONE)
    return frame["sentence1"].dropna().drop_duplicates().head(n).tolist()


def build(directory, texts, tiny_model):
    directory.mkdir(exist_ok=True)
    source = directory / "docs.csv"
    pd.DataFrame({"text": texts}).to_csv(source, index=False)
    report = build_index(source, "text", model=tiny_model, root=directory / "idx")
    return report, load_index(directory / "idx")


def part_bytes(index) -> dict[str, bytes]:
    return {role: index.file(role).read_bytes() for role in PARTS}


@pytest.mark.parametrize("on", [True, False])
def test_beside_and_after_give_the_same_index(tmp_path, tiny_model, monkeypatch, on):
    texts = korsts_rows(300)
    texts[5] = texts[9]  # a repeated text
    texts[7] = ""
    monkeypatch.setattr(beside, "BESIDE", on)
    report, index = build(tmp_path / "a", texts, tiny_model)
    monkeypatch.setattr(beside, "BESIDE", not on)
    other_report, other = build(tmp_path / "b", texts, tiny_model)
    assert part_bytes(index) == part_bytes(other)
    # 300 texts, one a repeat of another: 299 distinct analyses (the empty one included).
    assert report.tokenized == other_report.tokenized == 299
    # A rebuild after an edit analyses only the edited text, beside or not.
    texts[0] = "콘크리트 균열을 박테리아로 보수한다."
    again, _ = build(tmp_path / "a", texts, tiny_model)
    assert again.tokenized == 1 and again.encoded == 1


def test_the_analysis_stops_at_the_next_chunk():
    texts = [f"문장 {i}번은 리튬 전지에 관한 것이다." for i in range(50)]
    calls = []

    def stopped() -> bool:
        calls.append(1)
        return len(calls) > 2  # two chunks run, the third is refused

    with pytest.raises(AnalysisStopped):
        TokenStore([], []).update(texts, chunk=10, stopped=stopped)
    store, n = TokenStore([], []).update(texts, chunk=10, stopped=lambda: False)
    assert n == 50 and store.terms == TokenStore([], []).update(texts)[0].terms


def test_an_analysis_error_reaches_the_build(tmp_path, tiny_model, monkeypatch):
    """An error in the background thread is raised by the build, not lost with it."""
    from simsearch.retrieval import bm25

    def broken(_texts):
        raise RuntimeError("kiwi broke")

    monkeypatch.setattr(bm25, "tokenize", broken)
    with pytest.raises(RuntimeError, match="kiwi broke"):
        build(tmp_path, korsts_rows(20), tiny_model)
    assert not (tmp_path / "idx" / "default" / "meta.json").exists()  # nothing committed
    monkeypatch.undo()
    report, index = build(tmp_path, korsts_rows(20), tiny_model)
    # The rerun reuses the encoding the failed run checkpointed.
    assert report.resumed == 20 and report.encoded == 0 and report.tokenized == 20
