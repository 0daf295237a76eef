"""Performance cube cells: additive counts keyed so any window and any slice is a sum.

A cell is (deployment, model, prediction day, outcome epoch, slice feature, slice value,
actual, predicted) -> (n, sum error, sum |error|, sum error^2). For a classifier, actual
and predicted are the JSON text of the labels and only n counts; for a regressor they are
empty and the sums hold the errors. The overall numbers are the slice ('', '').

An epoch is a run of at most FINE outcomes within one outcome-recorded hour, numbered
monotonically in ledger position: `hour * PER_HOUR + (outcomes so far in the hour // FINE)`.
Cells are kept at three levels (LEVELS): per epoch, per 8 epochs, per 64 epochs; "now"
sums the coarsest. "As known at T" sums, at each level, the cells of the groups before the
one E (T's epoch) falls in (at most 7 a level below the coarsest), then a tail of E's
outcomes up to T (at most FINE). A corrected outcome subtracts its old contribution and adds the new one in the
epoch of the correction, so "as known at T" stays a sum of cells.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

import orjson

HOUR_US = 3_600_000_000
DAY_US = 86_400_000_000
FINE = 256  # outcomes an epoch holds at most: the as-of tail is computed from this many rows
# (cell table, epochs a cell spans), coarsest first: "now" reads a cell per 16,384 outcomes
LEVELS = (("cubes", 64), ("cubes_mid", 8), ("cubes_fine", 1))  # each span a multiple of the next
PER_HOUR = 8192  # epoch numbers per hour (a multiple of every span); past 2M outcomes an hour the last grows
Key = tuple[str, str, int, int, str, str, str, str]
Deltas = defaultdict[Key, list[float]]
Scored = tuple[tuple[str, Any], ...]  # (model, its prediction's label text, or its number)
_LABELS: dict[tuple[type, Any], str] = {}


def new_deltas() -> Deltas:
    return defaultdict(lambda: [0, 0.0, 0.0, 0.0])


def group(epoch: int, span: int) -> int:
    """The cell an epoch is summed into at a level (the first epoch of its group)."""
    return epoch - epoch % span


class EpochClock:
    """Numbers the outcomes' epochs: a new one each hour and after every FINE outcomes."""

    def __init__(self, hour: int = -1, count: int = 0, last: int = -1):
        self.hour, self.count = hour, count  # outcomes counted so far in `hour`
        self.last = last  # the epoch of the last outcome counted (-1: none yet)

    def next(self, recorded_at: int) -> int:
        hour = recorded_at // HOUR_US
        if hour != self.hour:
            self.hour, self.count = hour, 0
        self.last = hour * PER_HOUR + min(self.count // FINE, PER_HOUR - 1)
        self.count += 1
        return self.last


def label(value: Any) -> str:
    """A class label as JSON text, so 1 and "1" stay different labels (cached: a few labels recur)."""
    try:
        key = (
            type(value),
            value,
        )  # the type too: 1, 1.0 and True are equal keys but different labels
        text = _LABELS.get(key)
    except TypeError:  # unhashable (a list or a dict as a label)
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
    if text is None:
        if len(_LABELS) > 10_000:
            _LABELS.clear()
        text = _LABELS[key] = orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
    return text


def predicted_values(outputs: Mapping[str, Any]) -> dict[str, Any]:
    """{model: its predicted value} from a prediction's outputs."""
    return {
        model: output.get("value")
        if type(output) is dict or isinstance(output, Mapping)
        else output
        for model, output in outputs.items()
    }


def scored(predicted: Mapping[str, Any], task: str) -> Scored:
    """Each model's prediction as the cells need it, once per prediction: label text or number."""
    out = []
    for model, value in sorted(predicted.items()):
        if task == "classification":
            out.append((model, label(value)))
            continue
        try:
            out.append((model, float(value)))
        except (TypeError, ValueError):
            continue  # no number to measure
    return tuple(out)


def add_counted(
    deltas: Deltas,
    fact: Mapping[str, Any],
    task: str,
    actual: Any,
    slices: Iterable[tuple[str, str]],
    epoch: int,
    sign: int,
) -> None:
    """Add (sign +1) or take (-1) the cells one outcome of one prediction counts in.

    `fact` has deployment, day and scored; `slices` the (feature, value) pairs to count
    under, the overall ('', '') included."""
    slices = list(slices)
    deployment, day = fact["deployment"], fact["day"]
    if task == "classification":
        a = label(actual)
    else:
        try:
            a_num = float(actual)
        except (TypeError, ValueError):
            return  # no number to measure
    for model, predicted in fact["scored"]:
        if (
            task == "classification"
        ):  # only n counts: one add a cell (this loop runs for every outcome)
            for feature, value in slices:
                deltas[(deployment, model, day, epoch, feature, value, a, predicted)][0] += sign
            continue
        error = predicted - a_num
        values = (sign, sign * error, sign * abs(error), sign * error * error)
        for feature, value in slices:
            sums = deltas[(deployment, model, day, epoch, feature, value, "", "")]
            sums[0] += values[0]
            sums[1] += values[1]
            sums[2] += values[2]
            sums[3] += values[3]


def add_outcome(
    deltas: Deltas,
    fact: Mapping[str, Any],
    task: str,
    actual: Any,
    slices: Mapping[str, str],
    previous: tuple[bool, Any, Any],
    epoch: int,
    feature: str | None = None,
    times: int = 1,
) -> None:
    """Add an outcome's cells (`times` such outcomes), minus those of the outcome it corrects (if any).

    `previous` is (corrects one?, its actual, its slices). With `feature`, only that slice
    feature's cells ('' the overall ones): what one query needs."""
    had_previous, old, old_slices = previous
    if had_previous:
        add_counted(deltas, fact, task, old, _pairs(old_slices or {}, feature), epoch, -times)
    add_counted(deltas, fact, task, actual, _pairs(slices, feature), epoch, times)


def _pairs(slices: Mapping[str, str], feature: str | None) -> list[tuple[str, str]]:
    if feature is None:
        return [("", ""), *slices.items()]
    if feature == "":
        return [("", "")]
    return [(feature, slices[feature])] if feature in slices else []


def rolled_up(deltas: Deltas, span: int) -> Deltas:
    """The same sums keyed by the epoch groups of one level (of `deltas` by epoch, or by a finer level's groups)."""
    if span == 1:
        return deltas
    out = new_deltas()
    for key, values in deltas.items():
        sums = out[(*key[:3], group(key[3], span), *key[4:])]  # type: ignore[index]
        for i in range(4):
            sums[i] += values[i]
    return out
