"""Training steps on tiny frames: typing, splits, the numpy-column pipeline, metrics."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

from ledger.artifacts import CAPTURED_TRUSTED_TYPES, dumps_skops, loads_skops
from trainers import demo_data, steps
from trainers.evaluate import evaluate
from trainers.matrix import frame_to_matrix, rows_to_matrix
from trainers.plain import to_plain
from trainers.spec import InvalidSpec, load_spec

FEATURES = [
    {"name": "tenure_months", "type": "integer", "nullable": False, "personal": False},
    {"name": "income", "type": "number", "nullable": True, "personal": False},
    {"name": "region", "type": "category", "nullable": False, "personal": False},
    {"name": "has_partner", "type": "boolean", "nullable": False, "personal": False},
]


def demo_spec(**changes):
    raw = {
        "name": "tiny",
        "source": {"kind": "demo", "rows": 200, "seed": 3},
        "target": "churned",
        "features": FEATURES,
        "subject": "customer_id",
        "time_column": "event_time",
        "algorithm": "sklearn.linear_model.LogisticRegression",
        "split": {"kind": "time", "test_fraction": 0.25},
    }
    raw.update(changes)
    return load_spec(raw)


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    spec = demo_spec()
    return steps.typed_frame(demo_data.generate(200, 3), spec)


def test_typed_frame_keeps_only_the_spec_columns_with_declared_types(frame):
    assert list(frame.columns) == [
        "tenure_months",
        "income",
        "region",
        "has_partner",
        "churned",
        "customer_id",
        "event_time",
    ]
    assert frame["has_partner"].dtype == "float64" and set(frame["has_partner"]) <= {0.0, 1.0}
    assert frame["region"].map(type).eq(str).all()


def test_typed_frame_names_a_missing_column():
    with pytest.raises(InvalidSpec, match="no column 'income'"):
        steps.typed_frame(demo_data.generate(50, 1).drop(columns="income"), demo_spec())


def test_missing_values_in_a_feature_not_declared_nullable_are_refused_by_name():
    not_nullable = [{**f, "nullable": False} for f in FEATURES]
    with pytest.raises(InvalidSpec, match="'income' has .* missing values") as refused:
        steps.typed_frame(demo_data.generate(200, 3), demo_spec(features=not_nullable))
    assert refused.value.field == "features.income" and "nullable: true" in refused.value.detail


def test_a_time_split_puts_the_latest_rows_in_the_test_set(frame):
    train, test = steps.split(frame, demo_spec())
    assert len(test) == 50 and len(train) == 150
    assert train["event_time"].max() <= test["event_time"].min()


def test_a_time_split_by_cutoff_and_an_empty_side_is_refused(frame):
    cutoff = frame["event_time"].iloc[120].isoformat()
    train, test = steps.split(frame, demo_spec(split={"kind": "time", "cutoff": cutoff}))
    assert (train["event_time"] < pd.Timestamp(cutoff)).all() and (
        test["event_time"] >= pd.Timestamp(cutoff)
    ).all()
    with pytest.raises(InvalidSpec, match="split"):
        steps.split(frame, demo_spec(split={"kind": "time", "cutoff": "2000-01-01T00:00:00Z"}))


def test_a_random_split_is_seeded_and_disjoint(frame):
    spec = demo_spec(split={"kind": "random", "test_fraction": 0.2, "seed": 5})
    first, again = steps.split(frame, spec), steps.split(frame, spec)
    assert first[1].equals(again[1])
    assert not set(first[0]["event_time"]) & set(first[1]["event_time"])
    assert len(first[1]) == 40


def test_the_pipeline_scores_a_plain_numpy_row_with_missing_and_unseen_values(frame):
    pipeline = steps.fit(
        steps.build_pipeline(FEATURES, "sklearn.linear_model.LogisticRegression", {}, 0),
        frame,
        FEATURES,
        "churned",
    )
    rows = [
        {"tenure_months": 3, "income": None, "region": "atlantis", "has_partner": True},
        {"tenure_months": 40, "region": None, "has_partner": None},
    ]
    X = rows_to_matrix(rows, FEATURES)
    probabilities = pipeline.predict_proba(X)
    assert probabilities.shape == (2, 2) and np.allclose(probabilities.sum(axis=1), 1)
    assert list(pipeline.classes_) == [0, 1]


def test_rows_and_frames_give_the_same_matrix(frame):
    records = frame.head(5).to_dict("records")
    for record in records:
        record["has_partner"] = bool(record["has_partner"])
        record["income"] = None if pd.isna(record["income"]) else record["income"]
    left, right = rows_to_matrix(records, FEATURES), frame_to_matrix(frame.head(5), FEATURES)
    assert [[to_plain(v) for v in row] for row in left] == [
        [to_plain(v) for v in row] for row in right
    ]


@pytest.mark.parametrize(
    "algorithm",
    ["sklearn.linear_model.LogisticRegression", "sklearn.ensemble.RandomForestClassifier"],
)
def test_fitted_pipelines_and_detectors_load_back_with_the_captured_types_only(frame, algorithm):
    pipeline = steps.fit(
        steps.build_pipeline(FEATURES, algorithm, {}, 0), frame, FEATURES, "churned"
    )
    detector = steps.fit_outlier_detector(frame, FEATURES, 0)
    X = frame_to_matrix(frame.head(10), FEATURES)
    for fitted, call in ((pipeline, "predict_proba"), (detector, "score_samples")):
        loaded = loads_skops(dumps_skops(fitted), trusted=list(CAPTURED_TRUSTED_TYPES))
        assert np.array_equal(getattr(loaded, call)(X), getattr(fitted, call)(X))


def test_the_random_state_defaults_to_the_spec_seed_unless_given():
    pipeline = steps.build_pipeline(FEATURES, "sklearn.ensemble.RandomForestClassifier", {}, 11)
    assert pipeline.named_steps["model"].random_state == 11
    given = steps.build_pipeline(
        FEATURES, "sklearn.ensemble.RandomForestClassifier", {"random_state": 2}, 11
    )
    assert given.named_steps["model"].random_state == 2


def test_recorded_params_are_plain_and_name_the_steps():
    params = steps.pipeline_params(
        steps.build_pipeline(FEATURES, "sklearn.linear_model.LogisticRegression", {"C": 0.5}, 0)
    )
    assert params["model__C"] == 0.5
    assert params["prepare__numbers__impute__strategy"] == "median"
    assert params["prepare__numbers__impute__missing_values"] == "nan"
    assert all(not hasattr(v, "get_params") for v in params.values())


class Fixed:
    """A fitted stand-in whose outputs the test chooses."""

    def __init__(self, predicted, scores, classes):
        self.predicted, self.scores, self.classes_ = (
            np.asarray(predicted),
            np.asarray(scores),
            np.asarray(classes),
        )

    def predict(self, X):
        return self.predicted

    def predict_proba(self, X):
        return self.scores


def test_binary_metrics_agree_with_scikit_learn_on_the_positive_label():
    y = np.array(["no", "yes", "yes", "no", "yes"])
    predicted = ["no", "yes", "no", "no", "yes"]
    scores = [[0.8, 0.2], [0.3, 0.7], [0.6, 0.4], [0.9, 0.1], [0.2, 0.8]]
    found = evaluate(
        Fixed(predicted, scores, ["no", "yes"]),
        None,
        y,
        "classification",
        ["accuracy", "precision", "recall", "f1", "roc_auc"],
        positive="yes",
    )
    assert found["accuracy"] == pytest.approx(skm.accuracy_score(y, predicted))
    assert found["recall"] == pytest.approx(skm.recall_score(y, predicted, pos_label="yes"))
    assert found["f1"] == pytest.approx(skm.f1_score(y, predicted, pos_label="yes"))
    assert found["roc_auc"] == pytest.approx(skm.roc_auc_score(y == "yes", [s[1] for s in scores]))


def test_multiclass_metrics_are_macro_averages():
    y = np.array([0, 1, 2, 2, 1, 0])
    predicted = [0, 2, 2, 2, 1, 1]
    scores = np.full((6, 3), 1 / 3)
    found = evaluate(
        Fixed(predicted, scores, [0, 1, 2]),
        None,
        y,
        "classification",
        ["precision", "f1", "roc_auc"],
    )
    assert found["precision"] == pytest.approx(skm.precision_score(y, predicted, average="macro"))
    assert found["f1"] == pytest.approx(skm.f1_score(y, predicted, average="macro"))
    assert found["roc_auc"] == pytest.approx(0.5)


def test_regression_metrics_agree_with_scikit_learn():
    y, predicted = np.array([1.0, 2.0, 4.0]), np.array([1.5, 2.0, 3.0])
    found = evaluate(Fixed(predicted, [], []), None, y, "regression", ["mae", "rmse", "r2"])
    assert found == pytest.approx(
        {
            "mae": skm.mean_absolute_error(y, predicted),
            "rmse": skm.root_mean_squared_error(y, predicted),
            "r2": skm.r2_score(y, predicted),
        }
    )


def test_the_positive_label_is_declared_or_obvious():
    assert steps.positive_label([0, 1], None) == 1
    assert steps.positive_label(["a", "b"], "a") == "a"
    assert steps.positive_label([0, 1, 2], None) is None
    with pytest.raises(InvalidSpec, match="positive_label"):
        steps.positive_label(["a", "b"], None)
