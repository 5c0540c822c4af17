"""How command-line options are declared: once, as ``Annotated[type, Opt(...)]`` on the
parameters of plain command functions, with no typer import.

:mod:`simsearch.cli.typer_app` turns each declaration into a ``typer.Option``/``typer.Argument``
(typer stays the CLI framework: help, usage errors, completion); :mod:`simsearch.cli.fast`
reads the very same declarations to parse the plain forms of the commands that load no
model without importing typer (see there why). Options shared by several commands are
declared here once.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, TypeVar

T = TypeVar("T")

DEFAULT_ROOT = ".simsearch"
DEFAULT_NAME = "default"


class Opt:
    """An option: its spellings (``"--k", "-k"``) and the keyword arguments of
    ``typer.Option`` (``help=``, ``show_default=``...)."""

    argument = False

    def __init__(self, *decls: str, **typer_kwargs: Any) -> None:
        self.decls = decls
        self.typer_kwargs = typer_kwargs

    @property
    def flag(self) -> str | None:
        """The spelling used in messages: the first long one (None: typer derives it
        from the parameter name)."""
        return next((d for d in self.decls if d.startswith("--")), None)


class Arg(Opt):
    """A positional argument (``typer.Argument``)."""

    argument = True


# ---------------------------------------------------------------- shared declarations

IndexRoot = Annotated[
    Path, Opt("--index", help="Directory holding the indexes.", show_default=True)
]
IndexName = Annotated[str, Opt("--name", help="Which index under --index.")]
Format = Annotated[str, Opt("--format", "-f", help="table, json or csv.")]
TableOrJson = Annotated[str, Opt("--format", "-f", help="table or json.")]
Show = Annotated[
    str | None, Opt("--show", help="Comma-separated source columns to add to the output.")
]
K = Annotated[
    int | None,
    Opt("--k", "-k", help="Number of results (default 10; with --min-similarity: no limit)."),
]
MinSimilarity = Annotated[
    float | None,
    Opt(
        "--min-similarity",
        help="Only results with cosine similarity >= S (alone, or with --k as a cap).",
    ),
]
ResultFormat = Annotated[
    str,
    Opt(
        "--format",
        "-f",
        help="table, json, csv, or xlsx (with -o FILE.xlsx). table on a terminal is a table "
        "(text wrapped at words); through a pipe, one tab-separated line per result.",
    ),
]
Output = Annotated[
    Path | None,
    Opt(
        "--output",
        "-o",
        help="Write results to FILE: .csv as UTF-8 with BOM (opens in Excel), .json, .xlsx.",
    ),
]
Exact = Annotated[
    bool, Opt("--exact", help="Scan every document even when the index has an ANN index.")
]
ModelCheck = Annotated[
    str | None,
    Opt("--model", "-m", help="Refuse to run unless the index was built with this model."),
]
Device = Annotated[
    str | None,
    Opt("--device", help="cpu, cuda, cuda:1, mps, or cuda:0,cuda:1 for several (default: auto)."),
]
BatchSize = Annotated[int, Opt("--batch-size", help="Texts per batch.")]
Where = Annotated[
    str | None,
    Opt(
        "--where",
        help="Only rows matching this SQL condition on the source columns, applied before "
        "ranking, e.g. \"year >= 2020 and applicant == '삼성전자'\".",
    ),
]
Mode = Annotated[
    str | None,
    Opt("--mode", help="hybrid, dense or lexical (default: hybrid when the index has both)."),
]
DenseWeight = Annotated[
    float | None,
    Opt("--dense-weight", help="Hybrid: weight of the dense ranking, 0-1 (default: the "
        "index's tuned value, else 0.3)."),
]
Fusion = Annotated[
    str | None,
    Opt("--fusion", help="Hybrid: convex or rrf (default: the index's tuned method, else convex)."),
]
Aggregate = Annotated[
    str, Opt("--aggregate", help="Row score from its windows: max (best window) or mean.")
]

Rerank = Annotated[
    str | None,
    Opt(
        "--rerank",
        help="Rerank the first stage's top hits with this cross-encoder (hub id or local "
        "directory, e.g. one made by 'simsearch train --method cross-encoder'); each hit "
        "shows rerank_score beside score.",
    ),
]
RerankDepth = Annotated[
    int, Opt("--rerank-depth", help="With --rerank: first-stage hits reranked per query.")
]


def options_from(cls: type[T], values: Mapping[str, Any], **overrides: Any) -> T:
    """An instance of the options dataclass ``cls`` from the entries of ``values`` (a
    command's ``locals()``) named like its fields, then ``overrides``: a command's
    parameters carry the names of the fields of ``BuildOptions``, ``TrainConfig``..."""
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    return cls(**{k: v for k, v in values.items() if k in names} | overrides)
