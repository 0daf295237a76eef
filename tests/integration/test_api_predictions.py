"""Scoring over HTTP: single rows and batches, retries, outcomes and the provenance answer."""

from __future__ import annotations

import pytest

from tests.integration.api_support import ROW, Api, deployment_with_models, make_api, predict


@pytest.fixture
def api(ledger) -> Api:
    return make_api(ledger)


def test_a_single_row_is_scored_by_every_model_and_served_by_the_leader(api: Api) -> None:
    leader, challenger = deployment_with_models(api)
    result = predict(api, {"features": ROW, "request_id": "r-1"})
    assert result.status_code == 201, result.text
    answer = result.json
    assert answer["model_id"] == leader
    assert answer["value"] in ("yes", "no")
    assert set(answer["probabilities"]) == {"no", "yes"}
    assert result.headers["Location"] == f"/v1/predictions/{answer['prediction_id']}"
    stored = api.ledger.prediction(answer["prediction_id"])
    assert set(stored.outputs) == {leader, challenger}
    assert stored.scoring == {
        "mode": "single",
        "scorer": {leader: "compiled-v1", challenger: "compiled-v1"},
    }
    assert "customer" not in stored.features and stored.sealed is not None  # personal: sealed


def test_a_retry_returns_the_original_and_records_nothing_new(api: Api) -> None:
    deployment_with_models(api)
    first = predict(api, {"features": ROW, "request_id": "r-1"})
    again = predict(api, {"features": ROW, "request_id": "r-1"})
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json["prediction_id"] == first.json["prediction_id"]
    assert again.json["retried"] is True
    assert api.ledger.prediction(first.json["prediction_id"]).version == 1


def test_the_same_request_id_with_another_body_is_409(api: Api) -> None:
    deployment_with_models(api)
    assert predict(api, {"features": ROW, "request_id": "r-1"}).status_code == 201
    other = predict(api, {"features": {**ROW, "age": 42.0}, "request_id": "r-1"})
    assert other.status_code == 409
    assert other.json["field"] == "request_id"


def test_a_batch_scores_rows_with_their_own_or_derived_request_ids(api: Api) -> None:
    deployment_with_models(api)
    rows = [
        dict(ROW, request_id="own"),
        {**ROW, "age": None, "plan": "platinum"},
        {**ROW, "income": 1e9},
    ]
    result = predict(api, {"instances": rows, "request_id": "b-1"})
    assert result.status_code == 201, result.text
    answers = result.json["predictions"]
    assert [a["request_id"] for a in answers] == ["own", "b-1#1", "b-1#2"]
    assert "missing:age" in answers[1]["flags"] and "unseen_category:plan" in answers[1]["flags"]
    assert answers[2]["flags"] == ["out_of_range:income"]
    stored = api.ledger.prediction(answers[1]["prediction_id"])
    assert {k: v for k, v in stored.scoring.items() if k != "scorer"} == {
        "mode": "batch",
        "batch_id": "b-1",
        "row": 1,
        "rows": 3,
    }


def test_majority_vote_serves_the_commonest_answer(api: Api) -> None:
    leader, yes_1, yes_2 = deployment_with_models(
        api, ("always_no", "always_yes", "always_yes"), policy={"name": "majority_vote"}
    )
    answer = predict(api, {"features": ROW, "request_id": "r-1"}).json
    assert answer["value"] == "yes" and answer["model_id"] in (yes_1, yes_2)
    tally = api.ledger.prediction(answer["prediction_id"]).scoring["tally"]
    assert tally["votes"] == {leader: "no", yes_1: "yes", yes_2: "yes"}
    assert (tally["winner"], tally["count"], tally["voters"]) == ("yes", 2, 3)
    shown = api.call("GET", f"/v1/predictions/{answer['prediction_id']}", role="auditor")
    assert shown.status_code == 200, shown.text
    assert shown.json["tally"] == tally and shown.json["scoring"]["tally"] == tally


def test_other_policies_record_no_tally(api: Api) -> None:
    deployment_with_models(api)
    answer = predict(api, {"features": ROW, "request_id": "r-1"}).json
    assert "tally" not in api.ledger.prediction(answer["prediction_id"]).scoring
    shown = api.call("GET", f"/v1/predictions/{answer['prediction_id']}", role="auditor")
    assert shown.json["tally"] is None


def test_outcomes_by_prediction_id_and_by_request_id_with_corrections(api: Api) -> None:
    deployment_with_models(api)
    made = predict(api, {"features": ROW, "request_id": "r-1"}).json
    first = api.call(
        "POST",
        "/v1/outcomes",
        role="predictor",
        json={
            "prediction_id": made["prediction_id"],
            "actual": "yes",
            "observed_at": "2026-03-03T12:00:00Z",
        },
    )
    assert first.status_code == 201, first.text
    corrected = api.call(
        "POST",
        "/v1/outcomes",
        role="predictor",
        json=[{"deployment": "churn", "request_id": "r-1", "actual": "no"}],
    )
    assert corrected.status_code == 201, corrected.text
    assert corrected.json["outcomes"][0]["correction"] is True
    outcomes = api.ledger.prediction(made["prediction_id"]).outcomes
    assert [o["actual"] for o in outcomes] == ["yes", "no"]


def test_a_list_of_outcomes_with_an_unknown_prediction_records_none(api: Api) -> None:
    deployment_with_models(api)
    made = predict(api, {"features": ROW, "request_id": "r-1"}).json
    result = api.call(
        "POST",
        "/v1/outcomes",
        role="predictor",
        json=[
            {"prediction_id": made["prediction_id"], "actual": "yes"},
            {"deployment": "churn", "request_id": "never", "actual": "no"},
        ],
    )
    assert result.status_code == 404
    assert result.json["field"] == "1"
    assert api.ledger.prediction(made["prediction_id"]).outcomes == []


def test_the_provenance_answer_links_every_part(api: Api) -> None:
    leader, challenger = deployment_with_models(api)
    made = predict(api, {"features": ROW, "request_id": "r-1"}).json
    api.call(
        "POST",
        "/v1/outcomes",
        role="predictor",
        json={"prediction_id": made["prediction_id"], "actual": "no"},
    )
    result = api.call("GET", f"/v1/predictions/{made['prediction_id']}", role="auditor")
    assert result.status_code == 200, result.text
    p = result.json
    assert p["features"] == ROW  # the personal field unsealed for display
    assert p["sealed_fields"] == ["customer"]
    assert p["served"]["model_id"] == leader
    assert p["served"]["training_run"]["params"] == {"kind": "logistic"}
    assert p["served"]["training_run"]["code_version"] == {"commit": "test"}
    assert [s["model_id"] for s in p["shadow"]] == [challenger]
    assert (
        p["leader"]["model_id"] == leader
        and p["leader"]["set_by"]["reason"] == "first model of the deployment"
    )
    assert p["policy"] == {"name": "manual"}
    assert p["outcome"]["actual"] == "no"
    assert p["position"] > 0 and p["recorded_at"].endswith("Z")
    assert p["chain"]["status"] in ("pending", "chained")
    before = api.call(
        "GET",
        f"/v1/predictions/{made['prediction_id']}",
        role="auditor",
        params={"as_of": f"pos:{p['position']}"},
    )
    assert before.json["outcomes"] == []


def test_a_predictor_reads_only_its_own_predictions(api: Api) -> None:
    deployment_with_models(api)
    made = predict(api, {"features": ROW, "request_id": "r-1"}).json
    path = f"/v1/predictions/{made['prediction_id']}"
    assert api.call("GET", path, role="predictor").status_code == 200
    other = api.ledger.issue_api_key(role="predictor", actor="test")[1]
    stranger = api.client.simulate_get(path, headers={"Authorization": f"Bearer {other}"})
    assert stranger.status_code == 404


def test_concurrent_retries_of_one_request_record_it_once(api: Api) -> None:
    import threading

    deployment_with_models(api)
    barrier, answers = threading.Barrier(6), []

    def send() -> None:
        barrier.wait()
        answers.append(predict(api, {"features": ROW, "request_id": "same"}))

    threads = [threading.Thread(target=send) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(a.status_code for a in answers) == [200] * 5 + [201]
    assert len({a.json["prediction_id"] for a in answers}) == 1
    assert api.ledger.prediction(answers[0].json["prediction_id"]).version == 1
