"""Explanations: input columns traced back to the features, every covered model type adds up."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import (
    ExtraTreesClassifier,
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    RandomForestRegressor,
)
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.tree import DecisionTreeClassifier

from serving.explain import (
    TOLERANCE,
    CannotExplainExactly,
    _grouped,
    _linear,
    _sources,
    _summary,
    _tree,
)

ROWS = np.array([["a", 1.0, 5.0], ["b", 2.0, 6.0], ["c", 3.0, 8.0], ["a", 4.0, 9.0]], dtype=object)


def _fitted(parts: list, remainder: str = "drop") -> Pipeline:
    prepare = ColumnTransformer(parts, remainder=remainder, sparse_threshold=0.0)
    return Pipeline([("prepare", prepare), ("model", LinearRegression())]).fit(ROWS, [1, 2, 3, 4])


def test_one_hot_levels_and_passthrough_columns_go_back_to_their_feature() -> None:
    model = _fitted(
        [("levels", OneHotEncoder(drop="first"), [0]), ("scaled", StandardScaler(), [2])],
        remainder="passthrough",
    )
    width = model[:-1].transform(ROWS).shape[1]
    assert _sources(model[:-1], 3, width) == [0, 0, 2, 1]


def test_contributions_are_summed_per_feature_largest_first() -> None:
    columns = [{"name": "plan"}, {"name": "visits"}]
    grouped = _grouped(np.array([0.5, -0.25, 0.1]), [0, 0, 1], columns, {"plan": "a"})
    assert [(g["feature"], g["contribution"], g["columns"]) for g in grouped] == [
        ("plan", 0.25, 2),
        ("visits", 0.1, 1),
    ]


def test_columns_picked_by_name_cannot_be_traced_and_are_refused() -> None:
    frame = pd.DataFrame(ROWS, columns=["plan", "x", "y"]).astype({"x": float, "y": float})
    prepare = ColumnTransformer([("scaled", StandardScaler(), ["x", "y"])])
    prepare.fit(frame)
    with pytest.raises(CannotExplainExactly):
        _sources(prepare, 3, 2)


def test_the_summary_says_which_way_and_by_how_much() -> None:
    contributions = [
        {"feature": "support_calls", "value": 7.0, "contribution": 0.2149, "personal": False},
        {"feature": "customer", "value": None, "contribution": -0.05, "personal": True},
        {"feature": "plan", "value": "basic", "contribution": 0.0, "personal": False},
    ]
    assert _summary(contributions, "probability of 1") == [
        "support_calls = 7 raised the probability of 1 by 0.21",
        "customer = (personal) lowered the probability of 1 by 0.05",
    ]


@pytest.mark.parametrize(
    "make",
    [
        lambda: GradientBoostingClassifier(n_estimators=20, random_state=0),
        lambda: GradientBoostingRegressor(n_estimators=20, random_state=0),
        lambda: RandomForestRegressor(n_estimators=10, random_state=0),
        lambda: ExtraTreesClassifier(n_estimators=10, random_state=0),
        lambda: DecisionTreeClassifier(max_depth=4, random_state=0),
        lambda: LogisticRegression(),
        lambda: Ridge(),
    ],
)
def test_every_covered_model_type_adds_up_to_its_output(make) -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 4))
    model = make()
    classifier = hasattr(model, "predict_proba")
    y = (X[:, 0] + X[:, 1] > 0).astype(int) if classifier else X @ [1.0, 2.0, 0.0, -1.0]
    model.fit(X, y)
    x = X[:1] + 0.3
    for target in (0, 1) if classifier else (None,):
        if type(model) in (LogisticRegression, Ridge):
            values, base, output, name, _ = _linear(model, x, X[:100], target)
        else:
            values, base, output, name, _ = _tree(model, x, target)
        assert abs(values.sum() + base - output) <= TOLERANCE[name]
