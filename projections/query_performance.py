"""Performance per model and slice from the cubes, now or as known at a past position.

Now: the coarse cells. As known at T, with E the epoch of the last outcome at or before T:
the coarse cells before E's coarse group, the fine cells of that group before E, and a
tail of E's outcomes up to T itself (at most cubes.FINE), computed with the projection's
own code for the one slice feature asked. Nothing replays the log.
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
from projections.cubes import DAY_US, LEVELS, add_outcome, group, new_deltas, scored
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
        cut = None if snap.requested is None or snap.requested >= snap.projected else snap.position
        needs_at = cut is not None and bool(window_days) and not now_us and to_us is None  # the window ends at T
        info, epoch, at_us = _deployment(snap, deployment, cut, needs_at)
        days = _days(from_us, to_us, window_days, now_us or at_us or int(time.time() * 1e6))
        sums: Sums = defaultdict(dict)
        if cut is None or epoch is not None:  # else: as of a position before any outcome
            _cells(snap, deployment, model, slice_feature or "", days, epoch, sums)
        if cut is not None and epoch is not None:
            _tail(snap, info, model, slice_feature or "", days, cut, epoch, sums)
        results = [_metrics(info, key, cells) for key, cells in sorted(sums.items())]
        return {"deployment": deployment, "task": info["task"], "slice": slice_feature,
                "window": {"from": _iso_day(days[0]), "to": _iso_day(days[1])},
                "results": results, **snap.stamp()}


def _deployment(snap: Snapshot, name: str, cut: int | None, needs_at: bool
                ) -> tuple[dict[str, Any], int | None, int | None]:
    """The deployment's row and, as of a cut, in the same round trip: the epoch of the last
    outcome at or before it (None before any) and, when the window ends there, its recorded-at."""
    t, o, e = snap.tables["deployments"], snap.tables["outcomes"], ev.events_table
    extra = [sa.null().label("cut_epoch"), sa.null().label("cut_at")]
    if cut is not None:
        epoch = sa.select(o.c.epoch).where(o.c.position <= cut).order_by(o.c.position.desc()).limit(1)
        extra[0] = epoch.scalar_subquery().label("cut_epoch")
    if cut is not None and needs_at:
        at = sa.select(e.c.recorded_at).where(e.c.id <= cut).order_by(e.c.id.desc()).limit(1)  # ev.recorded_at_of
        extra[1] = at.scalar_subquery().label("cut_at")
    row = snap.conn.execute(sa.select(t, *extra).where(t.c.name == name)).mappings().first()
    if row is None:
        raise NotFound(f"deployment {name!r} not found in the performance tables")
    info = dict(row)
    cut_epoch, cut_at = info.pop("cut_epoch"), info.pop("cut_at")
    return info, (None if cut_epoch is None else int(cut_epoch)), (int(cut_at or 0) if needs_at else None)


def _days(from_us: int | None, to_us: int | None, window_days: int | None, ref_us: int
          ) -> tuple[int | None, int | None]:
    """Whole UTC days of prediction time: [from, to], or the last `window_days` up to `to`."""
    last = (to_us - 1) // DAY_US if to_us is not None else (ref_us // DAY_US if window_days else None)
    first = from_us // DAY_US if from_us is not None else None
    if window_days is not None and last is not None:
        first = max(first, last - window_days + 1) if first is not None else last - window_days + 1
    return first, last


def _cells(snap: Snapshot, deployment: str, model: str | None, feature: str,
           days: tuple[int | None, int | None], epoch: int | None, sums: Sums) -> None:
    """Now (epoch None): every coarsest cell. Before epoch E: whole groups at each level."""
    queries = [_sum(snap.tables["cubes"], deployment, model, feature, days)]
    if epoch is not None:  # each level: the groups before the one E is in, from the one above's on
        queries, start = [], None
        for name, span in LEVELS:
            t = snap.tables[name]
            end = group(epoch, span)
            if start is None or end > start:  # else no whole group of this level before E in the one above
                query = _sum(t, deployment, model, feature, days).where(t.c.epoch < end)
                queries.append(query.where(t.c.epoch >= start) if start is not None else query)
            start = end
    statement = queries[0] if len(queries) == 1 else sa.union_all(*queries)
    for m, value, actual, predicted, *values in snap.conn.execute(statement):
        cell = sums[(m, value)].setdefault((actual, predicted), [0.0, 0.0, 0.0, 0.0])
        for i in range(4):
            cell[i] += float(values[i] or 0)


def _sum(t: sa.Table, deployment: str, model: str | None, feature: str, days: tuple[int | None, int | None]
         ) -> sa.Select[Any]:
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
    return query


def _tail(snap: Snapshot, info: dict[str, Any], model: str | None, feature: str,
          days: tuple[int | None, int | None], cut: int, epoch: int, sums: Sums) -> None:
    """Add the outcomes of the cut's epoch up to the cut itself, for the one slice feature asked.

    Identical outcomes (same day, values and slice value) come once with their count."""
    o = snap.tables["outcomes"]
    sliced = [c[feature].as_string() for c in (o.c.slices, o.c.previous_slices)] if feature else []
    columns = [o.c.day, o.c.corrected, *(sa.cast(c, sa.Text) for c in (o.c.predicted, o.c.actual, o.c.previous)),
               *sliced]
    query = (sa.select(*columns, sa.func.count())
             .where(o.c.epoch == epoch, o.c.deployment == info["name"], o.c.position <= cut).group_by(*columns))
    if days[0] is not None:
        query = query.where(o.c.day >= days[0])
    if days[1] is not None:
        query = query.where(o.c.day <= days[1])
    deltas, task = new_deltas(), info["task"]
    for day, corrected, *values, times in snap.conn.execute(query):
        predicted, actual, previous = (None if v is None else orjson.loads(v) for v in values[:3])
        value, previous_value = values[3:] if feature else ("", "")
        if model:
            predicted = {m: v for m, v in predicted.items() if m == model}
        fact = {"deployment": info["name"], "day": day, "scored": scored(predicted, task)}
        slices, previous_slices = ({feature: v} if v is not None else {} for v in (value, previous_value))
        add_outcome(deltas, fact, task, actual, slices, (corrected, previous, previous_slices), 0, feature, times)
    for key, values in deltas.items():
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
