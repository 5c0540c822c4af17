"""The command line's contract, in one place: how a command runs (errors as one line on
stderr and exit code 2, Ctrl-C 130, a closed pipe 0), how a library parameter name is
spelled as the command's flag, and the small helpers every command shares.

Nothing here imports typer, pandas or torch.
"""

from __future__ import annotations

import sys
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

from simsearch.cli.spec import Opt
from simsearch.errors import ParamNote, SimsearchError

#: Library parameter -> command parameter, where the two names differ.
ALIASES = {
    "columns": "column",
    "text": "column",
    "files": "data",
    "label": "label_column",
    "indexes": "index",
}


#: The command running now (:func:`run`), whose flags name parameters in notices.
_RUNNING: list[Callable[..., Any]] = []


def say(message: str) -> None:
    """Print a notice to stderr (never mixed into results on stdout); a
    :class:`~simsearch.errors.ParamNote` names the running command's flag."""
    if isinstance(message, ParamNote) and _RUNNING:
        message = message.render(flag_for(_RUNNING[-1]))
    print(message, file=sys.stderr)


def declarations(func: Callable[..., Any]) -> dict[str, tuple[Any, Opt]]:
    """Parameter name -> (type, declaration) of a command function."""
    hints = typing.get_type_hints(func, include_extras=True)
    out = {}
    for name, hint in hints.items():
        meta = getattr(hint, "__metadata__", ())
        spec = next((m for m in meta if isinstance(m, Opt)), None)
        if spec is not None:
            out[name] = (hint.__origin__, spec)
    return out


def flag_for(func: Callable[..., Any]) -> Callable[[str], str]:
    """The function spelling a library parameter as ``func``'s flag (``k`` -> ``--k``,
    ``root`` -> ``--index``); an argument is spelled in capitals (``TEXT``)."""

    def spell(param: str) -> str:
        decls = declarations(func)
        name = ALIASES.get(param, param)
        name = name if name in decls else param
        spec = decls[name][1] if name in decls else None
        if spec is not None and spec.argument:
            return name.upper()
        return (spec and spec.flag) or "--" + name.replace("_", "-")

    return spell


def run(func: Callable[..., Any], kwargs: dict[str, Any]) -> int:
    """Run a command under the CLI's error contract and return its exit code."""
    _RUNNING.append(func)
    try:
        func(**kwargs)
    except SimsearchError as exc:
        say(f"Error: {exc.render(flag_for(func))}")
        return exc.exit_code
    except KeyboardInterrupt:
        say("Error: interrupted; run the same command again to resume where it stopped")
        return 130
    except BrokenPipeError:  # e.g. `simsearch ... | head`
        sys.stderr.close()
        return 0
    finally:
        _RUNNING.pop()
    return 0


def show_list(show: str | None) -> list[str]:
    """``"title, number"`` -> ``["title", "number"]``."""
    return [c.strip() for c in show.split(",") if c.strip()] if show else []


def open_index(root: str | Path, name: str, model: str | None = None) -> Any:
    """Open an index for searching, warning when its source changed since the build.

    Raises:
        SimsearchError: no/damaged index, or ``model`` given and not the index's model.
    """
    from simsearch.index import load_index

    index = load_index(Path(root), name)
    if model is not None:
        from simsearch.encoding import model_id

        if model_id(model) != index.model:
            raise SimsearchError(
                f"the index was built with {index.model}, not {model}; rebuild it with "
                f"'simsearch index FILE --column COL --model {model}', or leave out --model"
            )
    warning = index.stale()
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
