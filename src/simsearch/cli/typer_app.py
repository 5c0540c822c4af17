"""The typer app, built from the command functions and their declarations
(:mod:`simsearch.cli.spec`): each ``Opt``/``Arg`` becomes a ``typer.Option``/
``typer.Argument``, and each command runs under :func:`simsearch.cli.run.run`.

Adding a command: write the function in the module of its group (``core``, ``indexes``,
``models``, ``workflows``) and add one line to :mod:`simsearch.cli.commands`.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Annotated, Any

import typer
from rich.markup import escape
from typer.core import TyperCommand, TyperGroup

from simsearch.cli.commands import COMMANDS, load
from simsearch.cli.run import declarations, run


def _no_type_on_flags(params: list[Any]) -> list[Any]:
    """``params`` with an empty metavar on flags (``--rebuild``, ``--help``): a flag takes
    no value, and typer's ``<bool>`` there reads as if it did."""
    for param in params:
        if getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""
    return params


class Command(TyperCommand):
    """A typer command whose help shows no type on flags."""

    def get_params(self, ctx: Any) -> list[Any]:
        return _no_type_on_flags(super().get_params(ctx))


class Group(TyperGroup):
    """The typer app's group, whose help shows no type on flags."""

    def get_params(self, ctx: Any) -> list[Any]:
        return _no_type_on_flags(super().get_params(ctx))


def _typer_kwargs(spec: Any) -> dict[str, Any]:
    """``spec``'s keyword arguments for ``typer.Option``/``typer.Argument``, its help
    escaped: typer reads help as rich markup, which would swallow a literal
    ``[default: ...]``."""
    kwargs = dict(spec.typer_kwargs)
    if kwargs.get("help"):
        kwargs["help"] = escape(kwargs["help"])
    return kwargs


app = typer.Typer(
    name="simsearch",
    cls=Group,
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
            param.replace(annotation=Annotated[hint, maker(*spec.decls, **_typer_kwargs(spec))])
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


for _name in COMMANDS:
    app.command(_name, cls=Command)(typer_command(load(_name)))
