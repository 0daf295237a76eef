"""Why this value: exact contributions per feature as received, recorded once a day per caller."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from sklearn.linear_model import LogisticRegression

from api.cli import main
from api.demo import create_deployment as create_demo_deployment
from ledger.application import Ledger
from ledger.artifacts import dumps_skops
from ledger.domain.audits import Explanation
from ledger.ids import explanation_id
from serving.explain import explain
from tests.integration.api_support import (
    ROW,
    Api,
    create_deployment,
    deployment_with_models,
    make_api,
    pipeline,
    predict,
    training_frame,
)
from trainers.demo import demo_specs


@pytest.fixture
def api(ledger) -> Api:
    return make_api(ledger)


def _explained(api: Api, prediction_id: str, role: str = "auditor", **params) -> dict:
    answer = api.call(
        "GET", f"/v1/predictions/{prediction_id}/explanation", role=role, params=params
    )
    assert answer.status_code == 200, answer.text
    return answer.json


def _demo_churn(api: Api) -> dict[str, str]:
    """The demo's churn deployment with its logistic and forest models, trained and recorded."""
    specs = [
        s for s in demo_specs(end="2026-06-01T00:00:00Z", rows=400) if s["deployment"] == "churn"
    ]
    create_demo_deployment(api.ledger, "churn", specs)
    deployment = api.ledger.deployment("churn")
    return {api.ledger.model(m).algorithm.rsplit(".", 1)[-1]: m for m in deployment.models}


def _made(api: Api, row: dict, request_id: str = "r-1") -> dict:
    answer = predict(api, {"features": row, "request_id": request_id})
    assert answer.status_code == 201, answer.text
    return answer.json


def _promote(api: Api, model_id: str) -> None:
    if api.ledger.deployment("churn").leader != model_id:
        api.ledger.promote("churn", model_id, reason="test", actor="test")


DEMO_ROW = {
    "tenure_months": 3,
    "monthly_charges": 95.5,
    "support_calls": 7,
    "income": None,
    "region": "north",
    "plan": "premium",
    "has_partner": False,
    "customer_id": "c-1",
}


def test_a_logistic_models_contributions_add_up_to_its_log_odds(api: Api) -> None:
    models = _demo_churn(api)
    _promote(api, models["LogisticRegression"])
    made = _made(api, DEMO_ROW)
    answer = _explained(api, made["prediction_id"])
    assert answer["model_id"] == made["model_id"] == models["LogisticRegression"]
    assert answer["method"]["explainer"] == "LinearExplainer"
    assert answer["unit"].startswith("log-odds of ")
    total = sum(c["contribution"] for c in answer["contributions"]) + answer["base_value"]
    assert abs(total - answer["output"]) <= 1e-9
    assert answer["background"]["source"] == "training rows recorded with the model"
    assert answer["background"]["rows"] == 100
    by_name = {c["feature"]: c for c in answer["contributions"]}
    assert set(by_name) == set(DEMO_ROW) - {"customer_id"}  # one-hot levels summed to their feature
    assert by_name["region"]["columns"] > 1 and by_name["support_calls"]["columns"] == 1
    assert answer["summary"] and " the log-odds of " in answer["summary"][0]


def test_a_forests_contributions_add_up_to_its_probability(api: Api) -> None:
    models = _demo_churn(api)
    _promote(api, models["RandomForestClassifier"])
    made = _made(api, DEMO_ROW)
    answer = _explained(api, made["prediction_id"], role="admin")
    assert answer["method"]["explainer"] == "TreeExplainer"
    assert answer["method"]["perturbation"] == "tree_path_dependent"
    assert answer["background"]["source"].startswith("the training rows' cover")
    assert answer["unit"].startswith("probability of ")
    total = sum(c["contribution"] for c in answer["contributions"]) + answer["base_value"]
    assert abs(total - answer["output"]) <= 1e-6
    label = answer["unit"].removeprefix("probability of ")
    assert answer["output"] == pytest.approx(made["probabilities"][label], abs=1e-12)


def test_a_model_with_no_exact_explainer_is_refused_with_a_code(api: Api) -> None:
    deployment_with_models(api, kinds=("always_yes",))
    made = _made(api, ROW)
    answer = api.call("GET", f"/v1/predictions/{made['prediction_id']}/explanation")
    assert answer.status_code == 409
    assert answer.json["code"] == "explanation_not_exact"


def test_models_recorded_without_a_sample_say_what_they_were_explained_against(api: Api) -> None:
    logistic, tree = deployment_with_models(api)
    made = _made(api, ROW)
    answer = _explained(api, made["prediction_id"])
    assert answer["background"]["source"] == "none recorded"
    total = sum(c["contribution"] for c in answer["contributions"]) + answer["base_value"]
    assert abs(total - answer["output"]) <= 1e-9
    _promote(api, tree)
    made = _made(api, ROW, "r-2")
    answer = _explained(api, made["prediction_id"])
    assert answer["method"]["perturbation"] == "tree_path_dependent"
    total = sum(c["contribution"] for c in answer["contributions"]) + answer["base_value"]
    assert abs(total - answer["output"]) <= 1e-6
    assert {c["feature"] for c in answer["contributions"]} == {"age", "income", "plan"}


def _stable(answer: dict) -> dict:
    return {k: v for k, v in answer.items() if k != "explained_at"}


def test_the_answer_stays_the_same_after_a_promotion_and_a_restart(api: Api) -> None:
    models = _demo_churn(api)
    _promote(api, models["LogisticRegression"])
    made = _made(api, DEMO_ROW)
    before = _explained(api, made["prediction_id"])
    _promote(api, models["RandomForestClassifier"])
    assert _stable(_explained(api, made["prediction_id"])) == _stable(before)
    restarted = Ledger(api.ledger.settings)
    assert _stable(explain(restarted, made["prediction_id"])) == _stable(before)


def test_an_explanation_is_recorded_once_per_prediction_caller_and_day(api: Api) -> None:
    deployment_with_models(api)
    made = _made(api, ROW)
    for _ in range(3):
        _explained(api, made["prediction_id"])
    _explained(api, made["prediction_id"], role="admin")
    given = [
        api.ledger.repository.get(explanation_id(made["prediction_id"], actor, day))
        for actor, day in _days(api, made["prediction_id"])
    ]
    assert len(given) == 2
    assert all(isinstance(g, Explanation) and g.version == 1 for g in given)
    assert {g.prediction_id for g in given} == {made["prediction_id"]}


def _days(api: Api, prediction_id: str) -> list[tuple[str, str]]:
    from datetime import UTC, datetime

    day = datetime.now(UTC).date().isoformat()
    keys = {k.role: k.key_id for k in _keys(api)}
    return [(f"key:{keys['auditor']}", day), (f"key:{keys['admin']}", day)]


def _keys(api: Api) -> list:
    return [api.ledger.authenticate(key) for key in api.keys.values()]


def test_as_of_before_the_prediction_is_not_found(api: Api) -> None:
    deployment_with_models(api)
    made = _made(api, ROW)
    answer = api.call(
        "GET", f"/v1/predictions/{made['prediction_id']}/explanation", params={"as_of": "pos:1"}
    )
    assert answer.status_code == 404


def test_a_predictor_may_not_ask(api: Api) -> None:
    deployment_with_models(api)
    made = _made(api, ROW)
    answer = api.call(
        "GET", f"/v1/predictions/{made['prediction_id']}/explanation", role="predictor"
    )
    assert answer.status_code == 403


def test_the_command_line_prints_the_reasons(api: Api, monkeypatch) -> None:
    deployment_with_models(api)
    made = _made(api, ROW)
    monkeypatch.setenv("LEDGER_HOME", str(api.ledger.settings.home))
    url = api.ledger.settings.database_url
    run = CliRunner().invoke(main, ["--db", url, "explain", made["prediction_id"]])
    assert run.exit_code == 0, run.output
    assert "LinearExplainer" in run.output and " the log-odds of yes by " in run.output
    run = CliRunner().invoke(main, ["--db", url, "explain", "--json", made["prediction_id"]])
    assert json.loads(run.output)["model_id"] == made["model_id"]


def test_as_of_after_the_prediction_gives_the_same_contributions(api: Api) -> None:
    deployment_with_models(api)
    made = _made(api, ROW)
    now = _explained(api, made["prediction_id"])
    position = api.ledger.recorder.max_notification_id()
    then = _explained(api, made["prediction_id"], as_of=f"pos:{position}")
    assert then["as_of_position"] == position
    assert then["contributions"] == now["contributions"]


def test_a_personal_features_value_is_not_shown_but_its_contribution_is(api: Api) -> None:
    assert create_deployment(api).status_code == 201
    rows, labels = training_frame()
    rows[:, 2] = np.where(np.arange(len(rows)) % 2 == 0, "c-1", "c-2")  # customer, not plan
    model = pipeline(LogisticRegression(max_iter=500), [0, 1], [2]).fit(rows, labels)
    model_id = api.ledger.register_model(
        name="m-personal",
        artifact_digest=api.ledger.artifacts.put(dumps_skops(model)),
        features=["age", "income", "customer"],
        algorithm="LogisticRegression",
        task="classification",
        classes=["no", "yes"],
        training_run_id=None,
        provenance="uploaded",
        declared={},
        actor="test",
    )
    api.call("POST", "/v1/deployments/churn/models", json={"model_id": str(model_id)})
    answer = _explained(api, _made(api, ROW)["prediction_id"])
    customer = next(c for c in answer["contributions"] if c["feature"] == "customer")
    assert customer["personal"] is True and customer["value"] is None
    assert "c-1" not in json.dumps(answer)
