"""Model input columns traced back to the features as received, or refused."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LinearRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from serving.explain import CannotExplainExactly, _grouped, _sources, _summary

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
