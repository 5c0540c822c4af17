"""`map`: UMAP + HDBSCAN recover planted clusters, c-TF-IDF labels name them, the HTML
page and the PNG are written, text is escaped, sampling assigns every row a cluster."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

import simsearch
from simsearch.errors import SimsearchError
from simsearch.tables.write import write_frame
from simsearch.workflows.corpus_map import (
    MapOptions,
    corpus_map,
    ctfidf_terms,
    draw_png,
    write_html,
    write_png,
)

pytestmark = pytest.mark.slow

TOPICS = {
    "battery": "리튬 이차전지 음극재 전해질",
    "display": "유기발광 디스플레이 화소 패널",
    "food": "발효 유산균 김치 효모",
}


@pytest.fixture
def three_topics(workdir):
    """60 rows in three planted clusters (random centres, small noise), Korean texts
    naming their topic's nouns, one empty row, one text with markup in it."""
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((3, 24))
    emb = np.repeat(centres, 20, axis=0) + 0.25 * rng.standard_normal((60, 24))
    topics = np.repeat(list(TOPICS), 20)
    texts = [f"본 발명은 {TOPICS[t]}에 관한 것으로 장치를 포함한다." for t in topics]
    texts[5] = "<script>alert(1)</script> 리튬 이차전지 음극재"
    texts[59] = ""
    emb[59] = 0
    pd.DataFrame({"topic": topics, "text": texts}).to_csv(workdir / "c.csv", index=False)
    np.save(workdir / "e.npy", emb.astype(np.float32))
    simsearch.build_index(workdir / "c.csv", "text", embeddings=workdir / "e.npy", model="none")
    return simsearch.load_index()


def test_map_recovers_planted_topics_and_writes_outputs(three_topics, workdir):
    from sklearn.metrics import adjusted_rand_score

    result = corpus_map(three_topics, MapOptions())
    frame = result.frame
    assert len(frame) == 60 and not frame.loc[59, "drawn"] and frame.loc[59, "cluster"] == -1
    drawn = frame[frame["drawn"]]
    assert adjusted_rand_score(drawn["topic"], drawn["cluster"]) > 0.9
    # Each cluster's label holds its topic's nouns, not the shared boilerplate (발명, 장치).
    for c, terms in result.terms.items():
        topic = drawn.loc[drawn["cluster"] == c, "topic"].mode()[0]
        assert terms and all(t in TOPICS[topic] for t in terms), (terms, topic)
    page = write_html(result, workdir / "map.html", hover=("text",)).read_text(encoding="utf-8")
    assert "<script>alert(1)</script>" not in page  # shown as text, escaped
    assert "&lt;script&gt;alert(1)&lt;" in page
    assert json.dumps("리튬")[1:-1] in page and "plotly" in page  # plotly writes \\uXXXX
    png = write_png(result, workdir / "map.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    by_topic = write_html(result, workdir / "t.html", color="topic")
    assert by_topic.stat().st_size > 0
    with pytest.raises(SimsearchError, match="no column 'nope' for color"):
        write_html(result, workdir / "x.html", color="nope")
    out = write_frame(frame.drop(columns=["x", "y", "drawn"]), workdir / "clusters.xlsx")
    assert pd.read_excel(out)["cluster"].tolist() == frame["cluster"].tolist()


def test_sampled_map_gives_every_row_its_nearest_sampled_cluster(three_topics):
    result = corpus_map(three_topics, MapOptions(max_points=30, min_cluster_size=4))
    frame = result.frame
    assert result.sampled and frame["drawn"].sum() == 30
    rest = frame[~frame["drawn"] & (frame["row"] != 59)]
    assert len(rest) == 29 and (rest["cluster"] >= -1).all()
    emb = np.asarray(three_topics.embeddings)
    drawn_rows = frame.index[frame["drawn"]].to_numpy()
    nearest = drawn_rows[np.argmax(emb[rest.index] @ emb[drawn_rows].T, axis=1)]
    assert rest["cluster"].tolist() == frame.loc[nearest, "cluster"].tolist()


def test_ctfidf_prefers_distinctive_terms():
    docs = [["발명", "전지", "리튬"], ["발명", "전지"], ["발명", "김치"], ["발명", "김치", "효모"]]
    terms = ctfidf_terms(docs, [0, 0, 1, 1], n_terms=2)
    assert terms == {0: ["전지", "리튬"], 1: ["김치", "효모"]}


def test_png_has_a_legend_with_the_korean_labels_and_no_missing_glyphs(three_topics, workdir):
    """Issue 18 B2: the PNG's legend names the clusters by their Korean terms, in a font
    that has Hangul (matplotlib warns "Glyph ... missing from font" otherwise)."""
    import warnings

    import matplotlib

    matplotlib.use("Agg")
    result = corpus_map(three_topics, MapOptions())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        figure = draw_png(result)
        figure.canvas.draw()
    missing = [str(w.message) for w in caught if "missing from" in str(w.message)]
    assert not missing, missing[:3]
    legend = figure.axes[0].get_legend()
    shown = [t.get_text() for t in legend.get_texts()]
    labels = sorted(set(result.frame.loc[result.frame["cluster"] >= 0, "cluster_label"]))
    assert sorted(s for s in shown if s != "noise") == labels
    assert any("리튬" in s or "전지" in s for s in shown)


def test_map_command_reports_progress_and_writes_rows_without_empty_ones(three_topics, workdir):
    """Issue 18 B2: ``map`` shows progress; its cluster file has a ``row`` column and leaves
    empty rows out (they are not "noise")."""
    from conftest import run_cli

    run = run_cli("map", "--column-out", "clusters.csv", cwd=workdir)
    assert run.returncode == 0, run.stderr
    assert re.search(r"mapping\b.*\b5/5 steps", run.stderr), run.stderr
    clusters = pd.read_csv(workdir / "clusters.csv")
    assert "row" in clusters.columns and 59 not in clusters["row"].tolist()
    assert clusters["row"].tolist() == list(range(59))
    assert clusters["text"].notna().all()
