"""Run the science commands standalone (before/without the main CLI): same as `simsearch ...`.

PYTHONPATH=src python scripts/science_cli.py eval ../shared/data/korsts/sts-dev.tsv -m MODEL
"""

from __future__ import annotations

import typer

from simsearch.cli_science import register

app = typer.Typer(no_args_is_help=True, add_completion=False)
register(app)

if __name__ == "__main__":
    app()
