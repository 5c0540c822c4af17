"""The helper behind every optional import of the tests: a missing [dev] extra skips
locally and fails in CI, where a skip would hide a broken install."""

from __future__ import annotations

import pytest
from conftest import require

ABSENT = "simsearch_no_such_module_for_the_extras_test"


def test_a_missing_extra_skips_outside_ci(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match=r"pip install -e '\.\[ann\]'"):
        require(ABSENT, "ann")


@pytest.mark.parametrize("value", ["true", "1", "TRUE"])
def test_a_missing_extra_fails_in_ci(monkeypatch, value):
    monkeypatch.setenv("CI", value)
    with pytest.raises(pytest.fail.Exception, match="CI=true requires every"):
        require(ABSENT, "ann")


def test_a_present_module_is_returned(monkeypatch):
    monkeypatch.setenv("CI", "true")
    assert require("json").dumps([1]) == "[1]"
