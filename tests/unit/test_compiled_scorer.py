"""The compiled scorer gives the pipeline's values and probabilities, alone and in batches."""

from __future__ import annotations

import functools

import numpy as np
import pytest
from sklearn.dummy import DummyClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import MinMaxScaler

from serving.compiled import compile_model
from trainers import steps
from trainers.demo import demo_specs
from trainers.demo_data import generate
from trainers.matrix import rows_to_matrix

REGIONS = ["north", "south", "east", "west", "atlantis", None]
PLANS = ["basic", "premium", "standard", "gold", None]


@functools.cache
def demo_models() -> dict[str, object]:
    """The four demo pipelines, fitted on a small seeded frame."""
    specs = demo_specs(end="2026-11-01T00:00:00+00:00", rows=600)
    frame = generate(600, seed=7, end="2026-11-01T00:00:00+00:00")
    fitted = {}
    for spec in specs:
        typed = steps.typed_frame(frame, spec)
        pipeline = steps.build_pipeline(
            spec["features"], spec["algorithm"], spec["params"], spec["seed"]
        )
        fitted[spec["name"]] = (
            steps.fit(pipeline, typed, spec["features"], spec["target"]),
            spec["features"],
        )
    return fitted


def random_rows(n: int, seed: int) -> list[dict[str, object]]:
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n):
        rows.append(
            {
                "tenure_months": int(rng.integers(0, 120)),
                "monthly_charges": float(rng.normal(70, 40)),
                "support_calls": int(rng.integers(0, 15)),
                "income": None if rng.random() < 0.2 else float(rng.lognormal(10, 1)),
                "region": REGIONS[rng.integers(len(REGIONS))],
                "plan": PLANS[rng.integers(len(PLANS))],
                "has_partner": bool(rng.random() < 0.5),
            }
        )
    return rows


def both(model, features, rows):
    """(pipeline values, probabilities), (compiled values, probabilities) for the rows."""
    matrix = rows_to_matrix(rows, features)
    compiled = compile_model(model)
    assert compiled is not None
    values, probabilities = compiled.score(matrix)
    expected_values = model.predict(matrix)
    expected_probabilities = (
        model.predict_proba(matrix) if hasattr(model, "predict_proba") else None
    )
    return (expected_values, expected_probabilities), (values, probabilities)


@pytest.mark.parametrize(
    "name", ["churn-logistic", "churn-forest", "lifetime-value-ridge", "lifetime-value-forest"]
)
@pytest.mark.parametrize("size", [1, 7, 500])
def test_compiled_scores_equal_the_pipeline_on_random_rows(name, size):
    model, features = demo_models()[name]
    for seed in range(5 if size == 1 else 2):
        (ev, ep), (v, p) = both(model, features, random_rows(size, seed))
        assert v.tolist() == ev.tolist()
        if ep is None:
            assert p is None
        else:
            assert np.max(np.abs(p - ep)) <= 1e-12


def test_each_row_of_a_batch_scores_as_it_does_in_the_pipeline_batch():
    model, features = demo_models()["churn-logistic"]
    rows = random_rows(50, 11)
    _, (_, batch) = both(model, features, rows)
    for i in (0, 17, 49):
        (_, alone_expected), (_, alone) = both(model, features, [rows[i]])
        assert np.max(np.abs(alone - alone_expected)) <= 1e-12
        assert np.max(np.abs(batch[i] - alone[0])) <= 1e-9


def test_unknown_steps_are_not_compiled():
    model, _ = demo_models()["churn-logistic"]
    assert compile_model(DummyClassifier().fit([[0], [1]], [0, 1])) is None
    assert compile_model(MinMaxScaler().fit([[0], [1]])) is None
    from sklearn.pipeline import Pipeline

    assert (
        compile_model(
            Pipeline([("m", MinMaxScaler()), ("lr", LogisticRegression())]).fit([[0], [1]], [0, 1])
        )
        is None
    )
    assert compile_model(model) is not None


def test_trees_route_missing_values_as_sklearn_does():
    from sklearn.ensemble import RandomForestRegressor
    from sklearn.tree import DecisionTreeClassifier

    rng = np.random.default_rng(3)
    X = rng.normal(size=(300, 4))
    X[rng.random((300, 4)) < 0.1] = np.nan
    y = (np.nan_to_num(X[:, 0]) + rng.normal(size=300) > 0).astype(int)
    probe = rng.normal(size=(40, 4))
    probe[rng.random((40, 4)) < 0.3] = np.nan
    for model in (
        DecisionTreeClassifier(random_state=0).fit(X, y),
        RandomForestRegressor(10, random_state=0).fit(X, y),
    ):
        values, probabilities = compile_model(model).score(probe.astype(object))
        assert values.tolist() == model.predict(probe).tolist()
        if probabilities is not None:
            assert np.array_equal(probabilities, model.predict_proba(probe))


def test_a_missing_value_no_step_imputes_fails_like_the_pipeline():
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    model = Pipeline([("s", StandardScaler()), ("m", LogisticRegression())]).fit(
        [[0.0], [1.0], [2.0]], [0, 1, 1]
    )
    row = np.array([[np.nan]], dtype=object)
    with pytest.raises(ValueError):
        model.predict(row)
    with pytest.raises(ValueError):
        compile_model(model).score(row)
