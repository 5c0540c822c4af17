"""One hit, one shape: the fields every output writes."""

from __future__ import annotations

import dataclasses
import json

import pytest

from simsearch.retrieval.hit import FLAT_FIELDS, JSON_FIELDS, Hit


def _hit(**extra):
    return Hit(rank=1, row=4, score=0.7, mode="hybrid", similarity=0.9, cosine_distance=0.1,
               text="리튬 전지 음극", matched_text="리튬 전지", matched_terms=["리튬", "전지"],
               spans=[(0, 2)], columns={"title": "제목", "year": float("nan")}, **extra)


def test_hit_is_frozen_and_writes_one_json_shape():
    hit = _hit()
    with pytest.raises(dataclasses.FrozenInstanceError):
        hit.rank = 2
    record = hit.to_json(["title", "year"])
    assert list(record) == [*JSON_FIELDS, "columns"]
    assert record["columns"] == {"title": "제목", "year": None}  # JSON has no NaN
    json.dumps(record, allow_nan=False)
    assert "columns" not in hit.to_json()
    query = _hit(query="리튬", query_index=0)
    assert list(query.to_json())[:2] == ["query_index", "query"]
    assert query.to_dict()["spans"] == [(0, 2)] and "query" not in hit.to_dict()


def test_flat_row_of_csv_and_xlsx():
    flat = _hit().flat(["title"])
    assert list(flat) == [*FLAT_FIELDS, "title", "text"]
    assert flat["matched_terms"] == "리튬, 전지" and flat["score"] == 0.7
    every = _hit().flat()
    assert list(every) == [*FLAT_FIELDS, "title", "year"]  # the source columns hold the text
