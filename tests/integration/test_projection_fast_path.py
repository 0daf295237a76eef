"""The predictions projection's fast path equals its definition, event by event, through the mapper.

The fast path: `Prediction.Made` copied into the index by SQL over the stored JSON
(projections/made_sql.py), the other events read raw and decoded by `ledger.log.fields`,
pages of 25,000 events, and on PostgreSQL the writes pipelined on a second connection. The
definition it is held to: every event decoded by the application's mapper (its upcasters
applied), one event a page, each prediction's index row built here from the domain event's
attributes, every write in the page's transaction. The ledger holds what the fast path must
get right: outcomes corrected several times over hours, outcome events stored at class
version 1 and at version 2, a forgotten subject and outcomes after the forget, a prediction
loaded with its historic instant.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Sequence
from typing import Any

import orjson
import sqlalchemy as sa
from eventsourcing.persistence import StoredEvent

from ledger import log
from ledger.application import Ledger
from ledger.domain.predictions import OCCURRED_AT, Prediction
from projections import events as ev
from projections.base import Projection
from projections.cubes import DAY_US
from projections.predictions import PredictionsProjection
from projections.runner import Runner
from tests.integration.test_projection_erasure import ME, YOU, project
from tests.integration.test_projection_pipeline import scene_with_forget
from tests.integration.test_projection_world import assert_same_tables, dump

HISTORIC_US = 1_700_000_000_000_000  # 2023-11-14: a prediction loaded from history


def index_row(e: ev.Event) -> dict[str, Any]:
    """A prediction's index row as its definition reads: the event's fields, the day its
    historic instant's when it has one, else its recording's."""
    s = e.state
    sealed = s["sealed"] or {}
    occurred = (s["scoring"] or {}).get(OCCURRED_AT)
    return {
        "prediction_id": e.originator_id,
        "position": e.position,
        "recorded_at": e.recorded_at,
        "day": (e.recorded_at if occurred is None else occurred) // DAY_US,
        "deployment": s["deployment"],
        "deployment_version": s["deployment_version"],
        "served_model": s["served_model"],
        "leader": s["leader"],
        "request_id": s["request_id"],
        "features": s["features"],
        "outputs": s["outputs"],
        "flags": s["flags"],
        "flagged": len(s["flags"]) > 0,
        "actor": s["actor"],
        "subject_ref": sealed.get("subject_ref"),
        "sealed_fields": sealed.get("fields"),
    }


class MapperFed(PredictionsProjection):
    """The projection as defined: nothing copied in SQL, index rows from decoded events."""

    pipelined = False

    def apply_range(self, conn: sa.Connection, after: int, upto: int) -> None:
        pass

    def apply(self, conn: sa.Connection, events: Sequence[ev.Event]) -> None:
        for e in events:
            if e.kind == "Prediction.Made":
                conn.execute(self.tables["predictions"].insert().values(**index_row(e)))
            else:
                super().apply(conn, [e])


class MapperRunner(Runner):
    """One event a page, decoded by the application's mapper."""

    def _apply_page(
        self,
        conn: sa.Connection,
        projection: Projection,
        position: int,
        page_size: int | None = None,
    ) -> int:
        found = log.rows(conn, after=position, limit=1)
        if not found:
            return position
        row = found[0]
        if projection.topics is None or row.topic in log.topics(
            [*projection.topics, Prediction.Made]
        ):
            domain = log.decode(log.mapper(), row)
            state = {f.name: getattr(domain, f.name) for f in dataclasses.fields(domain)}
            event = ev.Event(
                row.position,
                row.originator_id,
                row.originator_version,
                row.topic,
                state,
                row.recorded_at,
            )
            projection.apply(conn, [event])
        return row.position


def store_v1_outcome(ledger: Ledger, prediction_id: str, actual: Any) -> None:
    """An OutcomeRecorded as class version 1 stored it: no outcome_id, no class_version."""
    prediction = ledger.prediction(prediction_id)
    state = {
        "timestamp": {"_type_": "datetime_iso", "_data_": "2026-01-01T00:00:00+00:00"},
        "actual": actual,
        "observed_at": None,
        "correction": bool(prediction.outcomes),
        "actor": "key:test",
    }
    ledger.recorder_.insert_now(
        [
            StoredEvent(
                uuid.UUID(prediction_id),
                prediction.version + 1,
                log.topic(Prediction.OutcomeRecorded),
                orjson.dumps(state),
            )
        ]
    )


def historic(ledger: Ledger, deployment: str, plan: str) -> str:
    """A prediction loaded with the instant it was made in business time."""
    prediction = Prediction(
        deployment=deployment,
        deployment_version=ledger.deployment(deployment).version,
        request_id=f"history-{plan}",
        body_digest="history",
        features={"plan": plan, "vip": True},
        sealed=None,
        outputs={"m1": {"value": "yes" if deployment == "cls" else 2.5}},
        served_model="m1",
        policy={"name": "manual"},
        leader=None,
        flags=["range"],
        scoring={"mode": "history", OCCURRED_AT: HISTORIC_US},
        actor="key:test",
    )
    ledger.record_predictions([prediction])
    return str(prediction.id)


def test_the_fast_path_equals_the_projection_fed_event_by_event_by_the_mapper(
    ledger: Ledger,
) -> None:
    scene = scene_with_forget(ledger)
    yours = scene.made[("cls", YOU)][0]
    for i in range(3):  # corrected again and again, in later hours (later epochs)
        scene.advance(0.7)
        scene.outcome(yours, "cls", i + 20)
    old = historic(ledger, "cls", "gold")
    store_v1_outcome(ledger, old, "no")  # version 1, first outcome
    store_v1_outcome(ledger, old, "yes")  # version 1, a correction
    theirs = ledger.prediction(scene.made[("reg", YOU)][2])
    theirs.record_outcome(3.25, "2026-01-02", "key:test", outcome_id="o-1")  # version 2, with an id
    ledger.save(theirs)
    store_v1_outcome(ledger, str(theirs.id), 4.5)  # a version 1 correction of a version 2 one
    scene.advance(2)
    store_v1_outcome(
        ledger, scene.made[("reg", ME)][1], 9.0
    )  # an erased subject's, after the forget

    project(ledger, page_size=5)  # every projection followed in pages of 5 events
    incremental = dump(ledger.engine)
    Runner(ledger.engine, PredictionsProjection).rebuild()
    fast = dump(ledger.engine)
    assert_same_tables(incremental, fast)
    MapperRunner(ledger.engine, MapperFed).rebuild()
    defined = dump(ledger.engine)
    assert_same_tables(defined, fast)
    with ledger.engine.connect() as conn:
        state = log.head(conn)
    assert fast["predictions.position"] == [(state,)]
    outcomes = fast["predictions.outcomes"]
    assert sum(1 for r in outcomes if r[1] == yours) == 4  # the first, then three corrections
    assert any(r[1] == old for r in outcomes)
    (row,) = [r for r in fast["predictions.predictions"] if r[0] == old]
    assert row[3] == HISTORIC_US // DAY_US and row[9]["plan"] == "gold"
