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
from simsearch.errors import InvalidParameter, ParamNote, SimsearchError

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


#: Commands whose interrupted run the same command resumes (from its checkpoint).
RESUMABLE = {"index_command"}


def run(func: Callable[..., Any], kwargs: dict[str, Any]) -> int:
    """Run a command under the CLI's error contract and return its exit code."""
    import signal

    # From here Ctrl-C raises KeyboardInterrupt, so a build unwinds and cleans up; after
    # the command, the handler before it (main's one-line exit) is back for the shutdown.
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    _RUNNING.append(func)
    try:
        check_model_names(kwargs.get("model"))
        func(**kwargs)
    except SimsearchError as exc:
        say(f"Error: {exc.render(flag_for(func))}")
        return exc.exit_code
    except KeyboardInterrupt:
        if getattr(func, "__name__", "") in RESUMABLE:
            say("Error: interrupted; run the same command again to resume where it stopped")
        else:
            say("Error: interrupted")
        return 130
    except BrokenPipeError:  # e.g. `simsearch ... | head`
        sys.stderr.close()
        return 0
    finally:
        _RUNNING.pop()
        if before is not None:
            signal.signal(signal.SIGINT, before)
    return 0


def check_model_names(model: str | list[str] | None) -> None:
    """Refuse an empty ``--model`` (``-m ""``), which would name the current folder as
    the model; ``model`` is one name or several (repeatable options).

    Raises:
        InvalidParameter: (param ``model``) an empty or blank name.
    """
    names = [model] if isinstance(model, str) else list(model or [])
    if any(not name.strip() for name in names):
        raise InvalidParameter(
            "model", "{name} is empty: give a hub id (e.g. jhgan/ko-sroberta-multitask) or a "
            "model folder, or leave out {name}"
        )


def show_list(show: str | None) -> list[str]:
    """``"title, number"`` -> ``["title", "number"]``."""
    return [c.strip() for c in show.split(",") if c.strip()] if show else []


def open_index(root: str | Path, name: str, model: str | None = None) -> Any:
    """Open an index for searching, warning when its source changed since the build.

    Raises:
        SimsearchError: no/damaged index, or ``model`` given and not the index's model.
    """
    from simsearch.store.index import load_index

    index = load_index(Path(root), name)
    if model is not None:
        from simsearch.encoding.sbert import model_id

        if model_id(model) != index.model:
            raise SimsearchError(
                f"the index was built with {index.model}, not {model}; rebuild it with "
                f"'simsearch index FILE --column COL --model {model}', or leave out --model"
            )
    warning = index.stale()
    if warning:
        say(f"Warning: {warning}")
    return index


def read_queries(text: str | None, file: str | None, text_file: Path | None = None) -> list[str]:
    """The query texts: ``text``; or the non-blank lines of ``file`` (``-``: stdin), one
    query each; or the whole of ``text_file`` as one query (line breaks kept).

    Raises:
        SimsearchError: none or several given, a missing or undecodable file, no text.
    """
    given = [n for n, v in (("TEXT", text), ("--file", file), ("--text-file", text_file)) if v]
    if len(given) > 1:
        raise SimsearchError(f"give one of TEXT, --file or --text-file, not {' and '.join(given)}")
    if text_file is not None:
        whole = _read_text(text_file).strip()
        if not whole:
            raise SimsearchError(f"{text_file} holds no text")
        return [whole]
    if file is None:
        if text is None:
            raise SimsearchError(
                "no query given; pass TEXT, --file FILE (one query per line, - for stdin) "
                "or --text-file FILE (the whole file as one query)"
            )
        return [text]
    lines = sys.stdin.read().splitlines() if file == "-" else _read_text(Path(file)).splitlines()
    queries = [line.strip() for line in lines if line.strip()]
    if not queries:
        raise SimsearchError(f"{file if file != '-' else 'stdin'} holds no query lines")
    return queries


def _read_text(path: Path) -> str:
    """A query file's text in its detected encoding (UTF-8, cp949, UTF-16...)."""
    from simsearch.tables.charsets import read_text

    if not path.is_file():
        raise SimsearchError(f"query file not found: {path}")
    return read_text(path).text


def index_path(root: Path, name: str) -> Path:
    """The index ``name`` under ``root``: ``--index`` is the folder holding the indexes
    for every command, ``--name`` picks one.

    Raises:
        SimsearchError: ``root`` is itself an index directory (a one-line fix names both).
    """
    root = Path(root)
    if (root / "meta.json").is_file():
        raise SimsearchError(
            f"--index is the folder holding the indexes (for every command), and {root} is "
            f"one index; use --index {root.parent} --name {root.name}"
        )
    return root / name


def run_app(app: Any, args: list[str]) -> int:
    """Run the typer ``app`` on ``args`` and return the exit code; a usage error (unknown
    option or command, missing or malformed value) is one line on stderr and code 2,
    like every other error, instead of click's boxed usage text."""
    try:
        code = app(args=args, prog_name="simsearch", standalone_mode=False)
    except Exception as exc:
        message = getattr(exc, "format_message", None)
        if message is None or not hasattr(exc, "exit_code"):
            raise
        text = " ".join(str(message()).split())
        if text:  # empty: the help was printed (no arguments at all)
            ctx = getattr(exc, "ctx", None)
            where = getattr(ctx, "command_path", None) or "simsearch"
            say(f"Error: {text} (see '{where} --help')")
        return int(exc.exit_code)
    return code if isinstance(code, int) else 0
