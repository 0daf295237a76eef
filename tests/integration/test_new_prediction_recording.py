"""The serving path records NewPrediction: same stored bytes as the aggregate, same retry rules."""

from __future__ import annotations

import pytest

from ledger.domain.predictions import NewPrediction, Prediction
from ledger.errors import Conflict
from ledger.storage import EVENTS_TABLE


def fields(request_id: str, value: float = 1.0) -> dict:
    return dict(
        deployment="churn",
        deployment_version=1,
        request_id=request_id,
        body_digest=f"body-{value}",
        features={"age": value, "plan": None},
        sealed=None,
        outputs={
            "m": {
                "value": "yes",
                "probabilities": {"no": 0.5 - value / 10, "yes": 0.5 + value / 10},
            }
        },
        served_model="m",
        policy={"name": "manual"},
        leader="m",
        flags=["missing:plan"],
        scoring={"mode": "single"},
        actor="key:test",
    )


def stored_state(ledger, position: int) -> bytes:
    with ledger.engine.connect() as conn:
        return bytes(
            conn.exec_driver_sql(
                f"SELECT state FROM {EVENTS_TABLE} WHERE id = {int(position)}"
            ).scalar_one()
        )


def test_the_stored_row_is_what_the_aggregate_would_store_and_reads_back_as_one(ledger) -> None:
    lean = NewPrediction(**fields("r-1"))
    ((recorded, position),) = ledger.record_predictions([lean])
    assert recorded is lean and position is not None
    (made,) = Prediction(**fields("r-1")).collect_events()
    object.__setattr__(made, "timestamp", lean.timestamp)  # the one value two builds differ in
    assert stored_state(ledger, position) == ledger.mapper.to_stored_event(made).state
    read = ledger.prediction(lean.id)
    assert (read.request_id, read.outputs, read.flags, read.version) == (
        "r-1",
        lean.outputs,
        ["missing:plan"],
        1,
    )


def test_a_retry_returns_the_original_and_another_body_is_a_conflict(ledger) -> None:
    ((first, _),) = ledger.record_predictions([NewPrediction(**fields("r-1"))])
    again = ledger.record_predictions(
        [NewPrediction(**fields("r-2")), NewPrediction(**fields("r-1"))]
    )
    assert [(p.request_id, position is None) for p, position in again] == [
        ("r-2", False),
        ("r-1", True),
    ]
    assert again[1][0].id == first.id and isinstance(again[1][0], Prediction)  # the stored original
    with pytest.raises(Conflict, match="different body"):
        ledger.record_predictions([NewPrediction(**fields("r-1", value=2.0))])
