"""`ledger autopilot` on both backends: rules fire on evidence, retrain a challenger, never twice."""

from __future__ import annotations

import math
import time
from typing import Any

import pytest
from click.testing import CliRunner

from api.cli import main
from ledger.application import Ledger
from ledger.errors import InvalidCommand
from policies.autopilot import config
from policies.autopilot.passes import run_pass
from projections.cubes import DAY_US
from tests.integration.api_support import Api, make_api
from trainers import demo_data
from trainers.demo import DEMO_FEATURES, demo_specs
from trainers.record import train_and_record
from trainers.schema import deployment_for

END = "2026-11-01T00:00:00+00:00"
COLUMNS = [f["name"] for f in DEMO_FEATURES] + ["customer_id"]
DRIFT_ONLY = {"data": "source", "rules": {"drift": {"psi": 0.2, "min_rows": 100}}}


@pytest.fixture
def churn(ledger: Ledger) -> tuple[Api, str]:
    """The demo churn deployment (manual policy) led by a logistic model trained on 400 demo rows."""
    spec = next(s for s in demo_specs(end=END, rows=400) if s["name"] == "churn-logistic")
    ledger.create_deployment(
        **deployment_for(spec, name="churn", outcome_maturity_days=0), actor="test"
    )
    leader = train_and_record(ledger, spec, "test", deployment="churn")
    return make_api(ledger), leader


def predict(
    api: Api, n: int, seed: int, drift: bool, batch: str, deployment: str = "churn"
) -> list[tuple[str, int, str]]:
    """Score n demo rows in one batch through the API; (request id, actual churn, customer) per row."""
    frame = demo_data.generate(n, seed=seed, drift=drift, end=END)
    rows = [
        {k: _plain(v) for k, v in row.items()}
        for row in frame[COLUMNS].astype(object).to_dict("records")
    ]
    answer = api.call(
        "POST",
        f"/v1/deployments/{deployment}/predictions",
        role="predictor",
        json={"instances": rows, "request_id": batch},
    )
    assert answer.status_code in (200, 201), answer.text
    return [
        (f"{batch}#{i}", int(actual), customer)
        for i, (actual, customer) in enumerate(
            zip(frame["churned"], frame["customer_id"], strict=True)
        )
    ]


def report_outcomes(
    api: Api, scored: list[tuple[str, int, str]], deployment: str = "churn"
) -> None:
    body = [
        {"deployment": deployment, "request_id": rid, "actual": actual} for rid, actual, _ in scored
    ]
    answer = api.call("POST", "/v1/outcomes", role="predictor", json=body)
    assert answer.status_code in (200, 201), answer.text


def _plain(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    return value.item() if hasattr(value, "item") else value


def churn_report(ledger: Ledger, **kwargs: Any) -> Any:
    report = run_pass(ledger, **kwargs)
    return next(d for d in report.deployments if d.name == "churn")


def autopilot_cli(ledger: Ledger, *args: str) -> Any:
    """`ledger autopilot ARGS` on the test's database and home (its master key)."""
    return CliRunner().invoke(
        main,
        ["--db", ledger.settings.database_url, "autopilot", *args],
        env={"LEDGER_HOME": str(ledger.settings.home)},
    )


def test_drift_retrains_a_challenger_with_its_evidence_and_the_leader_stays(ledger, churn):
    api, leader = churn
    predict(api, 300, seed=21, drift=True, batch="drifted")
    ledger.change_deployment(
        "churn", "test", settings={"autopilot": {**DRIFT_ONLY, "data": "ledger"}}
    )
    blocked = churn_report(ledger, housekeeping=False)  # fired, but no outcomes to learn from yet
    assert blocked.fired == ["rule:autopilot.drift@1"] and blocked.model_id is None
    assert blocked.note.startswith("not retrained: 0 rows of predictions with matured outcomes")
    ledger.change_deployment("churn", "test", settings={"autopilot": DRIFT_ONLY})

    first = churn_report(ledger)

    assert first.fired == ["rule:autopilot.drift@1"] and first.model_id
    deployment = ledger.deployment("churn")
    assert (
        deployment.leader == leader and first.model_id in deployment.models
    )  # manual: never promoted
    run = ledger.training_run(first.training_run)
    assert run.trigger["rule"] == "rule:autopilot.drift@1" and run.trigger["version"] == 1
    evidence = run.trigger["evidence"]
    assert evidence["window"]["rows"] == 300 and evidence["thresholds"]["psi"] == 0.2
    assert {"income", "monthly_charges"} <= set(evidence["drifted"])
    assert all(value > 0.2 for value in evidence["drifted"].values())
    assert evidence["reference"]["model_id"] == leader
    assert ledger.model(first.model_id).registered_by == "rule:autopilot.drift@1"
    assert run.spec["name"] == "churn-logistic"  # the leader's stored spec, trained again

    again = churn_report(ledger)  # no new evidence since that retraining
    assert again.fired == [] and again.model_id is None
    assert len(ledger.deployment("churn").models) == 2


def test_without_drift_no_rule_fires(ledger, churn):
    api, leader = churn
    ledger.change_deployment("churn", "test", settings={"autopilot": DRIFT_ONLY})
    predict(api, 300, seed=22, drift=False, batch="calm")

    report = churn_report(ledger)

    assert report.configured and report.fired == [] and report.model_id is None
    assert "no feature's PSI is above 0.2" in report.verdicts[0]["reason"]
    assert ledger.deployment("churn").models == [leader]
    looped = autopilot_cli(
        ledger, "--loop", "--interval", "1", "--passes", "2", "--no-housekeeping"
    )
    assert looped.exit_code == 0, looped.output
    assert looped.output.count("autopilot pass at") == 2 and "FIRED" not in looped.output


def test_retraining_from_the_ledger_reads_predictions_joined_with_matured_outcomes(
    ledger, churn, tmp_path
):
    api, leader = churn
    scored = predict(api, 300, seed=23, drift=True, batch="night")
    report_outcomes(api, scored[:240])  # the last 60 have no outcome yet
    forgotten = scored[0][2]
    ledger.forget_subject(
        forgotten, reason="asked to be forgotten", actor="test", deployment="churn"
    )
    erased = sum(1 for _, _, customer in scored[:240] if customer == forgotten)
    rules = tmp_path / "autopilot.yaml"
    rules.write_text(
        "deployments:\n  churn:\n    data: ledger\n    rules:\n      outcomes: {count: 200}\n"
    )

    result = autopilot_cli(ledger, "--config", str(rules), "--no-housekeeping")

    assert result.exit_code == 0, result.output
    assert "rule:autopilot.outcomes@1  FIRED  240 new matured outcomes" in result.output
    run_id = result.output.split("(run ", 1)[1].split(")", 1)[0]
    run = ledger.training_run(run_id)
    assert run.trigger["evidence"]["new_outcomes"] == 240
    data = run.trigger["data"]
    assert data["mode"] == "ledger" and data["ledger_rows_erased"] == erased >= 1
    assert (
        data["ledger_rows"] == 240 - erased
    )  # a forgotten subject's rows cannot be opened: left out
    datasets = [ledger.dataset(i) for i in run.dataset_ids.values()]
    assert sum(d.rows for d in datasets) == 240 - erased and {d.source for d in datasets} == {
        "ledger:churn"
    }
    assert (
        run.trained_subjects and run.trained_subjects["field"] == "customer_id"
    )  # opened, not stored plain
    assert ledger.sealer.subject_ref(forgotten)[:32] not in run.trained_subjects["refs"]
    assert ledger.deployment("churn").leader == leader

    second = autopilot_cli(ledger, "--config", str(rules), "--no-housekeeping")
    assert "0 new matured outcomes" in second.output and "retrained" not in second.output


def test_a_metric_floor_and_a_schedule_fire_together_and_retrain_once_on_source_and_ledger_rows(
    ledger, churn
):
    api, leader = churn
    report_outcomes(api, predict(api, 200, seed=24, drift=True, batch="day"))
    rules = {
        "metric": {
            "metric": "f1",
            "floor": 0.99,
            "days": 60,
            "min_outcomes": 100,
            "min_new_outcomes": 50,
        },
        "schedule": {"days": 30},
    }
    ledger.change_deployment(
        "churn", "test", settings={"autopilot": {"data": "both", "rules": rules}}
    )
    month_later = int(time.time() * 1_000_000) + 31 * DAY_US

    report = churn_report(ledger, now_us=month_later, housekeeping=False)

    assert (
        report.fired == ["rule:autopilot.metric@1", "rule:autopilot.schedule@1"] and report.model_id
    )
    trigger = ledger.training_run(report.training_run).trigger
    assert (
        trigger["rule"] == "rule:autopilot.metric@1"
        and trigger["also"][0]["rule"] == "rule:autopilot.schedule@1"
    )
    evidence = trigger["evidence"]
    assert evidence["count"] == 200 and evidence["value"] < 0.99 and evidence["model_id"] == leader
    assert (
        evidence["test_value"]
        == ledger.training_run(ledger.model(leader).training_run_id).metrics["f1"]
    )
    assert trigger["data"]["mode"] == "both"
    assert trigger["data"]["source_rows"] == 400 and trigger["data"]["ledger_rows"] == 200
    assert (
        len(ledger.deployment("churn").models) == 2 and ledger.deployment("churn").leader == leader
    )

    again = churn_report(ledger, now_us=month_later, housekeeping=False)
    assert again.fired == [] and again.model_id is None


def test_outcomes_count_only_once_they_have_matured(ledger, churn):
    api, leader = churn
    late = {**_churn_kwargs(ledger), "name": "churn-late", "outcome_maturity_days": 30}
    ledger.create_deployment(**late, actor="test")
    ledger.add_model("churn-late", leader, "test")  # the same trained model, another maturity
    report_outcomes(
        api,
        predict(api, 80, seed=25, drift=False, batch="late", deployment="churn-late"),
        deployment="churn-late",
    )
    settings = {"data": "ledger", "min_training_rows": 10_000, "rules": {"outcomes": {"count": 50}}}
    ledger.change_deployment("churn-late", "test", settings={"autopilot": settings})

    today = run_pass(ledger, only=["churn-late"], housekeeping=False).deployments[0]
    assert today.fired == [] and today.verdicts[0]["reason"].startswith("0 new matured outcomes")

    later = run_pass(
        ledger,
        only=["churn-late"],
        housekeeping=False,
        now_us=int(time.time() * 1_000_000) + 31 * DAY_US,
    ).deployments[0]
    assert later.fired == ["rule:autopilot.outcomes@1"] and later.model_id is None
    assert later.note.startswith("not retrained: 80 rows") and later.data["ledger_rows"] == 80


def _churn_kwargs(ledger: Ledger) -> dict[str, Any]:
    d = ledger.deployment("churn")
    return {
        "task": d.task,
        "schema": d.schema,
        "policy": d.policy,
        "positive_label": d.positive_label,
    }


def test_a_bad_rule_is_refused_with_the_field_to_fix():
    with pytest.raises(InvalidCommand, match="rules.metric needs a floor"):
        config.check({"rules": {"metric": {"metric": "f1"}}}, "deployment 'churn'")
    with pytest.raises(InvalidCommand, match="unknown rules speed"):
        config.check({"rules": {"speed": {}}}, "deployment 'churn'")
    with pytest.raises(InvalidCommand, match="data must be one of"):
        config.check({"data": "elsewhere", "rules": {}}, "deployment 'churn'")
