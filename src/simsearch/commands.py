"""The bodies of ``similar`` and ``query`` and the helpers every command shares.

Both the typer app (:mod:`simsearch.cli`) and the fast lane for cold starts
(:mod:`simsearch.fastcli`) call these, so the two print the same bytes. Nothing here
imports typer, pandas or torch at module level.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from simsearch import index as store
from simsearch.errors import SimsearchError

F = TypeVar("F", bound=Callable[..., Any])


def say(message: str) -> None:
    """Print a notice to stderr (never mixed into results on stdout)."""
    print(message, file=sys.stderr)


def run(body: Callable[[], None]) -> int:
    """Run a command body under the CLI's error contract and return its exit code: a
    SimsearchError is one line on stderr and code 2, Ctrl-C code 130, a closed pipe 0."""
    try:
        body()
    except SimsearchError as exc:
        say(f"Error: {exc}")
        return exc.exit_code
    except KeyboardInterrupt:
        say("Error: interrupted; run the same command again to resume where it stopped")
        return 130
    except BrokenPipeError:  # e.g. `simsearch ... | head`
        sys.stderr.close()
        return 0
    return 0


def handle_errors(func: F) -> F:
    """Decorate a typer command so it runs under :func:`run`'s error contract (typer is
    imported only when a command fails, so this module stays light)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        code = run(lambda: func(*args, **kwargs))
        if code:
            import typer

            raise typer.Exit(code=code)

    return wrapper  # type: ignore[return-value]


def show_list(show: str | None) -> list[str]:
    """``"title, number"`` -> ``["title", "number"]``."""
    return [c.strip() for c in show.split(",") if c.strip()] if show else []


def check_format(fmt: str) -> str:
    """Raises SimsearchError unless ``fmt`` is ``table``, ``json`` or ``csv``."""
    from simsearch.output import FORMATS

    if fmt not in FORMATS:
        raise SimsearchError(f"unknown --format {fmt!r}; use one of: {', '.join(FORMATS)}")
    return fmt


def open_index(root: str | Path, name: str, model: str | None = None) -> store.Index:
    """Open an index for searching, warning when its source changed since the build.

    Raises:
        SimsearchError: no/damaged index, or ``model`` given and not the index's model.
    """
    from simsearch.search import source_changed

    index = store.load_index(Path(root), name)
    if model is not None:
        from simsearch.encoding import model_id

        if model_id(model) != index.model:
            raise SimsearchError(
                f"the index was built with {index.model}, not {model}; rebuild it with "
                f"'simsearch index FILE --column COL --model {model}', or leave out --model"
            )
    warning = source_changed(index)
    if warning:
        say(f"Warning: {warning}")
    return index


def read_queries(text: str | None, file: str | None) -> list[str]:
    """The query texts: ``text``, or the non-blank lines of ``file`` (``-``: stdin).

    Raises:
        SimsearchError: neither or both given, a missing or non-UTF-8 file, no lines.
    """
    if text is not None and file is not None:
        raise SimsearchError("give either TEXT or --file, not both")
    if file is None:
        if text is None:
            raise SimsearchError("no query given; pass TEXT, or --file FILE (- for stdin)")
        return [text]
    if file == "-":
        lines = sys.stdin.read().splitlines()
    else:
        path = Path(file)
        if not path.is_file():
            raise SimsearchError(f"query file not found: {file}")
        try:
            lines = path.read_text(encoding="utf-8-sig").splitlines()
        except UnicodeDecodeError:
            raise SimsearchError(f"{file} is not UTF-8 text; save it as UTF-8") from None
    queries = [line.strip() for line in lines if line.strip()]
    if not queries:
        raise SimsearchError(f"{file if file != '-' else 'stdin'} holds no query lines")
    return queries


def similar(
    doc: int,
    k: int = 10,
    include_self: bool = False,
    show: str | None = None,
    fmt: str = "table",
    model: str | None = None,
    root: str | Path = store.DEFAULT_ROOT,
    name: str = store.DEFAULT_NAME,
) -> None:
    """``simsearch similar``: print the documents nearest to row ``doc``."""
    from simsearch import output
    from simsearch.search import similar_hits

    fmt = check_format(fmt)
    index = open_index(root, name, model)
    columns = show_list(show)
    output.check_show(columns, index.meta["columns"])
    hits = similar_hits(index, doc, k, include_self=include_self, log=say)
    output.write(hits, fmt, columns, title=f"documents similar to row {doc}")


def query(
    text: str | None = None,
    file: str | None = None,
    k: int = 10,
    show: str | None = None,
    fmt: str = "table",
    device: str | None = None,
    model: str | None = None,
    root: str | Path = store.DEFAULT_ROOT,
    name: str = store.DEFAULT_NAME,
) -> None:
    """``simsearch query``: print the documents nearest to each query text."""
    from simsearch import output
    from simsearch.search import query_hits

    fmt = check_format(fmt)
    queries = read_queries(text, file)
    index = open_index(root, name, model)
    columns = show_list(show)
    output.check_show(columns, index.meta["columns"])
    hits = query_hits(index, queries, k, device=device, log=say)
    output.write(hits, fmt, columns)
