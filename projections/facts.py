"""What counting an outcome reads back from the prediction projection's own tables."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson
import sqlalchemy as sa

from ledger import log
from projections.cubes import HOUR_US, PER_HOUR, EpochClock


def stored_facts(
    conn: sa.Connection, tables: Mapping[str, sa.Table], ids: list[str], answered: list[str]
) -> dict[str, dict[str, Any]]:
    """Deployment, day, outputs, features, erased, and the latest outcome of each prediction
    (looked up for those of `answered`, the ids that may have one)."""
    p = tables["predictions"]
    # JSON as text, decoded by orjson: SQLAlchemy's JSON type decodes with the standard library
    query = sa.select(
        p.c.prediction_id,
        p.c.deployment,
        p.c.day,
        sa.cast(p.c.outputs, sa.Text),
        sa.cast(p.c.features, sa.Text),
        p.c.erased_at,
    ).where(p.c.prediction_id.in_(ids))
    facts = dict(map(decoded, conn.execute(query)))
    add_latest(conn, tables, facts, answered)
    return facts


def decoded(row: Sequence[Any]) -> tuple[str, dict[str, Any]]:
    """(prediction id, its facts) from a row of stored_facts' query, latest outcome still unknown."""
    pid, deployment, day, outputs, features, erased_at = row
    return pid, {
        "deployment": deployment,
        "day": day,
        "outputs": orjson.loads(outputs),
        "features": orjson.loads(features),
        "erased": erased_at is not None,
        "latest": (False, None, None),
    }


def add_latest(
    conn: sa.Connection,
    tables: Mapping[str, sa.Table],
    facts: dict[str, dict[str, Any]],
    answered: list[str],
) -> None:
    """The latest outcome of each prediction of `answered` (ids that may have one) into its facts."""
    if not answered:
        return
    o = tables["outcomes"]
    latest = (
        sa.select(o.c.prediction_id, sa.cast(o.c.actual, sa.Text), sa.cast(o.c.slices, sa.Text))
        .where(o.c.prediction_id.in_(answered))
        .order_by(o.c.position)
    )
    for pid, actual, slices in conn.execute(latest):
        facts[pid]["latest"] = (True, _json(actual), _json(slices))


# A rebuild's writer reads the facts of the next page's outcomes right after copying its
# predictions, so the lookup runs beside the Python of this page. The fresh tables have no
# statistics yet: OFFSET 0 keeps the lookup a loop of primary-key probes, not a scan of the table.
_PAGE_FACTS = """
SELECT f.prediction_id, f.deployment, f.day, f.outputs::text, f.features::text, f.erased_at
FROM ({originators}) o
CROSS JOIN LATERAL (SELECT * FROM {table} p WHERE p.prediction_id = o.id OFFSET 0) f
"""


def page_facts(
    conn: sa.Connection, tables: Mapping[str, sa.Table], after: int, upto: int, cls: type
) -> list[tuple[Any, ...]]:
    """stored_facts' rows (undecoded) for the predictions with a `cls` event in (after, upto] (PostgreSQL)."""
    originators, params = log.originators_sql(cls)
    sql = _PAGE_FACTS.format(originators=originators, table=tables["predictions"].name)
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(sql, {**params, "after": after, "upto": upto})
        return cursor.fetchall()
    finally:
        cursor.close()


def _json(text: str | None) -> Any:
    return None if text is None else orjson.loads(text)


def restore_clock(conn: sa.Connection, outcomes: sa.Table) -> EpochClock:
    """The epoch clock where the outcome rows left it: the last outcome's hour and its count."""
    last = conn.execute(
        sa.select(outcomes.c.recorded_at, outcomes.c.epoch)
        .order_by(outcomes.c.position.desc())
        .limit(1)
    ).first()
    if last is None:
        return EpochClock()
    hour = int(last[0]) // HOUR_US
    count = conn.execute(
        sa.select(sa.func.count())
        .select_from(outcomes)
        .where(outcomes.c.epoch >= hour * PER_HOUR, outcomes.c.epoch < (hour + 1) * PER_HOUR)
    ).scalar_one()
    return EpochClock(hour, int(count), int(last[1]))
