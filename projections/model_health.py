"""Model health: a metric per model and day from the performance cubes, against a floor.

The floor is a deployment setting, `metric_floor`: `{"metric": "f1", "value": 0.7}`
(for error metrics such as rmse the value is a ceiling). A model whose rolling metric
over the last `window_days` is on the wrong side of it is flagged.
"""

from __future__ import annotations

import time
from typing import Any

import sqlalchemy as sa

from projections import events as ev
from projections.cubes import DAY_US

DEFAULT_METRIC = {"classification": "f1", "regression": "rmse"}
LOWER_IS_BETTER = frozenset({"mae", "rmse"})


def floor_of(settings: dict[str, Any] | None, task: str) -> tuple[str, float | None]:
    """(metric, floor value) from the deployment's `metric_floor` setting."""
    floor = (settings or {}).get("metric_floor") or {}
    if isinstance(floor, int | float):
        return DEFAULT_METRIC[task], float(floor)
    return str(floor.get("metric") or DEFAULT_METRIC[task]), (
        float(floor["value"]) if floor.get("value") is not None else None
    )


def model_health(
    engine: sa.Engine,
    deployment: str,
    as_of: int | None = None,
    days: int = 14,
    window_days: int = 7,
    now_us: int | None = None,
) -> dict[str, Any]:
    """Per model: the metric for each of the last `days` days, the rolling value, and the floor."""
    from projections.query_catalog import get_deployment
    from projections.query_performance import performance

    info = get_deployment(engine, deployment, as_of)
    metric, floor = floor_of(info["settings"], info["task"])
    ref_us = now_us or _reference_time(engine, as_of)
    last_day = ref_us // DAY_US
    per_day = [
        (
            d,
            performance(
                engine, deployment, from_us=d * DAY_US, to_us=(d + 1) * DAY_US, as_of=as_of
            ),
        )
        for d in range(last_day - days + 1, last_day + 1)
    ]
    rolling = performance(engine, deployment, window_days=window_days, as_of=as_of, now_us=ref_us)
    models = sorted({r["model_id"] for _, p in per_day for r in p["results"]} | set(info["models"]))
    return {
        "deployment": deployment,
        "task": info["task"],
        "metric": metric,
        "floor": floor,
        "lower_is_better": metric in LOWER_IS_BETTER,
        "window_days": window_days,
        "days": [_iso_day(d) for d, _ in per_day],
        "leader": info["leader"],
        "models": [_model(m, metric, floor, per_day, rolling, info) for m in models],
        "leader_changes": [
            {
                "at": h["occurred_at"] or h["recorded_at"],  # loaded history: its instant
                "model_id": h["model_id"],
                "previous": h["previous"],
                "reason": h["reason"],
                "actor": h["actor"],
            }
            for h in info["leader_history"]
        ],
        "position": info["position"],
    }


def _model(
    model_id: str,
    metric: str,
    floor: float | None,
    per_day: list[tuple[int, dict[str, Any]]],
    rolling: dict[str, Any],
    info: dict[str, Any],
) -> dict[str, Any]:
    points = []
    for day, answer in per_day:
        found = _result(answer, model_id)
        points.append(
            {"day": _iso_day(day), "value": found.get(metric), "count": found.get("count", 0)}
        )
    latest = _result(rolling, model_id)
    value = latest.get(metric)
    below = (
        None
        if floor is None or value is None
        else (value > floor if metric in LOWER_IS_BETTER else value < floor)
    )
    return {
        "model_id": model_id,
        "role": _role(model_id, info),
        "points": points,
        "rolling": {"value": value, "count": latest.get("count", 0)},
        "below_floor": below,
    }


def _result(answer: dict[str, Any], model_id: str) -> dict[str, Any]:
    return next(
        (r for r in answer["results"] if r["model_id"] == model_id and r["slice_value"] is None), {}
    )


def _role(model_id: str, info: dict[str, Any]) -> str:
    if model_id == info["leader"]:
        return "leader"
    return "challenger" if model_id in info["models"] else "retired"


def _reference_time(engine: sa.Engine, as_of: int | None) -> int:
    if as_of is None:
        return int(time.time() * 1_000_000)
    with engine.connect() as conn:
        return ev.recorded_at_of(conn, as_of) or int(time.time() * 1_000_000)


def _iso_day(day: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(day * 86400, tz=UTC).date().isoformat()
