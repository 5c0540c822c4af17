"""Kiwi started early in a thread (``query`` overlaps its start-up with loading the model):
one analyser per process, the same terms as one made on the spot."""

from __future__ import annotations

import threading

import pytest

from simsearch.text import kiwi


@pytest.mark.slow
def test_started_kiwi_is_the_one_kiwi_and_analyses_the_same():
    texts = ["개가 트램폴린을 타고 뛰어오르고 있다.", "한 여성이 산탄총을 쏜다.", ""]
    kiwi.start_kiwi()
    kiwi.start_kiwi()
    got: list[list[list[str]]] = []
    threads = [threading.Thread(target=lambda: got.append(kiwi.tokenize(texts)))
               for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert kiwi.get_kiwi() is kiwi.get_kiwi()
    assert kiwi._make_kiwi.cache_info().currsize == 1
    from kiwipiepy import Kiwi

    fresh = Kiwi(num_workers=1, load_typo_dict=False, load_multi_dict=False)
    expected = [kiwi.terms_of(fresh.tokenize(t)) if t else [] for t in texts]
    assert got == [expected] * 3
    # the default dictionary's analysis
    assert expected[0] == ["개", "트램폴", "린", "타다", "뛰어오르다", "있다"]
