"""The one table of the ``simsearch`` commands: name -> where its function lives, and
whether the fast lane parses it.

Everything that needs the list of commands reads it from here: the typer app
(:mod:`simsearch.cli.typer_app`) registers each one in this order, the fast lane
(:mod:`simsearch.cli.fast`) imports only the module of the command it parses, and
``docs/cli.md`` is generated from it. This module imports nothing, so reading it costs
nothing and no import cycle runs through it.

``fast`` commands load no model on their usual path: :mod:`simsearch.cli.fast` parses
their plain forms without importing typer.

Adding a command: write its function in the module of its group (``core``, ``indexes``,
``models``, ``workflows``) and add one line here; then regenerate the reference with
``cog -r docs/*.md``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple


class Command(NamedTuple):
    """Where a command's function lives (``"module:function"`` under ``simsearch.cli``)
    and whether the fast lane parses it."""

    target: str
    fast: bool


COMMANDS: dict[str, Command] = {
    "index": Command("core:index_command", fast=False),
    "similar": Command("core:similar_command", fast=True),
    "query": Command("core:query_command", fast=True),
    "show": Command("core:show_command", fast=True),
    "list": Command("indexes:list_command", fast=True),
    "info": Command("indexes:info_command", fast=True),
    "eval": Command("models:eval_command", fast=False),
    "inspect": Command("models:inspect_command", fast=False),
    "train": Command("models:train_command", fast=False),
    "neighbors": Command("workflows:neighbors_command", fast=False),
    "dedup": Command("workflows:dedup_command", fast=False),
    "map": Command("workflows:map_command", fast=False),
    "serve": Command("workflows:serve_command", fast=False),
}


def load(name: str) -> Callable[..., Any]:
    """The function of command ``name`` (imports only its module); KeyError if unknown."""
    import importlib

    module, _, function = COMMANDS[name].target.partition(":")
    return getattr(importlib.import_module(f"simsearch.cli.{module}"), function)
