"""The input matrix every trained pipeline takes: one column per feature, in model order.

Numbers, integers and booleans are floats (missing is NaN; booleans 1.0/0.0);
categories are `str` or `None` (missing). The same conversion serves training
(from a DataFrame) and serving (from JSON rows), so both score the same values.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

NUMERIC_TYPES = ("number", "integer", "boolean")


def frame_to_matrix(frame: pd.DataFrame, features: Sequence[Mapping[str, Any]]) -> np.ndarray:
    """A 2-D object array of the features' columns, in the given order."""
    matrix = np.empty((len(frame), len(features)), dtype=object)
    for i, feature in enumerate(features):
        column = frame[feature["name"]]
        if feature["type"] == "category":
            matrix[:, i] = [None if _missing(v) else category_text(v) for v in column.tolist()]
        else:
            matrix[:, i] = column.astype("float64").to_numpy(na_value=np.nan)
    return matrix


def rows_to_matrix(
    rows: Sequence[Mapping[str, Any]], features: Sequence[Mapping[str, Any]]
) -> np.ndarray:
    """The same matrix from JSON-like rows (an absent key or None is missing)."""
    matrix = np.empty((len(rows), len(features)), dtype=object)
    for i, (name, convert) in enumerate(column_readers(features)):
        # a column at a time; an object array keeps each converted value as it is
        matrix[:, i] = np.array([convert(row.get(name)) for row in rows], dtype=object)
    return matrix


Reader = tuple[str, Callable[[Any], Any]]


def column_readers(features: Sequence[Mapping[str, Any]]) -> list[Reader]:
    """Each column's feature name and the conversion of its JSON value."""
    return [(f["name"], category_text if f["type"] == "category" else _number) for f in features]


def row_values(row: Mapping[str, Any], readers: Sequence[Reader]) -> list[Any]:
    """One row of rows_to_matrix as a list (readers: column_readers of the same features)."""
    return [convert(row.get(name)) for name, convert in readers]


def _number(value: Any) -> float:
    return math.nan if value is None else float(value)


def category_text(value: Any) -> str | None:
    """A category level as text; 3.0 reads as "3", as a CSV column with gaps would hold it."""
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _missing(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))
