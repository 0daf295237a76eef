"""NewPrediction stores its Made event byte for byte as the Prediction aggregate does."""

from __future__ import annotations

import math

import pytest
from eventsourcing.persistence import Mapper

from ledger.domain.predictions import NewPrediction, Prediction
from ledger.transcoder import OrjsonTranscoder

FIELDS = {
    "deployment": "churn",
    "deployment_version": 7,
    "request_id": "r-1#3",
    "body_digest": "k1:" + "a" * 64,
    "features": {"tenure": 7, "charges": 82.5, "region": "north", "partner": False, "income": None},
    "sealed": {
        "subject_ref": "s" * 43,
        "scope": "churn",
        "fields": ["customer_id"],
        "ciphertext": "c" * 40,
    },
    "outputs": {
        "m1": {"value": "yes", "probabilities": {"no": 0.25, "yes": 0.75}},
        "m2": {"value": None, "probabilities": None, "error": "ValueError: x"},
    },
    "served_model": "m1",
    "policy": {"name": "manual"},
    "leader": "m1",
    "flags": ["out_of_range:income"],
    "scoring": {
        "mode": "batch",
        "batch_id": "b",
        "row": 3,
        "rows": 9,
        "scorer": {"m1": "compiled-v1"},
    },
    "actor": "key:abc",
}


def mapper() -> Mapper:
    transcoder = OrjsonTranscoder()
    from eventsourcing.persistence import DatetimeAsISO, DecimalAsStr, UUIDAsHex

    for transcoding in (UUIDAsHex(), DatetimeAsISO(), DecimalAsStr()):
        transcoder.register(transcoding)
    return Mapper(transcoder=transcoder)


def through_the_aggregate(fields: dict, m: Mapper):
    (made,) = Prediction(**fields).collect_events()
    return made, m.to_stored_event(made)


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"sealed": None, "leader": None, "flags": []},
        {
            "outputs": {"m1": {"value": math.nan, "probabilities": None}}
        },  # NaN: the standard encoder's way
        {"features": {"a": "ünïcode \u2028", "b": 1e300, "c": -0.0}},
    ],
)
def test_the_stored_event_is_identical_to_the_aggregates(changes: dict) -> None:
    m, fields = mapper(), {**FIELDS, **changes}
    made, expected = through_the_aggregate(fields, m)
    lean = NewPrediction(**fields)
    lean.timestamp = made.timestamp  # the one value that differs between two builds
    stored = lean.stored_event(m)
    assert (stored.originator_id, stored.originator_version, stored.topic, stored.state) == (
        expected.originator_id,
        expected.originator_version,
        expected.topic,
        expected.state,
    )


def test_it_decodes_into_the_same_aggregate() -> None:
    m = mapper()
    lean = NewPrediction(**FIELDS)
    prediction = m.to_domain_event(lean.stored_event(m)).mutate(None)
    assert isinstance(prediction, Prediction) and prediction.id == lean.id
    assert (prediction.outputs, prediction.features, prediction.caller) == (
        FIELDS["outputs"],
        FIELDS["features"],
        "key:abc",
    )
