"""Issue 18 B3: ``train`` shows one progress bar and one summary line: no raw tqdm bars,
no "Computing widget examples", no printed dict of the trainer's logs."""

from __future__ import annotations

import json
import re

import pytest
from conftest import run_cli

pytestmark = pytest.mark.slow

WORDS = "배터리 음극 반도체 식각 센서 차량 필터 발효 콘크리트 battery wafer lidar".split()  # noqa: SIM905


def test_train_prints_one_bar_and_one_summary_line(tmp_path, tiny_model):
    rows = [
        (" ".join(WORDS[i % 12 : i % 12 + 3]), " ".join(WORDS[(i * 5) % 12 :][:3]), i % 6)
        for i in range(12)
    ]
    lines = ["\t".join(map(str, r)) for r in rows]
    (tmp_path / "pairs.tsv").write_text(
        "sentence1\tsentence2\tscore\n" + "\n".join(lines) + "\n", encoding="utf-8"
    )
    run = run_cli(
        "train", "--method", "sts", "--data", "pairs.tsv", "--dev", "pairs.tsv",
        "-m", tiny_model, "-o", "model", "--batch-size", "4", cwd=tmp_path,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    both = run.stdout + run.stderr
    assert "Computing widget examples" not in both
    assert "it/s" not in both and "s/it" not in both  # tqdm's rate
    assert "{'" not in both and "train_runtime" not in both  # the trainer's log dict
    card = json.loads((tmp_path / "model" / "simsearch_card.json").read_text("utf-8"))
    bars = [line for line in run.stderr.splitlines() if line.startswith("training")]
    assert len(bars) == 1, run.stderr
    assert re.search(rf"\b{card['steps']}/{card['steps']} steps\b", bars[0]), bars
    out = run.stdout.strip().splitlines()
    assert len(out) == 1, run.stdout
    expected = (
        rf"^trained 1 epoch \({card['steps']} steps\) on 12 pairs in \d+m\d\ds -> model; "
        rf"dev Spearman x100 {card['dev_before']:.2f} -> {card['dev_after']:.2f}$"
    )
    assert re.match(expected, out[0]), out[0]
