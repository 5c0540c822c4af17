"""One spreadsheet cell as text: the leaf helper that reading, joining and writing share."""

from __future__ import annotations

import math
from typing import Any


def cell_text(value: Any) -> str:
    """The text form of one cell: ``""`` for missing values, ``str(value)`` otherwise.

    Whole floats from Excel (``3.0``) are written as integers (``"3"``) so a column of
    numbers reads as the user sees it in the spreadsheet.
    """
    if value is None:
        return ""
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        if value.is_integer():
            return str(int(value))
    try:
        import pandas as pd

        if value is pd.NaT or value is pd.NA:
            return ""
    except ImportError:  # pragma: no cover - pandas is a dependency
        pass
    return str(value)
