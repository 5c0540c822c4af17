"""Defensive file access with no knowledge of indexes (issue 13: never trust a
directory, survive a full or read-only disk). What an index directory is (its marker,
the names of its files) is in :mod:`simsearch.store.layout`.

* **Regular files, bounded reads.** :func:`open_regular` opens with ``O_NOFOLLOW`` and
  ``O_NONBLOCK`` (a FIFO cannot block it, a symlink is not followed) and refuses
  anything but a regular file; :func:`read_bounded` reads at most a given size.
* **Full or read-only disks.** :func:`reserve` allocates a file's blocks up front
  (``posix_fallocate``): a memory-mapped write can then never die of SIGBUS on a full
  disk; :func:`check_free_space` refuses a large write before it starts;
  :func:`os_error` turns ENOSPC, EROFS, EACCES (and a few more) into one line.
* **Modes.** :func:`umask_mode` is the mode a plain ``open()`` would give, so files made
  through ``mkstemp`` (always 0600) are readable by whoever the user's umask allows.

Nothing here imports more than the standard library and :mod:`simsearch.errors`.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from simsearch.errors import SimsearchError

#: Free space kept in reserve beyond the bytes a write needs (metadata, journal).
SPACE_MARGIN = 1 << 20


# ------------------------------------------------------------------------ errors


def os_error(exc: OSError, doing: str) -> SimsearchError:
    """One line for an OSError met while ``doing`` (e.g. ``"writing the index at X"``).

    ENOSPC/EDQUOT: free space; EROFS: a read-only location; EACCES/EPERM: permissions;
    ENAMETOOLONG, ENOTDIR, ELOOP: a bad path. Anything else: its strerror.
    """
    code = exc.errno
    where = f" ({exc.filename})" if exc.filename and str(exc.filename) not in doing else ""
    if code in (errno.ENOSPC, getattr(errno, "EDQUOT", -1)):
        why = "no space left on the device; free some space or use a location on another disk"
    elif code == errno.EROFS:
        why = "the location is on a read-only file system; use a writable location"
    elif code in (errno.EACCES, errno.EPERM):
        why = "permission denied; use a location you can write to"
    elif code == errno.ENAMETOOLONG:
        why = "a file name is too long; use a shorter path or index name"
    elif code == errno.ENOTDIR:
        why = "a part of the path is a file, not a directory"
    elif code == errno.ELOOP:
        why = "the path is a symbolic link, which simsearch does not follow there"
    else:
        why = exc.strerror or type(exc).__name__
    return SimsearchError(f"failed {doing}{where}: {why}")


# ------------------------------------------------------------------------- modes


def current_umask() -> int:
    """The process umask, read without changing it where the OS allows (Linux)."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def umask_mode(executable: bool = False) -> int:
    """The mode ``open()`` (0o666) or ``mkdir()`` (0o777) would give under the umask."""
    return (0o777 if executable else 0o666) & ~current_umask()


# --------------------------------------------------------------- reading safely


def open_regular(path: Path, within: Path | None = None) -> BinaryIO:
    """Open ``path`` for reading only if it is a regular file (not a FIFO, device,
    directory or symlink), optionally also inside the directory ``within``.

    Raises:
        SimsearchError: not a regular file, outside ``within``, or unreadable.
        FileNotFoundError: missing (callers word it in their own terms).
    """
    if within is not None:
        _check_inside(path, within)
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise SimsearchError(f"{path} is a symbolic link, not a regular file") from None
        raise
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise SimsearchError(f"{path} is {_kind(mode)}, not a regular file")
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def _check_inside(path: Path, within: Path) -> None:
    resolved_dir = within.resolve()
    parent = path.parent.resolve()
    if parent != resolved_dir and resolved_dir not in parent.parents:
        raise SimsearchError(f"{path} is outside {within}")


def check_regular(path: Path, within: Path | None = None) -> os.stat_result:
    """``lstat`` of ``path`` after checking it is a regular file (not followed if a
    symlink), optionally inside ``within``; for files read by numpy's memory map.

    Raises:
        SimsearchError: not a regular file, or outside ``within``.
        FileNotFoundError: missing.
    """
    if within is not None:
        _check_inside(path, within)
    st = os.lstat(path)
    if stat.S_ISLNK(st.st_mode):
        raise SimsearchError(f"{path} is a symbolic link, not a regular file")
    if not stat.S_ISREG(st.st_mode):
        raise SimsearchError(f"{path} is {_kind(st.st_mode)}, not a regular file")
    return st


def read_bounded(path: Path, within: Path | None, limit: int) -> bytes:
    """The whole content of a regular file of at most ``limit`` bytes.

    Raises:
        SimsearchError: not a regular file, outside ``within`` or larger than ``limit``.
        FileNotFoundError: missing.
    """
    with open_regular(path, within) as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise SimsearchError(f"{path} is larger than {limit:,} bytes")
    return data


# ------------------------------------------------------------------ writing safely


def check_free_space(directory: Path, needed: int, what: str) -> None:
    """Refuse a write of ``needed`` bytes into ``directory`` when the disk lacks them
    (plus :data:`SPACE_MARGIN`).

    Raises:
        SimsearchError: one line with the sizes.
    """
    import shutil

    try:
        free = shutil.disk_usage(directory).free
    except OSError:
        return  # cannot tell; the write itself reports ENOSPC
    if free < needed + SPACE_MARGIN:
        error = SimsearchError(
            f"not enough space for {what} in {directory}: it needs {_mb(needed)} and "
            f"{_mb(free)} is free; free some space or use a location on another disk"
        )
        error.no_space = True  # type: ignore[attr-defined] - the build drops its checkpoint
        raise error


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


def reserve(fd: int, size: int) -> None:
    """Allocate ``size`` bytes of the open file ``fd`` on disk now, so later writes
    through a memory map cannot fail (a memory map has no way to report ENOSPC: the
    process dies of SIGBUS). Where the file system cannot preallocate, nothing happens.

    Raises:
        OSError: ENOSPC (or EDQUOT) when the space is not there.
    """
    if size <= 0 or not hasattr(os, "posix_fallocate"):
        return
    try:
        os.posix_fallocate(fd, 0, size)
    except OSError as exc:
        if exc.errno in (errno.EOPNOTSUPP, errno.EINVAL, getattr(errno, "ENOTSUP", -1)):
            return
        raise


# --------------------------------------------------------------------- locking


def _open_lock_file(lock_file: Path, path: Path) -> int:
    flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(lock_file, flags, umask_mode())
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise SimsearchError(
                f"{lock_file} is a symbolic link; simsearch never follows it: remove it"
            ) from None
        raise os_error(exc, f"locking the index at {path}") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise SimsearchError(f"{lock_file} is not a regular file: remove it")
    return fd


def _flock(fd: int, lock_file: Path, on_wait: Callable[[], None] | None) -> bool:
    """Lock ``fd`` (waiting, after ``on_wait()``, if another run holds it); True when
    ``fd`` is still the file at ``lock_file`` (the holder may have removed it)."""
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        if on_wait is not None:
            on_wait()
        fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        return os.path.samestat(os.fstat(fd), os.lstat(lock_file))
    except FileNotFoundError:
        return False


@contextlib.contextmanager
def index_lock(path: Path, on_wait: Callable[[], None] | None = None) -> Iterator[None]:
    """Hold an exclusive lock on the index directory ``path`` (which must exist).

    The lock file ``.lock`` is opened without following a symlink (a planted link
    cannot make simsearch create or lock a file elsewhere) and removed on release. A
    waiter that got the lock on a file removed meanwhile retries on the new one, so
    removing the file never lets two runs in at once. A ``.lock`` left by a killed run
    holds no lock (the kernel drops it with the process) and is simply reused.

    Raises:
        SimsearchError: ``.lock`` is a symlink or not a regular file, or an OS error.
    """
    if os.name == "nt":  # pragma: no cover - Windows: no locking
        yield
        return
    lock_file = path / ".lock"
    while True:
        fd = _open_lock_file(lock_file, path)
        try:
            if _flock(fd, lock_file, on_wait):
                break
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)  # the holder removed the file we locked: lock the new one
        on_wait = None
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            os.unlink(lock_file)
        os.close(fd)
