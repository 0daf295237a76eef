"""Training specs: defaults filled in, and every refusal names the field to fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from trainers.spec import InvalidSpec, load_spec


def spec(**changes):
    base = {
        "name": "tiny",
        "source": {"kind": "demo", "rows": 100, "seed": 1},
        "target": "churned",
        "features": [
            {"name": "tenure_months", "type": "integer"},
            {"name": "region", "type": "category"},
        ],
        "algorithm": "sklearn.linear_model.LogisticRegression",
    }
    base.update(changes)
    return base


def refusal(raw) -> InvalidSpec:
    with pytest.raises(InvalidSpec) as caught:
        load_spec(raw)
    return caught.value


def test_a_minimal_spec_gets_its_task_metrics_and_split_filled_in():
    loaded = load_spec(spec())
    assert loaded["task"] == "classification"
    assert loaded["metrics"] == ["accuracy", "precision", "recall", "f1", "roc_auc"]
    assert loaded["split"] == {
        "kind": "random",
        "column": None,
        "cutoff": None,
        "test_fraction": 0.25,
        "seed": 0,
        "stratify": False,
    }
    assert loaded["features"][0] == {
        "name": "tenure_months",
        "type": "integer",
        "nullable": False,
        "personal": False,
    }


def test_a_normalised_spec_loads_to_itself_so_a_stored_spec_can_be_retrained():
    once = load_spec(
        spec(
            split={"kind": "time", "cutoff": "2026-10-01T00:00:00+02:00"}, time_column="event_time"
        )
    )
    assert load_spec(once) == once
    assert once["split"]["cutoff"] == "2026-09-30T22:00:00.000000Z"
    assert once["split"]["column"] == "event_time"


def test_a_missing_source_path_names_the_field():
    error = refusal(spec(source={"kind": "csv"}))
    assert error.field == "source.path"
    assert "source.path" in error.detail


def test_an_unknown_source_kind_lists_the_known_ones():
    error = refusal(spec(source={"kind": "ftp"}))
    assert error.field == "source.kind" and "csv" in error.detail


@pytest.mark.parametrize(
    "algorithm",
    [
        "os.system",
        "builtins.eval",
        "sklearn.utils._testing.ignore_warnings",
        "sklearn",
        "sklearn.linear_model.NoSuchModel",
        "sklearn.preprocessing.StandardScaler",
        "sklearn.base.BaseEstimator",
    ],
)
def test_only_public_scikit_learn_estimators_are_accepted(algorithm):
    error = refusal(spec(algorithm=algorithm))
    assert error.field == "algorithm", error.detail


def test_an_unknown_parameter_names_params_and_lists_the_known_ones():
    error = refusal(spec(params={"C": 1.0, "colour": "red"}))
    assert error.field == "params" and "colour" in error.detail and "max_iter" in error.detail


def test_a_regression_metric_on_a_classifier_is_refused():
    assert refusal(spec(metrics=["rmse"])).field == "metrics"


def test_a_task_that_contradicts_the_estimator_is_refused():
    assert refusal(spec(task="regression")).field == "task"


def test_unknown_fields_are_refused_by_name():
    assert refusal(spec(colour="red")).field == "colour"


def test_a_time_split_needs_a_column():
    assert refusal(spec(split={"kind": "time"})).field == "split"


def test_the_target_cannot_be_a_feature_and_the_subject_never_is():
    assert refusal(spec(target="region")).field == "target"
    assert refusal(spec(subject="region")).field == "subject"


def test_an_instant_without_an_offset_is_refused():
    error = refusal(
        spec(split={"kind": "time", "column": "event_time", "cutoff": "2026-10-01T00:00:00"})
    )
    assert error.field == "split.cutoff" and "offset" in error.detail


def test_a_sql_source_needs_exactly_one_of_url_and_url_env():
    assert refusal(spec(source={"kind": "sql", "query": "select 1"})).field == "source.url"


def test_a_feature_type_outside_the_four_is_refused():
    error = refusal(spec(features=[{"name": "x", "type": "text"}]))
    assert error.field == "features.0.type"


def test_a_yaml_file_resolves_relative_paths_beside_itself(tmp_path: Path):
    (tmp_path / "spec.yaml").write_text(
        "name: from-file\nsource: {kind: csv, path: data/rows.csv}\ntarget: y\n"
        "features: [{name: x, type: number}]\nalgorithm: sklearn.linear_model.Ridge\n"
    )
    loaded = load_spec(tmp_path / "spec.yaml")
    assert loaded["source"]["path"] == str(tmp_path / "data" / "rows.csv")
    assert loaded["task"] == "regression"


def test_a_missing_or_broken_yaml_file_is_a_clear_refusal(tmp_path: Path):
    assert "no spec file" in refusal(tmp_path / "absent.yaml").detail
    (tmp_path / "broken.yaml").write_text("name: [unclosed\n")
    assert "not valid YAML" in refusal(tmp_path / "broken.yaml").detail


EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples" / "specs").glob("*.yaml"))


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_every_example_spec_is_valid(path: Path):
    loaded = load_spec(path)
    assert loaded["name"] and loaded["deployment"] and loaded["metrics"]


def test_there_are_example_specs_for_both_tasks_and_a_shipped_data_set():
    kinds = {(load_spec(p)["task"], load_spec(p)["source"]["kind"]) for p in EXAMPLES}
    assert {
        ("classification", "demo"),
        ("regression", "demo"),
        ("classification", "sklearn"),
    } <= kinds
