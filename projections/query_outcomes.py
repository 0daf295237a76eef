"""Predictions with their latest outcome known at a position: what policies compare on."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from projections.predictions import PredictionsProjection
from projections.snapshot import snapshot


def scored_outcomes(
    engine: sa.Engine,
    deployment: str,
    from_us: int,
    to_us: int,
    as_of: int | None = None,
    wait: float = 0.0,
) -> tuple[list[dict[str, Any]], int]:
    """[{prediction_id, outputs {model: value}, actual}] for predictions made in [from, to)
    whose outcome was known at the position; and that position."""
    with snapshot(engine, PredictionsProjection, as_of, wait) as snap:
        p, o = snap.tables["predictions"], snap.tables["outcomes"]
        query = (
            sa.select(p.c.prediction_id, p.c.outputs, o.c.actual)
            .join(o, o.c.prediction_id == p.c.prediction_id)
            .where(
                p.c.deployment == deployment,
                p.c.recorded_at >= from_us,
                p.c.recorded_at < to_us,
                p.c.position <= snap.position,
                o.c.position <= snap.position,
            )
            .order_by(o.c.position)
        )
        latest: dict[str, dict[str, Any]] = {}
        for pid, outputs, actual in snap.conn.execute(query):
            values = {
                m: (out.get("value") if isinstance(out, dict) else out)
                for m, out in outputs.items()
            }
            latest[pid] = {"prediction_id": pid, "outputs": values, "actual": actual}
        return list(latest.values()), snap.position
