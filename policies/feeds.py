"""The feed timer: close every elapsed period with an event, so missing data is detected.

A period is closed once its end has passed; its received count (ingestion reports
plus the feed deployment's predictions, by recorded-at) comes from the health tables,
brought up to the head of the log first.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from ledger.application import Ledger
from ledger.domain.feeds import iso_instant, parse_instant, period_flags
from ledger.errors import Conflict, StorageUnavailable
from ledger.timeline import head_position, to_micros
from projections import health_queries as q
from projections.base import Projection, read_position
from projections.health import MICROS, HealthProjection
from projections.locks import runner_lock
from projections.runner import Runner

RULE = "feeds.close_elapsed_periods/v1"
MAX_PERIODS_PER_PASS = 1000  # a feed declared long ago catches up over several passes


def catch_up(
    engine: sa.Engine, projection: type[Projection] = HealthProjection, timeout: float = 30.0
) -> None:
    """Bring a projection to the head: run it here, or wait for the runner that holds its lock."""
    lock = runner_lock(engine, projection.name)
    if lock.acquire(wait=False):
        try:
            Runner(engine, projection).catch_up()
        finally:
            lock.release()
        return
    target, deadline = head_position(engine), time.monotonic() + timeout
    while _position(engine, projection) < target:
        if time.monotonic() > deadline:
            raise StorageUnavailable(
                f"the {projection.name} projection is behind the log; is its runner stuck?"
            )
        time.sleep(0.05)


def _position(engine: sa.Engine, projection: type[Projection]) -> int:
    with engine.connect() as conn:
        state = read_position(conn, projection.name)
    return 0 if state is None else state.position


def close_elapsed_periods(ledger: Ledger, now: datetime | None = None) -> list[dict[str, Any]]:
    """Close every feed's periods that ended at or before `now`; returns what was closed."""
    now = now or datetime.now(UTC)
    catch_up(ledger.engine)
    with ledger.engine.connect() as conn:
        declared = q.feeds(conn)
    closed: list[dict[str, Any]] = []
    for feed in declared:
        closed.extend(close_feed(ledger, feed, to_micros(now)))
    return closed


def close_feed(ledger: Ledger, feed: dict[str, Any], now: int) -> list[dict[str, Any]]:
    """Close one feed's elapsed periods in order, from the first one still open."""
    width = feed["period_seconds"] * MICROS
    record = ledger.feed(feed["name"])
    if record.closed_through:
        start = to_micros(parse_instant(record.closed_through, "closed_through"))
    else:
        start = feed["declared_at"] // width * width
    closed: list[dict[str, Any]] = []
    while start + width <= now and len(closed) < MAX_PERIODS_PER_PASS:
        with ledger.engine.connect() as conn:
            received = q.received(conn, feed["name"], start)
        period_start = datetime.fromtimestamp(start // MICROS, tz=UTC)
        try:
            record = ledger.close_feed_period(feed["name"], period_start, received, rule=RULE)
        except Conflict:
            break  # another pass closed it first; the next pass goes on from where that one got
        closed.append(
            {
                "feed": feed["name"],
                "period_start": iso_instant(period_start),
                "received": received,
                "expected": record.expected_count,
                "flags": period_flags(record.expected_count, received, record.tolerance),
            }
        )
        start += width
    return closed
