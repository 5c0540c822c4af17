"""Encoding past one process (simsearch.distributed): Ray Data on a local instance and
sentence-transformers' multi-process pool give the embeddings of a single-process
encode (same top-10 rows), and a missing Ray says how to install it."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from simsearch.errors import SimsearchError
from simsearch.ranking import top_k

TEXTS = [
    f"문서 {i}: {'배터리 전극' if i % 3 else '반도체 공정'} 실험 {i % 11} " * (1 + i % 4)
    for i in range(150)
] + ["", "   "]


def local_chunks(model: str, texts: list[str], batch: int) -> np.ndarray:
    """What a local build does: chunks of 8 x batch texts, each encoded by one process."""
    from simsearch.distributed import encode_texts
    from simsearch.encoding import load_model

    st = load_model(model, "cpu")
    chunk = 8 * batch
    return np.concatenate(
        [encode_texts(st, texts[s : s + chunk], batch) for s in range(0, len(texts), chunk)]
    )


def same_top10(a: np.ndarray, b: np.ndarray) -> None:
    queries = a[:20]
    assert top_k(a, queries, 10)[0].tolist() == top_k(b, queries, 10)[0].tolist()


RAY_SCRIPT = """
import json, sys
import numpy as np
from simsearch.distributed import RayOptions, ray_encode
texts = json.load(open(sys.argv[1], encoding="utf-8"))
options = RayOptions(address="local", num_cpus=2, cpus_per_actor=1)
np.save(sys.argv[2], ray_encode(texts, sys.argv[3], options, batch_size=8))
"""


def test_ray_local_encoding_equals_a_single_process_encode(tiny_model, tmp_path):
    """Ray runs in a child process: a local Ray instance starts its own daemons, which
    must not outlive the test nor share the test process's captured file descriptors."""
    pytest.importorskip("ray.data")
    (tmp_path / "texts.json").write_text(json.dumps(TEXTS), encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-c", RAY_SCRIPT, "texts.json", "ray.npy", tiny_model],
        cwd=tmp_path, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    via_ray = np.load(tmp_path / "ray.npy")
    local = local_chunks(tiny_model, TEXTS, 8)
    assert via_ray.shape == local.shape and via_ray.dtype == np.float32
    assert not via_ray[-2:].any()  # empty texts: zero rows, as locally
    np.testing.assert_allclose(via_ray, local, atol=1e-5)
    same_top10(via_ray, local)


def test_stream_reassembles_out_of_order_batches_into_chunks():
    from simsearch.distributed import _in_order

    emb = np.arange(10, dtype=np.float32)[:, None] * np.ones((1, 3), np.float32)
    batches = [
        {"pos": np.array([6, 7, 8, 9]), "embedding": emb[6:]},
        {"pos": np.array([0, 1, 2]), "embedding": emb[:3]},
        {"pos": np.array([3, 4, 5]), "embedding": emb[3:6]},
    ]
    blocks = list(_in_order(iter(batches), 10, 4))
    assert [len(b) for b in blocks] == [4, 4, 2]
    np.testing.assert_array_equal(np.concatenate(blocks), emb)
    with pytest.raises(SimsearchError, match="returned 3 of 10 embeddings"):
        list(_in_order(iter(batches[1:2]), 10, 4))


def test_multi_process_pool_equals_a_single_process_encode(tiny_model):
    from simsearch.distributed import MultiDeviceEncoder, parse_devices

    devices = parse_devices("cpu,cpu")
    assert devices == ["cpu", "cpu"] and parse_devices("cuda:0") is None
    with MultiDeviceEncoder(tiny_model, devices) as encoder:
        pooled = np.concatenate(list(encoder.stream(TEXTS, 8, 64)))
    local = local_chunks(tiny_model, TEXTS, 8)
    np.testing.assert_allclose(pooled, local, atol=1e-5)
    same_top10(pooled, local)


def test_device_list_with_an_empty_entry_is_refused():
    from simsearch.distributed import parse_devices

    with pytest.raises(SimsearchError, match="empty entry"):
        parse_devices("cuda:0,")


def test_without_ray_the_error_says_how_to_install(monkeypatch):
    from simsearch.distributed import require_ray

    monkeypatch.setitem(sys.modules, "ray", None)  # what an absent package looks like
    with pytest.raises(SimsearchError, match=r"pip install -e \"\.\[ray\]\""):
        require_ray()
