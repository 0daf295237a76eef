"""Outliers a person would call outliers: planted in demo churn rows, found; clean rows, left."""

from __future__ import annotations

import math

import pytest

from policies.outliers import detector_from
from policies.quality import DEFAULT_THRESHOLDS, check_rows
from trainers import demo_data, profile, steps
from trainers.demo import DEMO_FEATURES
from trainers.spec import load_spec

SCHEMA = {"features": [dict(f) for f in DEMO_FEATURES]}
NAMES = [f["name"] for f in DEMO_FEATURES]
PLANTS = (
    {"support_calls": 500},
    {"region": "atlantis"},
    {"income": 5_000_000.0},
    {"tenure_months": 900},
    {"monthly_charges": -400.0},
)


def rows_of(n: int, seed: int) -> list[dict]:
    frame = demo_data.generate(n, seed=seed)[NAMES].astype(object)
    return [
        {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in row.items()}
        for row in frame.to_dict("records")
    ]


@pytest.fixture(scope="module")
def trained() -> dict:
    """A reference profile with the outlier detector fitted and summarised as training does."""
    spec = load_spec(
        {
            "name": "churn",
            "source": {"kind": "demo", "rows": 1500, "seed": 7},
            "target": "churned",
            "features": [dict(f) for f in DEMO_FEATURES],
            "algorithm": "sklearn.linear_model.LogisticRegression",
        }
    )
    train = steps.typed_frame(demo_data.generate(1500, seed=7), spec)
    features = spec["features"]
    detector = steps.fit_outlier_detector(train, features, 0)
    reference = {
        "features": profile.reference_profile(train, features, lambda v: v),
        "input": steps.input_layout(detector, features),
        "outlier_detector": steps.detector_summary(detector, train, features, "0" * 64),
    }
    return {"detector": detector, "profile": reference}


def test_the_threshold_and_fences_are_recorded_with_the_detector(trained):
    info = trained["profile"]["outlier_detector"]
    assert info["threshold"] == info["training_score_quantiles"]["0.01"]
    assert info["threshold_quantile"] == 0.01 and info["fence_iqr_multiple"] == 3.0
    assert info["fences"]["support_calls"]["high"] < 500
    assert "region" not in info["fences"] and "has_partner" not in info["fences"]


def test_planted_outliers_are_flagged_and_clean_rows_are_not(trained):
    flag = detector_from(trained["detector"], trained["profile"])
    clean = rows_of(100, seed=99)
    planted = [{**row, **PLANTS[i % len(PLANTS)]} for i, row in enumerate(rows_of(100, seed=98))]
    assert flag(planted).mean() >= 0.9
    assert flag(clean).mean() <= 0.05


def test_a_quarter_of_rows_with_500_support_calls_and_an_unseen_region_is_a_quarter(trained):
    flag = detector_from(trained["detector"], trained["profile"])
    rows = rows_of(100, seed=97)
    for row in rows[:25]:
        row.update(support_calls=500, region="atlantis")
    report = check_rows(rows, SCHEMA, trained["profile"], DEFAULT_THRESHOLDS, scorer=flag)
    assert set(range(25)) <= set(report.outliers["rows"])
    assert report.outliers["share"] == pytest.approx(0.25, abs=0.03)
    assert report.outliers["by_rule"]["out_of_range"] == 25
    assert report.outliers["by_rule"]["unseen_category"] == 25
    assert report.outliers["detector"]["threshold"] == pytest.approx(
        trained["profile"]["outlier_detector"]["threshold"]
    )
    assert "outliers" in report.failing


def test_a_detector_recorded_without_threshold_or_fences_falls_back_to_its_profile(trained):
    info = dict(trained["profile"]["outlier_detector"])
    for key in ("threshold", "threshold_quantile", "fence_iqr_multiple", "fences"):
        info.pop(key)
    old = {**trained["profile"], "outlier_detector": info}
    flag = detector_from(trained["detector"], old)
    assert flag.threshold == pytest.approx(info["training_score_quantiles"]["0.01"])
    assert flag.fences["support_calls"][1] < 500
    assert flag([{**rows_of(1, seed=5)[0], "support_calls": 500}]).tolist() == [True]


def test_missing_values_are_not_outliers(trained):
    flag = detector_from(trained["detector"], trained["profile"])
    found = flag.rules([{**rows_of(1, seed=4)[0], "income": None, "region": None}])
    assert not found["out_of_range"][0] and not found["unseen_category"][0]
