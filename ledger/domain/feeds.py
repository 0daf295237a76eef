"""Data health: feeds with an expected count per period, and recorded quality checks."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from eventsourcing.domain import Aggregate, event

from ledger import ids
from ledger.errors import Conflict, InvalidCommand
from ledger.timeline import parse_instant, refuse_future, to_micros
from ledger.values import SAFE_MAX

PERIOD_FLAGS = ("short", "excess", "none")
QUALITY_SOURCES = ("batch", "window", "file")


def feed_id(name: str) -> uuid.UUID:
    return uuid.uuid5(ids.NAMESPACE, f"feed:{name}")


def quality_check_id(deployment: str, key: str) -> uuid.UUID:
    """A check named by what it covers, so a window checked twice is recorded once."""
    return uuid.uuid5(ids.NAMESPACE, f"quality-check:{deployment}\x00{key}")


def batch_check_key(batch_id: str) -> str:
    """The key of the check of a batch sent in (a batch of predictions shares its request id)."""
    return f"batch:{batch_id}"


def window_check_key(first: int, last: int) -> str:
    """The key of the check of a window of predictions, by their first and last positions."""
    return f"window:{first}-{last}"


def window_start(key: str) -> int | None:
    """The first prediction position a window check's key names (None: not a window's key)."""
    first = key.removeprefix("window:").split("-", 1)[0] if key.startswith("window:") else ""
    return int(first) if first.isdigit() else None


def iso_instant(instant: datetime) -> str:
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def period_flags(expected: int, received: int, tolerance: float) -> list[str]:
    """`none` when nothing came, `short`/`excess` beyond the tolerance, else no flag."""
    if received == 0 and expected > 0:
        return ["none"]
    if received < expected * (1 - tolerance):
        return ["short"]
    if received > expected * (1 + tolerance):
        return ["excess"]
    return []


def check_expectation(expected_count: int, period_seconds: int, tolerance: float) -> None:
    if not isinstance(expected_count, int) or expected_count < 0:
        raise InvalidCommand("expected_count must be a whole number >= 0", field="expected_count")
    if not isinstance(period_seconds, int) or period_seconds < 60:
        raise InvalidCommand("period_seconds must be a whole number >= 60", field="period_seconds")
    if not 0 <= tolerance < 1:
        raise InvalidCommand("tolerance is a share between 0 and 1 (e.g. 0.1)", field="tolerance")


class Feed(Aggregate):
    """A named data source expected to deliver about `expected_count` records a period."""

    class Declared(Aggregate.Created):
        name: str
        expected_count: int
        period_seconds: int
        tolerance: float
        deployment: str | None
        actor: str

    @staticmethod
    def create_id(name: str, **_: Any) -> uuid.UUID:
        return feed_id(name)

    @classmethod
    def declare(cls, **kwargs: Any) -> Feed:
        if not kwargs.get("name") or not str(kwargs["name"]).strip():
            raise InvalidCommand("a feed needs a name", field="name")
        check_expectation(kwargs["expected_count"], kwargs["period_seconds"], kwargs["tolerance"])
        return cls(**kwargs)

    @event(Declared)
    def __init__(
        self,
        name: str,
        expected_count: int,
        period_seconds: int,
        tolerance: float,
        deployment: str | None,
        actor: str,
    ):
        self.name = name
        self.deployment = deployment
        self._expect(expected_count, period_seconds, tolerance)
        self.closed_through: str | None = None
        self.closed_at: datetime | None = None  # when the last period was closed
        self.reported = 0

    def _expect(self, expected_count: int, period_seconds: int, tolerance: float) -> None:
        self.expected_count = expected_count
        self.period_seconds = period_seconds
        self.tolerance = tolerance

    class ExpectationChanged(Aggregate.Event):
        expected_count: int
        tolerance: float
        deployment: str | None
        actor: str

    class IngestionReported(Aggregate.Event):
        count: int
        period_start: str | None  # None (older reports only): the period of its recorded-at
        source: str
        actor: str

    class PeriodClosed(Aggregate.Event):
        period_start: str
        period_end: str
        expected: int
        received: int
        flags: list[str]
        rule: str
        actor: str

        def apply(self, aggregate: Any) -> None:
            aggregate.closed_at = self.timestamp

    # -- guards ------------------------------------------------------------------
    def period_of(self, instant: datetime) -> datetime:
        """The start of the period holding an instant (periods align to the epoch)."""
        seconds = int(instant.timestamp()) // self.period_seconds * self.period_seconds
        return datetime.fromtimestamp(seconds, tz=UTC)

    def check_open(self, period_start: datetime) -> None:
        if self.closed_through and period_start < parse_instant(
            self.closed_through, "closed_through"
        ):
            closed_at = f" at {iso_instant(self.closed_at)}" if self.closed_at else ""
            raise Conflict(
                f"feed {self.name!r} closed its periods through {self.closed_through}{closed_at}: "
                f"a count for the period starting {iso_instant(period_start)} would not be "
                "counted; report counts for later periods only",
                field="period_start",
                closed_through=self.closed_through,
            )

    # -- commands ------------------------------------------------------------------
    def change_expectation(
        self,
        expected_count: int,
        period_seconds: int,
        tolerance: float,
        deployment: str | None,
        actor: str,
    ) -> None:
        if period_seconds != self.period_seconds:
            raise Conflict(
                f"feed {self.name!r} has {self.period_seconds}-second periods; "
                "declare a new feed to change the period",
                field="period_seconds",
            )
        check_expectation(expected_count, period_seconds, tolerance)
        self._expectation_changed(
            expected_count=expected_count, tolerance=tolerance, deployment=deployment, actor=actor
        )

    def report(self, count: int, period_start: str | None, source: str, actor: str) -> None:
        if not isinstance(count, int) or isinstance(count, bool) or not 0 <= count <= SAFE_MAX:
            raise InvalidCommand(
                f"count must be a whole number from 0 to {SAFE_MAX:,}", field="count"
            )
        # Stamped with its period now, so the check below and the count agree on the period.
        instant = (
            datetime.now(UTC)
            if period_start is None
            else parse_instant(period_start, "period_start")
        )
        refuse_future(to_micros(instant), "period_start")
        start = self.period_of(instant)
        self.check_open(start)
        period_start = iso_instant(start)
        self._ingestion_reported(count=count, period_start=period_start, source=source, actor=actor)

    def close_period(self, period_start: datetime, received: int, rule: str, actor: str) -> None:
        self.check_open(period_start)
        end = datetime.fromtimestamp(period_start.timestamp() + self.period_seconds, tz=UTC)
        self._period_closed(
            period_start=iso_instant(period_start),
            period_end=iso_instant(end),
            expected=self.expected_count,
            received=received,
            flags=period_flags(self.expected_count, received, self.tolerance),
            rule=rule,
            actor=actor,
        )

    # -- mutators ------------------------------------------------------------------
    @event(ExpectationChanged)
    def _expectation_changed(
        self, expected_count: int, tolerance: float, deployment: str | None, actor: str
    ) -> None:
        self._expect(expected_count, self.period_seconds, tolerance)
        self.deployment = deployment

    @event(IngestionReported)
    def _ingestion_reported(
        self, count: int, period_start: str | None, source: str, actor: str
    ) -> None:
        self.reported += count

    @event(PeriodClosed)
    def _period_closed(
        self,
        period_start: str,
        period_end: str,
        expected: int,
        received: int,
        flags: list[str],
        rule: str,
        actor: str,
    ) -> None:
        self.closed_through = period_end


class QualityCheck(Aggregate):
    """One quality check of a batch or a window of predictions against a reference profile."""

    class Recorded(Aggregate.Created):
        deployment: str
        key: str  # what the check covers, e.g. window:<first>-<last> or batch:<id>
        source: str
        covers: dict[str, Any]  # {"predictions": [ids]} or {"batch": {"id", "rows", "digest"}}
        reference: dict[str, Any]  # the model and training run whose profile was used
        features: dict[str, Any]  # per feature: psi, ks, null share, out of range, unseen
        outliers: dict[str, Any]  # share, threshold, and the rows/predictions scored as outliers
        results: list[dict[str, Any]]  # one per check: check, feature, value, threshold, passed
        failing: list[str]
        thresholds: dict[str, Any]
        actor: str

    @staticmethod
    def create_id(deployment: str, key: str, **_: Any) -> uuid.UUID:
        return quality_check_id(deployment, key)

    @classmethod
    def record(cls, key: str, **kwargs: Any) -> QualityCheck:
        if kwargs.get("source") not in QUALITY_SOURCES:
            raise InvalidCommand(
                f"source must be one of {', '.join(QUALITY_SOURCES)}", field="source"
            )
        return cls(key=key, **kwargs)

    @event(Recorded)
    def __init__(
        self,
        deployment: str,
        key: str,
        source: str,
        covers: dict[str, Any],
        reference: dict[str, Any],
        features: dict[str, Any],
        outliers: dict[str, Any],
        results: list[dict[str, Any]],
        failing: list[str],
        thresholds: dict[str, Any],
        actor: str,
    ):
        self.deployment = deployment
        self.key = key
        self.source = source
        self.covers = covers
        self.reference = reference
        self.features = features
        self.outliers = outliers
        self.results = results
        self.failing = failing
        self.thresholds = thresholds
        self.checked_by = actor
