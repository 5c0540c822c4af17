"""What makes a directory a simsearch index directory, and which names may live in it
(issue 13: never trust an index directory, never delete a user's file).

* **Ours or not.** An index directory carries a marker file (:data:`MARKER`) written
  before anything else; :func:`claim_index_dir` refuses a non-empty directory without
  it (an index of an older version, recognised by its ``meta.json``, is adopted).
* **Inside the index.** :func:`member` checks that a file name read from the metadata is
  a plain name of the form simsearch writes (``rows-G.jsonl`` ...), so no absolute or
  ``../`` name can make a reader leave the index directory.

Generic safe file access (regular files, bounded reads, modes, locks) is in
:mod:`simsearch._fs.safe`; this module adds what an index directory means.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
from pathlib import Path

from simsearch._fs.safe import os_error, read_bounded, umask_mode
from simsearch.errors import DamagedIndex, InvalidParameter, SimsearchError

#: The marker file that makes a directory a simsearch index directory.
MARKER = ".simsearch-index"
MARKER_TEXT = "This directory is a simsearch index. Delete it with its directory.\n"
#: Names of the files of a generation ``G``: ``kind-G.ext``.
GENERATION_NAME = re.compile(
    r"^(?P<kind>[a-z][a-z0-9_]*)-(?P<gen>[0-9]{14}-[0-9a-f]{6})(?P<ext>\.[A-Za-z0-9.]+)?$"
)


def is_marked(path: Path) -> bool:
    """Whether ``path`` holds the marker (as a regular file, not a link)."""
    try:
        return stat.S_ISREG(os.lstat(path / MARKER).st_mode)
    except OSError:
        return False


def _looks_like_old_index(path: Path) -> bool:
    """An index written before the marker existed: a ``meta.json`` of ours."""
    try:
        head = read_bounded(path / "meta.json", path, 1 << 20)
    except (OSError, SimsearchError):
        return False
    return b'"format_version"' in head and b'"files"' in head


def _own_leftover(path: Path, name: str) -> bool:
    """What an interrupted or earlier simsearch leaves in a directory before its first
    commit: a ``.lock`` (earlier versions never removed it), a ``work/`` holding only
    the checkpoint and journal, a temporary file of a generation."""
    if name == ".lock":
        return True
    if name == "work" and (path / name).is_dir() and not (path / name).is_symlink():
        own = {"job.json", "pending.npy"}
        return all(n in own or n.endswith(".tmp") for n in os.listdir(path / name))
    return name.startswith(".") and name.endswith(".tmp") and "-" in name


def claim_index_dir(path: Path) -> None:
    """Make ``path`` an index directory of ours, or refuse it.

    Creates it (and its parents) when missing, marks an empty directory or an index of
    an older version, and refuses a directory holding anything else.

    Raises:
        SimsearchError: a non-empty directory that is not a simsearch index, a path
            that is not a directory, or an OS error (one line).
    """
    try:
        if path.exists() and not path.is_dir():
            raise InvalidParameter("root", f"{path} is a file, not an index directory")
        if is_marked(path):
            return
        if path.is_dir():
            names = [n for n in os.listdir(path) if not _own_leftover(path, n)]
            if names and not _looks_like_old_index(path):
                shown = ", ".join(sorted(names)[:4]) + (", ..." if len(names) > 4 else "")
                raise InvalidParameter(
                    "name",
                    f"{path} is not a simsearch index (it holds {shown}); simsearch only "
                    "writes into an empty directory or one of its own indexes: choose "
                    "another index location or {name}",
                )
        else:
            path.mkdir(parents=True, mode=umask_mode(executable=True) | 0o700)
        write_marker(path)
    except OSError as exc:
        raise os_error(exc, f"preparing the index directory {path}") from None


def release_new_index_dir(path: Path) -> None:
    """Remove an index directory made by a build that committed nothing: only when it
    holds nothing but the marker (a failed first build leaves no empty index)."""
    with contextlib.suppress(OSError):
        if sorted(os.listdir(path)) == [MARKER]:
            (path / MARKER).unlink()
            path.rmdir()


def write_marker(path: Path) -> None:
    """Write :data:`MARKER` into ``path`` (no-op when present)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path / MARKER, flags, umask_mode() | 0o400)
    except FileExistsError:
        return
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(MARKER_TEXT)


def check_index_dir_path(root: Path, name: str) -> Path:
    """``root/name`` after checking the root is a directory (when it exists) and the
    name is short enough for the file system.

    Raises:
        SimsearchError: ``root`` is a file, or ``name`` is too long.
    """
    if len(name.encode("utf-8")) > 100:
        raise InvalidParameter(
            "name", f"the index {{name}} is {len(name)} characters long; use at most 100"
        )
    if root.exists() and not root.is_dir():
        raise InvalidParameter("root", f"{{name}} {root} is not a directory of indexes")
    return root / name


def member(index_dir: Path, name: object, what: str = "file") -> Path:
    """The path of a file the metadata names, after checking the name is a plain
    generation file name (no directory part, no ``..``, the ``kind-G.ext`` form).

    Raises:
        DamagedIndex: the "damaged, rebuild" error, naming the bad entry.
    """
    if not isinstance(name, str) or not GENERATION_NAME.match(name):
        raise DamagedIndex.at(
            index_dir, f"its metadata names {what} {name!r}, not a file of the index"
        )
    return index_dir / name
