"""Describing indexes for ``simsearch list`` and ``simsearch info``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from simsearch import index as store
from simsearch.errors import SimsearchError


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.iterdir() if p.is_file())


def human_bytes(n: float) -> str:
    """``1536`` -> ``"1.5 KiB"``."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"  # pragma: no cover


def describe(index: store.Index) -> dict[str, Any]:
    """A flat summary of one index: name, source, column, model, rows, dim, bytes on
    disk (``size_bytes``), ``stale`` (source changed since the build) and its metadata."""
    from simsearch.search import source_changed

    meta = index.meta
    return {
        "name": index.path.name,
        "path": str(index.path),
        "source": meta["source"]["path"],
        "sheet": meta["source"].get("sheet"),
        "column": meta["source"]["column"],
        "model": meta["model"],
        "rows": meta["n_docs"],
        "empty": meta.get("n_empty", 0),
        "dim": meta["dim"],
        "size_bytes": _size(index.path),
        "created_at": meta.get("created_at"),
        "stale": source_changed(index),
        "meta": meta,
    }


def describe_all(root: str | Path = store.DEFAULT_ROOT) -> list[dict[str, Any]]:
    """:func:`describe` for every index under ``root``; a damaged one is listed with
    its problem in ``error`` instead of failing the whole listing.

    Raises:
        SimsearchError: ``root`` does not exist or holds no index.
    """
    root = Path(root)
    if not root.is_dir():
        raise SimsearchError(f"no indexes at {root}; run 'simsearch index FILE --column COL' first")
    out = []
    for path in store.list_indexes(root):
        try:
            out.append(describe(store.load_index(root, path.name)))
        except SimsearchError as exc:
            out.append({"name": path.name, "path": str(path), "error": str(exc)})
    if not out:
        raise SimsearchError(f"no indexes at {root}; run 'simsearch index FILE --column COL' first")
    return out


def write_list(items: list[dict[str, Any]]) -> None:
    """Print one table row per index."""
    from rich.console import Console
    from rich.table import Table

    table = Table(pad_edge=False)
    for col in ("name", "source", "column", "model", "rows", "dim", "size", "status"):
        table.add_column(col, overflow="fold")
    for item in items:
        if "error" in item:
            table.add_row(item["name"], "", "", "", "", "", "", f"damaged: {item['error']}")
            continue
        table.add_row(
            item["name"],
            Path(item["source"]).name,
            item["column"],
            item["model"],
            f"{item['rows']:,}",
            str(item["dim"]),
            human_bytes(item["size_bytes"]),
            "stale" if item["stale"] else "up to date",
        )
    Console().print(table)


def write_info(item: dict[str, Any], fmt: str = "table", verified: bool = False) -> None:
    """Print one index in detail (``fmt="json"`` prints the metadata as JSON)."""
    if fmt == "json":
        json.dump(item, sys.stdout, ensure_ascii=False, indent=2, default=str)
        sys.stdout.write("\n")
        return
    meta = item["meta"]
    lines = [
        ("index", item["path"]),
        ("source", item["source"]),
        ("sheet", item["sheet"] or "-"),
        ("column", item["column"]),
        ("documents", f"{item['rows']:,} ({item['empty']:,} empty)"),
        ("model", item["model"]),
        ("dimension", str(item["dim"])),
        ("size on disk", human_bytes(item["size_bytes"])),
        ("created", item["created_at"]),
        ("status", item["stale"] or "up to date with its source"),
        ("checksums", "verified" if verified else "not checked (use --verify)"),
        ("versions", ", ".join(f"{k} {v}" for k, v in meta.get("versions", {}).items())),
    ]
    width = max(len(k) for k, _ in lines)
    for key, value in lines:
        print(f"{key.ljust(width)}  {value}")
