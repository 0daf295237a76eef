"""Historic instants: only a key granted load-history gives one, only a past one; it is kept
in the prediction's provenance, recorded-at stays the ledger's and monotone, and a replay into
a production-parallel clone carries each request's original instant."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from api.replay import ledger_requests, replay
from ledger import log
from ledger.clone import clone_ledger
from ledger.ids import prediction_id
from ledger.timeline import head_position, parse_micros
from tests.integration.api_support import ROW, Api, deployment_with_models, make_api, predict

LOADER = ("loader", "history-desk", ["churn:load-history"])
ELSEWHERE = ("elsewhere", "other-desk", ["other:load-history"])


def with_loaders(api: Api) -> Api:
    for name, client, grants in (LOADER, ELSEWHERE):
        api.keys[name] = api.ledger.issue_api_key(
            "predictor", actor="test", client=client, grants=grants
        ).key
    return api


@pytest.fixture
def api(ledger) -> Api:
    api = make_api(ledger)
    deployment_with_models(api)
    return with_loaders(api)


def days_ago(days: float) -> str:
    return (datetime.now(UTC) - timedelta(days=days)).isoformat().replace("+00:00", "Z")


def provenance(api: Api, answer) -> dict:  # noqa: ANN001
    return api.call("GET", f"/v1/predictions/{answer.json['prediction_id']}").json


def recorded_ats(api: Api) -> list[int]:
    with api.ledger.engine.connect() as conn:
        return [r.recorded_at for r in log.rows(conn)]


@pytest.mark.parametrize("who", ["predictor", "elsewhere"])
def test_a_key_without_the_grant_may_not_set_an_instant(api: Api, who: str) -> None:
    before = head_position(api.ledger.engine)
    body = {"features": ROW, "request_id": "r1", "occurred_at": days_ago(10)}
    answer = predict(api, body, role=who)
    assert answer.status_code == 403
    assert answer.json["code"] == "not_authorized"
    assert "churn:load-history" in answer.json["detail"]
    assert head_position(api.ledger.engine) == before  # nothing recorded


def test_a_loader_gives_the_instant_and_recorded_at_stays_the_ledgers(api: Api) -> None:
    live = predict(api, {"features": ROW, "request_id": "live-1"})
    instant = days_ago(10)
    loaded = predict(
        api, {"features": ROW, "request_id": "old-1", "occurred_at": instant}, role="loader"
    )
    batch = predict(
        api,
        {"instances": [ROW, ROW], "request_id": "old-b", "occurred_at": days_ago(9)},
        role="loader",
    )
    assert (live.status_code, loaded.status_code, batch.status_code) == (201, 201, 201)

    shown, earlier = provenance(api, loaded), provenance(api, live)
    assert parse_micros(shown["occurred_at"], "t") == parse_micros(instant, "t")
    assert shown["scoring"]["occurred_at"] == parse_micros(instant, "t")
    assert earlier["occurred_at"] is None  # live traffic occurred when it was recorded
    # recorded-at is the ledger's: after the live prediction's, not ten days back
    assert shown["recorded_at"] >= earlier["recorded_at"]
    ats = recorded_ats(api)
    assert ats == sorted(ats)

    # a retry with the same body answers the original
    again = predict(
        api, {"features": ROW, "request_id": "old-1", "occurred_at": instant}, role="loader"
    )
    assert again.status_code == 200 and again.json["prediction_id"] == loaded.json["prediction_id"]


@pytest.mark.parametrize(
    ("occurred_at", "says"),
    [
        ((datetime.now(UTC) + timedelta(hours=1)).isoformat(), "in the future"),
        ("2026-03-03T12:00:00", "needs an offset"),
        ("yesterday", "not an ISO-8601 instant"),
    ],
)
def test_an_instant_must_have_passed_and_say_its_offset(
    api: Api, occurred_at: str, says: str
) -> None:
    body = {"features": ROW, "request_id": "r2", "occurred_at": occurred_at}
    answer = predict(api, body, role="loader")
    assert answer.status_code == 422
    assert says in answer.json["detail"]


def test_a_replay_into_a_clone_carries_the_original_instants(ledger, parallel_ledger) -> None:
    production = make_api(ledger)
    deployment_with_models(production)
    with_loaders(production)
    cut = head_position(ledger.engine)
    old = days_ago(20)
    assert predict(production, {"features": ROW, "request_id": "p1"}).status_code == 201
    body = {"instances": [ROW, ROW], "request_id": "p2", "occurred_at": old}
    assert predict(production, body, role="loader").status_code == 201

    clone_ledger(ledger.engine, parallel_ledger.engine, cut)
    candidate = with_loaders(make_api(parallel_ledger))

    def send(method, path, body):  # noqa: ANN001, ANN202
        answer = candidate.call(method, path, role="loader", json=body)
        return answer.status_code, answer.json

    requests = ledger_requests(ledger, cut, head_position(ledger.engine), instants=True)
    stats = replay(requests, send, speed=0)
    assert stats.failed == 0 and stats.sent == 2

    with ledger.engine.connect() as conn:
        source_at = {
            e.request_id: e.scoring.get("occurred_at", r.recorded_at)
            for r in log.rows(conn, after=cut)
            for e in (log.decode(ledger.mapper, r),)
            if hasattr(e, "request_id")
        }
    replayed = {
        request_id: parallel_ledger.prediction(prediction_id("churn", request_id, LOADER[1]))
        for request_id in source_at
    }
    assert set(replayed) == {"p1", "p2#0", "p2#1"}
    for request_id, prediction in replayed.items():
        assert prediction.scoring["occurred_at"] == source_at[request_id]
    assert replayed["p2#0"].scoring["occurred_at"] == parse_micros(old, "t")
    # without a grant the target refuses an instant instead of recording it as now
    refused = replay(
        ledger_requests(ledger, cut, head_position(ledger.engine), instants=True),
        lambda m, p, b: _status(candidate.call(m, p, role="predictor", json=b)),
        speed=0,
    )
    assert refused.statuses == {403: 2}


def _status(answer):  # noqa: ANN001, ANN202
    return answer.status_code, answer.json


def test_a_promotion_takes_an_instant_from_a_granted_key_only(api: Api, ledger) -> None:
    first, second = (m for m in ledger.deployment("churn").models)
    api.keys["admin-loader"] = ledger.issue_api_key(
        "admin", actor="test", grants=["churn:load-history"]
    ).key

    def promote(model_id: str, role: str, occurred_at: str):  # noqa: ANN202
        version = api.call("GET", "/v1/deployments/churn").json["version"]
        body = {"model_id": model_id, "reason": "loaded", "occurred_at": occurred_at}
        return api.call(
            "PUT",
            "/v1/deployments/churn/leader",
            role=role,
            json=body,
            headers={"If-Match": f'"{version}"'},
        )

    refused = promote(second, "admin", days_ago(5))
    assert refused.status_code == 403 and "churn:load-history" in refused.json["detail"]
    instant = days_ago(5)
    assert promote(second, "admin-loader", instant).status_code == 200
    history = api.call("GET", "/v1/deployments/churn").json["leader_history"]
    assert parse_micros(history[-1]["occurred_at"], "t") == parse_micros(instant, "t")
    assert history[0]["occurred_at"] is None  # a change made live says only when recorded
    assert history[-1]["recorded_at"] >= history[0]["recorded_at"]
