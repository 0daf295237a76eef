"""The model index: each model's provenance, and its roles in deployments over time."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from ledger.domain.datasets import Dataset
from ledger.domain.deployments import Deployment
from ledger.domain.models import Model
from ledger.domain.training import TrainingRun
from projections import events as ev
from projections.base import BIGINT, JSON, Projection


class ModelsProjection(Projection):
    """Models with features, algorithm, params, data, code version, metrics; roles by range."""

    name = "models"
    version = 2  # 2: a trained model keeps its run's occurred_at
    topics = frozenset(
        [
            Model.Registered,
            TrainingRun.Started,
            TrainingRun.Completed,
            Dataset.Registered,
            Deployment.Created,
            Deployment.ModelAdded,
            Deployment.ModelRetired,
            Deployment.LeaderChanged,
        ]
    )

    @classmethod
    def define(cls, metadata: sa.MetaData, suffix: str) -> dict[str, sa.Table]:
        models = sa.Table(
            f"pj_models{suffix}",
            metadata,
            sa.Column("model_id", sa.String(36), primary_key=True),
            sa.Column("position", BIGINT, nullable=False),
            sa.Column("recorded_at", BIGINT, nullable=False),
            sa.Column("occurred_at", BIGINT),  # its run's, in loaded history; else null
            *(
                sa.Column(c, sa.String(200))
                for c in (
                    "name",
                    "algorithm",
                    "task",
                    "provenance",
                    "registered_by",
                    "training_run_id",
                    "spec_name",
                    "target",
                )
            ),
            sa.Column("artifact_digest", sa.String(64), nullable=False),
            *(
                sa.Column(c, JSON)
                for c in (
                    "features",
                    "classes",
                    "declared",
                    "params",
                    "code_version",
                    "datasets",
                    "data_time_range",
                    "metrics",
                )
            ),
            sa.Index(f"ix_pj_models_position{suffix}", "position"),
        )
        roles = sa.Table(
            f"pj_model_roles{suffix}",
            metadata,
            sa.Column("model_id", sa.String(36), primary_key=True),
            sa.Column("deployment", sa.String(200), primary_key=True),
            sa.Column("valid_from", BIGINT, primary_key=True),
            sa.Column("valid_to", BIGINT),
            sa.Column("role", sa.String(16), nullable=False),
            sa.Column("actor", sa.String(200), nullable=False),
            sa.Index(f"ix_pj_model_roles_deployment{suffix}", "deployment", "valid_from"),
        )
        runs = sa.Table(  # private: what a model row copies from its training run
            f"pj_model_runs{suffix}",
            metadata,
            sa.Column("run_id", sa.String(36), primary_key=True),
            sa.Column("started", JSON, nullable=False),
            sa.Column("metrics", JSON),
        )
        datasets = sa.Table(
            f"pj_model_datasets{suffix}",
            metadata,
            sa.Column("dataset_id", sa.String(36), primary_key=True),
            sa.Column("summary", JSON, nullable=False),
        )
        names = sa.Table(
            f"pj_model_deployment_names{suffix}",
            metadata,
            sa.Column("deployment_id", sa.String(36), primary_key=True),
            sa.Column("name", sa.String(200), nullable=False),
        )
        return {
            "models": models,
            "roles": roles,
            "runs": runs,
            "datasets": datasets,
            "names": names,
        }

    def apply(self, conn: sa.Connection, events: Sequence[ev.Event]) -> None:
        handlers = {
            "Model.Registered": self._registered,
            "TrainingRun.Started": self._run_started,
            "TrainingRun.Completed": self._run_completed,
            "Dataset.Registered": self._dataset,
            "Deployment.Created": self._deployment,
            "Deployment.ModelAdded": self._model_added,
            "Deployment.ModelRetired": self._model_retired,
            "Deployment.LeaderChanged": self._leader_changed,
        }
        for event in events:
            handlers[event.kind](conn, event)

    # -- provenance ------------------------------------------------------------------
    def _registered(self, conn: sa.Connection, e: ev.Event) -> None:
        s = e.state
        row: dict[str, Any] = {
            k: s.get(k)
            for k in (
                "name",
                "algorithm",
                "task",
                "provenance",
                "training_run_id",
                "artifact_digest",
                "features",
                "classes",
                "declared",
            )
        }
        row.update(
            model_id=e.originator_id,
            position=e.position,
            recorded_at=e.recorded_at,
            registered_by=s["actor"],
            params=s["declared"].get("params"),
            code_version=s["declared"].get("code_version"),
            metrics=s["declared"].get("metrics"),
            datasets=[],
            data_time_range=None,
            spec_name=None,
            target=None,
            occurred_at=None,
        )
        if s.get("training_run_id"):
            row.update(self._from_run(conn, s["training_run_id"]))
        conn.execute(self.tables["models"].insert().values(**row))

    def _from_run(self, conn: sa.Connection, run_id: str) -> dict[str, Any]:
        runs, datasets = self.tables["runs"], self.tables["datasets"]
        run = conn.execute(sa.select(runs).where(runs.c.run_id == run_id)).mappings().first()
        if run is None:
            return {}
        started = run["started"]
        ids = started.get("dataset_ids") or {}
        found = {
            r[0]: r[1]
            for r in conn.execute(
                sa.select(datasets.c.dataset_id, datasets.c.summary).where(
                    datasets.c.dataset_id.in_(list(ids.values()))
                )
            )
        }
        used = [
            {"role": role, "dataset_id": i, **found.get(i, {})} for role, i in sorted(ids.items())
        ]
        return {
            "params": started.get("params"),
            "code_version": started.get("code_version"),
            "spec_name": started.get("spec_name"),
            "target": started.get("target"),
            "occurred_at": started.get("occurred_at"),
            "metrics": run["metrics"],
            "datasets": used,
            "data_time_range": time_range(used),
        }

    def _run_started(self, conn: sa.Connection, e: ev.Event) -> None:
        keep = (
            "spec_name",
            "deployment",
            "dataset_ids",
            "features",
            "target",
            "algorithm",
            "params",
            "code_version",
            "trigger",
            "actor",
            "occurred_at",
        )
        conn.execute(
            self.tables["runs"]
            .insert()
            .values(run_id=e.originator_id, started={k: e.state.get(k) for k in keep}, metrics=None)
        )

    def _run_completed(self, conn: sa.Connection, e: ev.Event) -> None:
        runs, models = self.tables["runs"], self.tables["models"]
        conn.execute(
            runs.update().where(runs.c.run_id == e.originator_id).values(metrics=e.state["metrics"])
        )
        # the model is usually registered right after, in the same save; this covers the reverse
        conn.execute(
            models.update()
            .where(models.c.model_id == e.state["model_id"])
            .values(metrics=e.state["metrics"])
        )

    def _dataset(self, conn: sa.Connection, e: ev.Event) -> None:
        s = e.state
        summary = {k: s.get(k) for k in ("fingerprint", "rows", "time_range", "source")}
        conn.execute(
            self.tables["datasets"].insert().values(dataset_id=e.originator_id, summary=summary)
        )

    # -- roles -------------------------------------------------------------------------
    def _deployment(self, conn: sa.Connection, e: ev.Event) -> None:
        conn.execute(
            self.tables["names"]
            .insert()
            .values(deployment_id=e.originator_id, name=e.state["name"])
        )

    def _name(self, conn: sa.Connection, e: ev.Event) -> str:
        names = self.tables["names"]
        return conn.execute(
            sa.select(names.c.name).where(names.c.deployment_id == e.originator_id)
        ).scalar_one()

    def _open(
        self, conn: sa.Connection, model: str, deployment: str, role: str, e: ev.Event
    ) -> None:
        conn.execute(
            self.tables["roles"]
            .insert()
            .values(
                model_id=model,
                deployment=deployment,
                valid_from=e.position,
                valid_to=None,
                role=role,
                actor=e.state["actor"],
            )
        )

    def _close(self, conn: sa.Connection, model: str | None, deployment: str, e: ev.Event) -> None:
        roles = self.tables["roles"]
        conn.execute(
            roles.update()
            .where(
                roles.c.model_id == model,
                roles.c.deployment == deployment,
                roles.c.valid_to.is_(None),
            )
            .values(valid_to=e.position)
        )

    def _model_added(self, conn: sa.Connection, e: ev.Event) -> None:
        self._open(conn, e.state["model_id"], self._name(conn, e), "challenger", e)

    def _model_retired(self, conn: sa.Connection, e: ev.Event) -> None:
        self._close(conn, e.state["model_id"], self._name(conn, e), e)

    def _leader_changed(self, conn: sa.Connection, e: ev.Event) -> None:
        deployment, s = self._name(conn, e), e.state
        self._close(conn, s["model_id"], deployment, e)
        self._open(conn, s["model_id"], deployment, "leader", e)
        if s["previous"]:
            self._close(conn, s["previous"], deployment, e)
            self._open(conn, s["previous"], deployment, "challenger", e)


def time_range(datasets: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The span of the training datasets' time ranges (their `start`/`end`, or min/max)."""
    starts, ends = [], []
    for d in datasets:
        if d.get("role") not in (None, "train", "training"):
            continue
        r = d.get("time_range") or {}
        start = next((r[k] for k in ("start", "from", "min") if r.get(k) is not None), None)
        end = next((r[k] for k in ("end", "to", "max") if r.get(k) is not None), None)
        starts += [start] if start is not None else []
        ends += [end] if end is not None else []
    if not starts and not ends:
        return None
    return {"start": min(starts) if starts else None, "end": max(ends) if ends else None}
