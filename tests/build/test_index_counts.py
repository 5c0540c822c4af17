"""Issue 18 B4: within one ``index`` run every printed count counts what it says. The
progress bar counts distinct texts sent to the model; the windows line counts documents,
windows and distinct texts; the summary counts documents and distinct texts (encoded +
reused); the lexical line counts documents. Each number is checked against the index
built (its window hashes and vectors), not against the build's own report."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from conftest import run_cli

from simsearch import load_index
from simsearch.store.index import text_hash

pytestmark = pytest.mark.slow

LONG = "가나다라 마바사 아자차카. " * 30  # its windows repeat: fewer distinct texts


def counts(stderr: str) -> dict[str, tuple[int, ...]]:
    """The numbers of each line of an ``index`` run, by line."""
    text = re.sub(r"(?<=\d),(?=\d{3})", "", stderr)  # 1,234 -> 1234
    patterns = {
        "bar": r"encoding\b.*?(\d+)/(\d+) texts",
        "windows": r"(\d+) of (\d+) documents are longer .*?: (\d+) windows, (\d+) distinct texts",
        "lexical": r"\((\d+) texts analysed, (\d+) documents reused terms\)",
        "summary": r"Indexed (\d+) documents .*?: (\d+) distinct texts "
        r"\(encoded (\d+), reused (\d+)\)",
    }
    found = {}
    for key, pattern in patterns.items():
        match = re.search(pattern, text)
        assert match, (key, stderr[-600:])
        found[key] = tuple(int(g) for g in match.groups())
    return found


def truth(root) -> tuple[int, int, int, int]:
    """``(documents, windows, split documents, distinct non-empty texts)`` of the index."""
    index = load_index(root)
    hashes = index.hashes().tolist()
    window_map = np.load(index.file("windows"))
    split = int((np.bincount(window_map[:, 0], minlength=index.n_docs) > 1).sum())
    distinct = set(hashes) - {text_hash("")}
    vectors = np.asarray(index.embeddings)
    # the distinct texts are the distinct non-zero vectors (equal texts share a vector)
    nonzero = vectors[np.any(vectors != 0, axis=1)]
    assert len(np.unique(nonzero, axis=0)) == len(distinct)
    return index.n_docs, len(hashes), split, len(distinct)


def test_index_progress_lines_count_what_they_say(tmp_path, tiny_model):
    texts = [f"문서 {i} 짧은 글" for i in range(12)]
    texts += [LONG + str(i) for i in range(4)] + ["", "문서 0 짧은 글"]  # empty, duplicate
    pd.DataFrame({"text": texts}).to_csv(tmp_path / "c.csv", index=False)
    args = ("index", "c.csv", "-c", "text", "-m", tiny_model, "--index", "idx")
    run = run_cli(*args, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    docs, windows, split, distinct = truth(tmp_path / "idx")
    assert windows > docs > distinct  # the case of the issue: three different numbers
    got = counts(run.stderr)
    assert got["bar"] == (distinct, distinct)
    assert got["windows"] == (split, docs, windows, distinct)
    # Kiwi analyses each distinct row text once (the duplicate reuses its twin's terms).
    assert got["lexical"] == (docs - 1, 1)
    assert got["summary"] == (docs, distinct, distinct, 0)

    # An update: one document edited, one long one added; the rest comes from the cache.
    texts[3] = "바뀐 문서"
    texts.append(LONG + "새")
    pd.DataFrame({"text": texts}).to_csv(tmp_path / "c.csv", index=False)
    run = run_cli(*args, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    before = distinct
    docs, windows, split, distinct = truth(tmp_path / "idx")
    got = counts(run.stderr)
    new = got["bar"][1]
    assert got["bar"] == (new, new) and 0 < new < distinct
    assert got["windows"] == (split, docs, windows, distinct)
    assert got["summary"] == (docs, distinct, new, distinct - new)
    assert distinct - new == before - 1  # all but the edited text reused
    assert got["lexical"] == (2, docs - 2)
