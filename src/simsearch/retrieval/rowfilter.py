"""The one row-filter form of the ranking layer: a ``(n_rows,)`` bool mask.

A ``--where`` filter, an ``allowed`` mask from a notebook, the non-empty rows of an index
and "every row but the query document" are all :class:`RowFilter` values, combined with
``&`` before any ranking, so top-k selection only ever sees rows that may be returned.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np


@dataclass(frozen=True, eq=False)
class RowFilter:
    """Rows a ranking may return.

    Attributes:
        mask: ``(n_rows,)`` bool, True at each allowed row.
    """

    mask: np.ndarray

    @classmethod
    def of_rows(cls, rows: np.ndarray, n_rows: int) -> RowFilter:
        """The filter allowing exactly ``rows`` (int, any order) of ``n_rows``."""
        mask = np.zeros(n_rows, dtype=bool)
        mask[np.asarray(rows, dtype=np.int64)] = True
        return cls(mask)

    @classmethod
    def of_mask(cls, mask: np.ndarray) -> RowFilter:
        """The filter of a bool mask (copied as a bool array)."""
        return cls(np.asarray(mask, dtype=bool).copy())

    @cached_property
    def rows(self) -> np.ndarray:
        """``(n_allowed,)`` int64 allowed rows, ascending (derived once, on demand)."""
        return np.flatnonzero(self.mask).astype(np.int64)

    @cached_property
    def count(self) -> int:
        """Number of allowed rows."""
        return int(np.count_nonzero(self.mask))

    def __len__(self) -> int:
        return len(self.mask)

    def __and__(self, other: RowFilter | None) -> RowFilter:
        if other is None:
            return self
        if len(other.mask) != len(self.mask):
            raise ValueError(
                f"row filters of {len(self.mask)} and {len(other.mask)} rows cannot be combined"
            )
        return RowFilter(self.mask & other.mask)


def both(a: RowFilter | None, b: RowFilter | None) -> RowFilter | None:
    """``a & b`` where None means "every row"."""
    if a is None:
        return b
    return a & b


def count(allow: RowFilter | None, n_rows: int) -> int:
    """Rows ``allow`` keeps (``n_rows`` for no filter)."""
    return n_rows if allow is None else allow.count
