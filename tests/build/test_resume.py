"""Crash safety: kill `simsearch index` (SIGKILL, SIGINT) at several points, run it
again, and get the same index as an uninterrupted run."""

from __future__ import annotations

import json
import signal
import subprocess
import time

import numpy as np
import pandas as pd
import pytest
from conftest import cli_command, cli_env, run_cli

from simsearch import load_index
from simsearch.build import build_index

pytestmark = pytest.mark.slow

N_DOCS = 800


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("resume")
    rng = np.random.default_rng(7)
    words = [
        "배터리",
        "음극재",
        "반도체",
        "웨이퍼",
        "라이다",
        "센서",
        "정수",
        "필터",
        "발효",
        "battery",
    ]
    texts = [
        " ".join(rng.choice(words, size=rng.integers(2, 20))) + f" #{i}" for i in range(N_DOCS)
    ]
    source = root / "docs.csv"
    pd.DataFrame({"text": texts}).to_csv(source, index=False)
    return source


@pytest.fixture(scope="module")
def reference(corpus, tiny_model, tmp_path_factory):
    root = tmp_path_factory.mktemp("reference")
    build_index(corpus, "text", model=tiny_model, root=root, batch_size=4)
    return np.array(load_index(root).embeddings)


def wait_for(job_file, predicate, process, timeout=240.0):
    """Poll the checkpoint until predicate(done, total) holds or the process ends."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        try:
            job = json.loads(job_file.read_text())
            if predicate(job["done"], job["total"]):
                return job["done"]
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.002)
    return None


@pytest.mark.parametrize(
    "sig,point",
    [
        (signal.SIGKILL, lambda done, total: done >= 32),  # after the first checkpoint
        (signal.SIGKILL, lambda done, total: done == total),  # while assembling/committing
        (signal.SIGINT, lambda done, total: done >= total // 3),  # Ctrl-C
    ],
    ids=["kill-early", "kill-at-commit", "ctrl-c"],
)
def test_interrupted_index_resumes_to_the_same_result(
    tmp_path, corpus, tiny_model, reference, sig, point
):
    args = ["index", str(corpus), "--column", "text", "--model", tiny_model, "--batch-size", "4"]
    env = cli_env()
    process = subprocess.Popen(
        [*cli_command(), *args, "--quiet"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # A shell's background job starts with SIGINT ignored; give the child a real one.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    job_file = tmp_path / ".simsearch" / "default" / "work" / "job.json"
    done = wait_for(job_file, point, process)
    process.send_signal(sig)
    _, stderr = process.communicate(timeout=60)
    assert done is not None, f"the run ended before the kill point: {stderr}"
    assert "Traceback" not in stderr
    if sig == signal.SIGINT:
        assert process.returncode == 130 and "run the same command again" in stderr

    again = run_cli(*args, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    if done < N_DOCS:
        assert "resuming an interrupted run" in again.stderr
    index = load_index(tmp_path / ".simsearch")
    np.testing.assert_allclose(index.embeddings, reference, atol=1e-5)
    assert not (tmp_path / ".simsearch" / "default" / "work").exists()
    index.verify()
