"""Options dataclasses filled from keyword values: the CLI's parameters and the notebook
functions' keyword arguments carry the same names as the fields of ``BuildOptions``,
``TrainConfig``... so each job's options travel as one object, built in one line."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, TypeVar

T = TypeVar("T")


def options_from(cls: type[T], values: Mapping[str, Any], **overrides: Any) -> T:
    """An instance of the dataclass ``cls`` from the entries of ``values`` (e.g. a
    function's ``locals()``) named like its fields, then ``overrides``."""
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    return cls(**{k: v for k, v in values.items() if k in names} | overrides)
