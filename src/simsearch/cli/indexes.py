"""Inventory commands: ``list`` (every index under a root) and ``info`` (one index)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from simsearch.cli.spec import DEFAULT_NAME, DEFAULT_ROOT, IndexName, IndexRoot, Opt, TableOrJson


def list_command(root: IndexRoot = Path(DEFAULT_ROOT)) -> None:
    """The indexes under --index: source, column, model, size, and whether stale."""
    from simsearch.cli.render import write_list
    from simsearch.store.index import describe_all

    write_list(describe_all(root))


def info_command(
    root: IndexRoot = Path(DEFAULT_ROOT),
    name: IndexName = DEFAULT_NAME,
    verify: Annotated[bool, Opt("--verify", help="Also check every file's sha256.")] = False,
    fmt: TableOrJson = "table",
) -> None:
    """One index in detail (metadata, files, sizes); --verify checks checksums."""
    from simsearch.cli.render import check_format, write_info
    from simsearch.store.index import load_index

    fmt = check_format(fmt, ("table", "json"))
    index = load_index(root, name)
    if verify:
        index.verify()
    write_info(index.describe(), fmt=fmt, verified=verify)
