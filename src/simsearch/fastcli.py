"""Console entry point with a fast lane for the hot commands ``similar`` and ``query``.

Importing typer (which now builds pydantic adapters) and click costs 150-250 ms on a
loaded 2-core machine, a third of the 0.5 s budget of a cold ``simsearch similar``.
:func:`main` therefore parses the plain forms of ``similar`` and ``query`` by hand and
calls the same library functions as :mod:`simsearch.cli`; anything it does not
recognise with certainty (``--help``, an unknown or new option, a malformed number,
``-k5``-style short forms, a missing required option) is handed to the typer app
unchanged, so typer's usage errors and help stay the single source of truth.

Both lanes print the same bytes for the same arguments (``tests/test_fast.py``).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Any

#: command -> option spelling -> (destination, kind); kind is "int", "str" or "flag".
_OPTIONS: dict[str, dict[str, tuple[str, str]]] = {
    "similar": {
        "--doc": ("doc", "int"),
        "-d": ("doc", "int"),
        "--k": ("k", "int"),
        "-k": ("k", "int"),
        "--include-self": ("include_self", "flag"),
        "--show": ("show", "str"),
        "--format": ("fmt", "str"),
        "-f": ("fmt", "str"),
        "--model": ("model", "str"),
        "-m": ("model", "str"),
        "--index": ("root", "str"),
        "--name": ("name", "str"),
    },
    "query": {
        "--file": ("file", "str"),
        "--k": ("k", "int"),
        "-k": ("k", "int"),
        "--show": ("show", "str"),
        "--format": ("fmt", "str"),
        "-f": ("fmt", "str"),
        "--device": ("device", "str"),
        "--model": ("model", "str"),
        "-m": ("model", "str"),
        "--index": ("root", "str"),
        "--name": ("name", "str"),
    },
}


def parse(command: str, args: Sequence[str]) -> dict[str, Any] | None:
    """The options of ``simsearch COMMAND ARGS`` as a dict, or ``None`` when the
    arguments are anything but the plain forms handled here (typer then takes over)."""
    spec = _OPTIONS.get(command)
    if spec is None:
        return None
    out: dict[str, Any] = {}
    positional: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg.startswith("-") and arg != "-":
            name, eq, inline = arg.partition("=")
            if name not in spec:
                return None
            dest, kind = spec[name]
            if kind == "flag":
                if eq:
                    return None
                out[dest] = True
                i += 1
                continue
            if eq:
                value = inline
            else:
                if i + 1 >= len(args):
                    return None
                value = args[i + 1]
                i += 1
            if kind == "int":
                try:
                    out[dest] = int(value)
                except ValueError:
                    return None
            else:
                out[dest] = value
            i += 1
        else:
            positional.append(arg)
            i += 1
    if command == "similar":
        if positional or "doc" not in out:
            return None
    elif command == "query":
        if len(positional) > 1:
            return None
        out["text"] = positional[0] if positional else None
    return out


def _preload_table() -> None:
    """Import rich (~80 ms) in a thread while the main thread imports numpy, maps the
    index and ranks (BLAS releases the GIL): the table is then ready sooner."""
    import threading

    def work() -> None:
        try:
            import rich.console  # noqa: F401
            import rich.table  # noqa: F401
        except Exception:  # noqa: BLE001 - the main thread imports it again and reports
            pass

    threading.Thread(target=work, daemon=True).start()


def similar(opts: dict[str, Any]) -> None:
    """``simsearch similar`` through :func:`simsearch.commands.similar`."""
    if opts.get("fmt", "table") == "table":
        _preload_table()
    from simsearch import commands

    commands.similar(**opts)


def query(opts: dict[str, Any]) -> None:
    """``simsearch query`` through :func:`simsearch.commands.query`."""
    from simsearch import commands

    commands.query(**opts)


_COMMANDS: dict[str, Callable[[dict[str, Any]], None]] = {"similar": similar, "query": query}


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point: the fast lane when it applies, else the typer app."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in _COMMANDS:
        opts = parse(args[0], args[1:])
        if opts is not None:
            from simsearch.commands import run

            code = run(lambda: _COMMANDS[args[0]](opts))
            sys.stdout.flush()
            raise SystemExit(code)
    from simsearch.cli import app

    app(args=args, prog_name="simsearch")


if __name__ == "__main__":
    main()
