"""Big group commits go by COPY on PostgreSQL: same positions, same clock, same conflicts.

Each test lowers the writer's COPY threshold to one event, so that every batch, however
small, takes the COPY path; SQLite keeps its executemany, and the same tests hold there.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from eventsourcing.persistence import IntegrityError

from ledger.domain.predictions import MADE_TOPIC
from ledger.errors import Conflict
from ledger.lean_insert import CLOCK_TABLE
from ledger.storage import EVENTS_TABLE
from tests.integration.api_support import ROW, deployment_with_models, make_api, predict
from tests.integration.test_group_commit import hammer, prediction, rows_by_originator, stored


@pytest.fixture
def copying(ledger):  # noqa: ANN001, ANN201
    ledger.recorder.batch_writer.copy_min_events = 1
    return ledger


def stored_rows(ledger) -> list[tuple]:  # noqa: ANN001
    with ledger.engine.connect() as conn:
        return conn.exec_driver_sql(
            f"SELECT id, originator_version, topic, state, recorded_at FROM {EVENTS_TABLE} "
            "ORDER BY id"
        ).fetchall()


def test_a_copied_batch_is_stored_in_order_at_the_positions_returned_and_the_clocks_time(copying):  # noqa: ANN001
    events = [stored() for _ in range(50)]
    positions = copying.recorder.batch_writer.insert(events)
    assert positions == sorted(positions) and len(set(positions)) == 50
    assert rows_by_originator(copying) == {
        e.originator_id: p for e, p in zip(events, positions, strict=True)
    }
    with copying.engine.connect() as conn:
        clock = conn.exec_driver_sql(f"SELECT last_us FROM {CLOCK_TABLE}").scalar_one()
    rows = stored_rows(copying)
    assert [(r[1], r[2], bytes(r[3])) for r in rows] == [
        (e.originator_version, e.topic, e.state) for e in events
    ]
    assert {r[4] for r in rows} == {clock}
    later = copying.recorder.batch_writer.insert([stored()])
    assert later[0] > positions[-1]


def test_every_acknowledged_copied_write_of_8_threads_is_stored_exactly_once(copying):  # noqa: ANN001
    acked = hammer(copying.recorder.insert_events, threads=8, writes=100)
    assert rows_by_originator(copying) == acked


def test_a_copied_batch_with_a_taken_id_stores_nothing_and_the_writer_carries_on(copying):  # noqa: ANN001
    existing = stored()
    copying.recorder.insert_events([existing])
    with pytest.raises(IntegrityError):
        copying.recorder.batch_writer.insert([stored(), stored(existing.originator_id, 1)])
    assert len(rows_by_originator(copying)) == 1
    copying.recorder.insert_events([stored()])
    assert len(rows_by_originator(copying)) == 2


def test_a_copied_batch_with_a_retried_row_records_the_new_rows_and_returns_the_original(
    copying,  # noqa: ANN001
):
    ((first, _),) = copying.record_predictions([prediction("a")])
    again = copying.record_predictions(
        [prediction("b"), prediction("a"), prediction("c"), prediction("b")]
    )
    assert [(p.request_id, pos is None) for p, pos in again] == [
        ("b", False),
        ("a", True),
        ("c", False),
        ("b", True),
    ]
    assert again[1][0].id == first.id
    assert len(rows_by_originator(copying)) == 3
    with pytest.raises(Conflict, match="different body"):
        copying.record_predictions([prediction("new"), prediction("a", value=2)])
    assert len(rows_by_originator(copying)) == 3


def test_an_api_batch_with_a_retried_row_is_answered_as_without_copy(copying):  # noqa: ANN001
    api = make_api(copying)  # the app starts a writer of its own
    copying.recorder.batch_writer.copy_min_events = 1
    deployment_with_models(api)
    instances = [{**ROW, "age": 20.0 + i} for i in range(5)]
    first = predict(api, {"instances": instances[:2], "request_id": "one"})
    assert first.status_code == 201
    retried = {**instances[1], "request_id": "one#1"}  # the first batch's second row, again
    second = predict(api, {"instances": [*instances[2:], retried], "request_id": "two"})
    assert second.status_code == 201
    answers = second.json["predictions"]
    assert [a["retried"] for a in answers] == [False, False, False, True]
    assert answers[3] == {**first.json["predictions"][1], "retried": True}
    again = predict(api, {"instances": [*instances[2:], retried], "request_id": "two"})
    assert again.status_code == 200
    assert [a["retried"] for a in again.json["predictions"]] == [True] * 4
    assert [a["prediction_id"] for a in again.json["predictions"]] == [
        a["prediction_id"] for a in answers
    ]
    changed = {**retried, "income": 1.0}
    refused = predict(api, {"instances": [instances[0], changed], "request_id": "three"})
    assert refused.status_code == 409
    assert stored_prediction_count(copying) == 5


def stored_prediction_count(ledger) -> int:  # noqa: ANN001
    with ledger.engine.connect() as conn:
        return int(
            conn.execute(
                sa.text(f"SELECT count(*) FROM {EVENTS_TABLE} WHERE topic = :t"), {"t": MADE_TOPIC}
            ).scalar_one()
        )
