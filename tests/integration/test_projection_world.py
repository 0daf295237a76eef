"""A small world of deployments, models, predictions and outcomes for projection tests.

Everything goes through the real Ledger and the real storage; the clock is moved
forward by raising the database clock row, so events can span hours and days.
"""

from __future__ import annotations

import math
import random
from typing import Any

import sqlalchemy as sa

from ledger.application import Ledger
from ledger.domain.predictions import Prediction
from projections.base import read_position
from projections.registry import ALL

SCHEMA = {
    "features": [
        {"name": "region", "type": "category"},
        {"name": "plan", "type": "category"},
        {"name": "age", "type": "number"},
        {"name": "tenure", "type": "integer"},
        {"name": "vip", "type": "boolean"},
    ]
}
PROFILE = {
    "features": {
        "age": {"quantiles": {"0.25": 30.0, "0.5": 40.0, "0.75": 55.0}},
        "tenure": {"quantiles": [0, 2, 5, 9, 20]},
    }
}


class World:
    """Drives a ledger with commands chosen by the tests (or by hypothesis)."""

    def __init__(self, ledger: Ledger, seed: int = 0):
        self.ledger, self.rng = ledger, random.Random(seed)
        self.models: dict[str, list[str]] = {"cls": [], "reg": []}
        self.predictions: list[tuple[str, str]] = []  # (deployment, prediction id)
        self.count = 0
        for name, task in (("cls", "classification"), ("reg", "regression")):
            ledger.create_deployment(
                name=name,
                task=task,
                schema=SCHEMA,
                policy={"name": "manual"},
                positive_label=1 if task == "classification" else None,
                outcome_maturity_days=0,
                actor="test:setup",
            )

    def add_model(self, deployment: str, profile: bool = True) -> str:
        task = "classification" if deployment == "cls" else "regression"
        model = {
            "name": f"m{self.count}",
            "artifact_digest": f"{self.count:064x}",
            "features": ["region", "age"],
            "algorithm": "sklearn.linear_model.LogisticRegression",
            "task": task,
            "classes": None,
            "actor": "test:trainer",
        }
        self.count += 1
        if profile:
            dataset = self.ledger.register_dataset(
                fingerprint=f"fp{self.count}",
                rows=10,
                columns=[],
                role="train",
                source="test",
                time_range={"start": "2026-01-01", "end": "2026-02-01"},
                actor="test:trainer",
            )
            run = self.ledger.start_training(
                spec_name="spec",
                spec={},
                deployment=deployment,
                dataset_ids={"train": str(dataset)},
                features=["region", "age"],
                target="y",
                algorithm=model["algorithm"],
                params={"C": 1.0},
                code_version={"commit": "abc", "dirty": False},
                trigger=None,
                actor="test:trainer",
            )
            model_id = self.ledger.finish_training(
                run,
                model,
                metrics={"f1": 0.5},
                artifact_digest=model["artifact_digest"],
                reference_profile=PROFILE,
                trained_subjects=None,
                actor="test:trainer",
            )
        else:
            model_id = self.ledger.register_model(
                training_run_id=None, provenance="declared", declared={}, **model
            )
        self.ledger.add_model(deployment, model_id, actor="test:admin")
        self.models[deployment].append(str(model_id))
        return str(model_id)

    def promote(self, deployment: str, pick: int) -> None:
        d = self.ledger.deployment(deployment)
        others = [m for m in d.models if m != d.leader]
        if others:
            self.ledger.promote(
                deployment,
                others[pick % len(others)],
                reason="test",
                actor="test:admin",
                evidence={"why": "test"},
            )

    def retire(self, deployment: str, pick: int) -> None:
        d = self.ledger.deployment(deployment)
        others = [m for m in d.models if m != d.leader]
        if others:
            self.ledger.retire_model(
                deployment, others[pick % len(others)], reason="test", actor="test:admin"
            )

    def predict(self, deployment: str, n: int) -> list[int]:
        d = self.ledger.deployment(deployment)
        if not d.models:
            return []
        batch = [self._prediction(d, deployment) for _ in range(n)]
        return [pos for _, pos in self.ledger.record_predictions(batch) if pos is not None]

    def _prediction(self, d: Any, deployment: str) -> Prediction:
        r = self.rng
        features = {
            "region": r.choice(["north", "south", "east"]),
            "plan": r.choice(["a", "b", None]),
            "age": round(r.uniform(18, 80), 1),
            "tenure": r.randint(0, 25),
            "vip": r.random() < 0.3,
        }
        outputs = {
            m: {"value": r.randint(0, 1) if deployment == "cls" else round(r.uniform(0, 10), 3)}
            for m in d.models
        }
        self.count += 1
        p = Prediction(
            deployment=deployment,
            deployment_version=d.version,
            request_id=f"r{self.count}",
            body_digest="x",
            features=features,
            sealed=None,
            outputs=outputs,
            served_model=d.leader or d.models[0],
            policy=d.policy,
            leader=d.leader,
            flags=["range"] if r.random() < 0.2 else [],
            scoring={"mode": "single"},
            actor="key:test",
        )
        self.predictions.append((deployment, str(p.id)))
        return p

    def outcome(self, pick: int) -> None:
        if not self.predictions:
            return
        deployment, pid = self.predictions[pick % len(self.predictions)]
        actual = (
            self.rng.randint(0, 1) if deployment == "cls" else round(self.rng.uniform(0, 10), 3)
        )
        self.ledger.record_outcome(pid, actual, None, actor="key:test")

    def advance(self, hours: float) -> None:
        """Move the database clock forward: later events are recorded that much later."""
        with self.ledger.engine.begin() as conn:
            conn.exec_driver_sql(
                f"UPDATE ledger_clock SET last_us = last_us + {int(hours * 3_600_000_000)}"
            )


def dump(engine: sa.Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every live projection table's rows, sorted, keyed by table name without generation."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    with engine.connect() as conn:
        for cls in ALL:
            state = read_position(conn, cls.name)
            assert state is not None
            out[f"{cls.name}.position"] = [(state[0],)]
            for key, table in cls.tables_for(state[1]).items():
                rows = conn.execute(sa.select(table)).all()
                out[f"{cls.name}.{key}"] = sorted(
                    (tuple(_plain(v) for v in r) for r in rows), key=repr
                )
    return out


def _plain(value: Any) -> Any:
    return round(value, 6) if isinstance(value, float) and math.isfinite(value) else value


def assert_same_tables(left: dict[str, Any], right: dict[str, Any]) -> None:
    assert left.keys() == right.keys()
    for name in left:
        assert left[name] == right[name], f"{name} differs"
