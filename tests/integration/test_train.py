"""`ledger train` against a real store, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
import yaml
from click.testing import CliRunner

from api.cli import main
from ledger.application import Ledger
from trainers import demo_data
from trainers.demo import demo_specs
from trainers.matrix import rows_to_matrix
from trainers.record import TrainingFailed, train_and_record
from trainers.schema import deployment_for

END = "2026-11-01T00:00:00Z"


def small(spec: dict, rows: int = 300) -> dict:
    return {**spec, "source": {**spec["source"], "rows": rows}}


@pytest.fixture
def churn_spec() -> dict:
    return small(demo_specs(end=END)[0])


def run_cli(database_url: str, *args: str) -> str:
    result = CliRunner().invoke(main, ["--db", database_url, *args])
    assert result.exit_code == 0, result.output
    return result.output


def count_events(ledger: Ledger, topic_part: str) -> int:
    with ledger.engine.connect() as conn:
        return conn.execute(
            sa.text("SELECT count(*) FROM ledger_events WHERE topic LIKE :t"),
            {"t": f"%{topic_part}%"},
        ).scalar_one()


def test_train_with_a_deployment_records_datasets_run_model_and_leader(
    ledger: Ledger,
    database_url: str,
    churn_spec: dict,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
):
    monkeypatch.setenv("LEDGER_HOME", str(tmp_path))
    ledger.create_deployment(actor="test", **deployment_for(churn_spec))
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(churn_spec))
    output = run_cli(database_url, "train", str(tmp_path / "spec.yaml"), "--deployment", "churn")
    model_id = output.split("model")[1].split()[0]

    model = ledger.model(model_id)
    run = ledger.training_run(model.training_run_id)
    assert (run.status, run.model_id, run.artifact_digest) == (
        "completed",
        model_id,
        model.artifact_digest,
    )
    assert run.spec["source"] == churn_spec["source"] and run.spec["name"] == "churn-logistic"
    assert run.code_version["git_commit"] and run.code_version["packages"]["scikit-learn"]
    assert run.params["model__max_iter"] == 1000
    assert set(run.metrics) == {"accuracy", "precision", "recall", "f1", "roc_auc"}
    assert json.loads(output.split("metrics", 1)[1]) == run.metrics
    assert run.trained_subjects["count"] > 0 and "C0000" not in json.dumps(run.trained_subjects)
    for role, rows in (("train", 225), ("test", 75)):
        dataset = ledger.dataset(run.dataset_ids[role])
        assert (dataset.role, dataset.rows, len(dataset.fingerprint)) == (role, rows, 64)
        assert dataset.time_range["column"] == "event_time" and dataset.source.startswith(
            "demo:churn"
        )
    assert model.features == [f["name"] for f in churn_spec["features"]] and model.classes == [0, 1]
    deployment = ledger.deployment("churn")
    assert deployment.leader == model_id and deployment.models == [model_id]


def test_the_stored_artifacts_load_and_score_numpy_rows(ledger: Ledger, churn_spec: dict):
    model = ledger.model(train_and_record(ledger, churn_spec, "test"))
    run = ledger.training_run(model.training_run_id)
    features = [{"name": c["name"], "type": c["type"]} for c in run.reference_profile["input"]]
    X = rows_to_matrix(
        [
            {
                "tenure_months": 2,
                "monthly_charges": 99.5,
                "support_calls": 4,
                "income": None,
                "region": "central",
                "plan": "basic",
                "has_partner": False,
            }
        ],
        features,
    )
    pipeline = ledger.artifacts.load_model(model.artifact_digest)
    assert pipeline.predict_proba(X).shape == (1, 2) and list(pipeline.classes_) == model.classes
    detector = ledger.artifacts.load_model(
        run.reference_profile["outlier_detector"]["artifact_digest"]
    )
    assert np.isfinite(detector.score_samples(X)).all()
    assert "central" not in run.reference_profile["input"][4]["categories"]


def test_a_second_model_joins_as_a_challenger_and_the_leader_stays(ledger: Ledger):
    first, second = (small(s) for s in demo_specs(end=END)[:2])
    ledger.create_deployment(actor="test", **deployment_for(first, second))
    leader = train_and_record(ledger, first, "test", deployment="churn")
    challenger = train_and_record(
        ledger, second, "test", deployment="churn", trigger={"rule": "test"}
    )
    deployment = ledger.deployment("churn")
    assert deployment.leader == leader and deployment.models == [leader, challenger]
    assert ledger.training_run(ledger.model(challenger).training_run_id).trigger == {"rule": "test"}


def test_a_failing_fit_records_a_failed_run_and_registers_no_model(
    ledger: Ledger, churn_spec: dict
):
    bad = {**churn_spec, "params": {"C": -1.0}}
    with pytest.raises(TrainingFailed) as caught:
        train_and_record(ledger, bad, "test")
    run = ledger.training_run(caught.value.extra["run_id"])
    assert run.status == "failed" and "C" in run.error
    assert set(run.dataset_ids) == {"train", "test"}
    assert count_events(ledger, "Model.Registered") == 0


def test_missing_data_records_a_failed_run_without_datasets(ledger: Ledger, churn_spec: dict):
    bad = {
        **churn_spec,
        "features": [*churn_spec["features"], {"name": "shoe_size", "type": "number"}],
    }
    with pytest.raises(TrainingFailed, match="shoe_size"):
        train_and_record(ledger, bad, "test")
    assert count_events(ledger, "TrainingRun.Failed") == 1
    assert (
        count_events(ledger, "Dataset.Registered") == 0
        and count_events(ledger, "Model.Registered") == 0
    )


def test_the_cli_reports_a_failure_with_its_code(
    ledger: Ledger,
    database_url: str,
    churn_spec: dict,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
):
    monkeypatch.setenv("LEDGER_HOME", str(tmp_path))
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump({**churn_spec, "algorithm": "os.system"}))
    result = CliRunner().invoke(main, ["--db", database_url, "train", str(tmp_path / "bad.yaml")])
    assert (
        result.exit_code == 1 and "invalid_spec" in result.output and "algorithm" in result.output
    )
    assert count_events(ledger, "TrainingRun") == 0


def test_a_ledger_source_trains_on_rows_passed_in_and_a_stored_spec_retrains(
    ledger: Ledger, churn_spec: dict
):
    rows = demo_data.generate(300, 5, drift=True).to_dict("records")
    spec = {**churn_spec, "source": {"kind": "ledger"}}
    model_id = train_and_record(ledger, spec, "autopilot:test", rows_provider=lambda: rows)
    run = ledger.training_run(ledger.model(model_id).training_run_id)
    assert ledger.dataset(run.dataset_ids["train"]).source == "ledger:"
    again = ledger.training_run(
        ledger.model(train_and_record(ledger, run.spec, "test", rows_provider=rows)).training_run_id
    )
    assert again.dataset_ids == run.dataset_ids and again.metrics == run.metrics


def test_a_model_that_does_not_fit_the_deployment_is_refused_before_anything_is_recorded(
    ledger: Ledger,
    churn_spec: dict,
):
    from ledger.errors import SchemaMismatch

    ledger.create_deployment(actor="test", **deployment_for(churn_spec))
    extra = {
        **churn_spec,
        "features": [*churn_spec["features"], {"name": "churn_score", "type": "number"}],
    }
    with pytest.raises(SchemaMismatch, match="churn_score"):
        train_and_record(ledger, extra, "test", deployment="churn")
    assert count_events(ledger, "TrainingRun") == 0 and count_events(ledger, "Dataset") == 0


def test_forgetting_a_subject_names_the_models_that_learned_from_it(
    ledger: Ledger, churn_spec: dict
):
    from ledger.privacy import models_trained_on

    model_id = train_and_record(ledger, churn_spec, "test")
    frame = demo_data.generate(300, churn_spec["source"]["seed"], end=END)
    learned = frame["customer_id"].iloc[0]  # the earliest rows are always in the training split
    assert models_trained_on(ledger, ledger.sealer.subject_ref(learned)) == [model_id]
    assert models_trained_on(ledger, ledger.sealer.subject_ref("C9999999")) == []


def test_the_cli_says_leader_or_challenger_and_each_thing_on_its_own_line(
    database_url: str, churn_spec: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("LEDGER_HOME", str(tmp_path))
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(churn_spec))
    args = ("train", str(tmp_path / "spec.yaml"), "--deployment", "churn", "--create-deployment")
    first = run_cli(database_url, *args).splitlines()
    second = run_cli(database_url, *args).splitlines()
    assert first[0] == "created deployment churn"
    assert "joined  churn as its leader" in first
    assert "created deployment churn" not in second
    assert "joined  churn as a challenger" in second
    for lines in (first, second):
        [metrics] = [line for line in lines if line.startswith("metrics ")]
        assert json.loads(metrics.removeprefix("metrics "))


CSV_SPEC = Path(__file__).resolve().parents[2] / "examples" / "specs" / "churn_from_csv.yaml"


def test_the_csv_example_trains_from_its_spec(ledger: Ledger):
    from trainers.spec import load_spec

    model_id = train_and_record(ledger, load_spec(CSV_SPEC), "test")
    run = ledger.training_run(ledger.model(model_id).training_run_id)
    assert run.status == "completed" and run.metrics["roc_auc"] > 0.6
    train = ledger.dataset(run.dataset_ids["train"])
    assert train.source.startswith("csv:") and train.source.endswith("churn_small.csv")


def test_missing_values_in_a_column_not_declared_nullable_are_refused_by_name(
    ledger: Ledger,
):
    from trainers.spec import load_spec

    spec = load_spec(CSV_SPEC)
    spec["features"] = [{**f, "nullable": False} for f in spec["features"]]
    with pytest.raises(TrainingFailed, match="'income' has .* missing values") as refused:
        train_and_record(ledger, spec, "test")
    assert refused.value.field == "features.income"
    assert count_events(ledger, "Model.Registered") == 0
