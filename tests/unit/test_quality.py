"""PSI, KS and the checks against a reference profile, against hand and scipy figures."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from policies.quality import (
    DEFAULT_THRESHOLDS,
    categorical_psi,
    check_rows,
    ks_test,
    numeric_bins,
    numeric_psi,
    psi,
    recorded_rows,
    reference_sample,
    score_in_batches,
    thresholds_from,
)
from serving.rows import checked_rows

SCHEMA = {
    "features": [
        {"name": "income", "type": "number"},
        {"name": "region", "type": "category"},
        {"name": "active", "type": "boolean"},
    ]
}
DECILES = {"quantiles": {str(p / 10): float(p * 10) for p in range(11)}, "null_share": 0.0}
PROFILE = {
    "features": {
        "income": DECILES,
        "region": {"categories": {"north": 0.5, "south": 0.5}, "null_share": 0.0},
    }
}


def test_psi_matches_the_formula_worked_by_hand():
    expected, actual = [0.5, 0.5], [0.7, 0.3]
    by_hand = (0.7 - 0.5) * math.log(0.7 / 0.5) + (0.3 - 0.5) * math.log(0.3 / 0.5)
    assert psi(expected, actual) == pytest.approx(by_hand)
    assert psi(expected, expected) == 0.0


def test_numeric_bins_come_from_the_reference_deciles_with_equal_shares():
    edges, shares = numeric_bins(DECILES)
    assert list(edges) == [10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0, 90.0]
    assert shares == pytest.approx([0.1] * 10)


def test_tied_quantiles_merge_into_one_bin_holding_their_mass():
    edges, shares = numeric_bins({"quantiles": [0, 1, 1, 1, 5]})  # probabilities 0, .25, .5, .75, 1
    assert list(edges) == [1.0]
    assert shares == pytest.approx([0.75, 0.25])


def test_numeric_psi_is_zero_for_the_reference_and_matches_hand_bins_for_a_shift():
    uniform = np.arange(0.5, 100, 1.0)  # ten values in every decile bin
    assert numeric_psi(DECILES, uniform) == pytest.approx(0.0, abs=1e-12)
    shifted = np.concatenate(
        [np.full(50, 5.0), np.full(50, 95.0)]
    )  # half in the first bin, half in the last
    by_hand = 2 * (0.5 - 0.1) * math.log(0.5 / 0.1) + 8 * (1e-4 - 0.1) * math.log(1e-4 / 0.1)
    assert numeric_psi(DECILES, shifted) == pytest.approx(by_hand)


def test_categorical_psi_counts_unseen_categories_in_their_own_bin():
    values = ["north"] * 60 + ["south"] * 30 + ["west"] * 10
    by_hand = (
        (0.6 - 0.5) * math.log(0.6 / 0.5)
        + (0.3 - 0.5) * math.log(0.3 / 0.5)
        + (0.1 - 1e-4) * math.log(0.1 / 1e-4)
    )
    assert categorical_psi({"north": 0.5, "south": 0.5}, values) == pytest.approx(by_hand)


def test_ks_is_scipys_two_sample_test_against_the_reference_sample():
    values = np.random.default_rng(1).normal(60, 10, 500)
    statistic, pvalue = ks_test(DECILES, values)
    expected = stats.ks_2samp(reference_sample(DECILES), values)
    assert (statistic, pvalue) == (
        pytest.approx(expected.statistic),
        pytest.approx(expected.pvalue),
    )
    assert reference_sample({"quantiles": [0, 1], "sample": [3, 4]}).tolist() == [3.0, 4.0]


def test_a_batch_like_the_reference_passes_every_check():
    rng = np.random.default_rng(7)
    rows = [
        {"income": float(x), "region": r, "active": True}
        for x, r in zip(rng.uniform(0, 100, 400), rng.choice(["north", "south"], 400), strict=True)
    ]
    report = check_rows(rows, SCHEMA, PROFILE, DEFAULT_THRESHOLDS)
    assert report.failing == []
    assert report.features["income"]["psi"] < 0.05
    assert report.features["region"]["unseen_share"] == 0.0


def test_a_drifted_batch_fails_drift_range_nulls_and_unseen_categories():
    rng = np.random.default_rng(7)
    rows = [
        {
            "income": float(x) if i % 4 else None,
            "region": "west" if i % 5 == 0 else "north",
            "active": False,
        }
        for i, x in enumerate(rng.uniform(60, 140, 400))
    ]
    report = check_rows(rows, SCHEMA, PROFILE, DEFAULT_THRESHOLDS)
    assert {
        "drift_psi:income",
        "drift_ks:income",
        "range:income",
        "null_share:income",
        "unseen_categories:region",
        "drift_psi:region",
    } <= set(report.failing)
    assert report.features["region"]["unseen"] == ["west"]


def test_recorded_rows_that_break_the_schema_fail_the_schema_check():
    rows = [{"income": "lots", "region": "north", "active": True}, {"income": 1.0, "colour": "red"}]
    checked = recorded_rows(rows, SCHEMA)
    assert checked.errors == {0: {"income": "Not a valid number."}, 1: {"colour": "Unknown field."}}
    report = check_rows(rows, SCHEMA, PROFILE, DEFAULT_THRESHOLDS)
    assert "schema" in report.failing and report.outliers["bad_rows"] == 2


def test_a_batch_counts_each_row_the_row_schema_refuses_and_checks_the_rest():
    rows = [
        {"income": 5.0, "region": "north", "active": True},
        {"income": "seven", "region": "north", "active": True},  # mistyped
        {"income": 5.0, "active": False},  # a required field missing
        {"income": 5.0, "region": "south", "active": True, "colour": "red"},  # unknown
    ]
    scored = []

    def scorer(good):
        scored.extend(good)
        return np.array([True] * len(good))

    checked = checked_rows(SCHEMA, rows)
    assert checked.loaded[0] == rows[0] and checked.loaded[1:] == [None, None, None]
    report = check_rows(rows, SCHEMA, PROFILE, DEFAULT_THRESHOLDS, scorer, checked)
    [schema] = [r for r in report.results if r["check"] == "schema"]
    assert schema["value"] == 0.75 and not schema["passed"]
    assert report.outliers["bad_rows"] == 3
    assert report.outliers["field_errors"] == {"income": 1, "region": 1, "colour": 1}
    assert report.outliers["type_errors"][0] == "row 1: income: Not a valid number."
    assert scored == [rows[0]] and report.outliers["rows"] == [0]
    assert report.features["income"]["rows"] == 1


def test_few_rows_skip_the_drift_tests_rather_than_guess():
    report = check_rows([{"income": 500.0, "region": "north"}], SCHEMA, PROFILE, DEFAULT_THRESHOLDS)
    assert report.features["income"]["psi"] is None
    assert "range:income" in report.failing and "drift_psi:income" not in report.failing


def test_outliers_are_scored_in_micro_batches_and_named_by_row():
    calls = []

    def scorer(rows):
        calls.append(len(rows))
        return np.array([row["income"] > 99 for row in rows])

    rows = [{"income": float(i % 101), "region": "north"} for i in range(25)] + [
        {"income": 100.0, "region": "north"}
    ]
    flags = score_in_batches(scorer, rows, batch_size=10)
    assert calls == [10, 10, 6] and np.flatnonzero(flags).tolist() == [25]
    report = check_rows(rows, SCHEMA, PROFILE, DEFAULT_THRESHOLDS, scorer=scorer)
    assert report.outliers["rows"] == [25] and report.outliers["share"] == pytest.approx(
        1 / 26, abs=1e-6
    )


def test_thresholds_come_from_the_deployment_settings():
    thresholds = thresholds_from({"quality_thresholds": {"psi": 0.5, "bogus": 1}})
    assert thresholds["psi"] == 0.5 and "bogus" not in thresholds
    assert thresholds_from(None) == DEFAULT_THRESHOLDS


DEMO_FEATURES = [
    {"name": "tenure_months", "type": "integer"},
    {"name": "monthly_charges", "type": "number"},
    {"name": "support_calls", "type": "integer"},
    {"name": "income", "type": "number"},
    {"name": "region", "type": "category"},
    {"name": "plan", "type": "category"},
    {"name": "has_partner", "type": "boolean"},
]


def demo_rows(n: int, seed: int, drift: bool) -> list[dict]:
    from trainers import demo_data

    frame = demo_data.generate(n, seed=seed, drift=drift)[[f["name"] for f in DEMO_FEATURES]]
    return [
        {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}
        for row in frame.astype(object).to_dict("records")
    ]


def test_the_trainers_profile_of_demo_data_finds_drift_only_when_the_switch_is_on():
    from trainers import demo_data
    from trainers.profile import reference_profile

    training = demo_data.generate(3000, seed=1)
    profile = reference_profile(training, DEMO_FEATURES, hasher=lambda s: s)
    schema = {"features": DEMO_FEATURES}
    calm = check_rows(demo_rows(500, 2, drift=False), schema, profile, DEFAULT_THRESHOLDS)
    drifted = check_rows(demo_rows(500, 2, drift=True), schema, profile, DEFAULT_THRESHOLDS)
    assert not [f for f in calm.failing if f.startswith("drift")]
    assert {
        "drift_psi:income",
        "drift_psi:monthly_charges",
        "unseen_categories:region",
        "null_share:income",
    } <= set(drifted.failing)
    assert drifted.features["region"]["unseen"] == ["central"]
