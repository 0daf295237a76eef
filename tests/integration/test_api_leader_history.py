"""Who made a model leader, when, why and under which policy: the deployment's leader history."""

from __future__ import annotations

import pytest

from tests.integration.api_support import Api, deployment_with_models, make_api
from tests.integration.spec_support import assert_conforms


@pytest.fixture
def api(ledger) -> Api:
    return make_api(ledger)


def promote(api: Api, model_id: str, reason: str) -> None:
    version = api.call("GET", "/v1/deployments/churn").json["version"]
    answer = api.call(
        "PUT",
        "/v1/deployments/churn/leader",
        json={"model_id": model_id, "reason": reason},
        headers={"If-Match": f'"{version}"'},
    )
    assert answer.status_code == 200, answer.text


def test_each_change_of_leader_says_who_when_where_why_and_on_what(api: Api) -> None:
    first, second = deployment_with_models(api)
    promote(api, second, "the tree wins on last week's outcomes")
    api.call(
        "PATCH",
        "/v1/deployments/churn",
        json={"policy": {"name": "best_recent", "metric": "f1", "days": 7, "min_outcomes": 5}},
        headers={"If-Match": f'"{api.call("GET", "/v1/deployments/churn").json["version"]}"'},
    )
    evidence = {"metric": "f1", "scores": {first: 0.9, second: 0.7}, "outcomes": 40}
    api.ledger.promote("churn", first, "best f1 over 7 days", "rule:best_recent", evidence)

    now = api.call("GET", "/v1/deployments/churn", role="auditor").json
    assert_conforms(now, "Deployment")
    history = now["leader_history"]
    assert [(h["model_id"], h["previous"]) for h in history] == [
        (first, None),
        (second, first),
        (first, second),
    ]
    assert [h["reason"] for h in history] == [
        "first model of the deployment",
        "the tree wins on last week's outcomes",
        "best f1 over 7 days",
    ]
    assert history[1]["actor"] == history[0]["actor"] != "rule:best_recent"
    assert history[2]["actor"] == "rule:best_recent"
    assert [h["policy"]["name"] for h in history] == ["manual", "manual", "best_recent"]
    assert history[1]["evidence"] == {} and history[2]["evidence"] == evidence
    positions = [h["position"] for h in history]
    times = [h["recorded_at"] for h in history]
    assert positions == sorted(positions) and times == sorted(times)
    assert all(t.endswith("Z") for t in times)
    assert all(h["occurred_at"] is None for h in history)  # live changes: no historic instant
    assert now["leader_since"] == {
        "recorded_at": times[2],
        "occurred_at": None,
        "position": positions[2],
    }

    between = api.call(
        "GET", "/v1/deployments/churn", role="auditor", params={"as_of": f"pos:{positions[2] - 1}"}
    ).json
    assert [h["position"] for h in between["leader_history"]] == positions[:2]
    assert between["leader"]["id"] == second
    assert between["leader_since"] == {
        "recorded_at": times[1],
        "occurred_at": None,
        "position": positions[1],
    }
    at_instant = api.call(
        "GET", "/v1/deployments/churn", role="auditor", params={"as_of": times[1]}
    ).json
    assert [h["position"] for h in at_instant["leader_history"]] == positions[:2]


def test_the_list_carries_each_deployments_history_too(api: Api) -> None:
    first, _ = deployment_with_models(api)
    page = api.call("GET", "/v1/deployments", role="auditor").json
    assert_conforms(page, "DeploymentPage")
    (churn,) = page["items"]
    assert [h["model_id"] for h in churn["leader_history"]] == [first]
    assert churn["leader_since"]["position"] == churn["leader_history"][0]["position"]


def test_an_auditor_key_alone_answers_who_made_a_leader_when_why_and_its_outcomes(
    api: Api,
) -> None:
    import orjson

    from tests.integration.api_support import ROW, predict

    first, second = deployment_with_models(api)
    promote(api, second, "the tree wins on last week's outcomes")
    made = predict(api, {"features": ROW, "request_id": "r-1"}).json
    body = {"prediction_id": made["prediction_id"], "actual": "yes", "outcome_id": "o-1"}
    assert api.call("POST", "/v1/outcomes", role="predictor", json=body).status_code == 201

    deployment = api.call("GET", "/v1/deployments/churn", role="auditor").json
    since = deployment["leader_since"]
    change = deployment["leader_history"][-1]
    assert (change["model_id"], change["reason"]) == (
        second,
        "the tree wins on last week's outcomes",
    )
    assert (change["position"], change["recorded_at"]) == (since["position"], since["recorded_at"])
    event = api.call(
        "GET", "/v1/ledger/events", role="auditor", params={"from": since["position"], "limit": 1}
    )
    assert event.status_code == 200, event.text
    stored = orjson.loads(event.text.splitlines()[0])
    assert stored["position"] == since["position"] and "LeaderChanged" in str(stored)

    p = api.call("GET", f"/v1/predictions/{made['prediction_id']}", role="auditor").json
    assert p["served"]["model_id"] == second and p["leader"]["set_by"]["actor"] == change["actor"]
    (outcome,) = p["outcomes"]
    assert outcome["outcome_id"] == "o-1" and outcome["recorded_at"] > since["recorded_at"]
    assert outcome["reporter"] and outcome["position"] > p["position"] > since["position"]
