"""Performance cube cells: additive counts keyed so any window and any slice is a sum.

A cell is (deployment, model, prediction day, outcome-recorded hour, slice feature,
slice value, actual, predicted) -> (n, sum error, sum |error|, sum error^2). For a
classifier, actual and predicted are the JSON text of the labels and only n counts;
for a regressor they are empty and the sums hold the errors. The overall numbers are
the slice ('', ''). A corrected outcome subtracts its old contribution and adds the
new one in the hour of the correction, so "as known at T" stays a sum of cells.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Mapping
from typing import Any

import orjson

HOUR_US = 3_600_000_000
DAY_US = 86_400_000_000
Key = tuple[str, str, int, int, str, str, str, str]
Deltas = defaultdict[Key, list[float]]


def new_deltas() -> Deltas:
    return defaultdict(lambda: [0, 0.0, 0.0, 0.0])


def label(value: Any) -> str:
    """A class label as JSON text, so 1 and "1" stay different labels."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def contributions(prediction: Mapping[str, Any], task: str, actual: Any, hour: int,
                  sign: int) -> Iterator[tuple[Key, tuple[float, float, float, float]]]:
    """The cells one outcome of one prediction adds to (sign +1) or takes from (-1)."""
    slices = [("", ""), *sorted(prediction["slices"].items())]
    for model, output in sorted(prediction["outputs"].items()):
        predicted = output.get("value") if isinstance(output, Mapping) else output
        if task == "classification":
            cell, values = (label(actual), label(predicted)), (sign, 0.0, 0.0, 0.0)
        else:
            try:
                error = float(predicted) - float(actual)
            except (TypeError, ValueError):
                continue  # no number to measure
            cell, values = ("", ""), (sign, sign * error, sign * abs(error), sign * error * error)
        for feature, value in slices:
            key = (prediction["deployment"], model, prediction["day"], hour, feature, value, *cell)
            yield key, values


def add_outcome(deltas: Deltas, prediction: Mapping[str, Any], task: str, actual: Any,
                previous: tuple[bool, Any, Any], hour: int) -> None:
    """Add an outcome's cells, minus those of the outcome it corrects (if any).

    `prediction` has deployment, day, outputs and the slices of this outcome; `previous`
    is (corrects one?, its actual, its slices)."""
    had_previous, old, old_slices = previous
    if had_previous:
        for key, values in contributions({**prediction, "slices": old_slices}, task, old, hour, -1):
            _add(deltas[key], values)
    for key, values in contributions(prediction, task, actual, hour, +1):
        _add(deltas[key], values)


def _add(cell: list[float], values: tuple[float, float, float, float]) -> None:
    cell[0] += values[0]
    cell[1] += values[1]
    cell[2] += values[2]
    cell[3] += values[3]
