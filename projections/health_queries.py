"""Questions to the data health tables, now or as of a ledger position.

The small helpers take a connection (the feed timer and the window checks use them on
tables they have just caught up); `data_health` is the one consistent read the API uses.
"""

from __future__ import annotations

import time
import weakref
from typing import Any

import orjson
import sqlalchemy as sa

from ledger.domain.feeds import window_start
from ledger.timeline import iso
from projections.base import BIGINT, ProjectionState, positions, read_position
from projections.health import MICROS, HealthProjection, micros
from projections.snapshot import Snapshot, snapshot

_positioned: weakref.WeakSet[sa.Engine] = weakref.WeakSet()  # engines whose position table exists
NO_LIMIT = 2**62  # a position past any ledger's
_generations: weakref.WeakKeyDictionary[sa.Engine, int] = weakref.WeakKeyDictionary()
UNBUILT_RECHECK_SECONDS = 5.0  # how soon a provenance lookup sees health tables built since
_unbuilt: weakref.WeakKeyDictionary[sa.Engine, float] = weakref.WeakKeyDictionary()


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


def first_counted(conn: sa.Connection, feed: str) -> int | None:
    """The earliest period with a count for the feed: before its declaration for loaded history."""
    t = tables(conn)
    if t is None:
        return None
    c = t["counts"]
    found = conn.execute(sa.select(sa.func.min(c.c.period_start)).where(c.c.feed == feed))
    value = found.scalar_one()
    return None if value is None else int(value)


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
    and recorded-at), as far as the health tables have got; None before they are built.

    On the provenance path, so one round trip: a statement compiled once per generation of the
    tables, sent through the driver, that also reads the projection's position and generation
    (on PostgreSQL `conn` is in autocommit: a generation dropped by a rebuild fails one read)."""
    params = {"d": deployment, "p": position, "t": recorded_at, "as_of": as_of}
    rows: list[Any] = []
    generation = _generations.get(conn.engine)
    if generation is not None:
        try:
            rows = _fetch(conn, generation, params)
        except (sa.exc.ProgrammingError, sa.exc.OperationalError):
            pass  # a rebuild swapped generations and dropped the tables read
    if not rows or (int(rows[0][1]), int(rows[0][2])) != (generation, HealthProjection.version):
        generation = _live_generation(conn)
        rows = [] if generation is None else _fetch(conn, generation, params)
        if not rows:
            return None
    at = int(rows[0][0]) if as_of is None else min(as_of, int(rows[0][0]))
    window = _window(rows[0][3:11], position)
    return {
        "position": at,
        "quality_checks": [window] if window is not None else [],
        "feed_periods": [p for p in map(_period, rows) if p is not None],
    }


def _live_generation(conn: sa.Connection) -> int | None:
    """The health tables' live generation, read again; None while they are not built (asked
    again at most every UNBUILT_RECHECK_SECONDS, so a ledger without them pays nothing)."""
    _generations.pop(conn.engine, None)
    if _unbuilt.get(conn.engine, 0.0) > time.monotonic():
        return None
    state = _health_state(conn)
    if state is None or state.version != HealthProjection.version:
        _unbuilt[conn.engine] = time.monotonic() + UNBUILT_RECHECK_SECONDS
        return None
    _generations[conn.engine] = state.generation
    return state.generation


def _fetch(conn: sa.Connection, generation: int, params: dict[str, Any]) -> list[Any]:
    tables = HealthProjection.tables_for(generation)
    snap = Snapshot(conn, tables, 0, 0, None)
    key = tuple(tables[name] for name in ("checks", "feeds", "periods", "counts"))
    return snap.fetch(_covering_statement, key, params)


def _health_state(conn: sa.Connection) -> ProjectionState | None:
    """The health projection's state; None before any projection has run on this ledger (once
    the position table exists it stays, so an engine that has seen it asks no more)."""
    reader = Snapshot(conn, {}, 0, 0, None)
    if conn.engine not in _positioned:
        if not reader.fetch(_positions_exist, (conn.dialect.name == "postgresql",), {})[0][0]:
            return None
        _positioned.add(conn.engine)
    rows = reader.fetch(_state_statement, (), {"name": HealthProjection.name})
    return ProjectionState(*map(int, rows[0])) if rows else None


def _positions_exist(postgres: bool) -> sa.Select[Any]:
    if postgres:
        return sa.select(sa.func.to_regclass(positions.name).is_not(None))
    master = sa.table("sqlite_master", sa.column("type"), sa.column("name"))
    found = sa.select(master.c.name).where(
        master.c.type == "table", master.c.name == positions.name
    )
    return sa.select(sa.exists(found))


def _state_statement() -> sa.Select[Any]:
    p = positions
    return sa.select(p.c.position, p.c.generation, p.c.version).where(
        p.c.name == sa.bindparam("name")
    )


def _covering_statement(q: sa.Table, f: sa.Table, p: sa.Table, c: sa.Table) -> sa.Select[Any]:
    """One row per feed of deployment :d (or one row without a feed): the projection's position,
    generation and version; the window check holding position :p; the feed's period holding
    instant :t, closed or with its count so far. All as of :as_of (NULL: the position read).

    Windows follow one another without overlap, so the one holding the prediction is the first
    recorded after it that reaches it, if it starts at or before it."""
    pp, point = positions, sa.bindparam("p")
    # One statement reads one snapshot, in which no row is past the position read beside it:
    # so "as of" is :as_of alone, and the check's lookup is not tied to the position row.
    at = sa.func.coalesce(sa.bindparam("as_of", type_=BIGINT), sa.literal(NO_LIMIT, BIGINT))
    first = (
        sa.select(sa.func.min(q.c.position))
        .where(q.c.deployment == sa.bindparam("d"), q.c.position > point, q.c.position <= at)
        .where(q.c.source == "window", q.c.covers_to >= point)
        .scalar_subquery()
    )
    w = q.alias("w")
    width = sa.cast(f.c.period_seconds, BIGINT) * MICROS
    start = sa.bindparam("t", type_=BIGINT) // width * width
    so_far = (
        sa.select(sa.func.coalesce(sa.func.sum(c.c.count), 0))
        .where(c.c.feed == f.c.name, c.c.period_start == start, c.c.position <= at)
        .scalar_subquery()
    )
    feeds = sa.and_(f.c.deployment == sa.bindparam("d"), f.c.position <= at)
    closed = sa.and_(p.c.feed == f.c.name, p.c.period_start == start, p.c.position <= at)
    return (
        sa.select(pp.c.position, pp.c.generation, pp.c.version)
        .add_columns(w.c.check_id, w.c.key, w.c.position, w.c.recorded_at, w.c.rows)
        .add_columns(w.c.failing, w.c.actor, w.c.covers_to)
        .add_columns(f.c.name, f.c.expected_count, f.c.period_seconds, f.c.declared_at)
        .add_columns(start.label("start"), p.c.expected, p.c.received, p.c.flags, p.c.rule)
        .add_columns(p.c.position, p.c.recorded_at, so_far.label("so_far"))
        .select_from(
            pp.outerjoin(w, w.c.position == first).outerjoin(f, feeds).outerjoin(p, closed)
        )
        .where(pp.c.name == HealthProjection.name)
        .order_by(f.c.name)
    )


def _window(values: Any, position: int) -> dict[str, Any] | None:
    check_id, key, at, recorded_at, rows, failing, actor, covers_to = values
    start = None if key is None else window_start(key)
    if start is None or start > position:
        return None  # no window yet, or the prediction fell between windows (no reference then)
    failing = _json(failing)
    return {
        "check_id": str(check_id),
        "key": key,
        "source": "window",
        "position": int(at),
        "recorded_at": iso(int(recorded_at)),
        "rows": int(rows),
        "window": {"from_position": start, "to_position": int(covers_to)},
        "batch": None,
        "failing": list(failing),
        "passed": not failing,
        "actor": actor,
    }


def _period(row: Any) -> dict[str, Any] | None:
    name, expected_count, seconds, declared_at, start, *closing, so_far = row[11:]
    if name is None:
        return None  # the deployment has no feed
    expected, received, flags, rule, position, recorded_at = closing
    width = int(seconds) * MICROS
    if int(declared_at) // width * width > int(start):
        return None  # a feed has no periods before the one it was declared in
    closed = position is not None
    flags = list(_json(flags)) if closed else []
    return {
        "feed": name,
        "start": iso(int(start)),
        "end": iso(int(start) + width),
        "expected": int(expected if closed else expected_count),
        "received": int(received if closed else so_far),
        "flags": flags,
        "status": (flags[0] if flags else "ok") if closed else "open",
        "closed": closed,
        "closed_by": rule,
        "position": int(position) if closed else None,
        "recorded_at": iso(int(recorded_at)) if closed else None,
    }


def _json(value: Any) -> Any:
    """psycopg2 decodes JSON itself; sqlite3 hands back the text."""
    return orjson.loads(value) if isinstance(value, str | bytes) else value
