"""Deployments and the model index, now or as of a position (a range lookup, no replay)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from ledger.errors import NotFound
from ledger.timeline import iso
from projections.deployments import DeploymentsProjection
from projections.models import ModelsProjection
from projections.snapshot import Snapshot, snapshot


def _valid_at(table: sa.Table, position: int) -> Any:
    return sa.and_(
        table.c.valid_from <= position,
        sa.or_(table.c.valid_to.is_(None), table.c.valid_to > position),
    )


def list_deployments(
    engine: sa.Engine, as_of: int | None = None, wait: float = 0.0
) -> dict[str, Any]:
    """Every deployment as it was at the position: leader, challengers, policy, who set the leader."""
    with snapshot(engine, DeploymentsProjection, as_of, wait) as snap:
        t = snap.tables["versions"]
        rows = snap.conn.execute(sa.select(t).where(_valid_at(t, snap.position)).order_by(t.c.name))
        return {"items": [_deployment(r) for r in rows.mappings()], **snap.stamp()}


def get_deployment(
    engine: sa.Engine, name: str, as_of: int | None = None, wait: float = 0.0
) -> dict[str, Any]:
    """One deployment at the position, with its leader history up to it."""
    with snapshot(engine, DeploymentsProjection, as_of, wait) as snap:
        t, h = snap.tables["versions"], snap.tables["leaders"]
        row = (
            snap.conn.execute(sa.select(t).where(t.c.name == name, _valid_at(t, snap.position)))
            .mappings()
            .first()
        )
        if row is None:
            raise NotFound(f"deployment {name!r} not found at position {snap.position}")
        history = snap.conn.execute(
            sa.select(h)
            .where(h.c.deployment == name, h.c.position <= snap.position)
            .order_by(h.c.position)
        ).mappings()
        leaders = [
            {
                **dict(r),
                "recorded_at": iso(r["recorded_at"]),
                "occurred_at": None if r["occurred_at"] is None else iso(r["occurred_at"]),
            }
            for r in history
        ]
        return {**_deployment(row), "leader_history": leaders, **snap.stamp()}


def _deployment(row: Any) -> dict[str, Any]:
    models = list(row["models"])
    return {
        "name": row["name"],
        "version": row["version"],
        "task": row["task"],
        "schema": row["schema"],
        "policy": row["policy"],
        "positive_label": row["positive_label"],
        "outcome_maturity_days": row["outcome_maturity_days"],
        "settings": row["settings"],
        "leader": row["leader"],
        "challengers": [m for m in models if m != row["leader"]],
        "models": models,
        "leader_set_by": row["leader_set_by"],
        "created_by": row["created_by"],
        "created_at": iso(row["created_at"]),
        "changed_at": iso(row["recorded_at"]),
        "changed_by": row["changed_by"],
        "valid_from": row["valid_from"],
    }


def list_models(
    engine: sa.Engine,
    *,
    deployment: str | None = None,
    limit: int = 100,
    after: str | None = None,
    as_of: int | None = None,
    wait: float = 0.0,
) -> dict[str, Any]:
    """The model index at the position (optionally only models that ever served a deployment)."""
    with snapshot(engine, ModelsProjection, as_of, wait) as snap:
        m, r = snap.tables["models"], snap.tables["roles"]
        query = (
            sa.select(m)
            .where(m.c.position <= snap.position)
            .order_by(m.c.model_id)
            .limit(limit + 1)
        )
        if deployment:
            query = query.where(
                m.c.model_id.in_(
                    sa.select(r.c.model_id).where(
                        r.c.deployment == deployment, r.c.valid_from <= snap.position
                    )
                )
            )
        if after:
            query = query.where(m.c.model_id > after)
        rows = list(snap.conn.execute(query).mappings())
        items = [_model(snap, row) for row in rows[:limit]]
        return {
            "items": items,
            "next_after": rows[limit - 1]["model_id"] if len(rows) > limit else None,
            **snap.stamp(),
        }


def get_model(
    engine: sa.Engine, model_id: str, as_of: int | None = None, wait: float = 0.0
) -> dict[str, Any]:
    """One model with its provenance and its roles over time, as of the position."""
    with snapshot(engine, ModelsProjection, as_of, wait) as snap:
        m = snap.tables["models"]
        row = (
            snap.conn.execute(
                sa.select(m).where(m.c.model_id == model_id, m.c.position <= snap.position)
            )
            .mappings()
            .first()
        )
        if row is None:
            raise NotFound(f"model {model_id} not found at position {snap.position}")
        return {**_model(snap, row), **snap.stamp()}


def _model(snap: Snapshot, row: Any) -> dict[str, Any]:
    r = snap.tables["roles"]
    roles = snap.conn.execute(
        sa.select(r)
        .where(r.c.model_id == row["model_id"], r.c.valid_from <= snap.position)
        .order_by(r.c.valid_from)
    ).mappings()
    history = [
        {
            "deployment": x["deployment"],
            "role": x["role"],
            "from": x["valid_from"],
            "actor": x["actor"],
            "to": x["valid_to"]
            if x["valid_to"] is not None and x["valid_to"] <= snap.position
            else None,
        }
        for x in roles
    ]
    current = {h["deployment"]: h["role"] for h in history if h["to"] is None}
    skip = ("recorded_at", "position")
    return {
        **{k: v for k, v in row.items() if k not in skip},
        "registered_at": iso(row["recorded_at"]),
        "occurred_at": None if row["occurred_at"] is None else iso(row["occurred_at"]),
        "registered_position": row["position"],
        "roles": current,
        "role_history": history,
    }
