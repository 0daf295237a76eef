"""The Feed and QualityCheck aggregates: given events, when a command, then events."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ledger.domain.feeds import Feed, QualityCheck, feed_id, period_flags, quality_check_id
from ledger.errors import Conflict, InvalidCommand

HOUR = 3600
NINE = datetime(2026, 3, 3, 9, tzinfo=UTC)


def declared(**overrides) -> Feed:
    return Feed.declare(
        **{
            "name": "tx",
            "expected_count": 1000,
            "period_seconds": HOUR,
            "tolerance": 0.1,
            "deployment": None,
            "actor": "test",
            **overrides,
        }
    )


@pytest.mark.parametrize(
    ("received", "flags"),
    [
        (0, ["none"]),
        (300, ["short"]),
        (899, ["short"]),
        (900, []),
        (1100, []),
        (1101, ["excess"]),
    ],
)
def test_period_flags_follow_the_expectation_and_its_tolerance(received, flags):
    assert period_flags(1000, received, 0.1) == flags


def test_a_feed_is_named_by_its_id_and_refuses_a_bad_expectation():
    assert declared().id == feed_id("tx")
    with pytest.raises(InvalidCommand, match="period_seconds"):
        declared(period_seconds=10)
    with pytest.raises(InvalidCommand, match="tolerance"):
        declared(tolerance=1.5)
    with pytest.raises(InvalidCommand, match="expected_count"):
        declared(expected_count=-1)


def test_closing_a_period_records_expected_received_and_flags():
    feed = declared()
    feed.close_period(NINE, received=300, rule="r/v1", actor="rule:r/v1")
    closed = feed.collect_events()[-1]
    assert isinstance(closed, Feed.PeriodClosed)
    assert (closed.period_start, closed.period_end) == (
        "2026-03-03T09:00:00Z",
        "2026-03-03T10:00:00Z",
    )
    assert (closed.expected, closed.received, closed.flags) == (1000, 300, ["short"])
    assert feed.closed_through == "2026-03-03T10:00:00Z"


def test_a_closed_period_is_closed_once_and_takes_no_more_reports():
    feed = declared()
    feed.close_period(NINE, received=0, rule="r/v1", actor="rule:r/v1")
    with pytest.raises(Conflict):
        feed.close_period(NINE, received=5, rule="r/v1", actor="rule:r/v1")
    with pytest.raises(Conflict, match="closed its periods through"):
        feed.report(5, "2026-03-03T09:30:00Z", "api", "key:k")
    feed.report(5, "2026-03-03T10:30:00+00:00", "api", "key:k")
    assert feed.collect_events()[-1].period_start == "2026-03-03T10:00:00Z"  # floored to its period


def test_a_report_needs_a_whole_count_and_an_instant_with_an_offset():
    feed = declared()
    with pytest.raises(InvalidCommand, match="count"):
        feed.report(True, None, "api", "key:k")
    with pytest.raises(InvalidCommand, match="offset"):
        feed.report(5, "2026-03-03T09:30:00", "api", "key:k")


def test_the_period_cannot_change_after_declaration():
    with pytest.raises(Conflict, match="declare a new feed"):
        declared().change_expectation(10, 60 * 30, 0.1, None, "test")


def test_a_quality_check_is_named_by_what_it_covers():
    check = QualityCheck.record(
        "window:1-9",
        deployment="churn",
        source="window",
        covers={"predictions": ["p"]},
        reference={},
        features={},
        outliers={},
        results=[],
        failing=[],
        thresholds={},
        actor="rule:q/v1",
    )
    assert check.id == quality_check_id("churn", "window:1-9")
    with pytest.raises(InvalidCommand, match="source"):
        QualityCheck.record(
            "x",
            deployment="churn",
            source="guess",
            covers={},
            reference={},
            features={},
            outliers={},
            results=[],
            failing=[],
            thresholds={},
            actor="a",
        )
