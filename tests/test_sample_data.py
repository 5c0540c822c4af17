"""data/patents.xlsx is what scripts/make_sample_data.py writes, with the properties
the README and the tests rely on."""

from __future__ import annotations

import sys

import pandas as pd
from conftest import REPO, SAMPLE

sys.path.insert(0, str(REPO / "scripts"))
import make_sample_data  # noqa: E402
from sample_details import TAIL_PHRASES  # noqa: E402


def test_the_committed_sample_is_the_generated_one():
    committed = pd.read_excel(SAMPLE, sheet_name="patents")
    generated = make_sample_data.sample_frame()
    pd.testing.assert_frame_equal(committed, generated, check_dtype=False)


def test_sample_shape_lengths_and_filter_columns():
    df = pd.read_excel(SAMPLE)
    assert df["topic"].value_counts().to_dict() == {t: 12 for t in make_sample_data.TOPIC_ORDER}
    assert df["abstract"].isna().tolist() == [i == 57 for i in range(120)]
    lengths = df["abstract"].dropna().str.len()
    assert lengths.between(300, 600).all()
    # Korean patent abstract form: "본 발명은 … 관한 것으로, … 특징으로 한다/하며 …".
    for text in df["abstract"].dropna():
        assert text.startswith("본 발명은") and "관한 것으로" in text and "특징으로 " in text
    assert (df["year"] == df["number"].str[3:7].astype(int)).all()
    assert df["applicant"].value_counts().max() >= 5  # repeated applicants to filter on
    assert ((df["year"] >= 2020) & (df["applicant"] == "삼성전자")).sum() >= 5


def test_tail_phrases_occur_once_and_only_at_the_end():
    abstracts = pd.read_excel(SAMPLE).set_index("number")["abstract"].fillna("")
    for number, phrase in TAIL_PHRASES.items():
        holders = abstracts[abstracts.str.contains(phrase, regex=False)]
        assert list(holders.index) == [number]
        text = holders.iloc[0]
        assert text.index(phrase) >= make_sample_data.TAIL_START
        assert text.index(phrase) > len(text) - len(phrase) - 120  # in the last sentence
