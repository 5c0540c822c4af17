"""A damaged or foreign ANN file, and a same-size damaged ONNX tokenizer (issue 18 A5,
A8 follow-ups): one line naming the repair, never a traceback or a silent wrong answer."""

from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pytest
from conftest import missing_extra
from hostile import assert_clean, assert_one_line_error, run

from simsearch.build import build_index
from simsearch.errors import DamagedIndex, SimsearchError
from simsearch.retrieval.ann import AnnIndex, build_ann, require_usearch

pytestmark = pytest.mark.extra  # usearch, onnxruntime

try:
    require_usearch()
except SimsearchError:
    missing_extra("usearch", "ann")


def unit_rows(n: int, dim: int = 32, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.fixture
def ann_file(tmp_path):
    path = tmp_path / "ann-1.usearch"
    return path, build_ann(unit_rows(500), path)


@pytest.mark.parametrize("damage", ["random-same-size", "header", "empty", "half", "npy"])
def test_a_damaged_ann_file_is_the_damaged_error(tmp_path, ann_file, damage):
    path, section = ann_file
    raw = path.read_bytes()
    if damage == "random-same-size":
        path.write_bytes(os.urandom(len(raw)))
    elif damage == "header":
        path.write_bytes(os.urandom(64) + raw[64:])
    elif damage == "empty":
        path.write_bytes(b"")
    elif damage == "half":
        path.write_bytes(raw[: len(raw) // 2])
    else:
        np.save(tmp_path / "m.npy", unit_rows(500))
        path.write_bytes((tmp_path / "m.npy").read_bytes())
    with pytest.raises(DamagedIndex) as caught:
        AnnIndex.open(path, section)
    message = str(caught.value)
    assert message.startswith(f"the index at {tmp_path} is damaged (ann-1.usearch")
    assert "rebuild it with 'simsearch index" in message and "\n" not in message


@pytest.mark.parametrize("other", [(400, 32), (500, 16)])
def test_a_foreign_ann_file_is_the_damaged_error(tmp_path, ann_file, other):
    """A sound usearch file of another index (other size or dimension) in its place."""
    path, section = ann_file
    build_ann(unit_rows(*other, seed=3), path)
    with pytest.raises(DamagedIndex, match=f"holds {other[0]} vectors of dimension {other[1]}"):
        AnnIndex.open(path, section)


def test_a_missing_ann_file_is_the_damaged_error(ann_file):
    path, section = ann_file
    path.unlink()
    with pytest.raises(DamagedIndex, match="ann-1.usearch is missing"):
        AnnIndex.open(path, section)


@pytest.mark.slow
def test_a_damaged_ann_file_on_the_command_line_is_one_line(tmp_path, tiny_model):
    docs = tmp_path / "docs.csv"
    pd.DataFrame({"text": [f"문서 {i} 배터리 battery {i}" for i in range(30)]}).to_csv(
        docs, index=False)
    root = tmp_path / "idx"
    build_index(docs, "text", model=tiny_model, root=root, ann=True, lexical=False)
    (ann,) = (root / "default").glob("ann-*.usearch")
    ann.write_bytes(os.urandom(ann.stat().st_size))
    result = run(["similar", "--doc", "0", "--k", "3", "--index", root], cwd=tmp_path, timeout=120)
    line = assert_one_line_error(result, "is damaged")
    assert "rebuild it with 'simsearch index" in line


# ------------------------------------------------------------ the ONNX tokenizer


@pytest.fixture
def minilm_index(tmp_path, minilm, private_cache):
    """An index of MiniLM (a real vocabulary of 30,522 word pieces) with its export, in
    an export cache of this test's own (the test damages it)."""
    docs = tmp_path / "docs.csv"
    pd.DataFrame({"text": [f"문서 {i} 배터리 음극재 battery {i}" for i in range(12)]}).to_csv(
        docs, index=False)
    root = tmp_path / "idx"
    build_index(docs, "text", model=minilm, root=root, lexical=False)
    (tokenizer,) = private_cache.glob("*/tokenizer.json")
    return root, tokenizer


def _same_size(tokenizer, old: bytes, new: bytes) -> None:
    raw = tokenizer.read_bytes()
    assert len(old) == len(new) and raw.count(old) == 1
    tokenizer.write_bytes(raw.replace(old, new))


@pytest.mark.slow
@pytest.mark.parametrize("damage", [
    (b'"battery": 6046', b'"battery":96046'),  # an id past the embedding table
    (b'"battery": 6046', b'"battery": 6047'),  # another token's id: silently wrong
])
def test_a_same_size_damaged_tokenizer_is_one_line_naming_the_repair(
    tmp_path, minilm_index, damage
):
    """The query still answers (through sentence-transformers) as the sound export
    does, with one warning line that names the command repairing the export."""
    root, tokenizer = minilm_index
    args = ["query", "battery", "--k", "3", "-f", "json", "--mode", "dense", "--index", root]
    sound = run(args, cwd=tmp_path, timeout=180)
    assert sound.code == 0, sound
    _same_size(tokenizer, *damage)
    result = run(args, cwd=tmp_path, timeout=180)
    assert_clean(result)
    assert result.code == 0, result
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "tokenizer.json fails its sha256 check" in lines[0], result
    assert "repair it with 'simsearch index FILE --column COL'" in lines[0]
    got = [h["row"] for h in json.loads(result.stdout)]
    assert got == [h["row"] for h in json.loads(sound.stdout)]


@pytest.mark.slow
def test_an_onnx_run_failure_is_one_line_naming_the_repair(tmp_path, minilm_index):
    """Damage the size check cannot see and the hash check is not asked for (an export
    opened directly): onnxruntime's error at encoding time is the one-line error."""
    from simsearch.encoding.onnx import OnnxEncoder

    _root, tokenizer = minilm_index
    _same_size(tokenizer, b'"battery": 6046', b'"battery":96046')
    encoder = OnnxEncoder(tokenizer.parent)
    with pytest.raises(SimsearchError) as caught:
        encoder.encode(["battery"])
    message = str(caught.value)
    assert "is damaged" in message and "repair it with 'simsearch index" in message
    assert "\n" not in message
