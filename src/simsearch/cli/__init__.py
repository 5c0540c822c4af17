"""The ``simsearch`` command line: a thin layer over the library.

One module per command group; the commands are listed once, in
:mod:`simsearch.cli.commands`:

* :mod:`simsearch.cli.core` -- ``index``, ``similar``, ``query``, ``show``
* :mod:`simsearch.cli.indexes` -- ``list``, ``info``
* :mod:`simsearch.cli.models` -- ``eval``, ``inspect``, ``train``
* :mod:`simsearch.cli.workflows` -- ``neighbors``, ``dedup``, ``map``, ``serve``

Options are declared once (:mod:`simsearch.cli.spec`); the typer app
(:mod:`simsearch.cli.typer_app`) and the fast lane (:mod:`simsearch.cli.fast`) are both derived
from those declarations, and every command runs under one contract
(:mod:`simsearch.cli.run`): errors are one line on stderr and exit code 2; stdout
carries only results (safe to pipe).
"""

from __future__ import annotations

import sys

# No typing or collections import here (nor in simsearch/__init__): until main() installs
# its Ctrl-C handler, an interrupt is Python's KeyboardInterrupt with a traceback, so the
# modules imported before that are kept to the bare minimum.


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


def _interrupted_at_start_up(_signum: int, _frame: object) -> None:
    """Ctrl-C before a command runs (while Python imports the libraries): one line, exit
    code 130, no traceback. Each command restores Python's own handler when it starts
    (:func:`simsearch.cli.run.run`), so an interrupted build still cleans up."""
    sys.stderr.write("Error: interrupted\n")
    raise SystemExit(130)


def main(argv: list[str] | tuple[str, ...] | None = None) -> None:
    """Console-script entry point: the fast lane when it applies, else the typer app."""
    import signal

    signal.signal(signal.SIGINT, _interrupted_at_start_up)
    args = list(sys.argv[1:] if argv is None else argv)
    if args:
        from simsearch.cli.fast import parse

        opts = parse(args[0], args[1:])
        if opts is not None:
            from simsearch.cli.run import run

            if opts.get("fmt", "table") == "table":
                _preload_table()
            from simsearch.cli.commands import load

            code = run(load(args[0]), opts)
            sys.stdout.flush()
            raise SystemExit(code)
    from simsearch.cli.run import run_app
    from simsearch.cli.typer_app import app

    raise SystemExit(run_app(app, args))


def __getattr__(name: str) -> object:
    if name == "app":  # lazily: importing typer is what the fast lane avoids
        from simsearch.cli.typer_app import app

        return app
    raise AttributeError(f"module 'simsearch.cli' has no attribute {name!r}")
