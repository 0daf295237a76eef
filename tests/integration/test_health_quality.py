"""Quality checks on both backends: windows of recent predictions and batches, on demo data."""

from __future__ import annotations

from ledger.domain.predictions import Prediction
from policies.quality_windows import check_batch, check_recent_windows
from projections import health_queries as q
from projections.health import HealthProjection
from projections.runner import catch_up
from serving.rows import checked_rows
from tests.integration import health_support
from tests.integration.health_support import demo_rows

churn = health_support.churn  # the fixture


def record(ledger, rows: list[dict], prefix: str) -> list[str]:
    predictions = [
        Prediction(
            deployment="churn",
            deployment_version=1,
            request_id=f"{prefix}{i}",
            body_digest=f"{prefix}{i}",
            features=row,
            sealed=None,
            outputs={"m": {"value": 0}},
            served_model="m",
            policy={"name": "manual"},
            leader="m",
            flags=[],
            scoring={"mode": "single"},
            actor="test",
        )
        for i, row in enumerate(rows)
    ]
    ledger.record_predictions(predictions)
    return [str(p.id) for p in predictions]


def drifted_features(check) -> set[str]:
    return {f.split(":", 1)[1] for f in check.failing if f.startswith("drift")}


def test_windows_of_demo_predictions_show_drift_only_with_the_drift_switch_on(churn):
    calm_ids = record(churn, demo_rows(300, seed=11, drift=False), "calm-")
    [calm] = check_recent_windows(churn, window=300)
    drifted_ids = record(churn, demo_rows(300, seed=12, drift=True), "drift-")
    [drifted] = check_recent_windows(churn, window=300)

    assert calm.covers["predictions"] == calm_ids and drifted.covers["predictions"] == drifted_ids
    assert drifted_features(calm) == set()
    assert {"income", "monthly_charges", "region"} <= drifted_features(drifted)
    assert drifted.reference["model_id"] == churn.deployment("churn").leader
    assert set(drifted.outliers["predictions"]) <= set(drifted_ids)
    assert drifted.outliers["share"] > calm.outliers["share"]


def test_a_window_is_checked_once_and_partial_windows_wait_unless_flushed(churn):
    record(churn, demo_rows(150, seed=3, drift=False), "a-")
    assert check_recent_windows(churn, window=100) != []
    assert check_recent_windows(churn, window=100) == []
    [rest] = check_recent_windows(churn, window=100, flush=True)
    assert rest.covers["rows"] == 50
    catch_up(churn.engine, HealthProjection)
    with churn.engine.connect() as conn:
        checks = q.quality_checks(conn, "churn")
    assert [c["rows"] for c in checks] == [50, 100]
    assert checks[0]["source"] == "window" and len(checks[0]["predictions"]) == 50


def test_a_batch_sent_in_is_checked_and_recorded_once_per_batch_id(churn):
    rows = demo_rows(200, seed=5, drift=True)
    first = check_batch(
        churn, "churn", rows, actor="key:abc", checker=checked_rows, batch_id="nightly-1"
    )
    again = check_batch(
        churn, "churn", rows, actor="key:abc", checker=checked_rows, batch_id="nightly-1"
    )
    assert first.id == again.id and first.covers["batch"]["rows"] == 200
    assert "unseen_categories:region" in first.failing


def test_a_quarter_of_planted_outliers_in_a_batch_is_an_outlier_share_of_a_quarter(churn):
    rows = demo_rows(100, seed=31, drift=False)
    for row in rows[:25]:
        row.update(support_calls=500, region="atlantis")
    check = check_batch(churn, "churn", rows, "test", checker=checked_rows)
    assert set(range(25)) <= set(check.outliers["rows"])
    assert abs(check.outliers["share"] - 0.25) <= 0.03
    assert check.outliers["by_rule"]["unseen_category"] == 25
    recorded = churn.training_run(check.reference["training_run_id"]).reference_profile
    assert check.outliers["detector"]["threshold"] == recorded["outlier_detector"]["threshold"]
