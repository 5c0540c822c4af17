"""The fast lane: the plain forms of the commands that load no model (``similar``,
``query`` on its ONNX path, ``list``, ``info``) parsed without importing typer.

Why: importing typer (with its pydantic adapters) and click costs ~110 ms, as much as
python + numpy together, on a command whose whole work takes ~50 ms. The lane reads
the SAME declarations typer is built from (:mod:`simsearch.cli.spec`), so no option is
declared twice. Anything it does not recognise with certainty (``--help``, an unknown
option, a malformed number, ``-k5``-style short forms, a missing required option, a
list option, a boolean spelled ``--no-x``) returns ``None`` and the typer app takes
the arguments unchanged, so typer's usage errors and help stay the single source of
truth. Both lanes run the same function under the same contract
(:func:`simsearch.cli.run.run`), so they print the same bytes.
"""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from simsearch.cli.run import declarations

SCALARS: dict[Any, Callable[[str], Any]] = {int: int, float: float, str: str, Path: Path}


def _scalar(hint: Any) -> Callable[[str], Any] | None:
    """The converter for ``hint`` (``int``, ``str | None``, ``Path``...), or None."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        hint = args[0] if len(args) == 1 else None
    return SCALARS.get(hint)


class _ForTyper(Exception):
    """The arguments are not a plain form: typer parses them."""


def _convert(hint: Any, value: str) -> Any:
    convert = _scalar(hint)
    if convert is None:
        raise _ForTyper
    try:
        return convert(value)
    except ValueError:
        raise _ForTyper from None


def _options(
    decls: dict[str, tuple[Any, Any]], args: Sequence[str]
) -> tuple[dict[str, Any], list[str]]:
    """(options by parameter name, positional values) of ``args``."""
    spellings = {d: name for name, (_, spec) in decls.items() for d in spec.decls}
    out: dict[str, Any] = {}
    values: list[str] = []
    rest = iter(args)
    for arg in rest:
        if not arg.startswith("-") or arg == "-":
            values.append(arg)
            continue
        spelled, eq, inline = arg.partition("=")
        if spelled not in spellings:
            raise _ForTyper
        name = spellings[spelled]
        hint = decls[name][0]
        if hint is bool:
            if eq:
                raise _ForTyper
            out[name] = True
            continue
        value = inline if eq else next(rest, None)
        if value is None:
            raise _ForTyper
        out[name] = _convert(hint, value)
    return out, values


def parse_args(func: Callable[..., Any], args: Sequence[str]) -> dict[str, Any] | None:
    """The keyword arguments of ``func`` for ``args``, or None when typer must parse them."""
    decls = declarations(func)
    positional = [n for n, (_, spec) in decls.items() if spec.argument]
    signature = inspect.signature(func)
    try:
        out, values = _options(decls, args)
        if len(values) > len(positional):
            raise _ForTyper
        for name, value in zip(positional, values):
            out[name] = _convert(decls[name][0], value)
    except _ForTyper:
        return None
    for name in positional[len(values) :]:
        out[name] = signature.parameters[name].default
    required = [p.name for p in signature.parameters.values() if p.default is p.empty]
    if any(name not in out or out[name] is inspect.Parameter.empty for name in required):
        return None
    return out


def parse(command: str, args: Sequence[str]) -> dict[str, Any] | None:
    """:func:`parse_args` for a command by name; None for commands typer always parses."""
    from simsearch.cli.commands import COMMANDS, load

    entry = COMMANDS.get(command)
    if entry is None or not entry.fast:
        return None
    return parse_args(load(command), args)
