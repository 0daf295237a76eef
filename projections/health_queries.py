"""Questions to the data health tables, now or as of a ledger position."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from ledger.timeline import iso
from projections.base import read_position
from projections.health import MICROS, HealthProjection, micros


def tables(conn: sa.Connection) -> dict[str, sa.Table] | None:
    """The live generation's tables, or None before the projection's first run."""
    state = read_position(conn, HealthProjection.name) if _has_positions(conn) else None
    return None if state is None else HealthProjection.tables_for(state[1])


def projected_position(conn: sa.Connection) -> int:
    state = read_position(conn, HealthProjection.name) if _has_positions(conn) else None
    return 0 if state is None else state[0]


def _has_positions(conn: sa.Connection) -> bool:
    return sa.inspect(conn).has_table("projection_positions")


def feeds(conn: sa.Connection, position: int | None = None) -> list[dict[str, Any]]:
    """Declared feeds (as of a position: those declared by then)."""
    t = tables(conn)
    if t is None:
        return []
    query = sa.select(t["feeds"]).order_by(t["feeds"].c.name)
    if position is not None:
        query = query.where(t["feeds"].c.position <= position)
    return [dict(r) for r in conn.execute(query).mappings()]


def closed_through(conn: sa.Connection, feed: str) -> int | None:
    """The end (µs) of the feed's last closed period."""
    t = tables(conn)
    if t is None:
        return None
    p = t["periods"]
    return conn.execute(sa.select(sa.func.max(p.c.period_end)).where(p.c.feed == feed)).scalar()


def received(conn: sa.Connection, feed: str, period_start: int, position: int | None = None) -> int:
    """Records received in one period: ingestion reports plus the deployment's predictions."""
    t = tables(conn)
    if t is None:
        return 0
    c = t["counts"]
    query = sa.select(sa.func.coalesce(sa.func.sum(c.c.count), 0)).where(
        c.c.feed == feed, c.c.period_start == period_start)
    if position is not None:
        query = query.where(c.c.position <= position)
    return int(conn.execute(query).scalar_one())


def periods(conn: sa.Connection, feed: str, position: int | None = None, limit: int = 48) -> list[dict[str, Any]]:
    """The feed's latest closed periods, oldest first."""
    t = tables(conn)
    if t is None:
        return []
    p = t["periods"]
    query = sa.select(p).where(p.c.feed == feed).order_by(p.c.period_start.desc()).limit(limit)
    if position is not None:
        query = query.where(p.c.position <= position)
    rows = list(conn.execute(query).mappings())[::-1]
    return [{"start": iso(r["period_start"]), "end": iso(r["period_end"]), "expected": r["expected"],
             "received": r["received"], "flags": list(r["flags"]), "closed": True,
             "closed_by": r["rule"], "position": r["position"]} for r in rows]


def open_period(conn: sa.Connection, feed: dict[str, Any], position: int | None) -> dict[str, Any]:
    """The first period not yet closed, with what it has received so far."""
    width = feed["period_seconds"] * MICROS
    last = periods(conn, feed["name"], position, limit=1)
    start = micros(last[-1]["end"]) if last else feed["declared_at"] // width * width
    return {"start": iso(start), "end": iso(start + width), "expected": feed["expected_count"],
            "received": received(conn, feed["name"], start, position), "flags": [], "closed": False}


def quality_checks(
    conn: sa.Connection, deployment: str | None = None, position: int | None = None, limit: int = 50,
) -> list[dict[str, Any]]:
    """The latest quality checks, newest first."""
    t = tables(conn)
    if t is None:
        return []
    q = t["checks"]
    query = sa.select(q).order_by(q.c.position.desc()).limit(limit)
    if deployment is not None:
        query = query.where(q.c.deployment == deployment)
    if position is not None:
        query = query.where(q.c.position <= position)
    return [_check(dict(r)) for r in conn.execute(query).mappings()]


def _check(row: dict[str, Any]) -> dict[str, Any]:
    covers = row["covers"]
    return {
        "check_id": row["check_id"], "deployment": row["deployment"], "key": row["key"],
        "source": row["source"], "recorded_at": iso(row["recorded_at"]), "position": row["position"],
        "rows": row["rows"], "predictions": covers.get("predictions", []), "batch": covers.get("batch"),
        "reference": row["reference"], "features": row["features"],
        "outlier_share": row["outliers"].get("share"), "outliers": row["outliers"].get("predictions")
        or row["outliers"].get("rows", []), "failing": list(row["failing"]),
    }


def last_window_end(conn: sa.Connection, deployment: str) -> int:
    """The position of the last prediction a window check of the deployment covered (0: none)."""
    t = tables(conn)
    if t is None:
        return 0
    q = t["checks"]
    query = sa.select(sa.func.max(q.c.covers_to)).where(q.c.deployment == deployment, q.c.source == "window")
    return int(conn.execute(query).scalar() or 0)
