"""A batch scored column-wise (serving.batch) is the row path's batch (serving.predict), byte for byte.

Random batches, edge values and invalid rows included, go through both: the same error
answer (naming instances.<i>.<field>), or the same answers and the same stored events
(with the timestamp and the sealing nonces held fixed, the only inputs that differ run to run).
"""

from __future__ import annotations

import datetime
import itertools
from base64 import b64decode
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from marshmallow import ValidationError

from ledger import recording
from ledger.domain.predictions import Prediction
from ledger.errors import LedgerError
from ledger.privacy.forget import forget_ref
from serving import batch as columns
from serving import predict as rows
from serving.service import Serving
from tests.integration.api_support import ROW, SCHEMA, Api, deployment_with_models, make_api

SAFE = 2**53 - 1
numbers = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(-SAFE, SAFE),
    st.sampled_from([0.0, -0.0, 17.99, 18.0, 80.0, 80.01, 9999.0, 10_000.0, 120_000.0, SAFE]),
)
anything = st.one_of(
    st.none(),
    st.booleans(),
    st.text(max_size=3),
    st.floats(),
    st.integers(-(2**60), 2**60),
    st.sampled_from(["\x00", "x" * 1001, [1], {"a": 1}, 3.0, SAFE + 1, float("nan")]),
)
valid_row = st.fixed_dictionaries(
    {"income": numbers},
    optional={
        "age": st.one_of(st.none(), numbers),
        "plan": st.one_of(st.none(), st.sampled_from(["basic", "plus", "pro", "gold", ""])),
        "active": st.one_of(st.none(), st.booleans()),
        "visits": st.one_of(st.none(), st.integers(-5, 5), st.sampled_from([2.0, -0.0])),
        "customer": st.one_of(st.none(), st.sampled_from(["c-1", "c-2", "c-3"])),
        "request_id": st.sampled_from(["own-1", "own-2"]),
    },
)
spoilt_row = st.builds(
    lambda row, bad: {**row, **bad},
    valid_row,
    st.dictionaries(
        st.sampled_from(["age", "income", "plan", "active", "visits", "colour"]),
        anything,
        max_size=1,
    ),
)
batches = st.lists(
    st.one_of(valid_row, valid_row, valid_row, spoilt_row, anything), min_size=1, max_size=12
)


@pytest.fixture(params=["manual", "majority_vote"])
def api(ledger, request) -> Api:  # noqa: ANN001
    api = make_api(ledger)
    kinds = ("logistic", "tree", "always_yes")
    deployment_with_models(api, kinds, policy={"name": request.param})
    return api


def serving_of(api: Api) -> Serving:
    return api.client.app.services.serving  # type: ignore[no-any-return]


@pytest.fixture
def fixed(monkeypatch):  # noqa: ANN001, ANN201
    """The event timestamp and the sealing nonces, the only things that differ run to run."""
    at = datetime.datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=datetime.UTC)
    monkeypatch.setattr(Prediction.Made, "create_timestamp", staticmethod(lambda: at))
    counter = itertools.count()

    def restart() -> None:
        nonlocal counter
        counter = itertools.count()

    def nonces(n: int) -> bytes:  # each row's 12 bytes its own, as os.urandom's would be
        return b"".join(next(counter).to_bytes(12, "big") for _ in range(n // 12))

    monkeypatch.setattr("ledger.privacy.sealing.os.urandom", nonces)
    return restart


def outcome(serving: Serving, path: Any, body: Any) -> tuple[str, Any]:
    """('ok', answers, stored bytes) or ('error', the error's class and answer)."""
    try:
        scored, predictions, made = path(serving, body)
    except ValidationError as error:
        return "error", ("ValidationError", error.messages)
    except LedgerError as error:
        return "error", (type(error).__name__, error.detail)
    answers = [rows.row_answer(p, False) for p in predictions]
    stored = [[(e.originator_id, e.topic, e.state) for e in events] for events in made]
    return "ok", (answers, stored)


def row_path(serving: Serving, body: Any) -> Any:
    scored = rows.score_request(serving, "churn", body)
    predictions = rows.build_predictions(serving, scored, "key:test")
    return scored, predictions, [recording.stored_events(serving.ledger, p) for p in predictions]


def column_path(serving: Serving, body: Any) -> Any:
    scored = columns.score_batch(serving, "churn", body)
    predictions, made = columns.batch_predictions(serving, scored, "key:test")
    return scored, predictions, made


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(instances=batches)
def test_a_random_batch_is_answered_and_stored_alike_by_both_paths(api, fixed, instances) -> None:  # noqa: ANN001
    serving = serving_of(api)
    body = {"instances": instances, "request_id": "batch"}
    fixed()
    expected = outcome(serving, row_path, body)
    fixed()
    assert outcome(serving, column_path, body) == expected


def test_an_invalid_row_is_named_by_its_index_and_field(api, fixed) -> None:  # noqa: ANN001
    body = {"instances": [ROW, {**ROW, "income": "lots"}, ROW], "request_id": "bad"}
    kind, (name, messages) = outcome(serving_of(api), column_path, body)
    assert (kind, name) == ("error", "ValidationError")
    assert messages == {"instances": {1: {"income": ["Not a valid number."]}}}
    assert outcome(serving_of(api), row_path, body) == (kind, (name, messages))


def test_a_big_batch_goes_the_column_path_and_flags_every_row_as_the_row_path_does(
    api,  # noqa: ANN001
    fixed,  # noqa: ANN001
) -> None:
    instances = [
        {**ROW, "age": 10.0 + i % 90, "plan": ["basic", "gold", None][i % 3], "customer": f"c-{i}"}
        for i in range(300)
    ]
    body = {"instances": instances, "request_id": "big"}
    fixed()
    expected = outcome(serving_of(api), row_path, body)
    fixed()
    assert outcome(serving_of(api), column_path, body) == expected
    flags = {tuple(answer["flags"]) for answer in expected[1][0]}
    assert {(), ("out_of_range:age",), ("unseen_category:plan",), ("missing:plan",)} <= flags


def test_personal_fields_of_several_subjects_nulls_and_a_forgotten_subject_are_sealed_alike(
    api,  # noqa: ANN001
    fixed,  # noqa: ANN001
    monkeypatch,  # noqa: ANN001
) -> None:
    serving = serving_of(api)
    sealer = serving.sealer
    subjects = ("c-1", "c-2", "c-3", "c-4")
    sealer.seal(SCHEMA, {**ROW, "customer": "c-2"}, deployment="churn", request_id="x")
    forget_ref(serving.ledger, sealer.subject_ref("c-2"), "asked", "key:test")
    monkeypatch.setattr("ledger.privacy.keys.secrets.token_bytes", lambda n: b"k" * n)
    instances = [
        {**ROW, "customer": [*subjects, None][i % 5], "age": [None, 30.0][i % 2]} for i in range(40)
    ]
    body = {"instances": instances, "request_id": "personal"}
    results = []
    for path in (row_path, column_path):
        for subject in subjects:  # each path makes every key anew, c-2's after its erasure
            sealer.destroy(sealer.subject_ref(subject))
        fixed()
        results.append(outcome(serving, path, body))
    assert results[0][0] == "ok" and results[1] == results[0]

    _, predictions, made = column_path(serving, {**body, "request_id": "again"})
    records = [p.sealed for p in predictions]
    assert [r is None for r in records] == [row["customer"] is None for row in instances]
    opened = [sealer.unseal(r, str(p.id)) for p, r in zip(predictions, records, strict=True) if r]
    assert opened == [{"customer": row["customer"]} for row in instances if row["customer"]]
    nonces = [r["nonce"] for r in records if r]
    assert len(set(nonces)) == len(nonces) and {len(b64decode(n)) for n in nonces} == {12}
    assert {r["subject_ref"] for r in records if r} == {sealer.subject_ref(s) for s in subjects}
    for p, row, events in zip(predictions, instances, made, strict=True):
        assert b'"c-' not in events[0].state  # no personal value in the stored bytes
        assert p.features == {k: v for k, v in row.items() if k != "customer" or v is None}
