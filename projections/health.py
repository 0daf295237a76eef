"""Data health read tables: feeds, received counts per period, closed periods, quality checks.

A period's received count is the sum of its ingestion reports plus the predictions of
the feed's deployment recorded in it (by recorded-at). Closed periods and quality
checks are rows stamped with their position, so `as_of` is a filter, never a replay.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import sqlalchemy as sa

from ledger.domain.feeds import Feed, QualityCheck
from ledger.domain.predictions import OCCURRED_AT, Prediction
from ledger.timeline import parse_micros
from projections import events as ev
from projections.base import BIGINT, JSON, Projection

MICROS = 1_000_000


def micros(text: str) -> int:
    """A recorded period bound as µs since the epoch."""
    return parse_micros(text, "period_start")


class HealthProjection(Projection):
    """Feeds and their periods; quality checks with their per-feature figures."""

    name = "health"
    version = 1
    _by_deployment: dict[str, list[tuple[str, int]]] | None = (
        None  # feeds per deployment, for one page
    )
    topics = frozenset(
        {
            Feed.Declared,
            Feed.ExpectationChanged,
            Feed.IngestionReported,
            Feed.PeriodClosed,
            QualityCheck.Recorded,
            Prediction.Made,
        }
    )

    @classmethod
    def define(cls, metadata: sa.MetaData, suffix: str) -> dict[str, sa.Table]:
        feeds = sa.Table(
            f"pj_feeds{suffix}",
            metadata,
            sa.Column("name", sa.String(200), primary_key=True),
            sa.Column("feed_id", sa.String(36), nullable=False, unique=True),
            sa.Column("deployment", sa.String(200)),
            sa.Column("expected_count", sa.Integer, nullable=False),
            sa.Column("period_seconds", sa.Integer, nullable=False),
            sa.Column("tolerance", sa.Float, nullable=False),
            sa.Column("declared_at", BIGINT, nullable=False),
            sa.Column("position", BIGINT, nullable=False),
        )
        counts = sa.Table(
            f"pj_feed_counts{suffix}",
            metadata,
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("feed", sa.String(200), nullable=False),
            sa.Column("period_start", BIGINT, nullable=False),
            sa.Column("source", sa.String(20), nullable=False),  # "report" or "predictions"
            sa.Column("count", sa.Integer, nullable=False),
            sa.Column("position", BIGINT, nullable=False),  # the last event counted in this row
            sa.Index(f"ix_pj_feed_counts{suffix}", "feed", "period_start"),
        )
        periods = sa.Table(
            f"pj_feed_periods{suffix}",
            metadata,
            sa.Column("feed", sa.String(200), primary_key=True),
            sa.Column("period_start", BIGINT, primary_key=True),
            sa.Column("period_end", BIGINT, nullable=False),
            sa.Column("expected", sa.Integer, nullable=False),
            sa.Column("received", sa.Integer, nullable=False),
            sa.Column("flags", JSON, nullable=False),
            sa.Column("rule", sa.String(200), nullable=False),
            sa.Column("position", BIGINT, nullable=False),
            sa.Column("recorded_at", BIGINT, nullable=False),
        )
        checks = sa.Table(
            f"pj_quality_checks{suffix}",
            metadata,
            sa.Column("position", BIGINT, primary_key=True),
            sa.Column("check_id", sa.String(36), nullable=False),
            sa.Column("deployment", sa.String(200), nullable=False),
            sa.Column("key", sa.String(300), nullable=False),
            sa.Column("source", sa.String(20), nullable=False),
            sa.Column("recorded_at", BIGINT, nullable=False),
            sa.Column("rows", sa.Integer, nullable=False),
            sa.Column("covers_to", BIGINT),  # a window's last prediction position
            sa.Column("covers", JSON, nullable=False),
            sa.Column("reference", JSON, nullable=False),
            sa.Column("features", JSON, nullable=False),
            sa.Column("outliers", JSON, nullable=False),
            sa.Column("failing", JSON, nullable=False),
            sa.Column("actor", sa.String(200), nullable=False),
            sa.Index(f"ix_pj_quality_checks{suffix}", "deployment", "position"),
        )
        return {"feeds": feeds, "counts": counts, "periods": periods, "checks": checks}

    def apply(self, conn: sa.Connection, events: Sequence[ev.Event]) -> None:
        predicted: Counter[tuple[str, int]] = Counter()
        last: dict[tuple[str, int], int] = {}
        for event in events:
            if event.kind == "Prediction.Made":
                for feed, period in self._feed_periods(conn, event):
                    predicted[(feed, period)] += 1
                    last[(feed, period)] = event.position
            elif event.kind == "QualityCheck.Recorded":
                self._checked(conn, event)
            else:
                self._feed_event(conn, event)
        rows = [
            {
                "feed": f,
                "period_start": p,
                "source": "predictions",
                "count": n,
                "position": last[(f, p)],
            }
            for (f, p), n in predicted.items()
        ]
        if rows:
            conn.execute(self.tables["counts"].insert(), rows)
        self._by_deployment = None

    def _feed_periods(self, conn: sa.Connection, event: ev.Event) -> list[tuple[str, int]]:
        """The feeds a prediction counts for, each with the period holding its historic instant
        (loaded history) or else its recorded-at."""
        if self._by_deployment is None:
            t = self.tables["feeds"]
            self._by_deployment = {}
            for name, deployment, seconds in conn.execute(
                sa.select(t.c.name, t.c.deployment, t.c.period_seconds).where(
                    t.c.deployment.is_not(None)
                )
            ):
                self._by_deployment.setdefault(deployment, []).append((name, seconds * MICROS))
        feeds = self._by_deployment.get(event.state["deployment"], [])
        at = (event.state.get("scoring") or {}).get(OCCURRED_AT, event.recorded_at)
        return [(name, at // width * width) for name, width in feeds]

    def _feed_event(self, conn: sa.Connection, e: ev.Event) -> None:
        s, kind, t = e.state, e.kind, self.tables
        if kind == "Feed.Declared":
            conn.execute(
                t["feeds"]
                .insert()
                .values(
                    name=s["name"],
                    feed_id=e.originator_id,
                    deployment=s["deployment"],
                    expected_count=s["expected_count"],
                    period_seconds=s["period_seconds"],
                    tolerance=s["tolerance"],
                    declared_at=e.recorded_at,
                    position=e.position,
                )
            )
        elif kind == "Feed.ExpectationChanged":
            conn.execute(
                t["feeds"]
                .update()
                .where(t["feeds"].c.name == self._feed_name(conn, e))
                .values(
                    expected_count=s["expected_count"],
                    tolerance=s["tolerance"],
                    deployment=s["deployment"],
                )
            )
        elif kind == "Feed.IngestionReported":
            self._reported(conn, e)
        elif kind == "Feed.PeriodClosed":
            conn.execute(
                t["periods"]
                .insert()
                .values(
                    feed=self._feed_name(conn, e),
                    period_start=micros(s["period_start"]),
                    period_end=micros(s["period_end"]),
                    expected=s["expected"],
                    received=s["received"],
                    flags=s["flags"],
                    rule=s["rule"],
                    position=e.position,
                    recorded_at=e.recorded_at,
                )
            )
        self._by_deployment = None  # a feed's deployment may have changed

    def _reported(self, conn: sa.Connection, e: ev.Event) -> None:
        name = self._feed_name(conn, e)
        seconds = conn.execute(
            sa.select(self.tables["feeds"].c.period_seconds).where(
                self.tables["feeds"].c.name == name
            )
        ).scalar_one()
        width = seconds * MICROS
        start = (
            micros(e.state["period_start"])
            if e.state["period_start"]
            else e.recorded_at // width * width
        )
        conn.execute(
            self.tables["counts"]
            .insert()
            .values(
                feed=name,
                period_start=start,
                source="report",
                count=e.state["count"],
                position=e.position,
            )
        )

    def _feed_name(self, conn: sa.Connection, e: ev.Event) -> str:
        """Feed events after the first carry no name: it is the one whose id is the originator."""
        t = self.tables["feeds"]
        return conn.execute(sa.select(t.c.name).where(t.c.feed_id == e.originator_id)).scalar_one()

    def _checked(self, conn: sa.Connection, e: ev.Event) -> None:
        s = e.state
        covers = s["covers"]
        conn.execute(
            self.tables["checks"]
            .insert()
            .values(
                position=e.position,
                check_id=e.originator_id,
                deployment=s["deployment"],
                key=s["key"],
                source=s["source"],
                recorded_at=e.recorded_at,
                rows=int(covers.get("rows", 0)),
                covers_to=covers.get("to_position"),
                covers=covers,
                reference=s["reference"],
                features=s["features"],
                outliers=s["outliers"],
                failing=s["failing"],
                actor=s["actor"],
            )
        )
