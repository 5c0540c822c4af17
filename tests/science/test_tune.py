"""``eval --tune``: fusion chosen by cross-validation on labelled pairs, stored in the
index and used by later rankings; per-call overrides; bad values exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import random_sentences
from typer.testing import CliRunner

from simsearch.errors import InvalidParameter
from simsearch.retrieval.fusion import DEFAULT, FusionOptions
from simsearch.science import tune


def test_cross_validation_is_leave_one_out_by_brute_force():
    """With one fold per query, each query is scored under the setting best on all the
    others (ties: the first setting, the default)."""
    rng = np.random.default_rng(3)
    scores = rng.choice([0.0, 0.25, 0.5, 1.0], size=(6, 23))
    heldout, _ = tune.cross_validate(scores, folds=23, seed=0)
    for q in range(23):
        others = [i for i in range(23) if i != q]
        means = [sum(scores[s, i] for i in others) / len(others) for s in range(6)]
        best = means.index(max(means))
        assert heldout[q] == scores[best, q]


def test_settings_start_with_the_default_and_hold_each_once():
    candidates = tune.settings(tune.TuneOptions())
    assert candidates[0] == DEFAULT
    assert len(candidates) == len(set(candidates)) == 2 * len(tune.WEIGHTS)


@pytest.fixture(scope="module")
def tuned(tiny_model, tmp_path_factory):
    """An index of 40 sentences and 25 pairs: query = the first 3 words of a row."""
    from simsearch.build import build_index

    tmp = tmp_path_factory.mktemp("tune")
    docs = random_sentences(40, seed=9)
    pd.DataFrame({"text": docs}).to_csv(tmp / "docs.csv", index=False)
    build_index(tmp / "docs.csv", "text", model=tiny_model, root=tmp / "idx")
    rows = list(range(0, 40, 2))[:20] + [1, 3, 5, 7, 9]
    pairs = pd.DataFrame({"query": [" ".join(docs[r].split()[:3]) for r in rows],
                          "relevant": rows})
    pairs.to_csv(tmp / "pairs.csv", index=False)
    return tmp


@pytest.mark.slow
def test_tune_reports_heldout_scores_and_stores_only_a_gain(tuned):
    from simsearch.retrieval.parts import open_parts
    from simsearch.science.evaluate import evaluate_index
    from simsearch.search import search_options
    from simsearch.store.index import open_path

    result = tune.tune_fusion(tuned / "pairs.csv", tuned / "idx" / "default",
                              options=tune.TuneOptions(store=False))
    table = {(r["method"], r["dense_weight"]): r["mrr"] for r in result["table"]}
    assert len(table) == 22 and result["pairs"] == 25
    # The default's row equals what eval scores with the default fusion (same ranking).
    plain = evaluate_index(tuned / "pairs.csv", tuned / "idx")
    assert table["convex", DEFAULT.dense_weight] == pytest.approx(plain["mrr@10"])
    assert result["default_mrr"] == pytest.approx(plain["mrr@10"])
    # "the default" is what the index ranks with untuned (its build-time estimate, or
    # the fixed default for an index too small to estimate, as this one).
    untuned = tune.untuned(open_path(tuned / "idx").meta)
    assert result["default"] == {"method": untuned.method, "dense_weight": untuned.dense_weight}
    assert result["train_mrr"] == pytest.approx(max(table.values()))
    assert not result["stored"]
    # Stored settings are used by eval (and every ranking through open_parts) ...
    index = open_path(tuned / "idx")
    tune.store_fusion(index, FusionOptions("rrf", 0.9), result)
    index = open_path(tuned / "idx")
    assert open_parts(index).fusion == FusionOptions("rrf", 0.9)
    stored = evaluate_index(tuned / "pairs.csv", tuned / "idx")
    assert stored["mrr@10"] == pytest.approx(table["rrf", 0.9])
    # ... unless a call overrides them.
    override = evaluate_index(tuned / "pairs.csv", tuned / "idx",
                              search=(search_options(None, "max", 0.2, "convex"), "auto"))
    assert override["mrr@10"] == pytest.approx(table["convex", 0.2])


@pytest.mark.slow
def test_tune_cli_and_bad_values(tuned, tmp_path: Path):
    from simsearch.cli import app

    runner = CliRunner()
    idx = str(tuned / "idx")
    r = runner.invoke(app, ["eval", str(tuned / "pairs.csv"), "--index", idx, "--tune",
                            "--format", "json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["pairs"] == 25 and 0 <= out["heldout_mrr"] <= 100
    few = tmp_path / "few.csv"
    pd.read_csv(tuned / "pairs.csv").head(5).to_csv(few, index=False)
    r = runner.invoke(app, ["eval", str(few), "--index", idx, "--tune"])
    assert r.exit_code == 2 and "at least 20 labelled queries" in r.output
    for args in (["--dense-weight", "1.5"], ["--fusion", "max"]):
        r = runner.invoke(app, ["query", "cat", "--index", idx, *args])
        assert r.exit_code == 2, r.output
        assert len(r.output.strip().splitlines()) == 1


def test_too_few_pairs_is_refused(tuned, tmp_path):
    few = tmp_path / "few.csv"
    pd.read_csv(tuned / "pairs.csv").head(5).to_csv(few, index=False)
    with pytest.raises(InvalidParameter, match="at least 20"):
        tune.tune_fusion(few, tuned / "idx")
