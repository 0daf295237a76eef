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


# -- one row: the scalar form gives the compiled scorer's numbers, bit for bit ----------------
def one_and_batch(compiled, features, row):
    """(score_one's answer, the one-row matrix's answer as .tolist()[0] of each output)."""
    from trainers.matrix import column_readers, row_values

    values, probabilities = compiled.score(rows_to_matrix([row], features))
    batch = (values.tolist()[0], None if probabilities is None else probabilities.tolist()[0])
    return compiled.one(row_values(row, column_readers(features))), batch


def typed(answer):
    value, probabilities = answer
    return (
        value,
        type(value),
        probabilities,
        None if probabilities is None else [type(p) for p in probabilities],
    )


def edge_rows(features):
    """Rows at the edges: every value missing, unseen categories, huge and tiny numbers."""
    numbers = [f["name"] for f in features if f["type"] != "category"]
    categories = [f["name"] for f in features if f["type"] == "category"]
    out = []
    for fill in (None, 0, -0.0, 1e15, -1e15, 5e-324, 2**53 - 1):
        out.append({**{n: fill for n in numbers}, **{c: None for c in categories}})
    out.append({**{n: 1 for n in numbers}, **{c: "never-seen" for c in categories}})
    return out


@pytest.mark.parametrize(
    "name", ["churn-logistic", "churn-forest", "lifetime-value-ridge", "lifetime-value-forest"]
)
def test_one_row_scores_equal_the_compiled_matrix_bit_for_bit(name):
    model, features = demo_models()[name]
    compiled = compile_model(model)
    assert compiled.scores_one
    rows = random_rows(400, 21) + edge_rows(features)
    for row in rows:
        try:
            one, batch = one_and_batch(compiled, features, row)
        except ValueError:  # a value no step takes: both forms refuse it
            with pytest.raises(ValueError):
                compiled.score(rows_to_matrix([row], features))
            from trainers.matrix import column_readers, row_values

            with pytest.raises(ValueError):
                compiled.one(row_values(row, column_readers(features)))
            continue
        assert typed(one) == typed(batch)
    for row in random_rows(50, 22):  # and the pipeline's, as the matrix form is
        (value, probabilities), _ = one_and_batch(compiled, features, row)
        matrix = rows_to_matrix([row], features)
        assert value == model.predict(matrix).tolist()[0]
        if probabilities is not None:
            assert np.max(np.abs(np.array(probabilities) - model.predict_proba(matrix)[0])) <= 1e-12


def test_one_row_of_bare_trees_multiclass_and_nan_routing_is_bit_identical():
    from sklearn.ensemble import ExtraTreesClassifier, RandomForestRegressor
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

    rng = np.random.default_rng(5)
    X = rng.normal(size=(400, 4))
    X[rng.random((400, 4)) < 0.1] = np.nan
    three = np.digitize(np.nan_to_num(X[:, 0]) + rng.normal(size=400), [-0.5, 0.5])
    models = [
        DecisionTreeClassifier(random_state=0).fit(X, three),
        DecisionTreeRegressor(max_depth=5, random_state=0).fit(X, three * 1.5),
        RandomForestRegressor(12, random_state=0).fit(X, three.astype(float)),
        ExtraTreesClassifier(8, random_state=0).fit(np.nan_to_num(X), three),
    ]
    finite = np.nan_to_num(X)
    models.append(
        Pipeline([("s", StandardScaler()), ("m", LogisticRegression(max_iter=500))]).fit(
            finite, three
        )
    )
    models.append(LogisticRegression().fit(finite, three > 0))
    probe = rng.normal(size=(200, 4)) * 3
    probe[rng.random((200, 4)) < 0.3] = np.nan
    for model in models:
        compiled = compile_model(model)
        assert compiled is not None and compiled.scores_one, model
        for x in probe.tolist():
            row = np.array([x], dtype=object)
            try:
                values, probabilities = compiled.score(row)
            except ValueError:
                with pytest.raises(ValueError):
                    compiled.one(x)
                continue
            one = compiled.one(x)
            assert typed(one) == typed(
                (values.tolist()[0], None if probabilities is None else probabilities.tolist()[0])
            )


def test_score_model_takes_the_one_row_form_for_a_single_row():
    from serving.scoring import ModelRuntime, score_model

    model, features = demo_models()["churn-forest"]
    runtime = ModelRuntime("m", model, features, classifier=True)
    row = random_rows(1, 4)[0]
    values, probabilities = runtime.compiled.score(rows_to_matrix([row], features))
    labels = [str(label) for label in model.classes_.tolist()]
    assert score_model(runtime, [row]) == [
        {
            "value": values.tolist()[0],
            "probabilities": dict(zip(labels, probabilities.tolist()[0], strict=True)),
        }
    ]
    calls = []
    scalar = runtime.compiled.one
    runtime.compiled.one = lambda values: calls.append(values) or scalar(values)
    score_model(runtime, [row])
    score_model(runtime, [row, row])  # a batch never takes it
    assert len(calls) == 1
