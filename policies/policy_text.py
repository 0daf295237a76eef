"""A deployment's serving policy in words: who answers, and how a new model can come to lead."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def describe(policy: Mapping[str, Any], maturity_days: int) -> str:
    """One line a person reads: the policy with its own settings, as the ledger applies it."""
    name = str(policy.get("name", "manual"))
    if name == "best_recent":
        days, metric, least = policy.get("days"), policy.get("metric"), policy.get("min_outcomes")
        return (
            f"best_recent over the last {days} days on {metric}: a challenger is promoted "
            f"once it beats the leader on at least {least} matured outcomes (outcomes mature "
            f"after {maturity_days} day{'' if maturity_days == 1 else 's'}) with a 95% bootstrap interval that excludes zero"
        )
    if name == "majority_vote":
        return (
            "majority_vote: with three models or more each answer is the commonest value, "
            "ties to the leader; with fewer the leader answers; a new model votes from its "
            "first request"
        )
    return "manual: the leader serves until a person promotes another model"


NEW_MODEL = {  # what becomes of a model that joins a deployment, per policy
    "manual": "a person decides whether it leads",
    "best_recent": "best_recent promotes it if it wins on matured outcomes",
    "majority_vote": "it votes from its first request",
}


def new_model(policy_name: str) -> str:
    """What becomes of a model that joins under this policy."""
    return NEW_MODEL.get(policy_name, NEW_MODEL["manual"])
