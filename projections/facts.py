"""What counting an outcome reads back from the prediction projection's own tables."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
import sqlalchemy as sa

from projections.cubes import HOUR_US, PER_HOUR, EpochClock


def stored_facts(conn: sa.Connection, tables: Mapping[str, sa.Table], ids: list[str], answered: list[str]
                 ) -> dict[str, dict[str, Any]]:
    """Deployment, day, outputs, features, erased, and the latest outcome of each prediction
    (looked up for those of `answered`, the ids that may have one)."""
    p, o = tables["predictions"], tables["outcomes"]
    # JSON as text, decoded by orjson: SQLAlchemy's JSON type decodes with the standard library
    query = sa.select(p.c.prediction_id, p.c.deployment, p.c.day, sa.cast(p.c.outputs, sa.Text),
                      sa.cast(p.c.features, sa.Text), p.c.erased_at).where(p.c.prediction_id.in_(ids))
    facts = {pid: {"deployment": d, "day": day, "outputs": orjson.loads(out), "features": orjson.loads(f),
                   "erased": erased_at is not None, "latest": (False, None, None)}
             for pid, d, day, out, f, erased_at in conn.execute(query)}
    if not answered:
        return facts
    latest = (sa.select(o.c.prediction_id, sa.cast(o.c.actual, sa.Text), sa.cast(o.c.slices, sa.Text))
              .where(o.c.prediction_id.in_(answered)).order_by(o.c.position))
    for pid, actual, slices in conn.execute(latest):
        facts[pid]["latest"] = (True, _json(actual), _json(slices))
    return facts


def _json(text: str | None) -> Any:
    return None if text is None else orjson.loads(text)


def restore_clock(conn: sa.Connection, outcomes: sa.Table) -> EpochClock:
    """The epoch clock where the outcome rows left it: the last outcome's hour and its count."""
    last = conn.execute(sa.select(outcomes.c.recorded_at, outcomes.c.epoch)
                        .order_by(outcomes.c.position.desc()).limit(1)).first()
    if last is None:
        return EpochClock()
    hour = int(last[0]) // HOUR_US
    count = conn.execute(sa.select(sa.func.count()).select_from(outcomes).where(
        outcomes.c.epoch >= hour * PER_HOUR, outcomes.c.epoch < (hour + 1) * PER_HOUR)).scalar_one()
    return EpochClock(hour, int(count), int(last[1]))
