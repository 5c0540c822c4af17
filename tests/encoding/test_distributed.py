"""Encoding past one process (simsearch.encoding.distributed): sentence-transformers'
multi-process pool gives the embeddings of a single-process encode (same top-10 rows),
Ray's batches are put back in order, and a missing Ray says how to install it. The
Ray build itself (``index --ray local`` equals a plain build) is in test_scale_index."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from simsearch.errors import SimsearchError
from simsearch.retrieval.topk import top_k

TEXTS = [
    f"문서 {i}: {'배터리 전극' if i % 3 else '반도체 공정'} 실험 {i % 11} " * (1 + i % 4)
    for i in range(150)
] + ["", "   "]


def local_chunks(model: str, texts: list[str], batch: int) -> np.ndarray:
    """What a local build does: chunks of 8 x batch texts, each encoded by one process."""
    from simsearch.encoding.distributed import encode_texts
    from simsearch.encoding.sbert import load_model

    st = load_model(model, "cpu")
    chunk = 8 * batch
    return np.concatenate(
        [encode_texts(st, texts[s : s + chunk], batch) for s in range(0, len(texts), chunk)]
    )


def same_top10(a: np.ndarray, b: np.ndarray) -> None:
    queries = a[:20]
    assert top_k(a, queries, 10)[0].tolist() == top_k(b, queries, 10)[0].tolist()


def test_stream_reassembles_out_of_order_batches_into_chunks():
    from simsearch.encoding.distributed import _in_order

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


@pytest.mark.slow
def test_multi_process_pool_equals_a_single_process_encode(tiny_model):
    from simsearch.encoding.distributed import MultiDeviceEncoder, parse_devices

    devices = parse_devices("cpu,cpu")
    assert devices == ["cpu", "cpu"] and parse_devices("cuda:0") is None
    with MultiDeviceEncoder(tiny_model, devices) as encoder:
        pooled = np.concatenate(list(encoder.stream(TEXTS, 8, 64)))
    local = local_chunks(tiny_model, TEXTS, 8)
    np.testing.assert_allclose(pooled, local, atol=1e-5)
    same_top10(pooled, local)


def test_device_list_with_an_empty_entry_is_refused():
    from simsearch.encoding.distributed import parse_devices

    with pytest.raises(SimsearchError, match="empty entry"):
        parse_devices("cuda:0,")


def test_without_ray_the_error_says_how_to_install(monkeypatch):
    from simsearch.encoding.distributed import require_ray

    monkeypatch.setitem(sys.modules, "ray", None)  # what an absent package looks like
    with pytest.raises(SimsearchError, match=r"pip install -e \"\.\[ray\]\""):
        require_ray()
