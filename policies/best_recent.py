"""best_recent: lead with the model that did best over the last n days of matured outcomes.

Models are compared only on predictions that every compared model scored and whose
outcome had matured (the prediction is older than the deployment's
outcome_maturity_days). A challenger replaces the leader when it beats it on the
policy's metric with at least `min_outcomes` rows and a 95% bootstrap interval of the
difference that excludes zero; the change is recorded with its evidence.
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
    """Promote the best model if it beats the leader with confidence; the decision, or None."""
    deployment = ledger.deployment(deployment_name)
    policy = deployment.policy
    if (
        policy.get("name") != "best_recent"
        or len(deployment.models) < 2
        or deployment.leader is None
    ):
        return None
    found = _compare(ledger, deployment, now_position)
    if found is None:
        return None
    ledger.promote(
        deployment_name,
        found["model_id"],
        reason=found["reason"],
        actor=ACTOR,
        evidence=found["evidence"],
        expected_version=deployment.version,
    )
    return found


def _compare(ledger: Ledger, deployment: Any, now_position: int | None) -> dict[str, Any] | None:
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
    rows, position = scored_outcomes(
        ledger.engine, deployment.name, from_us, to_us, now_position, wait=5.0
    )
    rows = [r for r in rows if all(m in r["outputs"] for m in models)]  # rows every model scored
    if len(rows) < policy["min_outcomes"]:
        return None
    scores = {m: score(deployment.task, metric, rows, m, deployment.positive_label) for m in models}
    best = (min if lower else max)(models, key=lambda m: (scores[m], m != deployment.leader))
    leader = deployment.leader
    if best == leader or scores[best] == scores[leader]:
        return None
    low, high = interval(
        deployment.task, metric, rows, best, leader, deployment.positive_label, seed=position
    )
    if (high >= 0) if lower else (low <= 0):
        return None  # not confidently better
    evidence = {
        "policy": {**policy, "version": ACTOR},
        "metric": metric,
        "scores": scores,
        "count": len(rows),
        "window": {"from": iso(from_us), "to": iso(to_us)},
        "position": position,
        "difference": scores[best] - scores[leader],
        "interval95": [low, high],
        "method": f"bootstrap, {RESAMPLES} resamples of the common rows",
    }
    reason = (
        f"best_recent: {metric} {scores[best]:.4f} vs leader {scores[leader]:.4f} on {len(rows)} "
        f"matured outcomes over {policy['days']} days"
    )
    return {"model_id": best, "previous": leader, "reason": reason, "evidence": evidence}


def evaluate_all(
    ledger: Ledger, names: Sequence[str], now_position: int | None = None
) -> list[dict[str, Any]]:
    """The scheduled run (and the hook when outcomes arrive): every named deployment once."""
    return [d for name in names if (d := evaluate(ledger, name, now_position)) is not None]
