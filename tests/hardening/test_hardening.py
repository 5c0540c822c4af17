"""The bad-input and hostile-index matrix (issue 13).

Every case runs the real console script in a subprocess (killed at a timeout: a hang is
a failure) inside a fresh sandbox: an index root ``idx/`` holding a built index
(``default``), a whitened one (``white``) and the ONNX export, the user's own files in
``outside/`` (JSON lines, ``.npy`` matrices, ``work/``, ``.tmp`` files, named like an
index's files on purpose), and input files. Each case asserts:

* exit code 2 and exactly one stderr line starting ``Error:`` (or, for the few cases
  that must succeed, exit 0), no traceback, no hang, no death by a signal;
* a snapshot of every file outside the index being written is unchanged: nothing
  deleted, created or modified outside it.

Hostile edits of an index go through the helpers in ``hostile.py``.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hostile import (
    assert_clean,
    assert_one_line_error,
    checksums_as_list,
    diff,
    edit_meta,
    file_names,
    forget_checks,
    index_file,
    make_fifo,
    make_symlink,
    overwrite,
    point_file,
    rename_key,
    run,
    set_file_value,
    set_value,
    sizes_with_unknown_key,
    snapshot,
)

pytestmark = pytest.mark.slow

N_DOCS = 12
DIM = 32  # the tiny model's dimension
SECRET = "SECRET-USER-ROW"


@dataclass
class Sandbox:
    """One case's world; ``top`` is snapshotted except the paths in ``writable``."""

    top: Path
    model: str

    @property
    def idx(self) -> Path:
        return self.top / "idx"

    @property
    def default(self) -> Path:
        return self.idx / "default"

    @property
    def white(self) -> Path:
        return self.idx / "white"

    @property
    def outside(self) -> Path:
        return self.top / "outside"

    def path(self, relative: str) -> str:
        return str(self.top / relative)


@dataclass
class Case:
    """``setup(sandbox)`` damages the world and returns the command's arguments.

    ``expect``: a piece of the one error line (``None``: any error line); ``ok``: the
    command must succeed instead; ``writable``: paths (relative to the sandbox) the
    command may change; ``after``: extra checks on the sandbox afterwards.
    """

    id: str
    setup: Callable[[Sandbox], list[str]]
    expect: str | None = None
    ok: bool = False
    timeout: float = 30.0
    writable: tuple[str, ...] = ("idx/default", "idx/white", "cache")
    after: Callable[[Sandbox, object], None] | None = None
    memory_limit: int | None = None
    marks: list = field(default_factory=list)


# ------------------------------------------------------------------------ template


def _user_files(directory: Path) -> None:
    """Files a user might keep, named like an index's own files on purpose."""
    directory.mkdir(parents=True, exist_ok=True)
    rows = "".join(json.dumps({"text": f"{SECRET} {i}"}) + "\n" for i in range(N_DOCS))
    (directory / "secret.jsonl").write_text(rows, encoding="utf-8")
    (directory / "rows-mine.jsonl").write_text(rows, encoding="utf-8")
    np.save(directory / "embeddings-mine.npy", np.ones((N_DOCS, DIM), dtype=np.float32))
    np.save(directory / "hashes-mine.npy", np.zeros(N_DOCS, dtype="S16"))
    np.save(directory / "offsets-mine.npy", np.arange(N_DOCS + 1, dtype=np.int64))
    (directory / "work").mkdir(exist_ok=True)
    (directory / "work" / "notes.txt").write_text("my notes\n", encoding="utf-8")
    (directory / ".draft.tmp").write_text("draft\n", encoding="utf-8")


@pytest.fixture(scope="module")
def template(tmp_path_factory, tiny_model) -> Path:
    """Built once per module, in-process (torch is already loaded by ``tiny_model``)."""
    from simsearch.build import build_index

    top = tmp_path_factory.mktemp("hardening-template")
    texts = [f"문서 {i} 배터리 음극재 battery {i}" for i in range(N_DOCS)]
    pd.DataFrame({"id": range(N_DOCS), "text": texts}).to_csv(top / "docs.csv", index=False)
    with pytest.MonkeyPatch.context() as env:  # each sandbox has its own ONNX cache
        env.setenv("SIMSEARCH_CACHE_DIR", str(top / "cache"))
        build_index(top / "docs.csv", "text", model=tiny_model, root=top / "idx")
        build_index(
            top / "docs.csv",
            "text",
            model=tiny_model,
            root=top / "idx",
            name="white",
            whiten=True,
            whiten_dim=4,
        )
    _user_files(top / "outside")
    np.save(top / "outside" / "data.npy", np.ones((N_DOCS, DIM), dtype=np.float32))
    np.save(top / "outside" / "other.npy", np.ones((N_DOCS, DIM), dtype=np.float32))
    pd.DataFrame({"query": ["배터리"], "relevant": [0]}).to_csv(top / "queries.csv", index=False)
    (top / "file.bin").write_bytes(b"\0" * 64)
    (top / "notamodel").mkdir()
    (top / "notamodel" / "readme.txt").write_text("not a model\n")
    (top / "outside" / "passwd").write_text("root:x:0:0:root:/root:/bin/bash\n")
    return top


# --------------------------------------------------------------------- case setups
# Small functions, one per kind of damage; the tables below combine them with commands.


def cmd(*args: str) -> Callable[[Sandbox], list[str]]:
    """A case whose setup is only its arguments (``{x}`` is a sandbox path)."""

    def setup(s: Sandbox) -> list[str]:
        return [a.format(top=s.top, idx=s.idx, model=s.model) for a in args]

    return setup


def search_args(command: str, index: str = "{idx}", name: str = "default") -> list[str]:
    """Arguments of a read-only command on the index ``name`` under ``index``."""
    common = ["--index", index, "--name", name]
    return {
        "similar": ["similar", "--doc", "0", "--k", "3", "--include-self", "-f", "json", *common],
        "query": ["query", "배터리", "--k", "3", "-f", "json", *common],
        "info": ["info", *common],
        "verify": ["info", "--verify", *common],
        "list": ["list", "--index", index],
        "eval": ["eval", "{top}/queries.csv", *common, "--format", "json"],
    }[command]


def damaged(change: Callable[[Sandbox], None], command: str, name: str = "default"):
    """Apply ``change`` then run ``command`` on the index."""

    def setup(s: Sandbox) -> list[str]:
        change(s)
        return cmd(*search_args(command, name=name))(s)

    return setup


def index_args(s: Sandbox, *extra: str, source: str = "docs.csv") -> list[str]:
    return ["index", str(s.top / source), "-c", "text", "-m", s.model, "-q", *extra]


def into(name: str, prepare: Callable[[Path], None]):
    """``index`` into ``idx/NAME`` after ``prepare(idx/NAME)``."""

    def setup(s: Sandbox) -> list[str]:
        prepare(s.idx / name)
        return index_args(s, "--index", str(s.idx), "--name", name)

    return setup


def write_source(name: str, content: str):
    """``index`` of a text file ``name`` holding ``content``."""

    def setup(s: Sandbox) -> list[str]:
        (s.top / name).write_text(content, encoding="utf-8")
        return index_args(s, "--index", str(s.idx), source=name)

    return setup


def import_matrix(make: Callable[[Path], Path], *extra: str):
    """``index --embeddings X`` with ``X = make(sandbox_top)``."""

    def setup(s: Sandbox) -> list[str]:
        return index_args(s, "--index", str(s.idx), "--embeddings", str(make(s.top)), *extra)

    return setup


def save_npy(name: str, array: np.ndarray) -> Callable[[Path], Path]:
    def make(top: Path) -> Path:
        np.save(top / name, array)
        return top / name

    return make


def save_npz(top: Path) -> Path:
    np.savez(top / "emb.npz", emb=np.ones((N_DOCS, DIM), dtype=np.float32))
    return top / "emb.npz"


def fifo_npy(top: Path) -> Path:
    make_fifo(top / "pipe.npy")
    return top / "pipe.npy"


def directory_npy(top: Path) -> Path:
    (top / "dir.npy").mkdir()
    return top / "dir.npy"


def dev_zero(_top: Path) -> Path:
    return Path("/dev/zero")


def outside_rel(s: Sandbox, name: str) -> str:
    """A ``../``-relative path from the index directory to ``outside/name``."""
    return f"../../outside/{name}"


def to_outside(key: str, name: str, absolute: bool) -> Callable[[Sandbox], None]:
    def change(s: Sandbox) -> None:
        target = str(s.outside / name) if absolute else outside_rel(s, name)
        point_file(s.default, key, target)

    return change


def to_device(key: str) -> Callable[[Sandbox], None]:
    return lambda s: point_file(s.default, key, "/dev/zero")


def fifo_file(key: str, keep_checks: bool = False) -> Callable[[Sandbox], None]:
    def change(s: Sandbox) -> None:
        path = s.default / "meta.json" if key == "meta" else index_file(s.default, key)
        if key != "meta" and not keep_checks:
            forget_checks(s.default, key)
        make_fifo(path)

    return change


def symlink_file(key: str, target: str) -> Callable[[Sandbox], None]:
    def change(s: Sandbox) -> None:
        make_symlink(index_file(s.default, key), s.outside / target)

    return change


def dir_file(key: str) -> Callable[[Sandbox], None]:
    def change(s: Sandbox) -> None:
        path = index_file(s.default, key)
        forget_checks(s.default, key)
        path.unlink()
        path.mkdir()

    return change


def flip(old: str, new: str, index: str = "default") -> Callable[[Sandbox], None]:
    return lambda s: rename_key(s.idx / index, old, new)


def value(dotted: str, new: object) -> Callable[[Sandbox], None]:
    return lambda s: set_value(s.default, dotted, new)


def same_size(key: str, offset: int, data: bytes, index: str = "default"):
    """Damage keeping the size; the recorded sha256 is left as it was (only
    ``info --verify`` reads whole files)."""
    return lambda s: overwrite(index_file(s.idx / index, key), offset, data)


def rows_as_utf8_garbage(s: Sandbox) -> None:
    path = index_file(s.default, "rows")
    path.write_bytes(b"\xff" * path.stat().st_size)


def offsets_out_of_range(s: Sandbox) -> None:
    path = index_file(s.default, "offsets")
    header = path.read_bytes()[: path.stat().st_size - 8 * (N_DOCS + 1)]
    path.write_bytes(header + np.full(N_DOCS + 1, 10**12, dtype=np.int64).tobytes())


def meta_bytes(data: bytes) -> Callable[[Sandbox], None]:
    return lambda s: (s.default / "meta.json").write_bytes(data)


def meta_is_dir(s: Sandbox) -> None:
    (s.default / "meta.json").unlink()
    (s.default / "meta.json").mkdir()


def index_dir_is_file(s: Sandbox) -> None:
    shutil.rmtree(s.default)
    s.default.write_text("not a directory\n")


def onnx_config(content: bytes) -> Callable[[Sandbox], None]:
    def change(s: Sandbox) -> None:
        for config in (s.top / "cache" / "onnx").glob("*/simsearch-onnx.json"):
            config.write_bytes(content)

    return change


def lock_symlink(s: Sandbox) -> list[str]:
    (s.default / ".lock").unlink(missing_ok=True)
    (s.default / ".lock").symlink_to(s.outside / "created-by-lock")
    return index_args(s, "--index", str(s.idx))


def no_outside_file(name: str):
    def check(s: Sandbox, _result: object) -> None:
        assert not (s.outside / name).exists(), f"{name} was created outside the index"

    return check


def only_listed_files(s: Sandbox, _result: object) -> None:
    """Nothing in the index directory but what its metadata names (plus our own
    bookkeeping): a refused build leaves no generation behind."""
    listed = file_names(s.default)
    leftovers = [
        p.name
        for p in s.default.iterdir()
        if p.name.split("-")[0] in {"embeddings", "rows", "offsets", "hashes", "search"}
        and p.name not in listed
    ]
    assert not leftovers, f"files of a refused build left behind: {leftovers}"


def with_other_good_index(change: Callable[[Sandbox], None]) -> Callable[[Sandbox], None]:
    """``change`` plus a second, intact index ``good`` beside the damaged one."""

    def both(s: Sandbox) -> None:
        shutil.copytree(s.default, s.idx / "good")
        edit_meta(s.idx / "good", lambda m: m.__setitem__("name", "good"))
        change(s)

    return both


def lists_both(s: Sandbox, result) -> None:
    assert "good" in result.stdout and "default" in result.stdout, result
    assert "damaged" in result.stdout, result


LONG_NAME = "n" * 300
HANG = 12.0  # far above the ~1 s of a normal failure, even on a loaded 2-core machine
DEVZERO_MEMORY = 2 << 30  # a read of /dev/zero must fail, not eat the machine's memory

# --------------------------------------------------------------------------- tables

CASES: list[Case] = [
    # 1. Data loss: never delete (or write into) a directory simsearch did not make.
    Case("foreign-dir", into("mine", lambda d: _user_files(d)), "not a simsearch index"),
    Case(
        "foreign-dir-symlinked",
        lambda s: into("linked", lambda d: d.symlink_to(s.outside))(s),
        "not a simsearch index",
    ),
    Case(
        "foreign-dir-only-user-npy",
        into("npy", lambda d: (d.mkdir(), np.save(d / "embeddings-x.npy", np.ones((2, 2))))),
        "not a simsearch index",
    ),
    Case(
        "index-root-is-a-file",
        cmd(
            "index",
            "{top}/docs.csv",
            "-c",
            "text",
            "-m",
            "{model}",
            "--index",
            "{top}/outside/passwd",
        ),
        "not a directory",
    ),
    Case(
        "index-etc-passwd",
        cmd("index", "{top}/docs.csv", "-c", "text", "-m", "{model}", "--index", "/etc/passwd"),
        "not a directory",
    ),
    Case("similar-root-is-a-file", cmd(*search_args("similar", index="{top}/outside/passwd"))),
    Case(
        "index-name-300-chars",
        lambda s: index_args(s, "--index", str(s.idx), "--name", LONG_NAME),
        "name",
    ),
    Case("similar-name-300-chars", cmd(*search_args("similar", name=LONG_NAME)), "name"),
    Case(
        "index-name-dotdot",
        lambda s: index_args(s, "--index", str(s.idx), "--name", ".."),
        "invalid index",
    ),
    Case(
        "index-name-slash",
        lambda s: index_args(s, "--index", str(s.idx), "--name", "../x"),
        "invalid index",
    ),
    # 2. Row N is document N, or the file is refused.
    Case(
        "csv-row-with-extra-field", write_source("rag.csv", "id,text\n0,a\n1,b,c\n2,d\n"), "line 3"
    ),
    Case(
        "csv-row-with-missing-field", write_source("short.csv", "id,text\n0,a\n1\n2,d\n"), "line 3"
    ),
    Case(
        "tsv-row-with-extra-field", write_source("rag.tsv", "id\ttext\n0\ta\n1\tb\tc\n"), "line 3"
    ),
    Case(
        "tsv-row-with-missing-field",
        write_source("short.tsv", "id\ttext\n0\ta\n1\n2\td\n"),
        "line 3",
    ),
    Case(
        "sheet-on-a-csv", lambda s: index_args(s, "--index", str(s.idx), "--sheet", "1"), "--sheet"
    ),
    # 3. Every path read from an index resolves inside it.
    Case(
        "rows-absolute-outside-similar",
        damaged(to_outside("rows", "secret.jsonl", True), "similar"),
        "damaged",
    ),
    Case(
        "rows-dotdot-similar",
        damaged(to_outside("rows", "secret.jsonl", False), "similar"),
        "damaged",
    ),
    Case(
        "rows-absolute-outside-verify",
        damaged(to_outside("rows", "secret.jsonl", True), "verify"),
        "damaged",
    ),
    Case(
        "rows-dotdot-query", damaged(to_outside("rows", "secret.jsonl", False), "query"), "damaged"
    ),
    Case(
        "embeddings-dotdot-similar",
        damaged(to_outside("embeddings", "data.npy", False), "similar"),
        "damaged",
    ),
    Case(
        "offsets-dotdot-similar",
        damaged(to_outside("offsets", "offsets-mine.npy", False), "similar"),
        "damaged",
    ),
    Case(
        "rows-named-meta-json",
        damaged(lambda s: point_file(s.default, "rows", "meta.json"), "similar"),
        "damaged",
    ),
    Case(
        "rows-dev-zero-verify",
        damaged(to_device("rows"), "verify"),
        "damaged",
        timeout=HANG,
        memory_limit=DEVZERO_MEMORY,
    ),
    Case(
        "rows-dev-zero-similar",
        damaged(to_device("rows"), "similar"),
        "damaged",
        timeout=HANG,
        memory_limit=DEVZERO_MEMORY,
    ),
    Case(
        "rows-dev-zero-eval",
        damaged(to_device("rows"), "eval"),
        "damaged",
        timeout=HANG,
        memory_limit=DEVZERO_MEMORY,
    ),
    Case(
        "whitening-dotdot-query",
        damaged(
            lambda s: point_file(s.white, "whitening", "../../outside/w.npz"), "query", name="white"
        ),
        "damaged",
    ),
    Case(
        "embeddings-symlink-outside",
        damaged(symlink_file("embeddings", "data.npy"), "similar"),
        "damaged",
    ),
    Case(
        "rows-symlink-outside",
        damaged(symlink_file("rows", "rows-mine.jsonl"), "similar"),
        "damaged",
    ),
    # 6. FIFOs, devices and symlinks: never block, never read without bound.
    Case("meta-fifo-similar", damaged(fifo_file("meta"), "similar"), "damaged", timeout=HANG),
    Case("meta-fifo-query", damaged(fifo_file("meta"), "query"), "damaged", timeout=HANG),
    Case("meta-fifo-info", damaged(fifo_file("meta"), "info"), "damaged", timeout=HANG),
    Case(
        "meta-fifo-list",
        damaged(with_other_good_index(fifo_file("meta")), "list"),
        ok=True,
        timeout=HANG,
        after=lists_both,
    ),
    Case(
        "embeddings-fifo-similar",
        damaged(fifo_file("embeddings"), "similar"),
        "damaged",
        timeout=HANG,
    ),
    Case(
        "embeddings-fifo-sized-similar",
        damaged(fifo_file("embeddings", keep_checks=True), "similar"),
        "damaged",
        timeout=HANG,
    ),
    Case("rows-fifo-similar", damaged(fifo_file("rows"), "similar"), "damaged", timeout=HANG),
    Case("offsets-fifo-similar", damaged(fifo_file("offsets"), "similar"), "damaged", timeout=HANG),
    Case("rows-fifo-verify", damaged(fifo_file("rows"), "verify"), "damaged", timeout=HANG),
    Case("embeddings-dir-similar", damaged(dir_file("embeddings"), "similar"), "damaged"),
    Case("rows-dir-similar", damaged(dir_file("rows"), "similar"), "damaged"),
    Case(
        "lock-symlink",
        lock_symlink,
        ".lock",
        after=no_outside_file("created-by-lock"),
        timeout=HANG,
    ),
    # Flipped keys and wrong types: the metadata is validated as a whole.
    Case("flip-model-similar", damaged(flip("model", "lodel"), "similar"), "damaged"),
    Case("flip-model-query", damaged(flip("model", "lodel"), "query"), "damaged"),
    Case("flip-model-info", damaged(flip("model", "lodel"), "info"), "damaged"),
    Case(
        "flip-model-list",
        damaged(with_other_good_index(flip("model", "lodel")), "list"),
        ok=True,
        after=lists_both,
    ),
    Case("flip-source-similar", damaged(flip("source", "sourse"), "similar"), "damaged"),
    Case("flip-columns-similar", damaged(flip("columns", "colunms"), "similar"), "damaged"),
    Case("flip-files-similar", damaged(flip("files", "flies"), "similar"), "damaged"),
    Case(
        "sizes-unknown-key",
        damaged(lambda s: sizes_with_unknown_key(s.default), "similar"),
        "damaged",
    ),
    Case(
        "files-rows-is-a-number",
        damaged(lambda s: set_file_value(s.default, "rows", 12), "similar"),
        "damaged",
    ),
    Case("source-path-is-a-number", damaged(value("source.path", 12), "similar"), "damaged"),
    Case("encode-is-a-string", damaged(value("encode", "fast"), "query"), "damaged"),
    Case(
        "checksums-is-a-list", damaged(lambda s: checksums_as_list(s.default), "verify"), "damaged"
    ),
    Case("n-docs-is-text", damaged(value("n_docs", "twelve"), "similar"), "damaged"),
    Case("meta-is-a-list", damaged(meta_bytes(b"[]"), "similar"), "damaged"),
    Case("meta-not-utf8", damaged(meta_bytes(b"\xff\xfe{}"), "similar"), "damaged"),
    Case("meta-is-a-directory", damaged(meta_is_dir, "similar"), "damaged"),
    Case("index-dir-is-a-file", damaged(index_dir_is_file, "similar")),
    # Damage that keeps every size.
    Case("rows-not-utf8-similar", damaged(rows_as_utf8_garbage, "similar"), "damaged"),
    Case("rows-not-json-similar", damaged(same_size("rows", 0, b"X"), "similar"), "damaged"),
    Case("rows-not-utf8-eval", damaged(rows_as_utf8_garbage, "eval"), "damaged"),
    Case(
        "embeddings-header-similar",
        damaged(same_size("embeddings", 10, b"XXXX"), "similar"),
        "damaged",
    ),
    Case(
        "offsets-header-similar", damaged(same_size("offsets", 10, b"XXXX"), "similar"), "damaged"
    ),
    Case("offsets-values-similar", damaged(offsets_out_of_range, "similar"), "damaged"),
    Case(
        "whitening-zip-query",
        damaged(same_size("whitening", 0, b"XXXX", index="white"), "query", name="white"),
        "damaged",
    ),
    Case("onnx-config-not-json-query", damaged(onnx_config(b"{"), "query"), ok=True, timeout=60),
    # 8. Bad arguments: one line, before anything slow.
    Case("typer-unknown-option", cmd("index", "{top}/docs.csv", "--bogus"), "--bogus"),
    Case("typer-missing-doc", cmd("similar", "--index", "{idx}"), "--doc"),
    Case("typer-doc-not-a-number", cmd("similar", "--doc", "abc", "--index", "{idx}"), "--doc"),
    Case("typer-unknown-command", cmd("frobnicate"), "frobnicate"),
    Case("typer-k-not-a-number", cmd("query", "x", "--k", "x", "--index", "{idx}"), "--k"),
    Case(
        "model-missing-local-path",
        cmd(
            "index", "{top}/docs.csv", "-c", "text", "-m", "./notamodel-nowhere", "--index", "{idx}"
        ),
        "not found",
    ),
    Case(
        "model-dir-not-a-model",
        cmd("index", "{top}/docs.csv", "-c", "text", "-m", "{top}/notamodel", "--index", "{idx}"),
        "not a sentence",
    ),
    Case(
        "model-is-a-file",
        cmd("index", "{top}/docs.csv", "-c", "text", "-m", "{top}/file.bin", "--index", "{idx}"),
        "not a directory",
    ),
    Case("embeddings-npz", import_matrix(save_npz), ".npz"),
    Case(
        "embeddings-zero-columns",
        import_matrix(save_npy("e.npy", np.zeros((N_DOCS, 0), np.float32))),
        "(12, 0)",
    ),
    Case(
        "embeddings-all-zero",
        import_matrix(save_npy("e.npy", np.zeros((N_DOCS, DIM), np.float32))),
        "zero",
    ),
    Case("embeddings-fifo", import_matrix(fifo_npy), "not a regular file", timeout=HANG),
    Case("embeddings-directory", import_matrix(directory_npy)),
    Case("embeddings-dev-zero", import_matrix(dev_zero), timeout=HANG),
    Case(
        "embeddings-wrong-rows",
        import_matrix(save_npy("e.npy", np.ones((3, DIM), np.float32))),
        "shape",
    ),
    Case(
        "embeddings-object-dtype",
        import_matrix(
            lambda top: (
                np.save(top / "o.npy", np.array([{"a": 1}] * N_DOCS), allow_pickle=True),
                top / "o.npy",
            )[1]
        ),
        "cannot read",
    ),
    Case(
        "whiten-dim-above-dim",
        import_matrix(
            save_npy(
                "e.npy", np.random.default_rng(0).normal(size=(N_DOCS, DIM)).astype(np.float32)
            ),
            "--whiten",
            "--whiten-dim",
            "64",
        ),
        "--whiten-dim",
        after=only_listed_files,
    ),
]

#: Cases that fail on the code before the fixes of issue 13 (``xfail(strict=True)``: a
#: case listed here that passes fails the suite, so this list is exact). Empty since the
#: fixes landed; the commit history shows each case failing first (63 of them).
KNOWN_FAILING: set[str] = set()


def _params():
    for case in CASES:
        marks = list(case.marks)
        if case.id in KNOWN_FAILING:
            marks.append(pytest.mark.xfail(strict=True, reason="defect of issue 13, not fixed yet"))
        yield pytest.param(case, id=case.id, marks=marks)


@dataclass
class Outcome:
    """What one case did: its sandbox, the run, and the files changed outside the index."""

    sandbox: Sandbox
    result: object
    changes: list[str]


def _play(case: Case, template: Path, top: Path, model: str) -> Outcome:
    shutil.copytree(template, top, symlinks=True)
    sandbox = Sandbox(top=top, model=model)
    args = case.setup(sandbox)
    skip = tuple(top / w for w in case.writable)
    before = snapshot(top, skip)
    result = run(args, cwd=top, timeout=case.timeout, memory_limit=case.memory_limit,
                 env={"SIMSEARCH_CACHE_DIR": str(top / "cache")})
    return Outcome(sandbox, result, diff(before, snapshot(top, skip)))


@pytest.fixture(scope="module")
def outcomes(template, tmp_path_factory, tiny_model) -> dict[str, Outcome]:
    """Every case, played once in its own sandbox, several at a time (each is mostly a
    subprocess starting Python; a hang costs its timeout once, not once per worker)."""
    from concurrent.futures import ThreadPoolExecutor

    root = tmp_path_factory.mktemp("matrix")
    workers = max(2, min(4, os.cpu_count() or 2))
    with ThreadPoolExecutor(workers) as pool:
        futures = {c.id: pool.submit(_play, c, template, root / c.id, tiny_model) for c in CASES}
        return {key: future.result() for key, future in futures.items()}


@pytest.mark.parametrize("case", list(_params()))
def test_matrix(outcomes: dict[str, Outcome], case: Case) -> None:
    outcome = outcomes[case.id]
    result = outcome.result
    if case.ok:
        assert_clean(result)
        assert result.code == 0, result
    else:
        assert_one_line_error(result, case.expect)
    assert SECRET not in result.stdout, f"printed a file from outside the index\n{result}"
    assert not outcome.changes, f"files outside the index touched: {outcome.changes}\n{result}"
    if case.after:
        case.after(outcome.sandbox, result)


def test_matrix_is_large_enough() -> None:
    assert len(CASES) >= 60
    assert len({c.id for c in CASES}) == len(CASES)
