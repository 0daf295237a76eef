"""What the autopilot's rules read: the last training, recent predictions, matured outcomes.

Predictions and outcomes come from the prediction index (brought to the head first);
training runs are few, so their Started events are read straight from the log.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from ledger import log
from ledger.application import Ledger
from ledger.domain.deployments import Deployment
from ledger.domain.training import TrainingRun
from projections import events as ev
from projections.cubes import DAY_US
from projections.predictions import PredictionsProjection
from projections.runner import catch_up
from projections.snapshot import snapshot

AUTOPILOT_PREFIX = "rule:autopilot."


@dataclass(frozen=True)
class LastTraining:
    """The deployment's latest training run (any actor), or its creation when it has none."""

    position: int
    recorded_at: int
    run_id: str | None
    actor: str | None
    trigger: dict[str, Any] | None


def refresh(ledger: Ledger) -> None:
    """Bring the prediction index to the head of the log, so every rule sees the same facts."""
    catch_up(ledger.engine, PredictionsProjection)


def last_trainings(ledger: Ledger) -> dict[str, LastTraining]:
    """Per deployment, its newest TrainingRun.Started (a person's or a rule's), else its creation.

    One scan of two topics per pass, read here rather than through the projections' pager
    so that the rules do not move when the pager does.
    """
    found: dict[str, LastTraining] = {}
    with ledger.engine.connect() as conn:
        for row in log.rows(conn, classes=[TrainingRun.Started, Deployment.Created]):
            event = ev.decode(row)
            name = event.state.get("name" if event.kind == "Deployment.Created" else "deployment")
            if name:
                found[name] = LastTraining(
                    event.position,
                    event.recorded_at,
                    _run_id(event),
                    event.state.get("actor"),
                    event.state.get("trigger"),
                )
    return found


def _run_id(event: ev.Event) -> str | None:
    return event.originator_id if event.kind == "TrainingRun.Started" else None


def recent_features(
    ledger: Ledger, name: str, after: int, limit: int
) -> tuple[list[dict[str, Any]], list[int]]:
    """The features (sealed ones left out) of the newest `limit` predictions after a position."""
    with snapshot(ledger.engine, PredictionsProjection) as snap:
        p = snap.tables["predictions"]
        query = (
            sa.select(p.c.position, p.c.features)
            .where(p.c.deployment == name, p.c.position > after, p.c.position <= snap.position)
            .order_by(p.c.position.desc())
            .limit(limit)
        )
        rows = list(snap.conn.execute(query))
    rows.reverse()
    return [dict(r[1]) for r in rows], [int(r[0]) for r in rows]


def matured_outcomes_since(ledger: Ledger, deployment: Deployment, after: int, now_us: int) -> int:
    """Predictions whose outcome arrived after a position and whose outcome has matured."""
    cutoff = now_us - deployment.outcome_maturity_days * DAY_US
    with snapshot(ledger.engine, PredictionsProjection) as snap:
        p, o = snap.tables["predictions"], snap.tables["outcomes"]
        query = (
            sa.select(sa.func.count(sa.distinct(o.c.prediction_id)))
            .select_from(o.join(p, p.c.prediction_id == o.c.prediction_id))
            .where(
                o.c.deployment == deployment.name,
                o.c.position > after,
                o.c.position <= snap.position,
                p.c.recorded_at <= cutoff,
            )
        )
        return int(snap.conn.execute(query).scalar_one())


def labelled_predictions(
    ledger: Ledger, deployment: Deployment, now_us: int, since_us: int | None = None
) -> list[dict[str, Any]]:
    """Matured predictions with their latest outcome: id, position, recorded-at, features, actual."""
    cutoff = now_us - deployment.outcome_maturity_days * DAY_US
    with snapshot(ledger.engine, PredictionsProjection) as snap:
        p, o = snap.tables["predictions"], snap.tables["outcomes"]
        latest = (
            sa.select(o.c.prediction_id, sa.func.max(o.c.position).label("at"))
            .where(o.c.deployment == deployment.name, o.c.position <= snap.position)
            .group_by(o.c.prediction_id)
            .subquery()
        )
        query = (
            sa.select(p.c.prediction_id, p.c.position, p.c.recorded_at, p.c.features, o.c.actual)
            .join(latest, latest.c.prediction_id == p.c.prediction_id)
            .join(o, o.c.position == latest.c.at)
            .where(p.c.deployment == deployment.name, p.c.recorded_at <= cutoff)
            .order_by(p.c.position)
        )
        if since_us is not None:
            query = query.where(p.c.recorded_at >= since_us)
        return [dict(r) for r in snap.conn.execute(query).mappings()]
