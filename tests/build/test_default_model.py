"""The README's headline command: ``simsearch index FILE --column COL`` with no ``--model``
builds with the default model, found in a populated Hugging Face cache (offline)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import cli_command, cli_env, random_sentences

from simsearch.encoding.sbert import DEFAULT_MODEL

REVISION = "0123456789abcdef0123456789abcdef01234567"


def hub_cache(root: Path, model_dir: str) -> Path:
    """A Hugging Face hub cache holding ``model_dir`` under :data:`DEFAULT_MODEL`'s name,
    laid out as ``huggingface_hub`` writes it (``snapshots/<rev>`` + ``refs/main``)."""
    repo = root / ("models--" + DEFAULT_MODEL.replace("/", "--"))
    shutil.copytree(model_dir, repo / "snapshots" / REVISION)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(REVISION)
    return root


def run(*args: str, cwd: Path, cache: Path) -> subprocess.CompletedProcess:
    env = cli_env(COLUMNS="200", HF_HOME=str(cache.parent), HF_HUB_CACHE=str(cache))
    return subprocess.run(
        [*cli_command(), *args], cwd=cwd, capture_output=True, text=True, env=env, timeout=300
    )


@pytest.fixture
def corpus(workdir: Path) -> tuple[Path, list[str]]:
    texts = random_sentences(30, seed=3)
    # Longer than the tiny model's 128 tokens (one per character): cut into windows.
    texts[4] = " ".join(random_sentences(40, seed=9))
    texts[11] = " ".join(random_sentences(30, seed=10))
    path = workdir / "docs.csv"
    pd.DataFrame({"text": texts}).to_csv(path, index=False)
    return path, texts


def test_index_with_no_model_uses_the_default_from_the_hub_cache(workdir, corpus, tiny_model):
    path, texts = corpus
    cache = hub_cache(workdir / "hf" / "hub", tiny_model)
    built = run("index", str(path), "--column", "text", cwd=workdir, cache=cache)
    assert built.returncode == 0, built.stderr
    assert "Traceback" not in built.stderr

    meta = json.loads((workdir / ".simsearch" / "default" / "meta.json").read_text())
    assert meta["model"] == DEFAULT_MODEL
    assert meta["sections"]["windows"]["n_split"] == 2  # the two long texts were cut into windows

    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(tiny_model, device="cpu")
    short = [i for i, t in enumerate(texts) if i not in (4, 11)]
    vectors = st.encode([texts[i] for i in short], normalize_embeddings=True)
    sims = vectors @ vectors[0]
    expected = [short[i] for i in np.argsort(-sims, kind="stable")[1:4]]

    similar = run(
        "similar", "--doc", "0", "--mode", "dense", "--format", "json", "--k", "30",
        cwd=workdir, cache=cache,
    )
    assert similar.returncode == 0, similar.stderr
    rows = [hit["row"] for hit in json.loads(similar.stdout)]
    assert 0 not in rows and set(rows) == set(range(30)) - {0}
    # Among the short documents (one vector each) the order is the brute-force cosine.
    assert [r for r in rows if r not in (4, 11)][:3] == expected

    query = run(
        "query", texts[7], "--mode", "dense", "--format", "json", "--k", "3",
        cwd=workdir, cache=cache,
    )
    assert query.returncode == 0, query.stderr
    hits = json.loads(query.stdout)
    assert hits[0]["row"] == 7 and hits[0]["similarity"] == pytest.approx(1.0, abs=1e-4)
