"""Retention per deployment: subjects forgotten N days after their last prediction, floor enforced."""

from __future__ import annotations

import time
from typing import Any

import pytest
import sqlalchemy as sa

from ledger.application import Ledger
from ledger.domain.predictions import Prediction
from ledger.errors import InvalidCommand
from policies.retention import DAY_US, RULE, run_retention, set_retention

SCHEMA = {
    "features": [
        {"name": "customer_id", "type": "category", "personal": True},
        {"name": "tenure", "type": "number"},
    ],
    "subject_field": "customer_id",
}


def deploy(ledger: Ledger, name: str) -> None:
    ledger.create_deployment(
        name=name,
        task="regression",
        schema=SCHEMA,
        policy={"name": "manual"},
        positive_label=None,
        outcome_maturity_days=0,
        actor="test",
    )


def predict(ledger: Ledger, deployment: str, request_id: str, subject: str) -> int:
    """Record a sealed prediction; returns its recorded-at."""
    plain, sealed = ledger.sealer.seal(
        SCHEMA, {"customer_id": subject, "tenure": 1}, deployment=deployment, request_id=request_id
    )
    prediction = Prediction(
        deployment=deployment,
        deployment_version=1,
        request_id=request_id,
        body_digest="x",
        features=plain,
        sealed=sealed,
        outputs={"m": {"value": 1.0, "probabilities": None}},
        served_model="m",
        policy={"name": "manual"},
        leader="m",
        flags=[],
        scoring={"mode": "single"},
        actor="key:test",
    )
    [(_, position)] = ledger.record_predictions([prediction])
    with ledger.engine.connect() as conn:
        return conn.execute(
            sa.text("SELECT recorded_at FROM ledger_events WHERE id = :p"), {"p": position}
        ).scalar_one()


def display(ledger: Ledger, deployment: str, request_id: str) -> dict[str, Any]:
    from ledger import ids

    return ledger.sealer.unseal_for_display(
        ledger.prediction(ids.prediction_id(deployment, request_id))
    )


def test_retention_below_the_legal_floor_is_refused_without_an_override(ledger: Ledger) -> None:
    deploy(ledger, "churn")
    with pytest.raises(InvalidCommand, match="183-day legal floor"):
        set_retention(ledger, "churn", 90, actor="key:admin")
    assert "retention" not in ledger.deployment("churn").settings


def test_an_override_of_the_floor_is_recorded_with_its_actor_and_reason(ledger: Ledger) -> None:
    deploy(ledger, "churn")
    set_retention(
        ledger, "churn", 30, actor="key:dpo", override_reason="DPIA 2026-7: no legal hold"
    )
    retention = ledger.deployment("churn").settings["retention"]
    assert retention["days"] == 30
    assert retention["override"]["reason"] == "DPIA 2026-7: no legal hold"
    assert retention["override"]["actor"] == "key:dpo"


def test_subjects_idle_longer_than_retention_are_forgotten_only_there(ledger: Ledger) -> None:
    deploy(ledger, "churn")
    deploy(ledger, "upsell")
    set_retention(ledger, "churn", 200, actor="key:admin")
    idle_at = predict(ledger, "churn", "r-1", "idle-subject")
    predict(ledger, "upsell", "u-1", "idle-subject")
    time.sleep(0.01)
    predict(ledger, "churn", "r-2", "active-subject")

    report = run_retention(ledger, now_us=idle_at + 1 + 200 * DAY_US)

    assert [r.subject_ref for r in report.forgotten["churn"]] == [
        ledger.sealer.subject_ref("idle-subject")
    ]
    assert display(ledger, "churn", "r-1")["customer_id"] == "erased"
    assert display(ledger, "churn", "r-2")["customer_id"] == "active-subject"
    assert display(ledger, "upsell", "u-1")["customer_id"] == "idle-subject"
    assert run_retention(ledger, now_us=idle_at + 1 + 200 * DAY_US).count == 0


def test_each_automatic_erasure_is_recorded_with_the_rule_as_actor(ledger: Ledger) -> None:
    deploy(ledger, "churn")
    set_retention(ledger, "churn", 183, actor="key:admin")
    at = predict(ledger, "churn", "r-1", "someone")
    run_retention(ledger, now_us=at + 184 * DAY_US)
    with ledger.engine.connect() as conn:
        states = (
            conn.execute(
                sa.text("SELECT state FROM ledger_events WHERE topic = :t"),
                {"t": "ledger.domain.subjects:Subject.Forgotten"},
            )
            .scalars()
            .all()
        )
    assert len(states) == 1 and RULE.encode() in bytes(states[0]) and b'"churn"' in bytes(states[0])


def test_a_retention_set_below_the_floor_by_hand_is_never_acted_on(ledger: Ledger) -> None:
    deploy(ledger, "churn")
    ledger.change_deployment(
        "churn", "key:admin", settings={"retention": {"days": 7, "override": None}}
    )
    at = predict(ledger, "churn", "r-1", "someone")
    report = run_retention(ledger, now_us=at + 30 * DAY_US)
    assert "churn" in report.refused and report.count == 0
    assert display(ledger, "churn", "r-1")["customer_id"] == "someone"
