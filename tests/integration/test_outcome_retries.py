"""Outcomes are recorded once: retries with or without an outcome id, reused ids, corrections."""

from __future__ import annotations

import threading
from dataclasses import replace

import pytest

from ledger.application import Ledger
from projections.registry import ALL
from projections.runner import Runner
from tests.integration.api_support import ROW, Api, deployment_with_models, make_api, predict


@pytest.fixture
def api(ledger) -> Api:
    api = make_api(ledger)
    deployment_with_models(api)
    return api


def made(api: Api, request_id: str, name: str = "churn") -> str:
    answer = predict(api, {"features": ROW, "request_id": request_id}, name=name)
    assert answer.status_code == 201, answer.text
    return answer.json["prediction_id"]


def send(api: Api, body: object):  # noqa: ANN201
    return api.call("POST", "/v1/outcomes", role="predictor", json=body)


def counted(api: Api) -> list[int]:
    """Each model's outcome count on /v1/performance, the projections caught up first."""
    for cls in ALL:
        Runner(api.ledger.engine, cls).catch_up()
    perf = api.call("GET", "/v1/performance", "admin", params={"deployment": "churn"})
    assert perf.status_code == 200, perf.text
    return [r["count"] for r in perf.json["results"]]


@pytest.mark.parametrize("outcome_id", ["o-1", None], ids=["with-id", "without-id"])
def test_the_same_outcome_twice_is_recorded_and_counted_once(api: Api, outcome_id) -> None:
    pid = made(api, "r-1")
    body = {"prediction_id": pid, "actual": "yes", "observed_at": "2026-03-03T12:00:00Z"}
    if outcome_id:
        body["outcome_id"] = outcome_id
    first, again = send(api, body), send(api, body)
    assert (first.status_code, again.status_code) == (201, 200), again.text
    assert (first.json["retried"], again.json["retried"]) == (False, True)
    assert {k: v for k, v in again.json.items() if k != "retried"} == {
        k: v for k, v in first.json.items() if k != "retried"
    }
    assert len(api.ledger.prediction(pid).outcomes) == 1
    assert counted(api) == [1, 1]


def test_an_outcome_id_reused_with_another_body_is_409_and_says_what_differs(api: Api) -> None:
    pid = made(api, "r-1")
    assert (
        send(api, {"prediction_id": pid, "actual": "yes", "outcome_id": "o-1"}).status_code == 201
    )
    other = send(api, {"prediction_id": pid, "actual": "no", "outcome_id": "o-1"})
    assert other.status_code == 409 and other.json["code"] == "outcome_id_reused"
    assert other.json["field"] == "outcome_id" and "actual 'yes', not 'no'" in other.json["detail"]
    elsewhere = send(api, {"prediction_id": made(api, "r-2"), "actual": "yes", "outcome_id": "o-1"})
    assert elsewhere.status_code == 409 and f"prediction {pid}" in elsewhere.json["detail"]
    assert [o["actual"] for o in api.ledger.prediction(pid).outcomes] == ["yes"]


def test_outcome_ids_are_scoped_per_deployment(api: Api) -> None:
    deployment_with_models(api, name="upsell")
    for name in ("churn", "upsell"):
        pid = made(api, "r-1", name)
        answer = send(api, {"prediction_id": pid, "actual": "yes", "outcome_id": "o-1"})
        assert answer.status_code == 201, answer.text


def test_corrections_stay_explicit(api: Api) -> None:
    pid = made(api, "r-1")
    assert send(api, {"prediction_id": pid, "actual": "yes"}).status_code == 201
    corrected = send(api, {"deployment": "churn", "request_id": "r-1", "actual": "no"})
    assert corrected.status_code == 201 and corrected.json["correction"] is True
    by_id = send(api, {"prediction_id": pid, "actual": "yes", "outcome_id": "fix-1"})
    assert by_id.status_code == 201 and by_id.json["correction"] is True
    assert [o["actual"] for o in api.ledger.prediction(pid).outcomes] == ["yes", "no", "yes"]
    assert counted(api) == [1, 1]


def test_a_list_follows_the_same_rules_per_item_and_all_or_nothing(api: Api) -> None:
    a, b = made(api, "r-1"), made(api, "r-2")
    items = [
        {"prediction_id": a, "actual": "yes", "outcome_id": "o-1"},
        {"prediction_id": a, "actual": "yes", "outcome_id": "o-1"},
        {"prediction_id": b, "actual": "no"},
        {"prediction_id": b, "actual": "no"},
    ]
    first = send(api, items)
    assert first.status_code == 201, first.text
    assert [o["retried"] for o in first.json["outcomes"]] == [False, True, False, True]
    again = send(api, items)
    assert again.status_code == 200 and all(o["retried"] for o in again.json["outcomes"])
    refused = send(
        api,
        [
            {"prediction_id": b, "actual": "yes", "outcome_id": "o-2"},
            {"prediction_id": b, "actual": "no", "outcome_id": "o-1"},
        ],
    )
    assert refused.status_code == 409 and refused.json["index"] == 1
    assert [len(api.ledger.prediction(p).outcomes) for p in (a, b)] == [1, 1]
    assert counted(api) == [2, 2]


def test_a_retry_after_a_restart_still_finds_the_original(api: Api, settings) -> None:
    pid = made(api, "r-1")
    body = {"prediction_id": pid, "actual": "yes", "outcome_id": "o-1"}
    assert send(api, body).status_code == 201
    restarted = Ledger(replace(settings))
    try:
        again = send(replace(make_api(restarted), keys=api.keys), body)  # the same client's key
        assert again.status_code == 200 and again.json["retried"] is True
        assert len(restarted.prediction(pid).outcomes) == 1
    finally:
        restarted.close()


@pytest.mark.parametrize("outcome_id", ["o-1", None], ids=["with-id", "without-id"])
def test_concurrent_resends_of_one_outcome_record_it_once(api: Api, outcome_id) -> None:
    pid = made(api, "r-1")
    body = {"prediction_id": pid, "actual": "yes", "outcome_id": outcome_id}
    barrier, answers = threading.Barrier(6), []

    def resend() -> None:
        barrier.wait()
        answers.append(send(api, body))

    threads = [threading.Thread(target=resend) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(a.status_code for a in answers) == [200] * 5 + [201], [a.text for a in answers]
    assert len(api.ledger.prediction(pid).outcomes) == 1
