"""The typer app, built from the command functions and their declarations
(:mod:`simsearch.cli.spec`): each ``Opt``/``Arg`` becomes a ``typer.Option``/
``typer.Argument``, and each command runs under :func:`simsearch.cli.run.run`.

Adding a command: write the function in the module of its group (``core``, ``indexes``,
``models``), add it to that module's ``COMMANDS``; nothing else changes.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Annotated, Any

import typer

from simsearch.cli import GROUPS, commands
from simsearch.cli.run import declarations, run

app = typer.Typer(
    name="simsearch",
    help="Sentence-embedding similarity search over the rows of a spreadsheet.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def typer_command(func: Callable[..., Any]) -> Callable[..., None]:
    """``func`` with its declarations as typer annotations, run under the CLI contract."""
    decls = declarations(func)
    signature = inspect.signature(func)
    params = []
    for param in signature.parameters.values():
        hint, spec = decls[param.name]
        maker = typer.Argument if spec.argument else typer.Option
        params.append(
            param.replace(annotation=Annotated[hint, maker(*spec.decls, **spec.typer_kwargs)])
        )

    @functools.wraps(func)
    def wrapper(**kwargs: Any) -> None:
        code = run(func, kwargs)
        if code:
            raise typer.Exit(code=code)

    del wrapper.__wrapped__  # typer must see the signature below, not func's
    wrapper.__signature__ = signature.replace(parameters=params, return_annotation=None)  # type: ignore[attr-defined]
    wrapper.__annotations__ = {p.name: p.annotation for p in params}
    return wrapper


for _group in GROUPS:
    for _name, (_func, _fast) in commands(_group).items():
        app.command(_name)(typer_command(_func))
