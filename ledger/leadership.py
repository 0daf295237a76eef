"""Who made each model a deployment's leader, when (time and position), why, under which policy.

Read from the deployment's own events in the log, so the history agrees with the deployment
as the ledger replays it at any position: one indexed query for a page of deployments.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from ledger import ids, log
from ledger.domain.deployments import Deployment
from ledger.timeline import iso

_READ = (Deployment.Created, Deployment.PolicyChanged, Deployment.LeaderChanged)


def leader_histories(
    conn: sa.Connection, mapper: Any, names: Sequence[str], upto: int | None = None
) -> dict[str, list[dict[str, Any]]]:
    """Per deployment name: its leader changes up to a position (all when None), oldest first."""
    by_id = {str(ids.deployment_id(name)): name for name in names}
    found: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    if not by_id:
        return found
    policy: dict[str, Any] = {}
    for row in log.rows(conn, originators=list(by_id), classes=_READ, upto=upto):
        name, event = by_id[row.originator_id], log.decode(mapper, row)
        if isinstance(event, Deployment.LeaderChanged):
            found[name].append(leader_change(event, row, policy.get(name)))
        else:  # Created or PolicyChanged: the policy a later change was made under
            policy[name] = event.policy
    return found


def leader_change(event: Any, row: log.LogRow, policy: Any) -> dict[str, Any]:
    """One change of leader: the model, the one it replaced, and who, when, why, on what."""
    return {
        "model_id": event.model_id,
        "previous": event.previous,
        "recorded_at": iso(row.recorded_at),
        # the historic instant of loaded history (the demo's simulated one), else null
        "occurred_at": None if event.occurred_at is None else iso(event.occurred_at),
        "position": row.position,
        "actor": event.actor,
        "reason": event.reason,
        "policy": policy,
        "evidence": event.evidence,
    }


def leader_since(history: Sequence[dict[str, Any]], leader: str | None) -> dict[str, Any] | None:
    """When and where the current leader became leader (None without a leader)."""
    if leader is None or not history or history[-1]["model_id"] != leader:
        return None
    last = history[-1]
    return {
        "recorded_at": last["recorded_at"],
        "occurred_at": last["occurred_at"],
        "position": last["position"],
    }
