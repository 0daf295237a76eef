"""Fingerprints, reference profiles, the demo generator, plain values and schemas."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from ledger.errors import SchemaMismatch
from trainers import demo_data, profile
from trainers.demo import demo_specs
from trainers.plain import to_plain
from trainers.schema import check_fits_schema, deployment_for, input_schema
from trainers.spec import InvalidSpec


@pytest.fixture(scope="module")
def rows() -> pd.DataFrame:
    return demo_data.generate(300, 4)


def test_the_fingerprint_ignores_row_and_column_order(rows):
    shuffled = rows.sample(frac=1.0, random_state=1)[list(reversed(rows.columns))]
    assert profile.fingerprint(shuffled) == profile.fingerprint(rows)


def test_the_fingerprint_changes_with_one_value_or_one_type(rows):
    changed = rows.copy()
    changed.loc[7, "monthly_charges"] += 0.01
    assert profile.fingerprint(changed) != profile.fingerprint(rows)
    retyped = rows.assign(tenure_months=rows["tenure_months"].astype("float64"))
    assert profile.fingerprint(retyped) != profile.fingerprint(rows)


def test_a_dataset_description_has_rows_columns_and_its_time_range(rows):
    described = profile.describe_dataset(rows, "event_time")
    assert described["rows"] == 300
    assert {"name": "income", "dtype": "float64", "type": "number"} in described["columns"]
    assert (
        described["time_range"]["start"]
        < described["time_range"]["end"]
        <= "2026-11-01T00:00:00.000000Z"
    )
    json.dumps(described, allow_nan=False)


FEATURES = [
    {"name": "income", "type": "number", "personal": True},
    {"name": "customer_id", "type": "category", "personal": True},
    {"name": "monthly_charges", "type": "number"},
    {"name": "region", "type": "category"},
    {"name": "has_partner", "type": "boolean"},
]


def test_the_profile_summarises_features_without_personal_plaintext(rows):
    frame = rows.assign(has_partner=rows["has_partner"].astype(float))
    found = profile.reference_profile(frame, FEATURES, hasher=lambda v: "h:" + str(hash(v)))
    text = json.dumps(found, allow_nan=False)
    for value in rows["customer_id"].unique():
        assert value not in text
    for value in rows["income"].dropna().unique():
        assert json.dumps(float(value)) not in text
    assert set(found["income"]) >= {"null_share", "buckets"} and "min" not in found["income"]
    assert found["monthly_charges"]["min"] == rows["monthly_charges"].min()
    assert found["monthly_charges"]["quantiles"]["0.5"] == pytest.approx(
        rows["monthly_charges"].median()
    )
    assert sum(found["region"]["frequencies"].values()) == pytest.approx(1.0)
    assert found["income"]["null_share"] == pytest.approx(rows["income"].isna().mean())
    assert sum(found["monthly_charges"]["histogram"]["shares"]) == pytest.approx(1.0)


def test_the_demo_generator_is_deterministic_per_seed():
    assert demo_data.generate(100, 9).equals(demo_data.generate(100, 9))
    assert not demo_data.generate(100, 9).equals(demo_data.generate(100, 10))


def test_demo_rows_span_ninety_days_before_the_end_in_utc():
    end = datetime(2026, 3, 3, tzinfo=UTC)
    times = demo_data.generate(500, 1, end=end)["event_time"]
    assert str(times.dt.tz) == "UTC" and times.is_monotonic_increasing
    assert pd.Timestamp(end) - pd.Timedelta(days=90) <= times.min() and times.max() < pd.Timestamp(
        end
    )


def test_churn_follows_the_known_logistic_function():
    frame = demo_data.generate(20_000, 2)
    assert frame["churned"].mean() == pytest.approx(
        demo_data.churn_probability(frame).mean(), abs=0.015
    )
    assert frame["income"].isna().mean() == pytest.approx(0.08, abs=0.01)


def test_drift_moves_income_and_charges_and_brings_an_unseen_region():
    before, after = demo_data.generate(5000, 2), demo_data.generate(5000, 2, drift=True)
    assert after["income"].mean() > 1.2 * before["income"].mean()
    assert after["monthly_charges"].mean() > before["monthly_charges"].mean() + 10
    assert demo_data.DRIFT_REGION in set(after["region"]) and demo_data.DRIFT_REGION not in set(
        before["region"]
    )
    assert not np.allclose(demo_data.churn_logit(after, True), demo_data.churn_logit(after, False))


def test_plain_values_are_json_safe():
    value = {
        "n": np.int64(3),
        "x": np.float32(0.5),
        "nan": float("nan"),
        "t": pd.Timestamp("2026-01-01T00:00:00Z"),
        "arr": np.array([1, 2]),
        "missing": pd.NaT,
        "flag": np.bool_(True),
    }
    assert to_plain(value) == {
        "n": 3,
        "x": 0.5,
        "nan": None,
        "t": "2026-01-01T00:00:00.000000Z",
        "arr": [1, 2],
        "missing": None,
        "flag": True,
    }
    json.dumps(to_plain(value), allow_nan=False)


def test_demo_specs_give_two_deployments_of_two_models_each():
    specs = demo_specs(end="2026-11-01T00:00:00Z")
    by_deployment = {}
    for spec in specs:
        by_deployment.setdefault(spec["deployment"], []).append(spec["task"])
    assert by_deployment == {"churn": ["classification"] * 2, "lifetime-value": ["regression"] * 2}


def test_the_input_schema_adds_the_subject_as_a_personal_field():
    churn = demo_specs(end="2026-11-01T00:00:00Z")[:2]
    schema = input_schema(*churn)
    assert schema["subject_field"] == "customer_id"
    assert {
        "name": "customer_id",
        "type": "category",
        "nullable": False,
        "personal": True,
    } in schema["features"]
    assert {"name": "income", "type": "number", "nullable": True, "personal": False} in schema[
        "features"
    ]
    created = deployment_for(*churn)
    assert (created["name"], created["task"], created["positive_label"]) == (
        "churn",
        "classification",
        1,
    )


def test_a_feature_typed_two_ways_or_missing_from_a_deployment_is_refused():
    spec = demo_specs(end="2026-11-01T00:00:00Z")[0]
    other = {
        **spec,
        "features": [
            {**f, "type": "category"} if f["name"] == "income" else f for f in spec["features"]
        ],
    }
    with pytest.raises(InvalidSpec, match="income"):
        input_schema(spec, other)
    with pytest.raises(SchemaMismatch, match="income"):
        check_fits_schema(other, input_schema(spec), "churn")
