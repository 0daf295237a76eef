"""The trainers' own pipelines behind the API: a classifier and a regressor on the demo data."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.api_support import Api, make_api
from trainers.record import train_and_record
from trainers.spec import read_yaml

SPECS = Path(__file__).resolve().parents[2] / "examples" / "specs"
ROW = {
    "tenure_months": 12,
    "monthly_charges": 70.5,
    "support_calls": 2,
    "income": None,
    "region": "north",
    "plan": "basic",
    "has_partner": True,
    "customer_id": "c-42",
}


def deploy(api: Api, spec_file: str, task: str, rows: int = 400) -> tuple[str, dict]:
    spec = read_yaml(SPECS / spec_file)
    spec["source"] = {**spec["source"], "rows": rows}
    features = [dict(f) for f in spec["features"]] + [
        {"name": "customer_id", "type": "category", "personal": True, "nullable": True}
    ]
    created = api.call(
        "POST",
        "/v1/deployments",
        json={
            "name": spec["deployment"],
            "task": task,
            "positive_label": 1 if task == "classification" else None,
            "schema": {"features": features, "subject_field": "customer_id"},
        },
    )
    assert created.status_code == 201, created.text
    return train_and_record(api.ledger, spec, actor="test", deployment=spec["deployment"]), spec


@pytest.fixture
def api(ledger) -> Api:
    return make_api(ledger)


def test_a_trained_classifier_serves_and_its_provenance_reaches_the_data(api: Api) -> None:
    model_id, spec = deploy(api, "churn_classifier.yaml", "classification")
    made = api.call(
        "POST",
        "/v1/deployments/churn/predictions",
        role="predictor",
        json={"features": {**ROW, "region": "atlantis"}, "request_id": "r-1"},
    )
    assert made.status_code == 201, made.text
    assert made.json["model_id"] == model_id and made.json["value"] in (0, 1)
    assert "missing:income" in made.json["flags"] and "unseen_category:region" in made.json["flags"]
    p = api.call("GET", f"/v1/predictions/{made.json['prediction_id']}", role="auditor").json
    run = p["served"]["training_run"]
    assert run["spec_name"] == spec["name"] and run["params"]
    datasets = list(run["datasets"].values())
    assert datasets and all(d["fingerprint"] and d["rows"] > 0 for d in datasets)
    assert any(d["time_range"] for d in datasets)


def test_a_trained_regressor_serves_numbers_without_probabilities(api: Api) -> None:
    deploy(api, "lifetime_value_regressor.yaml", "regression")
    made = api.call(
        "POST",
        "/v1/deployments/lifetime-value/predictions",
        role="predictor",
        json={"instances": [ROW, {**ROW, "tenure_months": 40}], "request_id": "b"},
    )
    assert made.status_code == 201, made.text
    for answer in made.json["predictions"]:
        assert isinstance(answer["value"], float) and answer["probabilities"] is None
