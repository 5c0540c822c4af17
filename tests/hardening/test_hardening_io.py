"""Hardening tests that are not one command on a damaged sandbox (issue 13): disk full,
read-only locations, races with the source and the model, signals, file modes, leaked
generations, stale locks and huge cells.

Disk full and read-only locations are real: a small tmpfs and a read-only bind mount
(root only; the tests skip with the reason where mounting is not allowed).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import SHARED
from hostile import (
    assert_clean,
    assert_one_line_error,
    deadline,
    diff,
    index_file,
    read_meta,
    run,
    snapshot,
)

from simsearch.build import build_index
from simsearch.errors import SimsearchError

N_DOCS = 12


def write_docs(path: Path, n: int = N_DOCS, extra: str = "") -> Path:
    texts = [f"문서 {i} 배터리 음극재 battery {i}{extra}" for i in range(n)]
    pd.DataFrame({"id": range(n), "text": texts}).to_csv(path, index=False)
    return path


@pytest.fixture
def docs(tmp_path) -> Path:
    return write_docs(tmp_path / "docs.csv")


# ------------------------------------------------------------------------ mounts


def _mount(*args: str) -> None:
    done = subprocess.run(["mount", *args], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount here ({done.stderr.strip() or 'not root'})")


@contextlib.contextmanager
def tmpfs(path: Path, size: str) -> object:
    """A real small file system at ``path``: writes past ``size`` fail with ENOSPC
    (and a memory-mapped write dies with SIGBUS)."""
    path.mkdir(parents=True, exist_ok=True)
    _mount("-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path))
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


@contextlib.contextmanager
def read_only_view(source: Path, view: Path) -> object:
    """``view`` shows ``source`` through a read-only bind mount (chmod does not stop root)."""
    view.mkdir(parents=True, exist_ok=True)
    _mount("--bind", str(source), str(view))
    try:
        _mount("-o", "remount,ro,bind", str(view))
        yield view
    finally:
        subprocess.run(["umount", "-l", str(view)], check=False)


def fill(directory: Path, leave: int) -> Path:
    """Fill the file system of ``directory`` until about ``leave`` bytes are free."""
    filler = directory / "filler.bin"
    free = shutil.disk_usage(directory).free
    with open(filler, "wb") as handle:
        handle.write(b"\0" * max(free - leave, 0))
    return filler


# ------------------------------------------------------------------ 4. disk full


def test_disk_full_while_importing_a_matrix_is_one_line_and_keeps_the_index(
    tmp_path, docs, tiny_model
):
    with tmpfs(tmp_path / "small", "2m") as small:
        root = small / "idx"
        build_index(docs, "text", model=tiny_model, root=root)
        before = snapshot(root)
        big = tmp_path / "big.npy"
        n = 4000  # 4000 x 32 x 4 B = 512 KB, more than is left
        write_docs(tmp_path / "big.csv", n)
        np.save(big, np.random.default_rng(0).normal(size=(n, 32)).astype(np.float32))
        fill(small, leave=64 * 1024)
        free = shutil.disk_usage(small).free
        result = run(
            [
                "index",
                str(tmp_path / "big.csv"),
                "-c",
                "text",
                "--embeddings",
                str(big),
                "-m",
                tiny_model,
                "--index",
                str(root),
                "-q",
            ],
            cwd=tmp_path,
        )
        assert_one_line_error(result, "space")
        assert shutil.disk_usage(small).free == free, "the failed build left files behind"
        assert not diff(before, snapshot(root)), "the previous index changed"
        ok = run(["similar", "--doc", "0", "-f", "json", "--index", str(root)], cwd=tmp_path)
        assert ok.code == 0, ok


@pytest.mark.slow
def test_disk_full_while_encoding_is_one_line_and_cleans_the_checkpoint(tmp_path, docs, tiny_model):
    with tmpfs(tmp_path / "small", "2m") as small:
        root = small / "idx"
        build_index(docs, "text", model=tiny_model, root=root)
        before = snapshot(root)
        write_docs(tmp_path / "big.csv", 3000)  # pending.npy: 3000 x 32 x 4 B = 384 KB
        fill(small, leave=48 * 1024)
        free = shutil.disk_usage(small).free
        result = run(
            [
                "index",
                str(tmp_path / "big.csv"),
                "-c",
                "text",
                "-m",
                tiny_model,
                "--index",
                str(root),
                "-q",
            ],
            cwd=tmp_path,
            timeout=120,
        )
        assert_one_line_error(result, "space")
        assert shutil.disk_usage(small).free == free, "the failed build left files behind"
        assert not diff(before, snapshot(root)), "the previous index changed"


# ------------------------------------------------------------ 7. read-only index


@pytest.mark.slow  # CLI subprocesses (about 5 s)
def test_query_on_a_read_only_index_works_and_stdout_is_only_results(tmp_path, docs, tiny_model,
                                                                     private_cache):
    root = tmp_path / "idx"
    # Built on torch: encoding through ONNX at index time would already write the graph.
    build_index(docs, "text", model=tiny_model, root=root, backend="torch")
    assert not list(private_cache.glob("*/*.opt.onnx")), "the optimised graph exists already"
    with read_only_view(root, tmp_path / "ro") as view:
        result = run(
            ["query", "배터리", "--k", "3", "-f", "json", "--index", str(view)], cwd=tmp_path
        )
        assert_clean(result)
        assert result.code == 0, result
        hits = json.loads(result.stdout)  # only results on stdout: no "EP Error" banner
        assert [h["rank"] for h in hits] == [1, 2, 3]


def test_index_on_a_read_only_location_is_one_line(tmp_path, docs, tiny_model):
    root = tmp_path / "idx"
    build_index(docs, "text", model=tiny_model, root=root)
    write_docs(docs, extra=" changed")  # so the build has something to write
    with read_only_view(root, tmp_path / "ro") as view:
        result = run(
            ["index", str(docs), "-c", "text", "-m", tiny_model, "--index", str(view), "-q"],
            cwd=tmp_path,
        )
        assert_one_line_error(result, "read-only")


# --------------------------------------------------------- 5. stale without notice


def _retrain_in_place(model_dir: Path) -> None:
    """What `simsearch train -o SAME_DIR` does to the weights: same files, new values."""
    from safetensors.numpy import load_file, save_file

    weights = model_dir / "model.safetensors"
    tensors = load_file(weights)
    save_file({k: (v * 1.5 if v.dtype.kind == "f" else v) for k, v in tensors.items()}, weights)


def test_model_retrained_in_the_same_directory_is_noticed(tmp_path, docs, tiny_model):
    model = tmp_path / "model"
    shutil.copytree(tiny_model, model)
    root = tmp_path / "idx"
    build_index(docs, "text", model=str(model), root=root)
    _retrain_in_place(model)
    import simsearch

    with pytest.raises(SimsearchError, match="changed"):
        simsearch.query("배터리", k=3, root=root)
    report = build_index(docs, "text", model=str(model), root=root)
    assert report.status != "up-to-date"
    assert report.encoded == N_DOCS
    assert len(simsearch.query("배터리", k=3, root=root)) == 3


def test_source_replaced_while_read_records_the_hash_of_what_was_read(
    tmp_path, docs, tiny_model, monkeypatch
):
    original = docs.read_bytes()
    real_read_csv = pd.read_csv

    def read_then_replace(*args, **kwargs):
        # A writer replaces the file right after simsearch read it.
        frame = real_read_csv(*args, **kwargs)
        write_docs(docs, extra=" replaced")
        return frame

    monkeypatch.setattr(pd, "read_csv", read_then_replace)
    root = tmp_path / "idx"
    build_index(docs, "text", model=tiny_model, root=root)
    monkeypatch.setattr(pd, "read_csv", real_read_csv)
    assert read_meta(root / "default")["source"]["sha256"] == hashlib.sha256(original).hexdigest()
    report = build_index(docs, "text", model=tiny_model, root=root)
    assert report.status != "up-to-date", "the replaced file was taken as already indexed"


def test_source_edited_during_encoding_is_reported_stale(tmp_path, docs, tiny_model):
    edited = []

    def edit_once(done: int, total: int) -> None:
        if done and not edited:
            time.sleep(0.05)  # a later mtime on coarse-clock file systems
            write_docs(docs, extra=" edited while encoding")
            edited.append(done)

    root = tmp_path / "idx"
    build_index(
        docs, "text", model=tiny_model, root=root, batch_size=4, chunk_size=4, on_progress=edit_once
    )
    assert edited
    result = run(["similar", "--doc", "0", "-f", "json", "--index", str(root)], cwd=tmp_path)
    assert result.code == 0, result
    assert "changed" in result.stderr, f"an edited source was reported up to date\n{result}"


# -------------------------------------------------------------------- 8. signals


def _interrupt(args: list[str], cwd: Path, delay: float, stdin: bool = False) -> tuple:
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    from hostile import simsearch_cmd

    proc = subprocess.Popen(
        [*simsearch_cmd(), *args],
        cwd=cwd,
        env=env,
        stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    time.sleep(delay)
    proc.send_signal(signal.SIGINT)
    try:
        out, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"still running 60 s after Ctrl-C: {args}\n{err}")
    return proc.returncode, out, err


@pytest.mark.parametrize("delay", [0.15, 0.25, 0.4, 0.6])
def test_ctrl_c_during_start_up_is_one_line(tmp_path, docs, tiny_model, delay):
    code, _out, err = _interrupt(
        ["index", str(docs), "-c", "text", "-m", tiny_model, "--index", str(tmp_path / "i")],
        tmp_path,
        delay,
    )
    assert "Traceback" not in err, err
    # Python's own handler may not be installed yet at the very first instant: then the
    # process dies of SIGINT (-2) like any program, silently.
    assert code in (130, -signal.SIGINT), (code, err)
    assert len(err.strip().splitlines()) <= 1, err


@pytest.mark.parametrize("lane", ["fast", "typer"])
def test_interrupted_query_does_not_promise_a_resume(tmp_path, docs, tiny_model, lane):
    root = tmp_path / "idx"
    build_index(docs, "text", model=tiny_model, root=root)
    k = ["--k", "3"] if lane == "fast" else ["-k3"]  # -k3 is left to the typer app
    code, _out, err = _interrupt(
        ["query", "--file", "-", *k, "--index", str(root)], tmp_path, 1.5, stdin=True
    )
    assert code == 130, (code, err)
    assert "Traceback" not in err, err
    assert "interrupted" in err and "resume" not in err, err


# ------------------------------------------------------------------ 8. file modes


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_index_files_follow_the_umask(tmp_path, docs, tiny_model, umask):
    old = os.umask(umask)
    try:
        build_index(docs, "text", model=tiny_model, root=tmp_path / "idx")
    finally:
        os.umask(old)
    index = tmp_path / "idx" / "default"
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in index.iterdir() if p.is_file()}
    assert set(modes.values()) == {0o666 & ~umask}, modes


# ------------------------------------------------- 8. leaked generations and locks


@pytest.mark.slow
def test_interrupted_commit_leaks_nothing_after_the_next_run(tmp_path, docs, tiny_model):
    root = tmp_path / "idx"
    build_index(docs, "text", model=tiny_model, root=root)
    write_docs(docs, extra=" v2")
    build_index(docs, "text", model=tiny_model, root=root)
    write_docs(docs, extra=" v3")
    # The third build dies right after its commit point (SIGKILL before the clean-up).
    script = (
        "import os, sys\n"
        "from simsearch import build\n"
        "from simsearch.build import commit\n"
        "commit.cleanup = lambda path, keep: os.kill(os.getpid(), 9)\n"
        "build.build_index(sys.argv[1], 'text', model=sys.argv[2], root=sys.argv[3],"
        " batch_size=4, chunk_size=4)\n"
    )
    killed = subprocess.run(
        [sys.executable, "-c", script, str(docs), tiny_model, str(root)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert killed.returncode == -9, killed.stderr
    report = build_index(docs, "text", model=tiny_model, root=root)
    assert report.status == "up-to-date"
    index = root / "default"
    generations = {p.name.split("-", 1)[1].rsplit(".", 1)[0] for p in index.glob("rows-*.jsonl")}
    current = index_file(index, "rows").name.split("-", 1)[1].rsplit(".", 1)[0]
    # The current generation and at most the one before it (kept one build for readers).
    assert current in generations and len(generations) <= 2, sorted(generations)
    assert not (index / "work").exists(), list((index / "work").iterdir())
    assert not list(index.glob(".*.tmp"))


def test_no_lock_file_is_left_behind(tmp_path, docs, tiny_model):
    root = tmp_path / "idx"
    build_index(docs, "text", model=tiny_model, root=root)
    with pytest.raises(SimsearchError):
        build_index(docs, "no-such-column", model=tiny_model, root=root)
    with pytest.raises(SimsearchError):
        build_index(docs, "text", model=tiny_model, root=root, whiten=True, whiten_dim=999)
    assert not (root / "default" / ".lock").exists()


def test_stale_lock_file_does_not_block(tmp_path, docs, tiny_model):
    root = tmp_path / "idx"
    build_index(docs, "text", model=tiny_model, root=root)
    (root / "default" / ".lock").write_text("12345\n")  # left by a killed run
    report = build_index(docs, "text", model=tiny_model, root=root, rebuild=True)
    assert report.status == "built"
    assert not (root / "default" / ".lock").exists()


def test_whiten_dim_above_the_dimension_is_refused_before_encoding(tmp_path, docs, tiny_model):
    root = tmp_path / "idx"
    calls = []
    with pytest.raises(SimsearchError, match="whiten"):
        build_index(
            docs,
            "text",
            model=tiny_model,
            root=root,
            whiten=True,
            whiten_dim=64,
            on_progress=lambda done, total: calls.append(done),
        )
    assert not calls, "the corpus was encoded before the option was refused"
    leftovers = (
        [p.name for p in (root / "default").iterdir()] if (root / "default").exists() else []
    )
    assert not [n for n in leftovers if n != ".simsearch-index"], leftovers  # marker only


# ------------------------------------------------------------- 6. repairs


@pytest.mark.parametrize(
    "damage",
    [
        "flipped-key",
        "fifo-meta",
        "meta-list",
        "rows-outside",
    ],
)
def test_rebuild_always_repairs(tmp_path, docs, tiny_model, damage):
    from hostile import make_fifo, point_file, rename_key, write_meta

    root = tmp_path / "idx"
    build_index(docs, "text", model=tiny_model, root=root)
    index = root / "default"
    if damage == "flipped-key":
        rename_key(index, "model", "lodel")
    elif damage == "fifo-meta":
        make_fifo(index / "meta.json")
    elif damage == "meta-list":
        write_meta(index, [])
    else:
        (tmp_path / "secret.jsonl").write_text('{"text": "x"}\n')
        point_file(index, "rows", str(tmp_path / "secret.jsonl"))
    with deadline(60):
        report = build_index(docs, "text", model=tiny_model, root=root, rebuild=True)
    assert report.status == "built"
    assert (tmp_path / "secret.jsonl").exists() or damage != "rows-outside"
    import simsearch

    assert len(simsearch.similar(0, k=3, root=root)) == 3


@pytest.mark.slow
def test_damaged_onnx_export_is_re_exported(tmp_path, docs, tiny_model, private_cache):
    root = tmp_path / "idx"
    build_index(docs, "text", model=tiny_model, root=root)
    (model_onnx,) = private_cache.glob("*/model.onnx")
    model_onnx.write_bytes(b"\0" * model_onnx.stat().st_size)
    report = build_index(docs, "text", model=tiny_model, root=root)  # up to date ...
    assert report.status == "up-to-date"
    result = run(
        ["query", "배터리", "--k", "3", "-f", "json", "--index", str(root)],
        cwd=tmp_path,
        timeout=60,
    )
    assert_clean(result)
    assert result.code == 0, result
    assert len(json.loads(result.stdout)) == 3
    assert model_onnx.read_bytes()[:64] != b"\0" * 64, "... but the export was not repaired"


# ------------------------------------------------------ 2. rows stay rows


def test_tsv_cells_with_quotes_stay_one_row_each(tmp_path):
    from simsearch.tables.read import read_corpus

    lines = [
        "id\ttext",
        '0\t"그는 "안녕"이라고 말했다',
        '1\t"따옴표로 시작하는 셀',
        "2\t평범한 문장",
        '3\t끝나는 따옴표"',
    ]
    path = tmp_path / "quotes.tsv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    corpus = read_corpus(path, "text")
    assert corpus.texts == [line.split("\t")[1] for line in lines[1:]]


def test_kornli_dev_indexes_one_document_per_line():
    from simsearch.tables.read import read_corpus

    path = SHARED / "kornli" / "xnli.dev.ko.tsv"
    if not path.exists():
        pytest.skip(f"shared data {path} not present")
    n_lines = len(path.read_text(encoding="utf-8").splitlines()) - 1
    corpus = read_corpus(path, "sentence1")
    assert n_lines == 2490
    assert len(corpus.texts) == n_lines


# ------------------------------------------------------------------- 8. cost


def test_a_huge_cell_is_not_tokenized_whole(tmp_path, tiny_model):
    """A 5 MB cell: only a bounded prefix of it may reach the tokenizer (the model
    keeps 128 tokens anyway); counted as truncated once."""
    from transformers.tokenization_utils_base import PreTrainedTokenizerBase

    seen: list[int] = []
    real_call = PreTrainedTokenizerBase.__call__

    def spy(self, text, *args, **kwargs):
        batch = [text] if isinstance(text, str) else list(text)
        seen.extend(len(t) for t in batch if isinstance(t, str))
        return real_call(self, text, *args, **kwargs)

    huge = "배터리 음극재 " * (2_000_000 // 8)  # 2 MB: the defect is the same at 5 MB
    source = tmp_path / "huge.csv"
    pd.DataFrame({"text": [huge, "짧은 문장", "다른 문장"]}).to_csv(source, index=False)
    PreTrainedTokenizerBase.__call__ = spy
    try:
        # Truncation as the model does it (chunking none); with windows the text is split.
        report = build_index(
            source, "text", model=tiny_model, root=tmp_path / "idx", backend="torch",
            chunking="none", lexical=False,
        )
    finally:
        PreTrainedTokenizerBase.__call__ = real_call
    assert report.truncated == 1
    assert seen and max(seen) < 100_000, f"a {max(seen):,}-character text reached the tokenizer"


@pytest.mark.parametrize("model", ["./notamodel", "file.bin", "emptydir"])
def test_bad_model_paths_are_refused_before_torch_is_imported(tmp_path, docs, model):
    (tmp_path / "file.bin").write_bytes(b"\0" * 64)
    (tmp_path / "emptydir").mkdir()
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "simsearch", "index", str(docs), "-c", "text",
         "-m", model, "--index", str(tmp_path / "idx")],
        cwd=tmp_path, capture_output=True, text=True, timeout=60,
        env=dict(os.environ, HF_HUB_OFFLINE="1"),
    )  # fmt: skip
    errors = [line for line in done.stderr.splitlines() if line.startswith("Error: ")]
    assert done.returncode == 2 and len(errors) == 1, done.stderr[-2000:]
    imported = {line.split("|")[-1].strip() for line in done.stderr.splitlines() if "|" in line}
    assert not {"torch", "sentence_transformers", "transformers"} & imported, errors
