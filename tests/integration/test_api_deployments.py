"""Deployments over HTTP: create, read as of, change with If-Match, add, retire, promote."""

from __future__ import annotations

import threading

import pytest

from tests.integration.api_support import (
    SCHEMA,
    Api,
    create_deployment,
    deployment_with_models,
    make_api,
)


@pytest.fixture
def api(ledger) -> Api:
    return make_api(ledger)


def test_create_read_and_list_a_deployment(api: Api) -> None:
    created = create_deployment(api)
    assert created.status_code == 201, created.text
    assert created.headers["Location"] == "/v1/deployments/churn"
    assert created.headers["ETag"] == f'"{created.json["version"]}"'
    read = api.call("GET", "/v1/deployments/churn", role="predictor")
    assert read.json["schema"]["subject_field"] == "customer"
    assert read.json["leader"] is None and read.json["challengers"] == []
    create_deployment(api, "fraud")
    page = api.call("GET", "/v1/deployments", role="auditor", params={"limit": 1})
    assert [d["name"] for d in page.json["items"]] == ["churn"]
    rest = api.call(
        "GET", "/v1/deployments", role="auditor", params={"cursor": page.json["next_cursor"]}
    )
    assert [d["name"] for d in rest.json["items"]] == ["fraud"]


def test_the_list_joins_the_projection_with_the_deployments_created_after_it(api: Api) -> None:
    from projections.deployments import DeploymentsProjection
    from projections.runner import Runner

    create_deployment(api, "alpha")
    Runner(api.ledger.engine, DeploymentsProjection).catch_up()
    create_deployment(api, "beta")  # after the projection's position: read from the log's tail
    first = api.call("GET", "/v1/deployments", role="auditor", params={"limit": 1}).json
    rest = api.call(
        "GET", "/v1/deployments", role="auditor", params={"cursor": first["next_cursor"]}
    ).json
    assert [d["name"] for d in first["items"] + rest["items"]] == ["alpha", "beta"]
    assert rest["next_cursor"] is None
    head = api.ledger.recorder.max_notification_id()
    past = api.call(
        "GET", "/v1/deployments", role="auditor", params={"as_of": f"pos:{head - 1}"}
    ).json
    assert [d["name"] for d in past["items"]] == ["alpha"]


def test_a_second_deployment_with_the_same_name_is_409(api: Api) -> None:
    create_deployment(api)
    again = create_deployment(api)
    assert (again.status_code, again.json["code"], again.json["field"]) == (
        409,
        "already_exists",
        "name",
    )


def test_models_join_as_leader_then_challenger_and_a_misfit_is_409(api: Api) -> None:
    leader, challenger = deployment_with_models(api)
    read = api.call("GET", "/v1/deployments/churn").json
    assert read["leader"]["id"] == leader and [c["id"] for c in read["challengers"]] == [challenger]
    narrow = {"features": [{"name": "income", "type": "number"}]}
    api.call(
        "POST",
        "/v1/deployments",
        json={"name": "narrow", "task": "classification", "schema": narrow},
    )
    misfit = api.call("POST", "/v1/deployments/narrow/models", json={"model_id": leader})
    assert (misfit.status_code, misfit.json["code"]) == (409, "schema_mismatch")


def test_patch_needs_if_match_and_refuses_a_stale_one(api: Api) -> None:
    version = create_deployment(api).json["version"]
    change = {"policy": {"name": "majority_vote"}}
    assert api.call("PATCH", "/v1/deployments/churn", json=change).status_code == 428
    done = api.call(
        "PATCH", "/v1/deployments/churn", json=change, headers={"If-Match": f'"{version}"'}
    )
    assert done.status_code == 200 and done.json["policy"] == {"name": "majority_vote"}
    stale = api.call(
        "PATCH", "/v1/deployments/churn", json=change, headers={"If-Match": str(version)}
    )
    assert (stale.status_code, stale.json["code"]) == (412, "stale_version")


def test_promotion_is_recorded_with_who_and_why_and_as_of_shows_the_past(api: Api) -> None:
    leader, challenger = deployment_with_models(api)
    before = api.call("GET", "/v1/deployments/churn").json
    promoted = api.call(
        "PUT",
        "/v1/deployments/churn/leader",
        headers={"If-Match": str(before["version"])},
        json={"model_id": challenger, "reason": "better recall"},
    )
    assert promoted.status_code == 200, promoted.text
    assert promoted.json["leader"]["id"] == challenger
    assert promoted.json["leader_set_by"]["reason"] == "better recall"
    head = api.ledger.recorder.max_notification_id()
    past = api.call("GET", "/v1/deployments/churn", params={"as_of": f"pos:{head - 1}"}).json
    assert past["leader"]["id"] == leader and past["version"] == before["version"]


def test_two_concurrent_promotions_with_the_same_if_match_one_wins(api: Api) -> None:
    deployment_with_models(api, ("logistic", "tree", "always_yes"))
    read = api.call("GET", "/v1/deployments/churn").json
    challengers = [c["id"] for c in read["challengers"]]
    barrier, statuses = threading.Barrier(2), []

    def promote(model_id: str) -> None:
        barrier.wait()
        result = api.call(
            "PUT",
            "/v1/deployments/churn/leader",
            headers={"If-Match": str(read["version"])},
            json={"model_id": model_id, "reason": "race"},
        )
        statuses.append(result.status_code)

    threads = [threading.Thread(target=promote, args=(m,)) for m in challengers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(statuses) == [200, 412]


def test_retiring_a_model_is_an_event_and_the_leader_cannot_go_first(api: Api) -> None:
    leader, challenger = deployment_with_models(api)
    refused = api.call("DELETE", f"/v1/deployments/churn/models/{leader}")
    assert refused.status_code == 409
    retired = api.call(
        "DELETE", f"/v1/deployments/churn/models/{challenger}", params={"reason": "stale"}
    )
    assert retired.status_code == 200 and retired.json["challengers"] == []
    assert api.ledger.deployment("churn").models == [leader]


def test_a_new_schema_cannot_drop_a_feature_an_active_model_reads(api: Api) -> None:
    deployment_with_models(api, ("logistic",))
    version = api.call("GET", "/v1/deployments/churn").json["version"]
    narrower = {
        "features": [f for f in SCHEMA["features"] if f["name"] != "plan"],
        "subject_field": "customer",
    }
    result = api.call(
        "PATCH",
        "/v1/deployments/churn",
        json={"schema": narrower},
        headers={"If-Match": str(version)},
    )
    assert (result.status_code, result.json["code"]) == (409, "schema_mismatch")


def test_a_new_leader_serves_at_once_on_this_worker(api: Api) -> None:
    leader, challenger = deployment_with_models(api)
    row = {"income": 50_000.0}
    assert (
        api.call(
            "POST",
            "/v1/deployments/churn/predictions",
            role="predictor",
            json={"features": row, "request_id": "a"},
        ).json["model_id"]
        == leader
    )
    version = api.call("GET", "/v1/deployments/churn").json["version"]
    api.call(
        "PUT",
        "/v1/deployments/churn/leader",
        headers={"If-Match": str(version)},
        json={"model_id": challenger, "reason": "test"},
    )
    assert (
        api.call(
            "POST",
            "/v1/deployments/churn/predictions",
            role="predictor",
            json={"features": row, "request_id": "b"},
        ).json["model_id"]
        == challenger
    )
