"""Helpers for the hardening tests (issue 13).

* :func:`run`: the real ``simsearch`` console script in a subprocess of its own process
  group, with a timeout; a run that outlives it is killed and reported as a hang.
* :func:`snapshot`: every entry under a directory (type, mode, size, mtime, sha256 of
  regular files, symlink target), read without opening anything but regular files, so
  a FIFO planted by a test can never block the test itself.
* The hostile edits of an index directory (:func:`edit_meta`, :func:`point_file`,
  :func:`make_fifo`, ...). They go through :func:`read_meta` / :func:`write_meta` and
  :func:`index_file` only, so a change of the metadata layout changes this module, not
  the test tables.
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
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

META = "meta.json"


# ------------------------------------------------------------------------ running


def simsearch_cmd() -> list[str]:
    """The installed console script, or ``python -m simsearch`` (same entry point) when
    the script is not installed: these tests never skip for a missing script."""
    exe = shutil.which("simsearch") or str(Path(sys.executable).parent / "simsearch")
    if Path(exe).exists() and _script_target_exists(Path(exe)):
        return [exe]
    return [sys.executable, "-m", "simsearch"]


def _script_target_exists(script: Path) -> bool:
    """Whether the module an installed console script imports exists in the tree under
    test (an install made before a module was renamed points at the old name)."""
    import importlib.util
    import re

    found = re.search(r"^from ([\w.]+) import main", script.read_text(errors="replace"), re.M)
    return found is None or importlib.util.find_spec(found[1]) is not None


@dataclass
class Result:
    """One finished (or killed) run of the console script."""

    args: list[str]
    code: int | None
    stdout: str
    stderr: str
    seconds: float
    timed_out: bool

    def __str__(self) -> str:
        return (
            f"simsearch {' '.join(self.args)}\n-> code {self.code} in {self.seconds:.1f} s"
            f"{' (HANG: killed at the timeout)' if self.timed_out else ''}\n"
            f"--- stdout\n{self.stdout[-2000:]}\n--- stderr\n{self.stderr[-4000:]}"
        )


def run(
    args: list[str],
    cwd: Path,
    timeout: float = 30.0,
    env: dict[str, str] | None = None,
    stdin: str | None = None,
    memory_limit: int | None = None,
) -> Result:
    """Run ``simsearch ARGS`` in ``cwd``; kill its whole process group at ``timeout``.
    ``memory_limit`` (bytes of address space, through the shell's ``ulimit -v``: safe
    from threads, unlike ``preexec_fn``) turns a runaway read into an error."""
    full_env = dict(os.environ, HF_HUB_OFFLINE="1", COLUMNS="200", TOKENIZERS_PARALLELISM="false")
    full_env.update(env or {})
    started = time.monotonic()
    command = [*simsearch_cmd(), *[str(a) for a in args]]
    if memory_limit is not None:
        command = ["sh", "-c", f'ulimit -v {memory_limit // 1024} && exec "$@"', "sh", *command]
    proc = subprocess.Popen(
        command,
        cwd=cwd,
        stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=full_env,
        start_new_session=True,
    )
    timed_out = False
    try:
        out, err = proc.communicate(stdin, timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
    return Result(
        [str(a) for a in args],
        None if timed_out else proc.returncode,
        out,
        err,
        time.monotonic() - started,
        timed_out,
    )


def assert_clean(result: Result) -> None:
    """No hang, no traceback, no death by a signal."""
    assert not result.timed_out, f"HANG\n{result}"
    assert "Traceback" not in result.stderr + result.stdout, f"TRACEBACK\n{result}"
    assert result.code is not None and result.code >= 0, f"KILLED BY A SIGNAL\n{result}"


def assert_one_line_error(result: Result, expected: str | None = None) -> str:
    """Exit code 2, exactly one line on stderr, starting ``Error:``, nothing on stdout;
    returns that line."""
    assert_clean(result)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.code == 2, f"exit code {result.code}, not 2\n{result}"
    assert len(lines) == 1, f"{len(lines)} stderr lines, not 1\n{result}"
    assert lines[0].startswith("Error: "), result
    assert not result.stdout.strip(), f"output on stdout with an error\n{result}"
    if expected is not None:
        assert expected.lower() in lines[0].lower(), f"{expected!r} not in the error\n{result}"
    return lines[0]


# ---------------------------------------------------------------------- snapshots


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def snapshot(top: Path, skip: tuple[Path, ...] = ()) -> dict[str, tuple[Any, ...]]:
    """``relative path -> (kind, mode, size, mtime_ns, sha256 or link target)`` for every
    entry under ``top`` except the subtrees in ``skip``; never follows symlinks and
    never opens anything but a regular file."""
    skipped = {p.resolve() if not p.is_symlink() else p.absolute() for p in skip}
    out: dict[str, tuple[Any, ...]] = {}

    def walk(directory: Path) -> None:
        for entry in sorted(os.scandir(directory), key=lambda e: e.name):
            path = Path(entry.path)
            if path.absolute() in skipped or (not path.is_symlink() and path.resolve() in skipped):
                continue
            st = path.lstat()
            rel = str(path.relative_to(top))
            if stat.S_ISLNK(st.st_mode):
                out[rel] = ("link", os.readlink(path))
            elif stat.S_ISDIR(st.st_mode):
                out[rel] = ("dir", stat.S_IMODE(st.st_mode))
                walk(path)
            elif stat.S_ISREG(st.st_mode):
                out[rel] = (
                    "file",
                    stat.S_IMODE(st.st_mode),
                    st.st_size,
                    st.st_mtime_ns,
                    _digest(path),
                )
            else:
                out[rel] = ("special", stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode))

    walk(top)
    return out


def diff(before: dict[str, tuple], after: dict[str, tuple]) -> list[str]:
    """Human-readable differences between two snapshots (empty when equal)."""
    lines = []
    for key in sorted(set(before) | set(after)):
        if key not in after:
            lines.append(f"deleted: {key}")
        elif key not in before:
            lines.append(f"created: {key}")
        elif before[key] != after[key]:
            lines.append(f"changed: {key}: {before[key]} -> {after[key]}")
    return lines


# ------------------------------------------------------------- index directories
# Everything that knows the layout of meta.json is here.


def read_meta(index_dir: Path) -> dict[str, Any]:
    return json.loads((index_dir / META).read_text(encoding="utf-8"))


def write_meta(index_dir: Path, meta: Any) -> None:
    text = json.dumps(meta, ensure_ascii=False, indent=2)
    (index_dir / META).write_text(text, encoding="utf-8")


def edit_meta(index_dir: Path, change: Callable[[dict[str, Any]], Any]) -> None:
    """Apply ``change`` to the parsed metadata (in place, or return a replacement)."""
    meta = read_meta(index_dir)
    replaced = change(meta)
    write_meta(index_dir, meta if replaced is None else replaced)


def _name(entry: Any) -> Any:
    """A file entry's name: format 1 stores the name, format 2 ``{name, size, sha256}``."""
    return entry["name"] if isinstance(entry, dict) else entry


def file_keys(index_dir: Path) -> list[str]:
    """The keys of the files of the current generation (embeddings, rows, ...)."""
    return list(read_meta(index_dir)["files"])


def file_names(index_dir: Path) -> set[str]:
    """The names of the files of the current generation."""
    return {_name(e) for e in read_meta(index_dir)["files"].values()}


def index_file(index_dir: Path, key: str) -> Path:
    """The file of ``key`` (``embeddings``, ``rows``, ``offsets``, ``hashes``, ``search``,
    ``whitening``) of the current generation."""
    return index_dir / _name(read_meta(index_dir)["files"][key])


def _set_entry(meta: dict[str, Any], key: str, name: Any, size: int | None, sha: str | None):
    if isinstance(meta["files"].get(key), dict):  # format 2
        meta["files"][key] = {"name": name, "size": -1 if size is None else size,
                              "sha256": sha or ""}  # fmt: skip
        return
    meta["files"][key] = name  # format 1: three maps
    for table, item in (("sizes", size), ("checksums", sha)):
        if item is None:
            meta.get(table, {}).pop(key, None)
        else:
            meta.setdefault(table, {})[key] = item


def point_file(index_dir: Path, key: str, name: Any) -> None:
    """Make the metadata name ``name`` as the file of ``key``, with the size and sha256
    of what ``name`` resolves to, as a hostile index would (so size and checksum checks
    alone cannot catch it)."""
    target = Path(name) if isinstance(name, str) and os.path.isabs(name) else index_dir / str(name)

    def change(meta: dict[str, Any]) -> None:
        if target.is_file():
            _set_entry(meta, key, name, target.stat().st_size, _digest(target))
        else:
            _set_entry(meta, key, name, None, None)

    edit_meta(index_dir, change)


def forget_checks(index_dir: Path, key: str) -> None:
    """Drop the recorded size and checksum of one file (an older or hand-made index)."""

    def change(meta: dict[str, Any]) -> None:
        _set_entry(meta, key, _name(meta["files"][key]), None, None)

    edit_meta(index_dir, change)


def set_file_value(index_dir: Path, key: str, value: Any) -> None:
    """Put ``value`` (a wrong type) where the metadata names the file of ``key``."""

    def change(meta: dict[str, Any]) -> None:
        if isinstance(meta["files"].get(key), dict):
            meta["files"][key]["name"] = value
        else:
            meta["files"][key] = value

    edit_meta(index_dir, change)


def sizes_with_unknown_key(index_dir: Path) -> None:
    """A size or checksum recorded for a file the metadata does not name."""

    def change(meta: dict[str, Any]) -> None:
        if "sizes" in meta:
            meta["sizes"] = {"bogus": 1}
        else:
            meta["files"]["embeddings"]["size"] = "bogus"

    edit_meta(index_dir, change)


def checksums_as_list(index_dir: Path) -> None:
    def change(meta: dict[str, Any]) -> None:
        if "checksums" in meta:
            meta["checksums"] = []
        else:
            meta["files"]["rows"]["sha256"] = []

    edit_meta(index_dir, change)


def rename_key(index_dir: Path, old: str, new: str) -> None:
    """A flipped key: valid JSON, one top-level key misspelt (``model`` -> ``lodel``)."""

    def change(meta: dict[str, Any]) -> None:
        meta[new] = meta.pop(old)

    edit_meta(index_dir, change)


def set_value(index_dir: Path, dotted: str, value: Any) -> None:
    """Set ``a.b.c`` in the metadata to ``value`` (a wrong type, a negative count...)."""

    def change(meta: dict[str, Any]) -> None:
        node = meta
        *parents, last = dotted.split(".")
        for part in parents:
            node = node[part]
        node[last] = value

    edit_meta(index_dir, change)


def make_fifo(path: Path) -> None:
    """Replace ``path`` by a FIFO (a read of it blocks until someone writes)."""
    path.unlink(missing_ok=True)
    os.mkfifo(path)


def make_symlink(path: Path, target: Path) -> None:
    """Replace ``path`` by a symlink to ``target``."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)
    path.symlink_to(target)


def overwrite(path: Path, offset: int, data: bytes) -> None:
    """Damage that keeps the size: overwrite bytes at ``offset`` (negative: from the end)."""
    content = bytearray(path.read_bytes())
    start = offset if offset >= 0 else len(content) + offset
    content[start : start + len(data)] = data
    path.write_bytes(bytes(content))


class Hang(BaseException):
    """Raised by :func:`deadline`; a BaseException so no ``except OSError`` swallows it."""


@contextlib.contextmanager
def deadline(seconds: int) -> Iterator[None]:
    """Raise TimeoutError in this (main) thread after ``seconds``: an in-process call
    that blocks (e.g. opening a FIFO) fails the test instead of hanging the suite."""

    def expire(_signum: int, _frame: object) -> None:
        raise Hang(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
