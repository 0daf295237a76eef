"""best_recent promotes a challenger that beats the leader on matured, commonly scored rows."""

from __future__ import annotations

import random

from ledger.application import Ledger
from ledger.domain.predictions import Prediction
from policies.best_recent import ACTOR, evaluate
from projections.predictions import PredictionsProjection
from projections.runner import Runner
from tests.integration.test_projection_world import SCHEMA


def deploy(ledger: Ledger, maturity_days: int) -> tuple[str, str]:
    ledger.create_deployment(
        name="br",
        task="classification",
        schema=SCHEMA,
        positive_label=1,
        policy={"name": "best_recent", "days": 7, "min_outcomes": 30, "metric": "accuracy"},
        outcome_maturity_days=maturity_days,
        actor="test:setup",
    )
    models = []
    for i in range(2):
        model = ledger.register_model(
            name=f"m{i}",
            artifact_digest=f"{i:064x}",
            features=["region"],
            algorithm="x",
            task="classification",
            classes=[0, 1],
            training_run_id=None,
            provenance="declared",
            declared={},
            actor="test",
        )
        ledger.add_model("br", model, actor="test:admin")
        models.append(str(model))
    return models[0], models[1]


def traffic(ledger: Ledger, leader: str, challenger: str, n: int) -> None:
    rng, d = random.Random(4), ledger.deployment("br")
    for i in range(n):
        actual = rng.randint(0, 1)
        outputs = {
            leader: {"value": actual if rng.random() < 0.5 else 1 - actual},
            challenger: {"value": actual if rng.random() < 0.95 else 1 - actual},
        }
        p = Prediction(
            deployment="br",
            deployment_version=d.version,
            request_id=f"q{i}",
            body_digest="x",
            features={"region": "north"},
            sealed=None,
            outputs=outputs,
            served_model=leader,
            policy=d.policy,
            leader=leader,
            flags=[],
            scoring={"mode": "single"},
            actor="key:t",
        )
        ledger.record_predictions([p])
        ledger.record_outcome(p.id, actual, None, actor="key:t")
    Runner(ledger.engine, PredictionsProjection).catch_up()


def test_a_better_challenger_is_promoted_with_its_evidence(ledger: Ledger) -> None:
    leader, challenger = deploy(ledger, maturity_days=0)
    traffic(ledger, leader, challenger, 10)
    assert evaluate(ledger, "br") is None  # fewer than min_outcomes
    traffic(ledger, leader, challenger, 60)
    decision = evaluate(ledger, "br")
    assert decision is not None and decision["model_id"] == challenger
    deployment = ledger.deployment("br")
    assert deployment.leader == challenger and deployment.leader_set_by["actor"] == ACTOR
    evidence = deployment.leader_set_by["evidence"]
    assert evidence["count"] >= 30 and evidence["interval95"][0] > 0
    assert evidence["scores"][challenger] > evidence["scores"][leader]
    assert evaluate(ledger, "br") is None  # the best already leads


def test_outcomes_that_have_not_matured_are_not_compared(ledger: Ledger) -> None:
    leader, challenger = deploy(ledger, maturity_days=1)
    traffic(ledger, leader, challenger, 60)
    assert evaluate(ledger, "br") is None
    assert ledger.deployment("br").leader == leader
