"""One model per build: the window planner cuts with the encoder's own tokenizer, the
same windows whichever backend encodes, and the model is loaded once."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from conftest import cli_env, random_sentences

from simsearch.build import build_index
from simsearch.build.plan import plan_windows
from simsearch.encoding.encoders import TorchEncoder


def long_texts() -> list[str]:
    texts = random_sentences(12, seed=4)
    texts[2] = " ".join(random_sentences(40, seed=5))
    texts[6] = "배터리 음극재 실리콘 " * 60
    return texts


@pytest.mark.parametrize("name", ["tiny_model", "minilm"])
def test_onnx_and_torch_encoders_cut_the_same_windows(request, tmp_path, name):
    pytest.importorskip("onnxruntime")
    from simsearch.encoding.onnx import OnnxEncoder, export

    model = request.getfixturevalue(name)
    torch_encoder = TorchEncoder(model, "cpu")
    onnx_encoder = OnnxEncoder(export(model, tmp_path, st=torch_encoder.st))
    assert onnx_encoder.max_tokens == torch_encoder.max_tokens
    texts = long_texts()
    for got, want in zip(onnx_encoder.token_spans()(texts), torch_encoder.token_spans()(texts)):
        np.testing.assert_array_equal(got, want)
    by_onnx, by_torch = plan_windows(onnx_encoder, texts), plan_windows(torch_encoder, texts)
    assert by_onnx.split and by_onnx.windows.texts == by_torch.windows.texts
    # The encoder's own truncation settings survive the planner's tokenizer copy.
    np.testing.assert_allclose(
        onnx_encoder.encode(texts[:3]), torch_encoder.encode(texts[:3]), atol=1e-5
    )


def test_a_windowed_build_loads_the_model_once(workdir, tiny_model, monkeypatch):
    from simsearch.encoding import sbert

    loads: list[str] = []
    real = sbert.load_model
    monkeypatch.setattr(sbert, "load_model", lambda *a, **k: loads.append(a[0]) or real(*a, **k))
    pd.DataFrame({"text": long_texts()}).to_csv(workdir / "d.csv", index=False)
    report = build_index(workdir / "d.csv", "text", model=tiny_model, backend="torch")
    assert report.n_split == 2 and report.n_windows > 12
    assert len(loads) == 1


def test_an_onnx_build_cuts_windows_without_importing_torch(workdir, tiny_model):
    pytest.importorskip("onnxruntime")
    source = workdir / "d.csv"
    pd.DataFrame({"text": long_texts()}).to_csv(source, index=False)
    build_index(source, "text", model=tiny_model, backend="onnx")  # makes the export
    pd.DataFrame({"text": [*long_texts(), "a new row"]}).to_csv(source, index=False)
    script = (
        "import sys\n"
        "from simsearch.build import build_index\n"
        "r = build_index(sys.argv[1], 'text', model=sys.argv[2], backend='onnx')\n"
        "assert r.status == 'updated' and r.encoded == 1 and r.n_split == 2, r\n"
        "print('torch' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(source), tiny_model],
        cwd=workdir, capture_output=True, text=True, env=cli_env(), timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"
