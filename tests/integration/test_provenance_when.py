"""A prediction's provenance says when: its outcomes' times, positions and reporters, the digest
of its features, and the quality checks and feed periods that covered it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ledger.timeline import parse_micros
from policies.feeds import close_elapsed_periods
from policies.quality_windows import check_recent_windows
from projections import health_queries
from projections.health import HealthProjection
from projections.runner import catch_up
from tests.integration.api_support import ROW, Api, deployment_with_models, make_api, predict
from tests.integration.spec_support import assert_conforms

HOUR = 3600


@pytest.fixture
def api(ledger) -> Api:
    return make_api(ledger)


def provenance(api: Api, prediction_id: str, **params: str) -> dict:
    answer = api.call("GET", f"/v1/predictions/{prediction_id}", role="auditor", params=params)
    assert answer.status_code == 200, answer.text
    assert_conforms(answer.json, "Provenance")
    return answer.json


def outcome(api: Api, prediction_id: str, actual: str, outcome_id: str) -> None:
    body = {"prediction_id": prediction_id, "actual": actual, "outcome_id": outcome_id}
    answer = api.call("POST", "/v1/outcomes", role="predictor", json=body)
    assert answer.status_code == 201, answer.text


def test_two_outcomes_each_say_when_where_and_who(api: Api) -> None:
    deployment_with_models(api)
    made = predict(api, {"features": ROW, "request_id": "r-1"}).json
    outcome(api, made["prediction_id"], "yes", "o-1")
    outcome(api, made["prediction_id"], "no", "o-2")

    p = provenance(api, made["prediction_id"])
    first, second = p["outcomes"]
    assert (first["actual"], first["outcome_id"], first["correction"]) == ("yes", "o-1", False)
    assert (second["actual"], second["outcome_id"], second["correction"]) == ("no", "o-2", True)
    assert first["reporter"] == second["reporter"] == first["actor"]
    assert p["position"] < first["position"] < second["position"]
    assert p["recorded_at"] <= first["recorded_at"] <= second["recorded_at"]
    assert p["outcome"] == second
    assert p["body_digest"] == api.ledger.prediction(made["prediction_id"]).body_digest
    before = provenance(api, made["prediction_id"], as_of=f"pos:{second['position'] - 1}")
    assert before["outcomes"] == [first]


def test_the_window_check_and_the_feed_period_that_covered_it(api: Api) -> None:
    deployment_with_models(api)
    api.ledger.declare_feed(
        "churn-requests", expected_count=4, period_seconds=HOUR, actor="test", deployment="churn"
    )
    made = predict(api, {"features": ROW, "request_id": "r-1"}).json
    (check,) = check_recent_windows(api.ledger, flush=True)
    catch_up(api.ledger.engine, HealthProjection)

    p = provenance(api, made["prediction_id"])
    (covered,) = p["coverage"]["quality_checks"]
    assert covered["check_id"] == str(check.id) and covered["source"] == "window"
    assert covered["window"] == {"from_position": p["position"], "to_position": p["position"]}
    assert covered["position"] > p["position"] and covered["recorded_at"] >= p["recorded_at"]
    (period,) = p["coverage"]["feed_periods"]
    assert period["feed"] == "churn-requests"
    assert (period["status"], period["expected"], period["received"]) == ("open", 4, 1)
    start, end = parse_micros(period["start"], "start"), parse_micros(period["end"], "end")
    assert start <= parse_micros(p["recorded_at"], "recorded_at") < end

    close_elapsed_periods(api.ledger, now=datetime.fromtimestamp(end / 1e6, UTC) + timedelta(0, 1))
    catch_up(api.ledger.engine, HealthProjection)
    (closed,) = provenance(api, made["prediction_id"])["coverage"]["feed_periods"]
    assert (closed["status"], closed["closed"], closed["received"]) == ("short", True, 1)
    assert closed["position"] > covered["position"] and closed["recorded_at"].endswith("Z")
    earlier = provenance(api, made["prediction_id"], as_of=f"pos:{closed['position'] - 1}")
    assert earlier["coverage"]["feed_periods"][0]["status"] == "open"


def test_a_batch_rows_check_covers_it_and_nothing_before_the_tables_are_built(
    api: Api, monkeypatch
) -> None:
    monkeypatch.setattr(health_queries, "UNBUILT_RECHECK_SECONDS", 0.0)
    deployment_with_models(api)
    rows = [dict(ROW), {**ROW, "age": 30.0}]
    made = predict(api, {"instances": rows, "request_id": "b-1"}).json["predictions"][1]
    assert provenance(api, made["prediction_id"])["coverage"] is None
    sent = api.call(
        "POST",
        "/v1/deployments/churn/quality-checks",
        role="predictor",
        json={"rows": rows, "batch_id": "b-1"},
    )
    assert sent.status_code == 201, sent.text
    catch_up(api.ledger.engine, HealthProjection)
    coverage = provenance(api, made["prediction_id"])["coverage"]
    (batch,) = coverage["quality_checks"]
    assert batch["source"] == "batch" and batch["batch"]["id"] == "b-1"
    assert batch["check_id"] == sent.json["check_id"] and batch["window"] is None
    assert coverage["feed_periods"] == []


def test_coverage_follows_a_rebuild_of_the_health_tables(api: Api) -> None:
    from projections.runner import Runner

    deployment_with_models(api)
    made = predict(api, {"features": ROW, "request_id": "r-1"}).json
    check_recent_windows(api.ledger, flush=True)
    catch_up(api.ledger.engine, HealthProjection)
    before = provenance(api, made["prediction_id"])["coverage"]
    Runner(api.ledger.engine, HealthProjection).rebuild()  # new tables, the old ones dropped
    assert provenance(api, made["prediction_id"])["coverage"] == before
