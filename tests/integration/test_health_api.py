"""The data-health endpoints over HTTP (in-process), on both backends, and the dashboard page."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from policies.feeds import close_elapsed_periods
from projections.registry import ALL
from projections.runner import Runner
from tests.integration import health_support
from tests.integration.api_support import make_api
from tests.integration.health_support import demo_rows

churn = health_support.churn  # the fixture


@pytest.fixture
def api(churn):
    return make_api(churn)


def project(ledger) -> None:
    for projection in ALL:
        Runner(ledger.engine, projection).catch_up()


def test_a_predictor_reports_ingestions_and_bad_reports_name_the_field(api):
    api.ledger.declare_feed("transactions", 1000, 3600, actor="test")
    ok = api.call(
        "POST", "/v1/ingestions", "predictor", json={"feed": "transactions", "count": 300}
    )
    assert ok.status_code == 201 and ok.json["reported_total"] == 300
    assert (
        api.call(
            "POST", "/v1/ingestions", "auditor", json={"feed": "transactions", "count": 1}
        ).status_code
        == 403
    )
    negative = api.call(
        "POST", "/v1/ingestions", "predictor", json={"feed": "transactions", "count": -5}
    )
    assert negative.status_code == 422 and "count" in negative.text
    unknown = api.call("POST", "/v1/ingestions", "predictor", json={"feed": "nope", "count": 5})
    assert unknown.status_code == 404 and unknown.json["code"] == "not_found"


def test_data_health_shows_periods_flagged_short_and_none(api):
    api.ledger.declare_feed("transactions", 1000, 3600, actor="test")
    api.call("POST", "/v1/ingestions", "predictor", json={"feed": "transactions", "count": 300})
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    close_elapsed_periods(api.ledger, now=hour + timedelta(hours=2))
    project(api.ledger)

    health = api.call("GET", "/v1/data-health", "auditor").json

    [feed] = health["feeds"]
    assert [(p["expected"], p["received"], p["flags"], p["closed"]) for p in feed["periods"]] == [
        (1000, 300, ["short"], True),
        (1000, 0, ["none"], True),
        (1000, 0, [], False),
    ]
    assert feed["flagged_periods"] == 2


def test_a_drifted_batch_is_checked_and_shows_in_data_health_but_not_as_of_before(api):
    project(api.ledger)
    before = api.call("GET", "/v1/data-health", "auditor").json["position"]
    check = api.call(
        "POST",
        "/v1/deployments/churn/quality-checks",
        "predictor",
        json={"rows": demo_rows(200, seed=4, drift=True), "batch_id": "nightly"},
    )
    assert check.status_code == 201 and not check.json["passed"]
    assert "unseen_categories:region" in check.json["failing"]
    project(api.ledger)

    now = api.call("GET", "/v1/data-health", "admin").json
    past = api.call("GET", f"/v1/data-health?as_of=pos:{before}", "auditor").json

    [churn] = now["deployments"]
    drifted = {d["feature"] for d in churn["drift"] if d["drifted"]}
    assert {"income", "monthly_charges", "region"} <= drifted
    assert churn["latest"]["batch"]["id"] == "nightly"
    assert past["deployments"] == [] and past["position"] == before
    assert api.call("GET", "/v1/data-health", "predictor").status_code == 403


def test_quality_checks_refuse_an_empty_batch_and_an_unknown_deployment(api):
    empty = api.call("POST", "/v1/deployments/churn/quality-checks", "predictor", json={"rows": []})
    assert empty.status_code == 422
    missing = api.call(
        "POST", "/v1/deployments/nope/quality-checks", "admin", json={"rows": [{"a": 1}]}
    )
    assert missing.status_code == 404


def test_model_health_lists_every_model_of_the_deployment_with_the_floor(api):
    api.ledger.change_deployment(
        "churn", "test", settings={"metric_floor": {"metric": "f1", "value": 0.9}}
    )
    project(api.ledger)
    [health] = api.call("GET", "/v1/data-health?deployment=churn", "auditor").json["model_health"]
    assert health["metric"] == "f1" and health["floor"] == 0.9 and len(health["days"]) == 14
    assert [m["role"] for m in health["models"]] == ["leader"]
    assert health["leader_changes"][0]["model_id"] == health["leader"]


def test_the_dashboard_page_and_its_vendored_chart_library_need_no_key(api):
    page = api.call("GET", "/dashboard", None)
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "script-src 'self'" in page.headers["content-security-policy"]
    for asset in ("chart.umd.js", "dashboard.js", "dashboard.css"):
        assert api.call("GET", f"/dashboard/static/{asset}", None).status_code == 200
    assert "cdn" not in page.text.lower() and "https://" not in page.text


def test_a_quality_check_counts_rows_that_do_not_load_and_never_fails_on_them(api):
    good = demo_rows(4, seed=2, drift=False)
    rows = [
        good[0],
        {**good[1], "tenure_months": "seven"},
        {k: v for k, v in good[2].items() if k != "region"},  # a required field missing
        {**good[3], "colour": "red"},
    ]
    answer = api.call(
        "POST", "/v1/deployments/churn/quality-checks", "predictor", json={"rows": rows}
    )
    assert answer.status_code == 201, answer.text
    [schema] = [r for r in answer.json["results"] if r["check"] == "schema"]
    assert schema["value"] == 0.75 and "schema" in answer.json["failing"]
    assert answer.json["bad_rows"] == 3
    assert answer.json["row_errors"][0] == "row 1: tenure_months: Not a valid integer."
    assert answer.json["row_errors"][1].startswith("row 2: region: Missing data")
    assert set(answer.json["outliers"]) <= {0}  # only the row that loads is scored


def test_a_count_for_a_closed_period_is_409_naming_when_and_a_future_as_of_is_422(api):
    api.ledger.declare_feed("early", 10, 3600, actor="test")
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    close_elapsed_periods(api.ledger, now=hour + timedelta(hours=1))  # closed before its end

    late = api.call("POST", "/v1/ingestions", "predictor", json={"feed": "early", "count": 5})
    future = api.call("GET", "/v1/data-health", "auditor", params={"as_of": "2099-01-01T00:00:00Z"})

    assert late.status_code == 409 and "closed its periods through" in late.json["detail"]
    assert future.status_code == 422 and "as_of" in future.text and "future" in future.text
