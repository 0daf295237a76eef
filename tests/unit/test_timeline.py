"""The one parser of instants and `pos:N`: what it takes, what it refuses, and how it says so."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ledger.errors import InvalidCommand
from ledger.timeline import parse_as_of, parse_instant, parse_micros

NOON = datetime(2026, 3, 3, 12, tzinfo=UTC)


@pytest.mark.parametrize(
    "text",
    [
        "2026-03-03T12:00:00Z",
        "2026-03-03T12:00:00z",
        " 2026-03-03T13:00:00+01:00 ",
        "2026-03-03 12:00:00.000000+00:00",
        "20260303T120000Z",
    ],
)
def test_an_instant_with_an_offset_is_taken_as_utc(text: str) -> None:
    parsed = parse_instant(text, "at")
    assert parsed == NOON and parsed.tzinfo == UTC


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("2026-03-03T12:00:00", "at needs an offset"),
        ("2026-03-03", "at needs an offset"),
        ("yesterday", "is not an ISO-8601 instant"),
        ("", "is not an ISO-8601 instant"),
    ],
)
def test_anything_else_is_refused_naming_the_field(text: str, says: str) -> None:
    with pytest.raises(InvalidCommand, match=says) as refused:
        parse_instant(text, "at")
    assert refused.value.field == "at"


def test_microseconds_are_exact() -> None:
    assert parse_micros("2026-03-03T12:00:00.000001Z", "at") == int(NOON.timestamp()) * 10**6 + 1


def test_as_of_is_a_position_or_an_instant() -> None:
    assert parse_as_of("pos:42") == ("position", 42)
    assert parse_as_of("2026-03-03T12:00:00Z") == ("instant", int(NOON.timestamp()) * 10**6)
    for bad in ("pos:-1", "pos:x", "noon"):
        with pytest.raises(InvalidCommand) as refused:
            parse_as_of(bad)
        assert refused.value.field == "as_of"


def test_a_future_instant_is_refused_where_a_past_one_is_meant_beyond_the_clock_skew() -> None:
    from datetime import timedelta

    from ledger.timeline import FUTURE_TOLERANCE_SECONDS, parse_past_instant

    now = datetime.now(UTC)
    assert parse_past_instant(now.isoformat(), "--now") <= datetime.now(UTC)
    skewed = now + timedelta(seconds=FUTURE_TOLERANCE_SECONDS - 2)
    assert parse_past_instant(skewed.isoformat(), "--now") == skewed
    later = (now + timedelta(minutes=5)).isoformat()
    with pytest.raises(InvalidCommand, match="--now .* is in the future") as refused:
        parse_past_instant(later, "--now")
    assert refused.value.field == "--now" and "clock skew" in refused.value.detail
    with pytest.raises(InvalidCommand, match="as_of .* is in the future"):
        parse_as_of(later)
