"""Deployments over time: each version a row valid from one position to the next.

`as_of` is then a range lookup (valid_from <= T < valid_to), never a replay.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from ledger.domain.deployments import Deployment
from projections import events as ev
from projections.base import BIGINT, JSON, Projection

CARRIED = ("task", "schema", "policy", "positive_label", "outcome_maturity_days", "settings")


class DeploymentsProjection(Projection):
    """Deployment versions (leader, challengers, policy, who set the leader) and leader history."""

    name = "deployments"
    version = 2  # 2: leader history keeps occurred_at
    topics = frozenset(
        {
            Deployment.Created,
            Deployment.SchemaChanged,
            Deployment.PolicyChanged,
            Deployment.SettingsChanged,
            Deployment.ModelAdded,
            Deployment.ModelRetired,
            Deployment.LeaderChanged,
        }
    )

    @classmethod
    def define(cls, metadata: sa.MetaData, suffix: str) -> dict[str, sa.Table]:
        versions = sa.Table(
            f"pj_deployments{suffix}",
            metadata,
            sa.Column("name", sa.String(200), primary_key=True),
            sa.Column("valid_from", BIGINT, primary_key=True),
            sa.Column("valid_to", BIGINT, nullable=True),
            sa.Column("deployment_id", sa.String(36), nullable=False),
            sa.Column("version", sa.Integer, nullable=False),
            sa.Column("recorded_at", BIGINT, nullable=False),
            sa.Column("created_at", BIGINT, nullable=False),
            sa.Column("created_by", sa.String(200), nullable=False),
            sa.Column("changed_by", sa.String(200), nullable=False),
            *(sa.Column(c, JSON) for c in CARRIED),
            sa.Column("models", JSON, nullable=False),
            sa.Column("leader", sa.String(36)),
            sa.Column("leader_set_by", JSON),
            sa.Index(f"ix_pj_deployments_current{suffix}", "valid_to", "name"),
        )
        leaders = sa.Table(
            f"pj_leader_history{suffix}",
            metadata,
            sa.Column("position", BIGINT, primary_key=True),
            sa.Column("deployment", sa.String(200), nullable=False),
            sa.Column("recorded_at", BIGINT, nullable=False),
            sa.Column("occurred_at", BIGINT),  # loaded history's instant, else null
            sa.Column("model_id", sa.String(36), nullable=False),
            sa.Column("previous", sa.String(36)),
            sa.Column("reason", sa.Text, nullable=False),
            sa.Column("evidence", JSON, nullable=False),
            sa.Column("actor", sa.String(200), nullable=False),
            sa.Index(f"ix_pj_leader_history{suffix}", "deployment", "position"),
        )
        return {"versions": versions, "leaders": leaders}

    def apply(self, conn: sa.Connection, events: Sequence[ev.Event]) -> None:
        for event in events:
            if event.kind == "Deployment.Created":
                self._created(conn, event)
            else:
                self._changed(conn, event)

    def _created(self, conn: sa.Connection, e: ev.Event) -> None:
        s = e.state
        row = {c: s[c] for c in CARRIED}
        row.update(
            name=s["name"],
            valid_from=e.position,
            valid_to=None,
            deployment_id=e.originator_id,
            version=e.version,
            recorded_at=e.recorded_at,
            created_at=e.recorded_at,
            created_by=s["actor"],
            changed_by=s["actor"],
            models=[],
            leader=None,
            leader_set_by=None,
        )
        conn.execute(self.tables["versions"].insert().values(**row))

    def _changed(self, conn: sa.Connection, e: ev.Event) -> None:
        t = self.tables["versions"]
        current = (
            conn.execute(
                sa.select(t).where(t.c.deployment_id == e.originator_id, t.c.valid_to.is_(None))
            )
            .mappings()
            .first()
        )
        if current is None:
            return  # a deployment event without its creation cannot happen in an intact log
        row = dict(current)
        conn.execute(
            t.update()
            .where(t.c.name == row["name"], t.c.valid_from == row["valid_from"])
            .values(valid_to=e.position)
        )
        row.update(
            valid_from=e.position,
            valid_to=None,
            version=e.version,
            recorded_at=e.recorded_at,
            changed_by=e.state["actor"],
        )
        self._change(conn, row, e)
        conn.execute(t.insert().values(**row))

    def _change(self, conn: sa.Connection, row: dict[str, Any], e: ev.Event) -> None:
        s, kind = e.state, e.kind.split(".", 1)[1]
        if kind in ("SchemaChanged", "PolicyChanged", "SettingsChanged"):
            field = kind.removesuffix("Changed").lower()
            row[field] = s[field]
        elif kind == "ModelAdded":
            row["models"] = [*row["models"], s["model_id"]]
        elif kind == "ModelRetired":
            row["models"] = [m for m in row["models"] if m != s["model_id"]]
            if row["leader"] == s["model_id"]:
                row["leader"], row["leader_set_by"] = None, None
        elif kind == "LeaderChanged":
            row["leader"] = s["model_id"]
            row["leader_set_by"] = {
                "actor": s["actor"],
                "reason": s["reason"],
                "evidence": s["evidence"],
                "position": e.position,
                "recorded_at": e.recorded_at,
            }
            conn.execute(
                self.tables["leaders"]
                .insert()
                .values(
                    position=e.position,
                    deployment=row["name"],
                    recorded_at=e.recorded_at,
                    occurred_at=s.get("occurred_at"),
                    model_id=s["model_id"],
                    previous=s["previous"],
                    reason=s["reason"],
                    evidence=s["evidence"],
                    actor=s["actor"],
                )
            )
