"""Clients and grants: request ids are a client's own; outcomes and reads stay within it."""

from __future__ import annotations

import secrets
import uuid

import pytest
from click.testing import CliRunner
from eventsourcing.persistence import StoredEvent

from api.cli import main
from ledger import ids
from ledger.domain.access import ApiKey
from tests.integration.api_support import ROW, Api, deployment_with_models, make_api, predict

OTHER_ROW = {**ROW, "income": 99_000.0}


@pytest.fixture
def api(ledger) -> Api:
    api = make_api(ledger)
    deployment_with_models(api)
    for name, client, grants in [
        ("alice", "alice", []),
        ("bob", "bob", []),
        ("labeller", "labels", ["churn:report-outcomes"]),
        ("reader", "audit-desk", ["churn:read"]),
        ("elsewhere", "elsewhere", ["other:predict"]),
    ]:
        api.keys[name] = ledger.issue_api_key(
            "predictor", actor="test", client=client, grants=grants
        ).key
    return api


def made(api: Api, who: str, request_id: str, row: dict = ROW):  # noqa: ANN201
    return predict(api, {"features": row, "request_id": request_id}, role=who)


def outcome(api: Api, who: str, body: dict):  # noqa: ANN201
    return api.call("POST", "/v1/outcomes", role=who, json=body)


def legacy_key(ledger) -> str:
    """A predictor key stored as keys were before clients: an Issued event of version 1."""
    key_id = secrets.token_hex(6)
    key = f"pl_{key_id}_{secrets.token_urlsafe(24)}"
    issued = ApiKey.issue(
        key_id=key_id,
        role="predictor",
        secret_digest=ledger.key_digest(key),
        expires_at=None,
        label="from before clients",
        actor="test",
    )
    (event,) = issued.collect_events()
    stored = ledger.mapper.to_stored_event(event)
    state = ledger.mapper.transcoder.decode(stored.state)
    for field in ("client", "grants", "class_version"):
        state.pop(field)
    ledger.recorder.insert_events(
        [
            StoredEvent(
                originator_id=stored.originator_id,
                originator_version=stored.originator_version,
                topic=stored.topic,
                state=ledger.mapper.transcoder.encode(state),
            )
        ]
    )
    return key


def test_another_clients_request_id_names_a_new_prediction(api: Api) -> None:
    first = made(api, "alice", "r-1")
    assert first.status_code == 201, first.text
    same = made(api, "bob", "r-1")  # the same body: not alice's answer
    assert same.status_code == 201 and same.json["retried"] is False
    assert same.json["prediction_id"] != first.json["prediction_id"]
    other = made(api, "bob", "r-2")
    assert made(api, "alice", "r-2", OTHER_ROW).status_code == 201  # not "already used"
    assert made(api, "bob", "r-1").json["prediction_id"] == same.json["prediction_id"]
    again = made(api, "alice", "r-1")
    assert (again.status_code, again.json["prediction_id"]) == (200, first.json["prediction_id"])
    assert other.json["prediction_id"] != first.json["prediction_id"]


def test_a_second_client_cannot_write_an_outcome_to_the_first_clients_prediction(
    api: Api,
) -> None:
    pid = made(api, "alice", "r-1").json["prediction_id"]
    theirs = outcome(api, "bob", {"prediction_id": pid, "actual": "no"})
    nothing = str(uuid.uuid4())
    unknown = outcome(api, "bob", {"prediction_id": nothing, "actual": "no"})
    assert theirs.status_code == unknown.status_code == 403
    assert theirs.text.replace(pid, "ID") == unknown.text.replace(nothing, "ID")
    by_request = outcome(api, "bob", {"deployment": "churn", "request_id": "r-1", "actual": "no"})
    assert by_request.status_code == 404  # bob's own r-1: there is none
    with_id = {"prediction_id": pid, "actual": "no", "outcome_id": "o-1"}
    assert outcome(api, "bob", with_id).status_code == 403
    assert api.ledger.prediction(pid).outcomes == []
    assert outcome(api, "alice", with_id).status_code == 201


def test_a_second_client_cannot_probe_the_first_clients_predictions(api: Api) -> None:
    pid = made(api, "alice", "r-1").json["prediction_id"]
    nothing = str(uuid.uuid4())

    def read(who: str, prediction_id: str, **params: str):  # noqa: ANN202
        return api.call("GET", f"/v1/predictions/{prediction_id}", role=who, params=params)

    mine = read("alice", pid)
    assert mine.status_code == 200 and mine.json["client"] == "alice"
    assert mine.json["features"]["customer"] == "c-1"  # sealed under the client's prediction id
    assert mine.json["caller"].startswith("key:")
    as_of = "2000-01-01T00:00:00Z"  # before the ledger began
    for params in ({}, {"as_of": mine.json["recorded_at"]}, {"as_of": as_of}):
        theirs, unknown = read("bob", pid, **params), read("bob", nothing, **params)
        assert theirs.status_code == unknown.status_code, (params, theirs.text, unknown.text)
        assert theirs.text.replace(pid, "ID") == unknown.text.replace(nothing, "ID"), params
    assert read("bob", pid).status_code == 404


def test_a_granted_reporter_reports_and_a_granted_reader_reads(api: Api) -> None:
    pid = made(api, "alice", "r-1").json["prediction_id"]
    body = {"prediction_id": pid, "actual": "yes", "outcome_id": "o-1"}
    reported = outcome(api, "labeller", body)
    assert reported.status_code == 201, reported.text
    assert outcome(api, "labeller", body).status_code == 200  # its retry finds its outcome
    # Outcome ids are the reporting client's: alice's o-1 is another id than the labeller's.
    assert outcome(api, "alice", {**body, "actual": "no"}).status_code == 201
    by_request = {"deployment": "churn", "request_id": "r-1", "actual": "yes"}
    assert outcome(api, "labeller", by_request).status_code == 404  # its own namespace
    shown = api.call("GET", f"/v1/predictions/{pid}", role="reader")
    assert shown.status_code == 200 and shown.json["client"] == "alice"
    assert len(shown.json["outcomes"]) == 2
    assert outcome(api, "reader", body).status_code == 403  # read is not report-outcomes


def test_predict_grants_narrow_a_key_to_their_deployments(api: Api) -> None:
    refused = made(api, "elsewhere", "r-1")
    assert refused.status_code == 403 and "churn:predict" in refused.text


def test_a_rotated_key_of_the_same_client_keeps_its_namespace(api: Api) -> None:
    first = made(api, "alice", "r-1").json
    api.keys["alice-2"] = api.ledger.issue_api_key("predictor", actor="test", client="alice").key
    again = made(api, "alice-2", "r-1")
    assert (again.status_code, again.json["prediction_id"]) == (200, first["prediction_id"])
    assert made(api, "alice-2", "r-1", OTHER_ROW).status_code == 409  # alice's id, another body
    pid = first["prediction_id"]
    assert api.call("GET", f"/v1/predictions/{pid}", role="alice-2").status_code == 200
    by_request = {"deployment": "churn", "request_id": "r-1", "actual": "yes"}
    assert outcome(api, "alice-2", by_request).status_code == 201


def test_old_keys_keep_working_and_old_request_ids_retry_to_their_originals(
    api: Api, ledger
) -> None:
    api.keys["old"], api.keys["old-2"] = legacy_key(ledger), legacy_key(ledger)
    first = made(api, "old", "r-old")
    assert first.status_code == 201, first.text
    # The id derives exactly as before clients: from (deployment, request id) alone.
    assert first.json["prediction_id"] == str(ids.prediction_id("churn", "r-old"))
    assert made(api, "old-2", "r-old").json["prediction_id"] == first.json["prediction_id"]
    assert made(api, "old", "r-old").status_code == 200
    assert made(api, "alice", "r-old").status_code == 201  # a named client: its own r-old
    by_request = {"deployment": "churn", "request_id": "r-old", "actual": "yes"}
    assert outcome(api, "old-2", by_request).status_code == 201
    pid = first.json["prediction_id"]
    assert outcome(api, "alice", {"prediction_id": pid, "actual": "no"}).status_code == 403
    shown = api.call("GET", f"/v1/predictions/{pid}", role="old")
    assert shown.status_code == 200 and shown.json["client"] == ids.DEFAULT_CLIENT
    # One namespace, but each old key still reads only what it made, as before.
    assert api.call("GET", f"/v1/predictions/{pid}", role="old-2").status_code == 404


def test_keys_are_issued_for_a_client_with_grants(api: Api, settings, monkeypatch) -> None:
    made_ = api.call(
        "POST",
        "/v1/keys",
        json={"role": "predictor", "client": "acme", "grants": ["churn:report-outcomes"]},
    )
    assert made_.status_code == 201, made_.text
    assert (made_.json["client"], made_.json["grants"]) == ("acme", ["churn:report-outcomes"])
    own = api.call("POST", "/v1/keys", json={"role": "predictor"})
    assert own.json["client"] == f"key-{own.json['key_id']}" and own.json["grants"] == []
    bad = api.call("POST", "/v1/keys", json={"role": "predictor", "grants": ["churn:delete"]})
    assert bad.status_code == 422 and "grant" in bad.text
    monkeypatch.setenv("LEDGER_HOME", str(settings.home))
    monkeypatch.delenv("LEDGER_API_KEY", raising=False)
    result = CliRunner().invoke(
        main,
        [
            "--db",
            settings.database_url,
            *("keys", "create", "--role", "predictor", "--client", "acme"),
            *("--grant", "churn:read", "--grant", "churn:report-outcomes"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "of client acme; grants churn:read, churn:report-outcomes" in result.stderr
