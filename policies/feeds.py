"""The feed timer: close every elapsed period with an event, so missing data is detected.

A period is closed once its end has passed; its received count (ingestion reports
plus the feed deployment's predictions, by their historic instant when loaded history
carries one, else by recorded-at) comes from the health tables, brought up to the head of
the log first. Periods are closed from the feed's declaration, or from its first counted
period when loaded history starts earlier.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ledger.application import Ledger
from ledger.domain.feeds import iso_instant, period_flags
from ledger.errors import Conflict
from ledger.timeline import parse_micros, to_micros
from projections import health_queries as q
from projections.health import MICROS, HealthProjection
from projections.runner import catch_up

RULE = "feeds.close_elapsed_periods/v1"
MAX_PERIODS_PER_PASS = 1000  # a feed declared long ago catches up over several passes


def close_elapsed_periods(ledger: Ledger, now: datetime | None = None) -> list[dict[str, Any]]:
    """Close every feed's periods that ended at or before `now`; returns what was closed."""
    now = now or datetime.now(UTC)
    catch_up(ledger.engine, HealthProjection)  # for the feeds declared so far
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
    # Counted after the feed was read: a report recorded in between changes its version,
    # and the close is then refused rather than leaving that report out of the count.
    catch_up(ledger.engine, HealthProjection)
    if record.closed_through:
        start = parse_micros(record.closed_through, "closed_through")
    else:
        start = feed["declared_at"] // width * width
        with ledger.engine.connect() as conn:
            first = q.first_counted(conn, feed["name"])
        start = min(start, first) if first is not None else start
    closed: list[dict[str, Any]] = []
    while start + width <= now and len(closed) < MAX_PERIODS_PER_PASS:
        with ledger.engine.connect() as conn:
            received = q.received(conn, feed["name"], start)
        period_start = datetime.fromtimestamp(start // MICROS, tz=UTC)
        try:
            record = ledger.close_feed_period(
                feed["name"], period_start, received, rule=RULE, counted_version=record.version
            )
        except Conflict:
            break  # closed or reported meanwhile: the next pass counts again from there
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
