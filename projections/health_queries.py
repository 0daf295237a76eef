"""Questions to the data health tables, now or as of a ledger position.

The small helpers take a connection (the feed timer and the window checks use them on
tables they have just caught up); `data_health` is the one consistent read the API uses.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from ledger.timeline import iso
from projections.base import BIGINT, read_position
from projections.health import MICROS, HealthProjection, micros
from projections.snapshot import snapshot


def tables(conn: sa.Connection) -> dict[str, sa.Table] | None:
    """The live generation's tables, or None before the projection's first run."""
    if not sa.inspect(conn).has_table("projection_positions"):
        return None
    state = read_position(conn, HealthProjection.name)
    return None if state is None else HealthProjection.tables_for(state.generation)


def feeds(
    conn: sa.Connection, position: int | None = None, t: dict[str, sa.Table] | None = None
) -> list[dict[str, Any]]:
    """Declared feeds (as of a position: those declared by then)."""
    t = t or tables(conn)
    if t is None:
        return []
    query = sa.select(t["feeds"]).order_by(t["feeds"].c.name)
    if position is not None:
        query = query.where(t["feeds"].c.position <= position)
    return [dict(r) for r in conn.execute(query).mappings()]


def received(
    conn: sa.Connection,
    feed: str,
    period_start: int,
    position: int | None = None,
    t: dict[str, sa.Table] | None = None,
) -> int:
    """Records received in one period: ingestion reports plus the deployment's predictions."""
    t = t or tables(conn)
    if t is None:
        return 0
    c = t["counts"]
    query = sa.select(sa.func.coalesce(sa.func.sum(c.c.count), 0)).where(
        c.c.feed == feed, c.c.period_start == period_start
    )
    if position is not None:
        query = query.where(c.c.position <= position)
    return int(conn.execute(query).scalar_one())


def periods(
    conn: sa.Connection,
    feed: str,
    position: int | None = None,
    limit: int = 48,
    t: dict[str, sa.Table] | None = None,
) -> list[dict[str, Any]]:
    """The feed's latest closed periods, oldest first."""
    t = t or tables(conn)
    if t is None:
        return []
    p = t["periods"]
    query = sa.select(p).where(p.c.feed == feed).order_by(p.c.period_start.desc()).limit(limit)
    if position is not None:
        query = query.where(p.c.position <= position)
    rows = list(conn.execute(query).mappings())[::-1]
    return [
        {
            "start": iso(r["period_start"]),
            "end": iso(r["period_end"]),
            "expected": r["expected"],
            "received": r["received"],
            "flags": list(r["flags"]),
            "closed": True,
            "closed_by": r["rule"],
            "position": r["position"],
        }
        for r in rows
    ]


def open_period(
    conn: sa.Connection,
    feed: dict[str, Any],
    position: int | None,
    t: dict[str, sa.Table] | None = None,
) -> dict[str, Any]:
    """The first period not yet closed, with what it has received so far."""
    width = feed["period_seconds"] * MICROS
    last = periods(conn, feed["name"], position, limit=1, t=t)
    start = micros(last[-1]["end"]) if last else feed["declared_at"] // width * width
    return {
        "start": iso(start),
        "end": iso(start + width),
        "expected": feed["expected_count"],
        "received": received(conn, feed["name"], start, position, t),
        "flags": [],
        "closed": False,
    }


def quality_checks(
    conn: sa.Connection,
    deployment: str | None = None,
    position: int | None = None,
    limit: int = 50,
    t: dict[str, sa.Table] | None = None,
) -> list[dict[str, Any]]:
    """The latest quality checks, newest first."""
    t = t or tables(conn)
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
    covers, outliers = row["covers"], row["outliers"]
    return {
        "check_id": row["check_id"],
        "deployment": row["deployment"],
        "key": row["key"],
        "source": row["source"],
        "recorded_at": iso(row["recorded_at"]),
        "position": row["position"],
        "rows": row["rows"],
        "predictions": covers.get("predictions", []),
        "batch": covers.get("batch"),
        "reference": row["reference"],
        "features": row["features"],
        "outlier_share": outliers.get("share"),
        "outliers": outliers.get("predictions") or outliers.get("rows", []),
        "failing": list(row["failing"]),
        "actor": row["actor"],
    }


def last_window_end(conn: sa.Connection, deployment: str) -> int:
    """The position of the last prediction a window check of the deployment covered (0: none)."""
    t = tables(conn)
    if t is None:
        return 0
    q = t["checks"]
    query = sa.select(sa.func.max(q.c.covers_to)).where(
        q.c.deployment == deployment, q.c.source == "window"
    )
    return int(conn.execute(query).scalar() or 0)


def data_health(
    engine: sa.Engine,
    as_of: int | None = None,
    deployment: str | None = None,
    period_limit: int = 48,
    check_limit: int = 20,
    wait: float = 0.0,
) -> dict[str, Any]:
    """Per feed: periods expected vs received; per deployment: its latest quality checks."""
    with snapshot(engine, HealthProjection, as_of, wait) as snap:
        conn, t, at = snap.conn, snap.tables, snap.position
        declared = [
            f for f in feeds(conn, at, t) if deployment is None or f["deployment"] == deployment
        ]
        feed_items = [_feed(conn, f, at, period_limit, t) for f in declared]
        checks = quality_checks(conn, deployment, at, limit=500, t=t)
        return {
            "feeds": feed_items,
            "deployments": _by_deployment(checks, check_limit),
            **snap.stamp(),
        }


def _feed(
    conn: sa.Connection, feed: dict[str, Any], at: int, limit: int, t: dict[str, sa.Table]
) -> dict[str, Any]:
    closed = periods(conn, feed["name"], at, limit, t)
    return {
        "name": feed["name"],
        "deployment": feed["deployment"],
        "expected_count": feed["expected_count"],
        "period_seconds": feed["period_seconds"],
        "tolerance": feed["tolerance"],
        "periods": [*closed, open_period(conn, feed, at, t)],
        "flagged_periods": sum(1 for p in closed if p["flags"]),
    }


def _by_deployment(checks: list[dict[str, Any]], limit: int) -> list[dict[str, Any]]:
    grouped: dict[str, list[dict[str, Any]]] = {}
    for check in checks:
        grouped.setdefault(check["deployment"], []).append(check)
    return [
        {"name": name, "latest": found[0], "drift": _drift(found[0]), "checks": found[:limit]}
        for name, found in sorted(grouped.items())
    ]


def _drift(check: dict[str, Any]) -> list[dict[str, Any]]:
    """Per feature of the latest check: PSI, KS and whether a drift check failed."""
    failing = set(check["failing"])
    return [
        {
            "feature": name,
            "psi": f.get("psi"),
            "ks_statistic": f.get("ks_statistic"),
            "ks_pvalue": f.get("ks_pvalue"),
            "null_share": f.get("null_share"),
            "drifted": f"drift_psi:{name}" in failing or f"drift_ks:{name}" in failing,
        }
        for name, f in sorted(check["features"].items())
    ]


def covering(
    conn: sa.Connection,
    deployment: str,
    position: int,
    recorded_at: int,
    as_of: int | None = None,
) -> dict[str, Any] | None:
    """The window quality check and the feed periods that covered one prediction (its position
    and recorded-at), as far as the health tables have got; None before they are built."""
    try:
        state = read_position(conn, HealthProjection.name)
    except (sa.exc.ProgrammingError, sa.exc.OperationalError):
        return None  # no projection has run on this ledger yet
    if state is None or state.version != HealthProjection.version:
        return None
    t = HealthProjection.tables_for(state.generation)
    at = state.position if as_of is None else min(as_of, state.position)
    return {
        "position": at,
        "quality_checks": _covering_windows(conn, t, deployment, position, at),
        "feed_periods": _covering_periods(conn, t, deployment, recorded_at, at),
    }


def _covering_windows(
    conn: sa.Connection, t: dict[str, sa.Table], deployment: str, position: int, at: int
) -> list[dict[str, Any]]:
    """The window check holding the prediction: windows follow one another without overlap, so
    it is the first recorded after the prediction that reaches it, if it starts at or before it."""
    q = t["checks"]
    query = (
        sa.select(q.c.check_id, q.c.key, q.c.position, q.c.recorded_at, q.c.rows)
        .add_columns(q.c.failing, q.c.actor, q.c.covers_to)
        .where(
            q.c.deployment == deployment,
            q.c.position > position,
            q.c.position <= at,
            q.c.source == "window",
            q.c.covers_to >= position,
        )
        .order_by(q.c.position)
        .limit(1)
    )
    row = conn.execute(query).mappings().first()
    if row is None:
        return []
    start = window_start(row["key"])
    if start is None or start > position:
        return []
    return [
        {
            "check_id": row["check_id"],
            "key": row["key"],
            "source": "window",
            "position": row["position"],
            "recorded_at": iso(row["recorded_at"]),
            "rows": row["rows"],
            "window": {"from_position": start, "to_position": row["covers_to"]},
            "batch": None,
            "failing": list(row["failing"]),
            "passed": not row["failing"],
            "actor": row["actor"],
        }
    ]


def window_start(key: str) -> int | None:
    """The first prediction position of a window check's key, `window:<first>-<last>`."""
    first = key.removeprefix("window:").split("-", 1)[0]
    return int(first) if first.isdigit() else None


def _covering_periods(
    conn: sa.Connection, t: dict[str, sa.Table], deployment: str, recorded_at: int, at: int
) -> list[dict[str, Any]]:
    """Per feed of the deployment: the period holding the instant, closed or still open."""
    f, p, c = t["feeds"], t["periods"], t["counts"]
    width = sa.cast(f.c.period_seconds, BIGINT) * MICROS
    start = sa.bindparam("t", recorded_at, type_=BIGINT) // width * width
    so_far = (
        sa.select(sa.func.coalesce(sa.func.sum(c.c.count), 0))
        .where(c.c.feed == f.c.name, c.c.period_start == start, c.c.position <= at)
        .scalar_subquery()
    )
    query = (
        sa.select(
            f.c.name,
            f.c.expected_count,
            f.c.period_seconds,
            f.c.declared_at,
            start.label("start"),
            p.c.period_end,
            p.c.expected,
            p.c.received,
            p.c.flags,
            p.c.rule,
            p.c.position,
            p.c.recorded_at,
            so_far.label("so_far"),
        )
        .select_from(
            f.outerjoin(
                p, sa.and_(p.c.feed == f.c.name, p.c.period_start == start, p.c.position <= at)
            )
        )
        .where(f.c.deployment == deployment, f.c.position <= at)
        .order_by(f.c.name)
    )
    return [
        _period(r)
        for r in conn.execute(query).mappings()
        if r["declared_at"] // (r["period_seconds"] * MICROS) * (r["period_seconds"] * MICROS)
        <= r["start"]  # a feed has no periods before the one it was declared in
    ]


def _period(r: Any) -> dict[str, Any]:
    closed = r["position"] is not None
    flags = list(r["flags"]) if closed else []
    return {
        "feed": r["name"],
        "start": iso(r["start"]),
        "end": iso(r["start"] + r["period_seconds"] * MICROS),
        "expected": r["expected"] if closed else r["expected_count"],
        "received": r["received"] if closed else int(r["so_far"]),
        "flags": flags,
        "status": (flags[0] if flags else "ok") if closed else "open",
        "closed": closed,
        "closed_by": r["rule"],
        "position": r["position"],
        "recorded_at": iso(r["recorded_at"]) if closed else None,
    }
