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
from typing import Any, NamedTuple

import orjson
import sqlalchemy as sa

from ledger import log
from ledger.errors import InvalidCommand, NotFound
from projections import metrics
from projections.cubes import DAY_US, LEVELS, add_outcome, group, new_deltas, scored
from projections.predictions import PredictionsProjection
from projections.snapshot import Snapshot, snapshot

Sums = dict[tuple[str, str], dict[tuple[str, str], list[float]]]
CELL = ("model_id", "slice_value", "actual", "predicted", "n", "sum_err", "sum_abs", "sum_sq")


class DayRange(NamedTuple):
    """Whole UTC days of prediction time, both ends included; None: unbounded."""

    first: int | None
    last: int | None


class DeploymentAsOf(NamedTuple):
    """The deployment's row and, as of a cut, the epoch and recorded-at it ends at."""

    info: dict[str, Any]
    epoch: int | None  # of the last outcome at or before the cut (None before any)
    at_us: int | None  # the cut's recorded-at, when the window ends there


class CellLevel(NamedTuple):
    """One level's cell table, and whether its rows are bounded by end{i} and by start{i}."""

    table: sa.Table
    before: bool  # epoch < end{i}
    after: bool  # epoch >= start{i}


def performance(
    engine: sa.Engine,
    deployment: str,
    *,
    model: str | None = None,
    from_us: int | None = None,
    to_us: int | None = None,
    window_days: int | None = None,
    slice_feature: str | None = None,
    as_of: int | None = None,
    now_us: int | None = None,
    wait: float = 0.0,
) -> dict[str, Any]:
    """Metrics per model and slice value, each with its count, over days of prediction time."""
    if window_days is not None and window_days < 1:
        raise InvalidCommand("window_days must be at least 1", field="window_days")
    with snapshot(engine, PredictionsProjection, as_of, wait) as snap:
        cut = None if snap.requested is None or snap.requested >= snap.projected else snap.position
        needs_at = (
            cut is not None and bool(window_days) and not now_us and to_us is None
        )  # the window ends at T
        info, epoch, at_us = _deployment(snap, deployment, cut, needs_at)
        days = _days(from_us, to_us, window_days, now_us or at_us or int(time.time() * 1e6))
        sums: Sums = defaultdict(dict)
        if cut is None or epoch is not None:  # else: as of a position before any outcome
            _cells(snap, deployment, model, slice_feature or "", days, epoch, sums)
        if cut is not None and epoch is not None:
            _tail(snap, info, model, slice_feature or "", days, cut, epoch, sums)
        results = [_metrics(info, key, cells) for key, cells in sorted(sums.items())]
        return {
            "deployment": deployment,
            "task": info["task"],
            "slice": slice_feature,
            "window": {"from": _iso_day(days.first), "to": _iso_day(days.last)},
            "results": results,
            **snap.stamp(),
        }


def _deployment(snap: Snapshot, name: str, cut: int | None, needs_at: bool) -> DeploymentAsOf:
    """The deployment's row and, as of a cut, in the same round trip: the epoch of the last
    outcome at or before it (None before any) and, when the window ends there, its recorded-at."""
    t = snap.tables["deployments"]
    key = (t, snap.tables["outcomes"], cut is not None, cut is not None and needs_at)
    rows = snap.fetch(_deployment_statement, key, {"name": name, "cut": cut})
    if not rows:
        raise NotFound(f"deployment {name!r} not found in the performance tables")
    *values, cut_epoch, cut_at = rows[0]
    decode = snap.conn.dialect.name != "postgresql"  # psycopg2 decodes JSON itself
    info = {
        c.name: _json(v) if decode and isinstance(c.type, sa.JSON) else v
        for c, v in zip(t.columns, values, strict=True)
    }
    return DeploymentAsOf(
        info,
        (None if cut_epoch is None else int(cut_epoch)),
        (int(cut_at or 0) if needs_at else None),
    )


def _deployment_statement(t: sa.Table, o: sa.Table, epoch: bool, at: bool) -> sa.Select[Any]:
    cut = sa.bindparam("cut")
    extra = [sa.null().label("cut_epoch"), sa.null().label("cut_at")]
    if epoch:
        query = (
            sa.select(o.c.epoch).where(o.c.position <= cut).order_by(o.c.position.desc()).limit(1)
        )
        extra[0] = query.scalar_subquery().label("cut_epoch")
    if at:
        extra[1] = log.recorded_at_of_query(cut).scalar_subquery().label("cut_at")
    return sa.select(t, *extra).where(t.c.name == sa.bindparam("name"))


def _json(value: Any) -> Any:
    """JSON text from sqlite3, except what the column's numeric affinity stored as a number."""
    return orjson.loads(value) if isinstance(value, str) else value


def _days(from_us: int | None, to_us: int | None, window_days: int | None, ref_us: int) -> DayRange:
    """Whole UTC days of prediction time: [from, to], or the last `window_days` up to `to`."""
    last = (
        (to_us - 1) // DAY_US if to_us is not None else (ref_us // DAY_US if window_days else None)
    )
    first = from_us // DAY_US if from_us is not None else None
    if window_days is not None and last is not None:
        first = max(first, last - window_days + 1) if first is not None else last - window_days + 1
    return DayRange(first, last)


def _cells(
    snap: Snapshot,
    deployment: str,
    model: str | None,
    feature: str,
    days: DayRange,
    epoch: int | None,
    sums: Sums,
) -> None:
    """Now (epoch None): every coarsest cell. Before epoch E: whole groups at each level."""
    params: dict[str, Any] = {
        "deployment": deployment,
        "feature": feature,
        "model": model,
        "first": days.first,
        "last": days.last,
    }
    levels = [CellLevel(snap.tables["cubes"], False, False)]
    if epoch is not None:  # each level: the groups before the one E is in, from the one above's on
        levels, start = [], None
        for name, span in LEVELS:
            end = group(epoch, span)
            if (
                start is None or end > start
            ):  # else no whole group of this level before E in the one above
                params[f"end{len(levels)}"], params[f"start{len(levels)}"] = end, start
                levels.append(CellLevel(snap.tables[name], True, start is not None))
            start = end
    key = (tuple(levels), model is not None, days.first is not None, days.last is not None)
    # serial: the union of levels costs enough for PostgreSQL to plan a Parallel Append, and
    # starting its workers (5-10 ms on two busy cores) costs more than the scan (1-3 ms at 1M events)
    for m, value, actual, predicted, *values in snap.fetch(
        _cells_statement, key, params, serial=True
    ):
        cell = sums[(m, value)].setdefault((actual, predicted), [0.0, 0.0, 0.0, 0.0])
        for i in range(4):
            cell[i] += float(values[i] or 0)


def _cells_statement(
    levels: tuple[CellLevel, ...], model: bool, first: bool, last: bool
) -> sa.Executable:
    """The cells of each level (table, bounded by end{i}?, by start{i}?), summed in one aggregate."""
    parts = []
    for i, (t, before, after) in enumerate(levels):
        part = _bounded(
            sa.select(*(t.c[name] for name in CELL)).where(
                t.c.deployment == sa.bindparam("deployment"),
                t.c.slice_feature == sa.bindparam("feature"),
            ),
            t,
            model,
            first,
            last,
        )
        if before:
            part = part.where(t.c.epoch < sa.bindparam(f"end{i}"))
        if after:
            part = part.where(t.c.epoch >= sa.bindparam(f"start{i}"))
        parts.append(part)
    cells = (parts[0] if len(parts) == 1 else sa.union_all(*parts)).subquery()
    keys = [cells.c[name] for name in CELL[:4]]
    return sa.select(*keys, *(sa.func.sum(cells.c[name]) for name in CELL[4:])).group_by(*keys)


def _bounded(
    query: sa.Select[Any], t: sa.Table, model: bool, first: bool, last: bool
) -> sa.Select[Any]:
    """Rows of one model (if asked) and of prediction days from `first` to `last` (each if given)."""
    if model:
        query = query.where(t.c.model_id == sa.bindparam("model"))
    if first:
        query = query.where(t.c.day >= sa.bindparam("first"))
    if last:
        query = query.where(t.c.day <= sa.bindparam("last"))
    return query


def _tail(
    snap: Snapshot,
    info: dict[str, Any],
    model: str | None,
    feature: str,
    days: DayRange,
    cut: int,
    epoch: int,
    sums: Sums,
) -> None:
    """Add the outcomes of the cut's epoch up to the cut itself, for the one slice feature asked.

    Identical outcomes (same day, values and slice value) come once with their count."""
    key = (
        snap.tables["outcomes"],
        snap.conn.dialect.name,
        bool(feature),
        days.first is not None,
        days.last is not None,
    )
    params = {
        "epoch": epoch,
        "deployment": info["name"],
        "cut": cut,
        "first": days.first,
        "last": days.last,
        "feature": feature,
        "path": f'$."{feature}"',
    }  # the path as SQLAlchemy's sqlite JSON index writes it
    deltas, task, loaded, facts = new_deltas(), info["task"], {None: None}, {}
    for day, corrected, *values, times in snap.fetch(_tail_statement, key, params):
        for text in values[:3]:  # a few distinct texts recur: parse each once
            if text not in loaded:
                loaded[text] = orjson.loads(text)
        actual, previous = loaded[values[1]], loaded[values[2]]
        fact = facts.get((day, values[0]))
        if fact is None:
            predicted = {m: v for m, v in loaded[values[0]].items() if not model or m == model}
            fact = facts[(day, values[0])] = {
                "deployment": info["name"],
                "day": day,
                "scored": scored(predicted, task),
            }
        value, previous_value = values[3:] if feature else ("", "")
        slices, previous_slices = (
            {feature: v} if v is not None else {} for v in (value, previous_value)
        )
        add_outcome(
            deltas,
            fact,
            task,
            actual,
            slices,
            (corrected, previous, previous_slices),
            0,
            feature,
            times,
        )
    for cell_key, added in deltas.items():
        cell = sums[(cell_key[1], cell_key[5])].setdefault(
            (cell_key[6], cell_key[7]), [0.0, 0.0, 0.0, 0.0]
        )
        for i in range(4):
            cell[i] += added[i]


def _tail_statement(
    o: sa.Table, dialect: str, sliced: bool, first: bool, last: bool
) -> sa.Select[Any]:
    """E's outcome rows up to the cut, grouped by everything their cells depend on."""
    columns = [
        o.c.day,
        o.c.corrected,
        *(sa.cast(c, sa.Text) for c in (o.c.predicted, o.c.actual, o.c.previous)),
    ]
    if (
        sliced
    ):  # as the JSON index `slices[feature].as_string()` renders, with a plain text parameter
        columns += [
            sa.func.jsonb_extract_path_text(c, sa.bindparam("feature"))
            if dialect == "postgresql"
            else sa.func.json_extract(c, sa.bindparam("path"))
            for c in (o.c.slices, o.c.previous_slices)
        ]
    query = (
        sa.select(*columns, sa.func.count())
        .group_by(*columns)
        .where(
            o.c.epoch == sa.bindparam("epoch"),
            o.c.deployment == sa.bindparam("deployment"),
            o.c.position <= sa.bindparam("cut"),
        )
    )
    return _bounded(query, o, False, first, last)


def _metrics(
    info: dict[str, Any], key: tuple[str, str], cells: dict[tuple[str, str], list[float]]
) -> dict[str, Any]:
    model, value = key
    if info["task"] == "classification":
        confusion = {
            (orjson.loads(a), orjson.loads(p)): int(v[0]) for (a, p), v in cells.items() if v[0]
        }
        result = metrics.classification(confusion, info["positive_label"])
    else:
        n, e, a, s = (sum(v[i] for v in cells.values()) for i in range(4))
        result = metrics.regression(n, e, a, s)
    return {"model_id": model, "slice_value": value or None, **result}


def _iso_day(day: int | None) -> str | None:
    return None if day is None else datetime.fromtimestamp(day * 86400, tz=UTC).date().isoformat()
