"""Performance per model and slice from the cubes, now or as known at a past position.

As known at T: the cells of whole outcome hours before T's hour, plus a tail of the
outcomes recorded in T's hour up to T itself, computed the same way the projection
does. Nothing replays the log.
"""

from __future__ import annotations

import time
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

import orjson
import sqlalchemy as sa

from ledger.errors import InvalidCommand, NotFound
from projections import events as ev
from projections import metrics
from projections.cubes import DAY_US, HOUR_US, add_outcome, new_deltas
from projections.predictions import PredictionsProjection
from projections.snapshot import Snapshot, snapshot

Sums = dict[tuple[str, str], dict[tuple[str, str], list[float]]]


def performance(engine: sa.Engine, deployment: str, *, model: str | None = None,
                from_us: int | None = None, to_us: int | None = None, window_days: int | None = None,
                slice_feature: str | None = None, as_of: int | None = None, now_us: int | None = None,
                wait: float = 0.0) -> dict[str, Any]:
    """Metrics per model and slice value, each with its count, over days of prediction time."""
    if window_days is not None and window_days < 1:
        raise InvalidCommand("window_days must be at least 1", field="window_days")
    with snapshot(engine, PredictionsProjection, as_of, wait) as snap:
        info = _deployment(snap, deployment)
        cut = None if snap.requested is None or snap.requested >= snap.projected else snap.position
        at_us = ev.recorded_at_of(snap.conn, cut) if cut is not None else None
        days = _days(from_us, to_us, window_days, now_us or at_us or int(time.time() * 1e6))
        sums = _cells(snap, deployment, model, slice_feature or "", days, at_us)
        if cut is not None and at_us is not None:
            _tail(snap, info, model, slice_feature or "", days, cut, at_us, sums)
        results = [_metrics(info, key, cells) for key, cells in sorted(sums.items())]
        return {"deployment": deployment, "task": info["task"], "slice": slice_feature,
                "window": {"from": _iso_day(days[0]), "to": _iso_day(days[1])},
                "results": results, **snap.stamp()}


def _deployment(snap: Snapshot, name: str) -> dict[str, Any]:
    t = snap.tables["deployments"]
    row = snap.conn.execute(sa.select(t).where(t.c.name == name)).mappings().first()
    if row is None:
        raise NotFound(f"deployment {name!r} not found in the performance tables")
    return dict(row)


def _days(from_us: int | None, to_us: int | None, window_days: int | None, ref_us: int
          ) -> tuple[int | None, int | None]:
    """Whole UTC days of prediction time: [from, to], or the last `window_days` up to `to`."""
    last = (to_us - 1) // DAY_US if to_us is not None else (ref_us // DAY_US if window_days else None)
    first = from_us // DAY_US if from_us is not None else None
    if window_days is not None and last is not None:
        first = max(first, last - window_days + 1) if first is not None else last - window_days + 1
    return first, last


def _cells(snap: Snapshot, deployment: str, model: str | None, feature: str,
           days: tuple[int | None, int | None], at_us: int | None) -> Sums:
    t = snap.tables["cubes"]
    query = (sa.select(t.c.model_id, t.c.slice_value, t.c.actual, t.c.predicted, sa.func.sum(t.c.n),
                       sa.func.sum(t.c.sum_err), sa.func.sum(t.c.sum_abs), sa.func.sum(t.c.sum_sq))
             .where(t.c.deployment == deployment, t.c.slice_feature == feature)
             .group_by(t.c.model_id, t.c.slice_value, t.c.actual, t.c.predicted))
    if model:
        query = query.where(t.c.model_id == model)
    if days[0] is not None:
        query = query.where(t.c.day >= days[0])
    if days[1] is not None:
        query = query.where(t.c.day <= days[1])
    if at_us is not None:
        query = query.where(t.c.hour < at_us // HOUR_US)
    sums: Sums = defaultdict(dict)
    for m, value, actual, predicted, *values in snap.conn.execute(query):
        sums[(m, value)][(actual, predicted)] = [float(v or 0) for v in values]
    return sums


def _tail(snap: Snapshot, info: dict[str, Any], model: str | None, feature: str,
          days: tuple[int | None, int | None], cut: int, at_us: int, sums: Sums) -> None:
    """Add the outcomes recorded in the hour of the cut, up to the cut itself."""
    o, p = snap.tables["outcomes"], snap.tables["predictions"]
    outcomes = list(snap.conn.execute(
        sa.select(o.c.prediction_id, o.c.actual, o.c.corrected, o.c.previous, o.c.hour, o.c.slices,
                  o.c.previous_slices)
        .where(o.c.deployment == info["name"], o.c.recorded_at >= (at_us // HOUR_US) * HOUR_US,
               o.c.position <= cut).order_by(o.c.position)).mappings())
    # the predictions by key, not by a join the planner may turn into a scan of the index
    ids = sorted({row["prediction_id"] for row in outcomes})
    facts = {r["prediction_id"]: r for r in snap.conn.execute(
        sa.select(p.c.prediction_id, p.c.deployment, p.c.day, p.c.outputs).where(p.c.prediction_id.in_(ids))
    ).mappings()} if ids else {}
    deltas = new_deltas()
    for row in outcomes:
        prediction = facts[row["prediction_id"]]
        if (days[0] is not None and prediction["day"] < days[0]) or (days[1] is not None and prediction["day"] > days[1]):
            continue
        previous = (row["corrected"], row["previous"], row["previous_slices"])
        add_outcome(deltas, {**prediction, "slices": row["slices"]}, info["task"], row["actual"], previous,
                    row["hour"])
    for key, values in deltas.items():
        if key[4] != feature or (model and key[1] != model):
            continue
        cell = sums[(key[1], key[5])].setdefault((key[6], key[7]), [0.0, 0.0, 0.0, 0.0])
        for i in range(4):
            cell[i] += values[i]


def _metrics(info: dict[str, Any], key: tuple[str, str], cells: dict[tuple[str, str], list[float]]
             ) -> dict[str, Any]:
    model, value = key
    if info["task"] == "classification":
        confusion = {(orjson.loads(a), orjson.loads(p)): int(v[0]) for (a, p), v in cells.items() if v[0]}
        result = metrics.classification(confusion, info["positive_label"])
    else:
        n, e, a, s = (sum(v[i] for v in cells.values()) for i in range(4))
        result = metrics.regression(n, e, a, s)
    return {"model_id": model, "slice_value": value or None, **result}


def _iso_day(day: int | None) -> str | None:
    return None if day is None else datetime.fromtimestamp(day * 86400, tz=UTC).date().isoformat()
