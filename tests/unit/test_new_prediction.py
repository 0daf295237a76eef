"""NewPrediction stores its Made event byte for byte as the Prediction aggregate does."""

from __future__ import annotations

import datetime
import math
import uuid

import pytest
from eventsourcing.persistence import Mapper

from ledger.domain.predictions import NewPrediction, Prediction, stored_made_events
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


def batch(changes: list[dict], at: datetime.datetime) -> list[NewPrediction]:
    out = []
    for i, change in enumerate(changes):
        lean = NewPrediction(**{**FIELDS, "request_id": f"b#{i}", **change})
        lean.timestamp = at
        out.append(lean)
    return out


AT = datetime.datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=datetime.UTC)
# What the cut between two states looks like, placed inside a state: only the count of cuts
# tells it from a real one.
FAKE_CUT = {"x": [{"a": 1}, {"timestamp": {"_type_": "datetime_iso", "_data_": AT.isoformat()}}]}


@pytest.mark.parametrize(
    "changes",
    [
        [{}, {}],
        [{}, {"sealed": None, "leader": None, "flags": []}, {"features": {"a": "ünïcode"}}],
        [{"outputs": {"m1": FAKE_CUT}}, {}, {"outputs": FAKE_CUT}],
        [{"features": {"a": '},{"timestamp":'}}, {}],  # a text holding the cut
        [{}],
        [],
    ],
)
def test_a_batchs_states_encoded_together_are_each_states_own_bytes(changes: list[dict]) -> None:
    m = mapper()
    predictions = batch(changes, AT)
    written = m.transcoder.typed(AT)
    expected = [p.stored_event(m, known_alike=True, timestamp=written) for p in predictions]
    assert stored_made_events(predictions, m, known_alike=True, timestamp=written) == expected
    assert stored_made_events(predictions, m, known_alike=False, timestamp=None) == [
        p.stored_event(m) for p in predictions
    ]


def test_states_that_begin_differently_are_encoded_each_alone() -> None:
    m = mapper()
    predictions = batch([{}, {}, {}], AT)
    predictions[1].timestamp = AT + datetime.timedelta(microseconds=1)
    expected = [p.stored_event(m, known_alike=True) for p in predictions]
    assert stored_made_events(predictions, m, known_alike=True, timestamp=None) == expected
    states = [p.made_state(m.transcoder.typed(AT)) for p in predictions]
    states[2]["timestamp"] = dict(states[2]["timestamp"])  # equal, not the same object
    assert m.transcoder.encode_alike_many(states) == [m.transcoder.encode_alike(s) for s in states]


@pytest.mark.parametrize(
    "bad", [{"a": "nul \x00 here"}, {"a": "lone \ud800"}, {"a": math.nan}, {"a": uuid.uuid4()}]
)
def test_a_state_the_fast_encoding_cannot_write_is_written_or_refused_as_alone(bad: dict) -> None:
    m = mapper()
    states = [p.made_state(m.transcoder.typed(AT)) for p in batch([{}, {"features": bad}], AT)]
    try:
        expected: object = [m.transcoder.encode_alike(s) for s in states]
    except Exception as error:  # noqa: BLE001
        expected = type(error)
    try:
        got: object = m.transcoder.encode_alike_many(states)
    except Exception as error:  # noqa: BLE001
        got = type(error)
    assert got == expected
