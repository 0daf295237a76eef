"""Feeds on both backends: counts per period, the timer that closes periods, and as_of."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from ledger.domain.predictions import Prediction
from ledger.errors import Conflict, InvalidCommand
from policies.feeds import RULE, close_elapsed_periods
from projections import health_queries as q
from projections.health import HealthProjection
from projections.runner import catch_up

HOUR = 3600


def this_hour() -> datetime:
    return datetime.now(UTC).replace(minute=0, second=0, microsecond=0)


def prediction(deployment: str, request_id: str) -> Prediction:
    return Prediction(
        deployment=deployment,
        deployment_version=1,
        request_id=request_id,
        body_digest=request_id,
        features={"x": 1.0},
        sealed=None,
        outputs={"m": {"value": 1}},
        served_model="m",
        policy={"name": "manual"},
        leader="m",
        flags=[],
        scoring={"mode": "single"},
        actor="test",
    )


def test_a_feed_that_gets_300_of_1000_is_short_and_an_empty_hour_is_none(ledger):
    ledger.declare_feed(
        "transactions", expected_count=1000, period_seconds=HOUR, actor="test", tolerance=0.1
    )
    ledger.report_ingestion("transactions", 300, actor="test")
    hour = this_hour()

    closed = close_elapsed_periods(ledger, now=hour + timedelta(hours=2, seconds=1))

    assert [(c["received"], c["flags"]) for c in closed] == [(300, ["short"]), (0, ["none"])]
    catch_up(ledger.engine, HealthProjection)
    with ledger.engine.connect() as conn:
        periods = q.periods(conn, "transactions")
    assert [(p["expected"], p["received"], p["flags"], p["closed_by"]) for p in periods] == [
        (1000, 300, ["short"], RULE),
        (1000, 0, ["none"], RULE),
    ]
    assert periods[1]["start"].startswith((hour + timedelta(hours=1)).strftime("%Y-%m-%dT%H:00:00"))


def test_the_timer_closes_each_period_once_and_leaves_open_periods_alone(ledger):
    ledger.declare_feed("orders", expected_count=10, period_seconds=HOUR, actor="test")
    hour = this_hour()
    assert close_elapsed_periods(ledger, now=hour + timedelta(minutes=59)) == []
    assert len(close_elapsed_periods(ledger, now=hour + timedelta(hours=1))) == 1
    assert close_elapsed_periods(ledger, now=hour + timedelta(hours=1, minutes=30)) == []
    assert ledger.feed("orders").closed_through.startswith(
        (hour + timedelta(hours=1)).strftime("%Y-%m-%dT%H")
    )


def test_a_deployments_predictions_count_as_records_received_on_its_feed(ledger):
    ledger.declare_feed(
        "churn-requests",
        expected_count=4,
        period_seconds=HOUR,
        actor="test",
        tolerance=0.0,
        deployment="churn",
    )
    ledger.record_predictions([prediction("churn", f"r{i}") for i in range(5)])
    ledger.record_predictions([prediction("other", "r1")])
    ledger.report_ingestion("churn-requests", 2, actor="test")

    [closed] = close_elapsed_periods(ledger, now=this_hour() + timedelta(hours=1))

    assert (closed["received"], closed["flags"]) == (7, ["excess"])


def test_a_report_for_a_closed_period_is_refused_and_bad_counts_are_invalid(ledger):
    ledger.declare_feed("late", expected_count=10, period_seconds=HOUR, actor="test")
    close_elapsed_periods(ledger, now=this_hour() + timedelta(hours=1))
    with pytest.raises(Conflict, match="closed its periods through"):
        ledger.report_ingestion("late", 5, actor="test", period_start=this_hour().isoformat())
    with pytest.raises(InvalidCommand, match="count"):
        ledger.report_ingestion("late", -1, actor="test")


def test_periods_as_of_a_position_show_only_what_was_closed_by_then(ledger):
    ledger.declare_feed("tx", expected_count=10, period_seconds=HOUR, actor="test")
    close_elapsed_periods(ledger, now=this_hour() + timedelta(hours=1))
    catch_up(ledger.engine, HealthProjection)
    with ledger.engine.connect() as conn:
        first = q.periods(conn, "tx")[0]["position"]
    close_elapsed_periods(ledger, now=this_hour() + timedelta(hours=3))
    catch_up(ledger.engine, HealthProjection)
    with ledger.engine.connect() as conn:
        assert len(q.periods(conn, "tx")) == 3
        assert len(q.periods(conn, "tx", position=first)) == 1
        assert q.feeds(conn, position=first - 2) == []


def test_the_health_tables_rebuilt_from_the_log_equal_the_incremental_ones(ledger):
    from projections.runner import Runner

    ledger.declare_feed(
        "tx", expected_count=3, period_seconds=HOUR, actor="test", deployment="churn"
    )
    ledger.record_predictions([prediction("churn", f"r{i}") for i in range(4)])
    ledger.report_ingestion("tx", 2, actor="test")
    close_elapsed_periods(ledger, now=this_hour() + timedelta(hours=2))
    catch_up(ledger.engine, HealthProjection)

    def rows() -> dict[str, list]:
        with ledger.engine.connect() as conn:
            tables = q.tables(conn)
            same = {
                name: sorted(tuple(map(str, r)) for r in conn.execute(tables[name].select()))
                for name in ("feeds", "periods", "checks")
            }
            c = tables["counts"]  # rows follow the pages read; their sums per period must not
            sums = conn.execute(
                sa.select(c.c.feed, c.c.period_start, sa.func.sum(c.c.count)).group_by(
                    c.c.feed, c.c.period_start
                )
            ).all()
            return {**same, "counts": sorted(tuple(r) for r in sums)}

    incremental = rows()
    Runner(ledger.engine, HealthProjection).rebuild()
    assert rows() == incremental
    with ledger.engine.connect() as conn:
        assert [p["received"] for p in q.periods(conn, "tx")] == [6, 0]


def test_a_count_for_the_current_period_after_it_was_closed_is_refused_not_lost(ledger):
    ledger.declare_feed("early", expected_count=10, period_seconds=HOUR, actor="test")
    close_elapsed_periods(ledger, now=this_hour() + timedelta(hours=1))  # the hour under way
    with pytest.raises(Conflict, match="closed its periods through .* at 20") as refused:
        ledger.report_ingestion("early", 5, actor="test")
    assert this_hour().strftime("%Y-%m-%dT%H:00:00Z") in refused.value.detail


def test_a_report_recorded_after_the_count_makes_the_close_count_again(ledger):
    ledger.declare_feed("racy", expected_count=10, period_seconds=HOUR, actor="test")
    counted = ledger.feed("racy").version
    ledger.report_ingestion("racy", 5, actor="test")
    with pytest.raises(Conflict, match="count again"):
        ledger.close_feed_period("racy", this_hour(), 0, rule=RULE, counted_version=counted)

    [closed] = close_elapsed_periods(ledger, now=this_hour() + timedelta(hours=1))

    assert closed["received"] == 5


def test_a_count_for_a_period_still_to_come_is_refused(ledger):
    ledger.declare_feed("ahead", expected_count=10, period_seconds=HOUR, actor="test")
    with pytest.raises(InvalidCommand, match="period_start .* is in the future"):
        ledger.report_ingestion(
            "ahead", 5, actor="test", period_start=(this_hour() + timedelta(hours=2)).isoformat()
        )
