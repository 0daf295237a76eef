"""best_recent promotes a challenger that beats the leader on matured, commonly scored rows."""

from __future__ import annotations

import random
from collections.abc import Callable

from api.commands.autopilot import summary
from ledger.application import Ledger
from ledger.domain.predictions import Prediction
from policies.autopilot.passes import run_pass
from policies.best_recent import ACTOR, decide, evaluate
from projections.predictions import PredictionsProjection
from projections.runner import Runner
from tests.integration.test_projection_world import SCHEMA

POLICY = {"name": "best_recent", "days": 7, "min_outcomes": 30, "metric": "accuracy"}


def deploy(ledger: Ledger, maturity_days: int, n_models: int = 2) -> tuple[str, str]:
    ledger.create_deployment(
        name="br",
        task="classification",
        schema=SCHEMA,
        positive_label=1,
        policy=POLICY,
        outcome_maturity_days=maturity_days,
        actor="test:setup",
    )
    models = []
    for i in range(n_models):
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
    return models[0], models[-1]


def traffic(
    ledger: Ledger,
    leader: str,
    challenger: str,
    n: int,
    right: Callable[[int], tuple[bool, bool]] | None = None,
    prefix: str = "q",
) -> None:
    """n predictions with outcomes; `right(i)` says whether (leader, challenger) were right."""
    rng, d = random.Random(4), ledger.deployment("br")
    for i in range(n):
        actual = rng.randint(0, 1)
        leader_right, challenger_right = (
            right(i) if right else (rng.random() < 0.5, rng.random() < 0.95)
        )
        outputs = {
            leader: {"value": actual if leader_right else 1 - actual},
            challenger: {"value": actual if challenger_right else 1 - actual},
        }
        p = Prediction(
            deployment="br",
            deployment_version=d.version,
            request_id=f"{prefix}{i}",
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


def test_too_few_matured_outcomes_say_how_many_of_how_many(ledger: Ledger) -> None:
    leader, challenger = deploy(ledger, maturity_days=0)
    traffic(ledger, leader, challenger, 10)
    decision = decide(ledger, "br")
    assert not decision["changed"] and decision["why"] == "too_few_outcomes"
    evidence = decision["evidence"]
    assert evidence["count"] == 10 and evidence["required"] == 30
    assert evidence["per_model"] == {leader: 10, challenger: 10}
    assert decision["reason"].startswith("10 of the 30 matured outcomes needed")


def test_a_lead_inside_the_bootstrap_interval_is_no_significant_difference(ledger: Ledger) -> None:
    leader, challenger = deploy(ledger, maturity_days=0)
    # both right on the same 30 of 60 rows; the challenger also on 2 more: a lead of 2/60
    traffic(ledger, leader, challenger, 60, right=lambda i: (i < 30, i < 32))
    decision = decide(ledger, "br")
    assert decision["why"] == "not_significant" and ledger.deployment("br").leader == leader
    evidence = decision["evidence"]
    assert evidence["scores"][challenger] > evidence["scores"][leader]
    assert evidence["interval95"][0] <= 0 <= evidence["interval95"][1]
    assert evidence["method"].startswith("bootstrap") and evidence["challenger"] == challenger
    assert (
        "no significant difference" in decision["reason"] and "includes zero" in decision["reason"]
    )


def test_the_leader_scoring_best_and_a_single_model_are_reasons_too(ledger: Ledger) -> None:
    leader, challenger = deploy(ledger, maturity_days=0)
    traffic(ledger, leader, challenger, 40, right=lambda i: (True, i % 2 == 0))
    decision = decide(ledger, "br")
    assert decision["why"] == "leader_best" and decision["evidence"]["scores"][leader] == 1.0


def test_one_model_only_is_said(ledger: Ledger) -> None:
    deploy(ledger, maturity_days=0, n_models=1)
    decision = decide(ledger, "br")
    assert decision["why"] == "one_model" and "one model only" in decision["reason"]


def test_the_autopilot_reports_why_best_recent_changed_nothing_and_the_policy(
    ledger: Ledger,
) -> None:
    leader, challenger = deploy(ledger, maturity_days=0)
    traffic(ledger, leader, challenger, 10)
    report = run_pass(ledger).as_dict()
    assert report["housekeeping"]["best_recent"]["br"]["why"] == "too_few_outcomes"
    [deployment] = report["deployments"]
    assert deployment["policy_text"].startswith("best_recent over the last 7 days on accuracy")
    text = summary(report)
    assert "br: unchanged (too_few_outcomes): 10 of the 30 matured outcomes needed" in text
    assert "policy best_recent over the last 7 days on accuracy" in text


def test_the_autopilot_describes_a_majority_vote_deployment_as_such(ledger: Ledger) -> None:
    deploy(ledger, maturity_days=0)
    ledger.change_deployment("br", "test:admin", policy={"name": "majority_vote"})
    report = run_pass(ledger, housekeeping=False).as_dict()
    assert report["deployments"][0]["policy_text"].startswith("majority_vote: with three models")
    assert "policy majority_vote: with three models" in summary(report)
