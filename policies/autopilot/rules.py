"""The autopilot's rebuild rules: each looks at evidence gathered since the last training.

Every rule answers with a Verdict: fired or not, why, and the evidence (figures,
window, thresholds) that a retraining records on its run's `trigger`. Counting only
what arrived after the deployment's last training run is what makes a pass
idempotent: once a rule has retrained, it needs new evidence to fire again.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ledger.application import Ledger
from ledger.domain.deployments import Deployment
from policies.autopilot.config import HIGHER_IS_BETTER, RULE_VERSIONS, rule_id
from policies.autopilot.evidence import LastTraining, matured_outcomes_since, recent_features
from policies.quality import check_rows, thresholds_from
from projections.cubes import DAY_US
from projections.query_performance import performance


@dataclass
class Context:
    """What every rule of one deployment sees in one pass."""

    ledger: Ledger
    deployment: Deployment
    last: LastTraining
    now_us: int


@dataclass
class Verdict:
    """One rule's answer: whether it fired, a sentence saying why, and the evidence."""

    rule: str
    fired: bool
    reason: str
    evidence: dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return rule_id(self.rule)

    def trigger(self) -> dict[str, Any]:
        """What a retraining records of this rule on its run."""
        return {
            "rule": self.id,
            "name": f"autopilot.{self.rule}",
            "version": RULE_VERSIONS[self.rule],
            "reason": self.reason,
            "evidence": self.evidence,
        }


def drift(ctx: Context, rule: Mapping[str, Any]) -> Verdict:
    """PSI per feature of the predictions since the last training against the leader's training profile."""
    reference = _leader_profile(ctx.ledger, ctx.deployment)
    if reference is None:
        return Verdict(
            "drift", False, "the leader has no captured training profile to compare with"
        )
    profile, names = reference
    rows, positions = recent_features(
        ctx.ledger, ctx.deployment.name, ctx.last.position, rule["window"]
    )
    window = {
        "rows": len(rows),
        "after_position": ctx.last.position,
        "from_position": positions[0] if positions else None,
        "to_position": positions[-1] if positions else None,
    }
    if len(rows) < rule["min_rows"]:
        return Verdict(
            "drift",
            False,
            f"{len(rows)} predictions since the last training; the rule needs {rule['min_rows']}",
            {"window": window},
        )
    thresholds = {**thresholds_from(ctx.deployment.settings), "psi": rule["psi"]}
    report = check_rows(rows, ctx.deployment.schema, profile, thresholds)
    psi = {
        name: f["psi"] for name, f in sorted(report.features.items()) if f.get("psi") is not None
    }
    over = {name: value for name, value in psi.items() if value > rule["psi"]}
    evidence = {
        "psi": psi,
        "drifted": over,
        "thresholds": {"psi": rule["psi"], "min_rows": rule["min_rows"]},
        "window": window,
        "reference": names,
    }
    if not over:
        return Verdict(
            "drift",
            False,
            f"no feature's PSI is above {rule['psi']} over {len(rows)} predictions",
            evidence,
        )
    listed = ", ".join(
        f"{name} {value:.3f}" for name, value in sorted(over.items(), key=lambda kv: -kv[1])
    )
    return Verdict(
        "drift", True, f"PSI above {rule['psi']} over {len(rows)} predictions: {listed}", evidence
    )


def _leader_profile(
    ledger: Ledger, deployment: Deployment
) -> tuple[dict[str, Any], dict[str, str]] | None:
    """The leader's training reference profile, and the model and run it came from."""
    if deployment.leader is None:
        return None
    model = ledger.model(deployment.leader)
    if not model.training_run_id:
        return None
    profile = ledger.training_run(model.training_run_id).reference_profile
    return (
        (profile, {"model_id": deployment.leader, "training_run_id": model.training_run_id})
        if profile
        else None
    )


def metric(ctx: Context, rule: Mapping[str, Any]) -> Verdict:
    """The leader's rolling metric under a floor, or worse than its test metric by more than a margin."""
    leader, name = ctx.deployment.leader, rule["metric"]
    if leader is None:
        return Verdict("metric", False, "the deployment has no leader")
    if (name in ("mae", "rmse")) != (ctx.deployment.task == "regression"):
        return Verdict(
            "metric",
            False,
            f"{name} is not measured for a {ctx.deployment.task} deployment; "
            "fix rules.metric.metric",
        )
    found = performance(
        ctx.ledger.engine,
        ctx.deployment.name,
        model=leader,
        window_days=rule["days"],
        now_us=ctx.now_us,
    )
    row: dict[str, Any] = next(
        (r for r in found["results"] if r["model_id"] == leader and r["slice_value"] is None), {}
    )
    count, value = int(row.get("count", 0)), row.get(name)
    new = matured_outcomes_since(ctx.ledger, ctx.deployment, ctx.last.position, ctx.now_us)
    tested = _test_metric(ctx.ledger, leader, name)
    evidence = {
        "metric": name,
        "model_id": leader,
        "value": value,
        "count": count,
        "test_value": tested,
        "new_outcomes": new,
        "window": {"days": rule["days"], **found["window"]},
        "thresholds": {
            k: rule[k] for k in ("floor", "max_drop", "min_outcomes", "min_new_outcomes")
        },
    }
    if count < rule["min_outcomes"] or value is None:
        return Verdict(
            "metric",
            False,
            f"{count} outcomes in {rule['days']} days; the rule needs {rule['min_outcomes']}",
            evidence,
        )
    if new < rule["min_new_outcomes"]:
        return Verdict(
            "metric",
            False,
            f"{new} new matured outcomes since the last training; the rule needs "
            f"{rule['min_new_outcomes']}",
            evidence,
        )
    broken = _broken(name, float(value), tested, rule)
    evidence["broken"] = broken
    if not broken:
        return Verdict(
            "metric", False, f"{name} {value:.3f} over {count} outcomes is within bounds", evidence
        )
    return Verdict(
        "metric", True, f"{name} {value:.3f} over {count} outcomes: {'; '.join(broken)}", evidence
    )


def _broken(name: str, value: float, tested: float | None, rule: Mapping[str, Any]) -> list[str]:
    """Which bounds the value breaks, said in words ("under the floor 0.6")."""
    higher, found = HIGHER_IS_BETTER[name], []
    if rule["floor"] is not None and (value < rule["floor"] if higher else value > rule["floor"]):
        found.append(f"{'under the floor' if higher else 'over the ceiling'} {rule['floor']}")
    if rule["max_drop"] is not None and tested is not None:
        drop = tested - value if higher else value - tested
        if drop > rule["max_drop"]:
            found.append(
                f"{drop:.3f} worse than its test {name} {tested:.3f} (margin {rule['max_drop']})"
            )
    return found


def _test_metric(ledger: Ledger, model_id: str, name: str) -> float | None:
    model = ledger.model(model_id)
    metrics = (
        ledger.training_run(model.training_run_id).metrics
        if model.training_run_id
        else (model.declared or {}).get("metrics")
    ) or {}
    value = metrics.get(name)
    return None if value is None else float(value)


def outcomes(ctx: Context, rule: Mapping[str, Any]) -> Verdict:
    """N new matured outcomes since the last training."""
    new = matured_outcomes_since(ctx.ledger, ctx.deployment, ctx.last.position, ctx.now_us)
    evidence = {
        "new_outcomes": new,
        "after_position": ctx.last.position,
        "thresholds": {"count": rule["count"]},
        "outcome_maturity_days": ctx.deployment.outcome_maturity_days,
    }
    fired = new >= rule["count"]
    return Verdict(
        "outcomes",
        fired,
        f"{new} new matured outcomes since the last training "
        f"({'at least' if fired else 'fewer than'} {rule['count']})",
        evidence,
    )


def schedule(ctx: Context, rule: Mapping[str, Any]) -> Verdict:
    """Every D days since the last training."""
    # a pass run with an injected clock dates its retraining by that clock, not the database's
    stamped = (
        (ctx.last.trigger or {}).get("evaluated_at_us")
        if isinstance(ctx.last.trigger, dict)
        else None
    )
    age = (ctx.now_us - max(ctx.last.recorded_at, int(stamped or 0))) / DAY_US
    evidence = {
        "days_since_last_training": round(age, 3),
        "last_training_run": ctx.last.run_id,
        "thresholds": {"days": rule["days"]},
    }
    fired = age >= rule["days"]
    return Verdict(
        "schedule",
        fired,
        f"{age:.1f} days since the last training "
        f"({'at least' if fired else 'under'} {rule['days']})",
        evidence,
    )


RULES: dict[str, Callable[[Context, Mapping[str, Any]], Verdict]] = {
    "drift": drift,
    "metric": metric,
    "outcomes": outcomes,
    "schedule": schedule,
}


def evaluate(ctx: Context, rules: Mapping[str, Mapping[str, Any]]) -> list[Verdict]:
    """Every configured rule's verdict, in a fixed order (drift, metric, outcomes, schedule)."""
    return [check(ctx, rules[name]) for name, check in RULES.items() if name in rules]
