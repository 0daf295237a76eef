"""Erasure over HTTP: predictions seal personal fields, forget erases them, a key store outage is 503."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import sqlalchemy as sa
from falcon import testing
from sklearn.linear_model import LogisticRegression

from ledger.application import Ledger
from ledger.artifacts import dumps_skops
from ledger.database import create_engine

SCHEMA = {
    "features": [
        {"name": "customer_id", "type": "category", "personal": True},
        {"name": "full_name", "type": "category", "personal": True},
        {"name": "tenure", "type": "number"},
    ],
    "subject_field": "customer_id",
}
ROW = {"customer_id": "Subject-Zebulon-7714", "full_name": "Zebulon-Quixote-4471", "tenure": 3.0}


@pytest.fixture
def client(ledger: Ledger) -> Iterator[tuple[testing.TestClient, dict[str, str]]]:
    from api.app import create_app

    ledger.create_deployment(
        name="churn",
        task="classification",
        schema=SCHEMA,
        policy={"name": "manual"},
        positive_label="yes",
        outcome_maturity_days=0,
        actor="test",
    )
    estimator = LogisticRegression().fit(
        np.array([[1.0], [5.0], [2.0], [9.0]]), ["no", "yes", "no", "yes"]
    )
    digest = ledger.artifacts.put(dumps_skops(estimator))
    model_id = ledger.register_model(
        name="churn-lr",
        artifact_digest=digest,
        features=["tenure"],
        algorithm="lr",
        task="classification",
        classes=["no", "yes"],
        training_run_id=None,
        provenance="declared",
        declared={},
        actor="test",
    )
    ledger.add_model("churn", model_id, actor="test")
    keys = {
        role: ledger.issue_api_key(role=role, actor="test")[1]
        for role in ("admin", "predictor", "auditor")
    }
    yield testing.TestClient(create_app(ledger=ledger)), keys


def auth(keys: dict[str, str], role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {keys[role]}"}


def count_events(ledger: Ledger) -> int:
    with ledger.engine.connect() as conn:
        return conn.exec_driver_sql("SELECT count(*) FROM ledger_events").scalar_one()


def test_forget_over_http_erases_what_provenance_shows(client, ledger: Ledger) -> None:
    http, keys = client
    made = http.simulate_post(
        "/v1/deployments/churn/predictions",
        headers=auth(keys, "predictor"),
        json={"features": ROW, "request_id": "r-1"},
    )
    assert made.status_code in (200, 201), made.text
    prediction_id = made.json["prediction_id"]
    shown = http.simulate_get(
        f"/v1/predictions/{prediction_id}", headers=auth(keys, "auditor")
    ).json
    assert shown["features"]["full_name"] == ROW["full_name"]

    forgot = http.simulate_post(
        f"/v1/subjects/{ROW['customer_id']}/forget",
        headers=auth(keys, "admin"),
        json={"reason": "GDPR request 42"},
    )
    assert forgot.status_code == 200 and forgot.json["status"] == "forgotten"
    assert forgot.json["deployments"] == ["churn"]
    shown = http.simulate_get(
        f"/v1/predictions/{prediction_id}", headers=auth(keys, "auditor")
    ).json
    assert shown["features"] == {"customer_id": "erased", "full_name": "erased", "tenure": 3.0}

    again = http.simulate_post(
        f"/v1/subjects/{ROW['customer_id']}/forget",
        headers=auth(keys, "admin"),
        json={"reason": "GDPR request 42"},
    )
    assert again.status_code == 200 and again.json["status"] == "already_forgotten"


def test_forget_answers_404_for_an_unknown_subject_and_403_for_a_predictor(client) -> None:
    http, keys = client
    unknown = http.simulate_post(
        "/v1/subjects/nobody/forget", headers=auth(keys, "admin"), json={"reason": "r"}
    )
    assert unknown.status_code == 404 and unknown.json["code"] == "not_found"
    refused = http.simulate_post(
        "/v1/subjects/nobody/forget", headers=auth(keys, "predictor"), json={"reason": "r"}
    )
    assert refused.status_code == 403


def test_a_key_store_outage_refuses_the_prediction_and_records_nothing(
    client, ledger: Ledger
) -> None:
    http, keys = client
    before = count_events(ledger)
    working = ledger.sealer.keys.engine
    ledger.sealer.keys.engine = create_engine("postgresql+psycopg2://nobody@127.0.0.1:1/none")
    try:
        answer = http.simulate_post(
            "/v1/deployments/churn/predictions",
            headers=auth(keys, "predictor"),
            json={"features": {**ROW, "customer_id": "new-subject"}, "request_id": "r-9"},
        )
    finally:
        ledger.sealer.keys.engine = working
    assert answer.status_code == 503 and answer.json["code"] == "storage_unavailable"
    assert count_events(ledger) == before
    with ledger.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM ledger_subject_keys")).scalar_one() == 0


def test_the_stored_body_digest_is_keyed_so_erased_values_cannot_be_guessed(
    client, ledger: Ledger
) -> None:
    import hashlib

    import orjson

    http, keys = client
    post = {"features": ROW, "request_id": "r-1"}
    first = http.simulate_post(
        "/v1/deployments/churn/predictions", headers=auth(keys, "predictor"), json=post
    )
    retry = http.simulate_post(
        "/v1/deployments/churn/predictions", headers=auth(keys, "predictor"), json=post
    )
    other = http.simulate_post(
        "/v1/deployments/churn/predictions",
        headers=auth(keys, "predictor"),
        json={"features": {**ROW, "tenure": 4.0}, "request_id": "r-1"},
    )
    assert first.json["prediction_id"] == retry.json["prediction_id"] and retry.json["retried"]
    assert other.status_code == 409
    guessable = hashlib.sha256(orjson.dumps(ROW, option=orjson.OPT_SORT_KEYS)).hexdigest()
    with ledger.engine.connect() as conn:
        states = b"".join(
            bytes(s) for (s,) in conn.exec_driver_sql("SELECT state FROM ledger_events")
        )
    assert guessable.encode() not in states and b'"body_digest":"k1:' in states.replace(b" ", b"")


def subject_keys(ledger: Ledger) -> int:
    with ledger.engine.connect() as conn:
        return conn.execute(sa.text("SELECT count(*) FROM ledger_subject_keys")).scalar_one()


def predict(http: testing.TestClient, keys: dict[str, str], body: dict) -> testing.Result:
    return http.simulate_post(
        "/v1/deployments/churn/predictions", headers=auth(keys, "predictor"), json=body
    )


def test_a_refused_retry_creates_no_key_for_its_subject(client, ledger: Ledger) -> None:
    http, keys = client
    assert predict(http, keys, {"features": ROW, "request_id": "r-1"}).status_code == 201
    other_subject = {"features": {**ROW, "customer_id": "Subject-Other-1"}, "request_id": "r-1"}
    batch = {
        "request_id": "b-1",
        "instances": [
            {**ROW, "customer_id": "Subject-New-2", "request_id": "r-2"},
            {**ROW, "tenure": 8.0, "request_id": "r-1"},  # a retry with another body
        ],
    }

    assert predict(http, keys, other_subject).status_code == 409
    assert predict(http, keys, batch).status_code == 409
    assert subject_keys(ledger) == 1  # the first request's subject only


def test_an_erased_subjects_retry_is_refused_and_brings_no_key_back(client, ledger: Ledger) -> None:
    from serving.reproduce import reproduce

    http, keys = client
    first = predict(http, keys, {"features": ROW, "request_id": "r-1"})
    ledger.forget_subject(ROW["customer_id"], reason="erasure request 7", actor="test")

    retry = predict(http, keys, {"features": ROW, "request_id": "r-1"})

    assert retry.status_code == 409 and "erased" in retry.json["detail"]
    assert subject_keys(ledger) == 0
    # the personal fields are no model input: the output is reproduced from the others
    assert reproduce(ledger, first.json["prediction_id"]).identical
    # a key an earlier version made on such a retry does not open the old record either
    ledger.sealer.keys.get_or_create(ledger.sealer.subject_ref(ROW["customer_id"]), "churn")
    assert reproduce(ledger, first.json["prediction_id"]).identical


def test_reproducing_a_prediction_that_read_an_erased_field_is_one_refusal(
    ledger: Ledger, monkeypatch
) -> None:
    from click.testing import CliRunner

    from api.app import create_app
    from api.cli import main

    schema = {
        "features": [
            {"name": "customer_id", "type": "category", "personal": True},
            {"name": "age", "type": "number", "personal": True},
        ],
        "subject_field": "customer_id",
    }
    ledger.create_deployment(
        name="by-age",
        task="classification",
        schema=schema,
        policy={"name": "manual"},
        positive_label="yes",
        outcome_maturity_days=0,
        actor="test",
    )
    estimator = LogisticRegression().fit(np.array([[20.0], [60.0], [25.0], [70.0]]), list("nyny"))
    model_id = ledger.register_model(
        name="by-age-lr",
        artifact_digest=ledger.artifacts.put(dumps_skops(estimator)),
        features=["age"],
        algorithm="lr",
        task="classification",
        classes=["n", "y"],
        training_run_id=None,
        provenance="declared",
        declared={},
        actor="test",
    )
    ledger.add_model("by-age", model_id, actor="test")
    key = ledger.issue_api_key(role="predictor", actor="test")[1]
    answer = testing.TestClient(create_app(ledger=ledger)).simulate_post(
        "/v1/deployments/by-age/predictions",
        headers={"Authorization": f"Bearer {key}"},
        json={"features": {"customer_id": "Subject-Aged-1", "age": 64.0}, "request_id": "a-1"},
    )
    ledger.forget_subject("Subject-Aged-1", reason="erasure request 8", actor="test")
    monkeypatch.setenv("LEDGER_HOME", str(ledger.settings.home))

    run = CliRunner().invoke(
        main, ["--db", ledger.settings.database_url, "reproduce", answer.json["prediction_id"]]
    )

    assert run.exit_code != 0 and "Traceback" not in run.output
    [line] = run.output.strip().splitlines()
    assert "cannot be re-scored" in line and "was erased" in line and "takes age as input" in line
