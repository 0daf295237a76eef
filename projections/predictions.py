"""The prediction index, its outcomes, and the performance cubes, in one projection.

They share one lookup (an outcome needs its prediction's outputs and slices), so one
runner keeps them consistent with each other at every position.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from projections import events as ev
from projections.base import Projection
from projections.cubes import DAY_US, HOUR_US, add_outcome, new_deltas
from projections.slicing import quantile_edges, slice_values, sliceable
from projections.tables import prediction_tables

FACTS = ("deployment", "day", "outputs", "slices")


class PredictionsProjection(Projection):
    """Prediction index (a row per prediction), outcomes by position, performance cubes."""

    name = "predictions"
    version = 1
    topics = frozenset(
        [ev.PREDICTION + "Made", ev.PREDICTION + "OutcomeRecorded", ev.DEPLOYMENT + "Created",
         ev.DEPLOYMENT + "SchemaChanged", ev.DEPLOYMENT + "ModelAdded", ev.TRAINING + "Completed"]
    )

    def __init__(self, generation: int):
        super().__init__(generation)
        self.deployments: dict[str, dict[str, Any]] | None = None  # by deployment id, lazily loaded

    @classmethod
    def define(cls, metadata: sa.MetaData, suffix: str) -> dict[str, sa.Table]:
        return prediction_tables(metadata, suffix)

    def apply(self, conn: sa.Connection, events: Sequence[ev.Event]) -> None:
        if self.deployments is None:
            self._load_deployments(conn)
        made: dict[str, dict[str, Any]] = {}
        outcomes: list[ev.Event] = []
        for e in events:
            if e.kind == "Prediction.Made":
                made[e.originator_id] = self._made(e)
            elif e.kind == "Prediction.OutcomeRecorded":
                outcomes.append(e)
            else:
                self._setup(conn, e)
        if made:
            conn.execute(self.tables["predictions"].insert(), list(made.values()))
        if outcomes:
            self._outcomes(conn, outcomes, made)

    # -- deployments and profiles (what slicing needs) ---------------------------------
    def _load_deployments(self, conn: sa.Connection) -> None:
        t = self.tables["deployments"]
        self.deployments = {r["deployment_id"]: dict(r) for r in conn.execute(sa.select(t)).mappings()}

    def _setup(self, conn: sa.Connection, e: ev.Event) -> None:
        assert self.deployments is not None
        s, t = e.state, self.tables["deployments"]
        if e.kind == "TrainingRun.Completed":
            edges = {f: q for f in dict(s["reference_profile"].get("features", s["reference_profile"]))
                     if (q := quantile_edges(s["reference_profile"], f))}
            conn.execute(self.tables["profiles"].insert().values(model_id=s["model_id"], edges=edges))
            return
        if e.kind == "Deployment.Created":
            row = {"deployment_id": e.originator_id, "name": s["name"], "task": s["task"],
                   "positive_label": s["positive_label"], "sliced": sliceable(s["schema"]), "bins": {}}
            conn.execute(t.insert().values(**row))
            self.deployments[e.originator_id] = row
            return
        row = self.deployments[e.originator_id]
        if e.kind == "Deployment.SchemaChanged":
            row["sliced"] = sliceable(s["schema"])
        else:  # ModelAdded: numeric features still without edges take this model's
            p = self.tables["profiles"]
            edges = conn.execute(sa.select(p.c.edges).where(p.c.model_id == s["model_id"])).scalar() or {}
            row["bins"] = {**{f: q for f, q in edges.items() if f not in row["bins"]}, **row["bins"]}
        conn.execute(t.update().where(t.c.deployment_id == e.originator_id)
                     .values(sliced=row["sliced"], bins=row["bins"]))

    def _made(self, e: ev.Event) -> dict[str, Any]:
        assert self.deployments is not None
        s = e.state
        deployment = next((d for d in self.deployments.values() if d["name"] == s["deployment"]), None)
        sliced, bins = (deployment["sliced"], deployment["bins"]) if deployment else ([], {})
        sealed = s.get("sealed") or {}
        return {
            "prediction_id": e.originator_id, "position": e.position, "recorded_at": e.recorded_at,
            "day": e.recorded_at // DAY_US, "deployment": s["deployment"],
            "deployment_version": s["deployment_version"], "served_model": s["served_model"],
            "leader": s["leader"], "request_id": s["request_id"], "features": s["features"],
            "outputs": s["outputs"], "flags": s["flags"], "flagged": bool(s["flags"]),
            "slices": slice_values(s["features"], sliced, bins), "actor": s["actor"],
            "subject_ref": sealed.get("subject_ref"),
        }

    # -- outcomes ------------------------------------------------------------------------
    def _outcomes(self, conn: sa.Connection, outcomes: list[ev.Event], made: dict[str, dict[str, Any]]) -> None:
        assert self.deployments is not None
        ids = sorted({o.originator_id for o in outcomes})
        facts = {pid: {k: m[k] for k in FACTS} for pid, m in made.items()}
        facts.update(self._stored_facts(conn, [i for i in ids if i not in facts]))
        latest = self._latest_outcomes(conn, ids)
        tasks = {d["name"]: d["task"] for d in self.deployments.values()}
        deltas, rows = new_deltas(), []
        for o in outcomes:
            prediction = facts.get(o.originator_id)
            if prediction is None:
                continue  # cannot happen in an intact log: an outcome follows its prediction
            hour, actual = o.recorded_at // HOUR_US, o.state["actual"]
            previous = latest.get(o.originator_id, (False, None))
            add_outcome(deltas, prediction, tasks.get(prediction["deployment"], "classification"),
                        actual, previous, hour)
            rows.append({"position": o.position, "prediction_id": o.originator_id,
                         "recorded_at": o.recorded_at, "hour": hour, "deployment": prediction["deployment"],
                         "actual": actual, "corrected": previous[0], "previous": previous[1],
                         "observed_at": o.state.get("observed_at"), "actor": o.state["actor"]})
            latest[o.originator_id] = (True, actual)
        conn.execute(self.tables["outcomes"].insert(), rows)
        self._upsert_cells(conn, deltas)

    def _stored_facts(self, conn: sa.Connection, ids: list[str]) -> dict[str, dict[str, Any]]:
        if not ids:
            return {}
        t = self.tables["predictions"]
        query = sa.select(t.c.prediction_id, *(t.c[k] for k in FACTS)).where(t.c.prediction_id.in_(ids))
        return {r["prediction_id"]: dict(r) for r in conn.execute(query).mappings()}

    def _latest_outcomes(self, conn: sa.Connection, ids: list[str]) -> dict[str, tuple[bool, Any]]:
        t = self.tables["outcomes"]
        query = sa.select(t.c.prediction_id, t.c.actual).where(t.c.prediction_id.in_(ids)).order_by(t.c.position)
        return {r[0]: (True, r[1]) for r in conn.execute(query)}

    def _upsert_cells(self, conn: sa.Connection, deltas: Any) -> None:
        t = self.tables["cubes"]
        names = ("deployment", "model_id", "day", "hour", "slice_feature", "slice_value", "actual", "predicted")
        rows = [{**dict(zip(names, key, strict=True)), "n": int(v[0]), "sum_err": v[1], "sum_abs": v[2],
                 "sum_sq": v[3]} for key, v in deltas.items()]
        insert = (postgresql if conn.dialect.name == "postgresql" else sqlite).insert(t)
        statement = insert.on_conflict_do_update(
            index_elements=list(names),
            set_={c: t.c[c] + insert.excluded[c] for c in ("n", "sum_err", "sum_abs", "sum_sq")},
        )
        conn.execute(statement, rows)



