"""Data-health commands of the Ledger: feeds, ingestion counts, closed periods, quality checks."""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from eventsourcing.persistence import IntegrityError

from ledger.domain.feeds import Feed, QualityCheck, feed_id, quality_check_id
from ledger.errors import Conflict, NotFound

_RETRIES = 5  # reporters of one feed race for its next version; the loser reads again


class HealthCommands:
    """Mixed into Ledger; relies on its `get` and `save`."""

    get: Any
    save: Any

    def declare_feed(
        self,
        name: str,
        expected_count: int,
        period_seconds: int,
        actor: str,
        tolerance: float = 0.1,
        deployment: str | None = None,
    ) -> Feed:
        """Declare a feed, or change the expectation of a declared one."""
        try:
            feed = self.feed(name)
        except NotFound:
            feed = None
        if feed is None:
            feed = Feed.declare(
                name=name,
                expected_count=expected_count,
                period_seconds=period_seconds,
                tolerance=tolerance,
                deployment=deployment,
                actor=actor,
            )
        else:
            feed.change_expectation(expected_count, period_seconds, tolerance, deployment, actor)
        self._save_retrying(feed)
        return feed

    def feed(self, name: str, position: int | None = None) -> Feed:
        return cast(Feed, self.get(feed_id(name), f"feed {name!r}", position))

    def report_ingestion(
        self,
        feed: str,
        count: int,
        actor: str,
        period_start: str | None = None,
        source: str = "api",
    ) -> Feed:
        for _attempt in range(_RETRIES):
            record = self.feed(feed)
            record.report(count, period_start, source, actor)
            if self._saved(record):
                return record
        raise Conflict(f"feed {feed!r} is being reported concurrently; retry")

    def close_feed_period(
        self,
        feed: str,
        period_start: datetime,
        received: int,
        rule: str,
        counted_version: int | None = None,
    ) -> Feed:
        """Close one elapsed period with its count; the rule that closed it is the actor.

        `counted_version`: the feed's version when `received` was counted; a report recorded
        since then makes the count stale, so the close is refused (Conflict) to be counted again.
        """
        for _attempt in range(_RETRIES):
            record = self.feed(feed)
            if counted_version is not None and record.version != counted_version:
                raise Conflict(f"feed {feed!r} changed since its period was counted; count again")
            record.close_period(period_start, received, rule=rule, actor=f"rule:{rule}")
            if self._saved(record):
                return record
        raise Conflict(f"feed {feed!r} is being changed concurrently; retry")

    def record_quality_check(self, key: str, **kwargs: Any) -> QualityCheck:
        """Record a check once per key; recording the same key again returns the first."""
        check = QualityCheck.record(key=key, **kwargs)
        if self._saved(check):
            return check
        return self.quality_check(kwargs["deployment"], key)

    def quality_check(self, deployment: str, key: str) -> QualityCheck:
        check_id = quality_check_id(deployment, key)
        return cast(QualityCheck, self.get(check_id, f"quality check {key!r}"))

    def _saved(self, aggregate: Any) -> bool:
        try:
            self.save(aggregate)
        except IntegrityError:
            return False
        return True

    def _save_retrying(self, feed: Feed) -> None:
        if not self._saved(feed):
            raise Conflict(f"feed {feed.name!r} changed concurrently; retry")
