"""Rich progress bars (encoding texts, ranking rows), on stderr so stdout stays clean
for results."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any


@contextlib.contextmanager
def progress(label: str, unit: str, enabled: bool = True) -> Iterator[Callable[[int, int], None]]:
    """Yield an ``on_progress(done, total)`` callback that drives a progress bar
    (``label``, done/total ``unit``, elapsed, time left). The bar appears on the first
    call only, so a run that does no work (or fails first) prints none;
    ``enabled=False`` gives a no-op callback."""
    state: dict[str, Any] = {}

    def update(done: int, total: int) -> None:
        if not enabled:
            return
        if "bar" not in state:
            state["bar"] = _start_bar(label, unit)
            state["task"] = state["bar"].add_task(label, total=total)
        state["bar"].update(state["task"], completed=done, total=total)

    try:
        yield update
    finally:
        if "bar" in state:
            state["bar"].stop()


def encode_progress(enabled: bool = True) -> contextlib.AbstractContextManager:
    """The bar of ``index``: texts encoded."""
    return progress("encoding", "texts", enabled)


def _start_bar(label: str, unit: str) -> Any:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    bar = Progress(
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn(unit),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        console=Console(stderr=True),
    )
    bar.start()
    return bar
