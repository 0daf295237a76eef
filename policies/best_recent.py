"""best_recent: lead with the model that did best over the last n days of matured outcomes.

Models are compared only on predictions that every compared model scored and whose
outcome had matured (the prediction is older than the deployment's
outcome_maturity_days). A challenger replaces the leader when it beats it on the
policy's metric with at least `min_outcomes` rows and a 95% bootstrap interval of the
difference that excludes zero; the change is recorded with its evidence. A decision that
changes nothing says why (WHY), with the same figures; it records no event.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

from ledger.application import Ledger
from ledger.timeline import iso
from projections import metrics
from projections.events import recorded_at_of
from projections.query_outcomes import scored_outcomes

ACTOR = "rule:best_recent@1"
LOWER_IS_BETTER = ("mae", "rmse")
DAY_US = 86_400_000_000
RESAMPLES = 200


def score(
    task: str, metric: str, rows: Sequence[dict[str, Any]], model: str, positive_label: Any
) -> float:
    """One model's metric on rows of {outputs, actual}."""
    if task == "classification":
        confusion = Counter((r["actual"], r["outputs"][model]) for r in rows)
        return float(metrics.classification(confusion, positive_label).get(metric, 0.0))
    errors = [float(r["outputs"][model]) - float(r["actual"]) for r in rows]
    n = len(errors)
    return float(
        metrics.regression(n, sum(errors), sum(map(abs, errors)), sum(e * e for e in errors))[
            metric
        ]
    )


def interval(
    task: str,
    metric: str,
    rows: Sequence[dict[str, Any]],
    best: str,
    leader: str,
    positive_label: Any,
    seed: int,
) -> tuple[float, float]:
    """95% bootstrap interval of score(best) - score(leader) (seeded: the same log, the same answer)."""
    rng = random.Random(seed)
    diffs = []
    for _ in range(RESAMPLES):
        sample = [rows[rng.randrange(len(rows))] for _ in rows]
        diffs.append(
            score(task, metric, sample, best, positive_label)
            - score(task, metric, sample, leader, positive_label)
        )
    diffs.sort()
    return diffs[int(0.025 * RESAMPLES)], diffs[int(0.975 * RESAMPLES) - 1]


def evaluate(
    ledger: Ledger, deployment_name: str, now_position: int | None = None
) -> dict[str, Any] | None:
    """Promote the best model if it beats the leader with confidence; the promotion, or None."""
    decision = decide(ledger, deployment_name, now_position)
    return decision if decision["changed"] else None


def decide(ledger: Ledger, deployment_name: str, now_position: int | None = None) -> dict[str, Any]:
    """Promote the best model if it beats the leader with confidence; either way, say why.

    `changed`, `why` (a code from WHY), `reason` (one line with the figures), and for a
    comparison its `evidence`; a promotion also names `model_id` and `previous`.
    """
    deployment = ledger.deployment(deployment_name)
    policy = deployment.policy
    if policy.get("name") != "best_recent":
        return unchanged("policy", f"the policy is {policy.get('name', 'manual')}, not best_recent")
    if deployment.leader is None:
        return unchanged("no_leader", "no leader yet: nothing to compare against")
    if len(deployment.models) < 2:
        return unchanged(
            "one_model", f"one model only ({deployment.leader}): no challenger to compare"
        )
    found = _compare(ledger, deployment, now_position)
    if not found["changed"]:
        return found
    ledger.promote(
        deployment_name,
        found["model_id"],
        reason=found["reason"],
        actor=ACTOR,
        evidence=found["evidence"],
        expected_version=deployment.version,
    )
    return found


WHY = {  # the reasons a decision leaves the leader in place, and the one it does not
    "policy": "the deployment's policy is not best_recent",
    "no_leader": "no leader to compare against",
    "one_model": "one model only",
    "too_few_outcomes": "fewer matured outcomes scored by every model than min_outcomes",
    "leader_best": "the leader scores best (or ties)",
    "not_significant": "the best challenger's lead is within the bootstrap interval",
    "promoted": "a challenger beat the leader with confidence",
}


def unchanged(why: str, reason: str, evidence: dict[str, Any] | None = None) -> dict[str, Any]:
    """A decision that leaves the leader in place, with its reason."""
    return {"changed": False, "why": why, "reason": reason, "evidence": evidence}


def _compare(ledger: Ledger, deployment: Any, now_position: int | None) -> dict[str, Any]:
    policy, models = deployment.policy, list(deployment.models)
    metric, lower = policy["metric"], policy["metric"] in LOWER_IS_BETTER
    with ledger.engine.connect() as conn:
        now_us = (
            recorded_at_of(conn, now_position)
            if now_position is not None
            else int(time.time() * 1e6)
        )
    to_us = now_us - deployment.outcome_maturity_days * DAY_US
    from_us = now_us - policy["days"] * DAY_US
    scored, position = scored_outcomes(
        ledger.engine, deployment.name, from_us, to_us, now_position, wait=5.0
    )
    rows = [r for r in scored if all(m in r["outputs"] for m in models)]  # every model scored
    evidence: dict[str, Any] = {
        "policy": {**policy, "version": ACTOR},
        "metric": metric,
        "count": len(rows),
        "window": {"from": iso(from_us), "to": iso(to_us)},
        "position": position,
    }
    if len(rows) < policy["min_outcomes"]:
        per_model = {m: sum(1 for r in scored if m in r["outputs"]) for m in models}
        evidence.update(required=policy["min_outcomes"], per_model=per_model)
        return unchanged(
            "too_few_outcomes",
            f"{len(rows)} of the {policy['min_outcomes']} matured outcomes needed (min_outcomes) "
            f"were scored by every model over {policy['days']} days; per model: "
            + ", ".join(f"{m} {n}" for m, n in per_model.items()),
            evidence,
        )
    scores = {m: score(deployment.task, metric, rows, m, deployment.positive_label) for m in models}
    best = (min if lower else max)(models, key=lambda m: (scores[m], m != deployment.leader))
    leader = deployment.leader
    evidence["scores"] = scores
    if best == leader or scores[best] == scores[leader]:
        return unchanged(
            "leader_best",
            f"the leader scores best: {metric} {scores[leader]:.4f} on {len(rows)} matured outcomes",
            evidence,
        )
    low, high = interval(
        deployment.task, metric, rows, best, leader, deployment.positive_label, seed=position
    )
    evidence.update(
        challenger=best,
        difference=scores[best] - scores[leader],
        interval95=[low, high],
        method=f"bootstrap, {RESAMPLES} resamples of the common rows",
    )
    figures = (
        f"{metric} {scores[best]:.4f} vs leader {scores[leader]:.4f} on {len(rows)} "
        f"matured outcomes over {policy['days']} days"
    )
    if (high >= 0) if lower else (low <= 0):
        return unchanged(
            "not_significant",
            f"no significant difference: challenger {best} {figures}; the 95% bootstrap "
            f"interval of the difference [{low:.4f}, {high:.4f}] includes zero",
            evidence,
        )
    return {
        "changed": True,
        "why": "promoted",
        "model_id": best,
        "previous": leader,
        "reason": f"best_recent: {figures}",
        "evidence": evidence,
    }


def evaluate_all(
    ledger: Ledger, names: Sequence[str], now_position: int | None = None
) -> list[dict[str, Any]]:
    """The scheduled run (and the hook when outcomes arrive): every named deployment once."""
    return [d for name in names if (d := evaluate(ledger, name, now_position)) is not None]
