"""`ledger reproduce`: recorded artifacts and features give the recorded outputs, bit for bit."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from api.cli import main
from api.demo import create_deployment as create_demo_deployment
from ledger.domain.predictions import Prediction
from serving.reproduce import reproduce
from tests.integration.api_support import ROW, Api, deployment_with_models, make_api, predict


@pytest.fixture
def api(ledger) -> Api:
    return make_api(ledger)


def test_a_single_prediction_reproduces_identically_for_every_model(api: Api) -> None:
    models = deployment_with_models(api)
    answer = predict(api, {"features": ROW, "request_id": "r-1"}).json
    result = reproduce(api.ledger, answer["prediction_id"])
    assert result.identical
    assert {c.model_id for c in result.checks} == set(models)


def test_a_batch_row_is_rescored_at_its_row_of_the_same_batch(api: Api) -> None:
    deployment_with_models(api)
    rows = [
        {**ROW, "age": 20.0 + i, "income": 20_000.0 + 997 * i, "customer": f"c-{i}"}
        for i in range(25)
    ]
    answer = predict(api, {"instances": rows, "request_id": "b-1"}).json
    chosen = answer["predictions"][13]["prediction_id"]
    result = reproduce(api.ledger, chosen)
    assert {k: v for k, v in result.scoring.items() if k != "scorer"} == {
        "mode": "batch",
        "batch_id": "b-1",
        "row": 13,
        "rows": 25,
    }
    assert set(result.scoring["scorer"].values()) == {"compiled-v1"}
    assert result.identical


def test_the_command_line_says_identical_and_exits_zero(api: Api, monkeypatch) -> None:
    deployment_with_models(api)
    answer = predict(api, {"features": ROW, "request_id": "r-2"}).json
    monkeypatch.setenv("LEDGER_HOME", str(api.ledger.settings.home))
    run = CliRunner().invoke(
        main,
        ["--db", api.ledger.settings.database_url, "reproduce", "--json", answer["prediction_id"]],
    )
    assert run.exit_code == 0, run.output
    assert json.loads(run.output)["identical"] is True


def test_an_output_that_does_not_come_out_again_is_named_and_fails_the_command(
    api: Api, monkeypatch
) -> None:
    deployment_with_models(api)
    row = {k: v for k, v in ROW.items() if k != "customer"}
    original = api.ledger.prediction(
        predict(api, {"features": row, "request_id": "r-3"}).json["prediction_id"]
    )
    served = original.served_model
    altered = {
        **original.outputs,
        served: {**original.outputs[served], "value": "not-what-the-model-says"},
    }
    [(forged, _)] = api.ledger.record_predictions(
        [
            Prediction(
                deployment="churn",
                deployment_version=original.deployment_version,
                request_id="r-forged",
                body_digest="x",
                features=original.features,
                sealed=None,
                outputs=altered,
                served_model=served,
                policy=original.policy,
                leader=original.leader,
                flags=[],
                scoring={"mode": "single"},
                actor="test",
            )
        ]
    )
    result = reproduce(api.ledger, str(forged.id))
    assert not result.identical
    assert [c.model_id for c in result.checks if not c.identical] == [served]
    monkeypatch.setenv("LEDGER_HOME", str(api.ledger.settings.home))
    run = CliRunner().invoke(
        main, ["--db", api.ledger.settings.database_url, "reproduce", str(forged.id)]
    )
    assert run.exit_code == 1 and "DIFFERENT" in run.output


def test_the_demo_models_reproduce_identically_single_and_batch(ledger) -> None:
    """The models `ledger serve --demo` trains: a linear model and a forest, a classifier and a regressor."""
    from trainers.demo import demo_specs
    from trainers.demo_data import generate

    api = make_api(ledger)
    grouped: dict[str, list] = {}
    for spec in demo_specs(rows=400):
        grouped.setdefault(spec["deployment"], []).append(spec)
    for name, specs in grouped.items():
        create_demo_deployment(ledger, name, specs)
    rows = (
        generate(12, seed=3)
        .drop(columns=["event_time", "churned", "lifetime_value"])
        .to_dict("records")
    )
    rows = [
        {k: (None if v != v else v) for k, v in row.items()} for row in rows
    ]  # NaN is sent as null
    for name in grouped:
        single = predict(api, {"features": rows[0], "request_id": f"{name}-1"}, name=name)
        batch = predict(api, {"instances": rows, "request_id": f"{name}-b"}, name=name)
        assert single.status_code == 201 and batch.status_code == 201, (single.text, batch.text)
        for prediction_id in (
            single.json["prediction_id"],
            batch.json["predictions"][7]["prediction_id"],
        ):
            result = reproduce(ledger, prediction_id)
            assert result.identical and len(result.checks) == 2, result.to_dict()
