"""Metrics from cube sums agree with scikit-learn's metric functions on the same labels."""

from __future__ import annotations

import math
import random
from collections import Counter

import pytest
from sklearn import metrics as sk

from projections import metrics
from projections.slicing import bin_label, quantile_edges, slice_values, slicer


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("classes", [[0, 1], ["a", "b", "c"]])
def test_classification_metrics_agree_with_sklearn(seed: int, classes: list) -> None:
    rng = random.Random(seed)
    actual = [rng.choice(classes) for _ in range(200)]
    predicted = [rng.choice(classes) for _ in range(200)]
    confusion = Counter(zip(actual, predicted, strict=True))
    binary = classes == [0, 1]
    got = metrics.classification(confusion, positive_label=1 if binary else None)
    average = "binary" if binary else "macro"
    assert got["count"] == 200
    assert math.isclose(got["accuracy"], sk.accuracy_score(actual, predicted))
    for name, fn in (
        ("precision", sk.precision_score),
        ("recall", sk.recall_score),
        ("f1", sk.f1_score),
    ):
        assert math.isclose(got[name], fn(actual, predicted, average=average, zero_division=0)), (
            name
        )


def test_macro_counts_a_label_only_ever_predicted() -> None:
    actual, predicted = ["a", "a", "b"], ["a", "c", "b"]
    got = metrics.classification(Counter(zip(actual, predicted, strict=True)))
    assert math.isclose(got["f1"], sk.f1_score(actual, predicted, average="macro", zero_division=0))


def test_regression_metrics_agree_with_sklearn() -> None:
    rng = random.Random(3)
    actual = [rng.uniform(-5, 5) for _ in range(100)]
    predicted = [a + rng.gauss(0, 1) for a in actual]
    errors = [p - a for a, p in zip(actual, predicted, strict=True)]
    got = metrics.regression(
        len(errors), sum(errors), sum(map(abs, errors)), sum(e * e for e in errors)
    )
    assert math.isclose(got["mae"], sk.mean_absolute_error(actual, predicted))
    assert math.isclose(got["rmse"], math.sqrt(sk.mean_squared_error(actual, predicted)))


def test_no_outcomes_is_a_count_of_zero_not_a_division_by_zero() -> None:
    assert metrics.classification({}) == {"count": 0}
    assert metrics.regression(0, 0.0, 0.0, 0.0) == {"count": 0}


def test_numbers_are_binned_by_the_profile_quantiles_right_closed() -> None:
    profile = {"features": {"age": {"quantiles": {"0.0": 1, "0.25": 30, "0.5": 40, "1.0": 99}}}}
    edges = quantile_edges(profile, "age")
    assert edges == [30.0, 40.0]
    assert [bin_label(v, edges) for v in (30, 31, 40, 41)] == ["<=30", "(30,40]", "(30,40]", ">40"]


def test_slices_say_missing_and_unbinned_and_skip_personal_features() -> None:
    sliced = [
        {"name": "region", "type": "category"},
        {"name": "age", "type": "number"},
        {"name": "vip", "type": "boolean"},
    ]
    got = slice_values({"region": None, "age": 3, "vip": True}, sliced, {})
    assert got == {"region": "missing", "age": "unbinned", "vip": "true"}


def test_slicer_bins_numbers_and_keeps_booleans_and_categories_as_they_are() -> None:
    sliced = [
        {"name": "region", "type": "category"},
        {"name": "age", "type": "number"},
        {"name": "n", "type": "integer"},
        {"name": "vip", "type": "boolean"},
    ]
    bins = {"age": [30.0, 40.0], "n": []}
    values = slicer(sliced, bins)
    assert values({"region": 7, "age": 30, "n": 5, "vip": False}) == {
        "region": "7",
        "age": "<=30",
        "n": "unbinned",
        "vip": "false",
    }
    assert values({"age": 40.5, "n": True, "vip": None}) == {
        "region": "missing",
        "age": ">40",
        "n": "true",
        "vip": "missing",
    }
    assert values({"age": 35, "region": "north"}) == slice_values(
        {"age": 35, "region": "north"}, sliced, bins
    )
