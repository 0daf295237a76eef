"""Subject.Forgotten in the projections: rows erased, counts moved to `erased`, rebuild equal."""

from __future__ import annotations

from typing import Any

from ledger.application import Ledger
from ledger.domain.predictions import Prediction
from projections.predictions import PredictionsProjection
from projections.query_performance import performance
from projections.query_predictions import list_predictions
from projections.registry import ALL
from projections.runner import Runner
from tests.integration.test_projection_world import assert_same_tables, dump

SCHEMA = {
    "features": [
        {"name": "customer_id", "type": "category", "personal": True},
        {"name": "full_name", "type": "category", "personal": True},
        {"name": "plan", "type": "category"},
        {"name": "vip", "type": "boolean"},
    ],
    "subject_field": "customer_id",
}
ME, YOU = "Subject-Forget-Me", "Subject-Keep-You"
PLANS = ["gold", "basic", "gold"]


class Scene:
    """Two deployments (a classifier, a regressor), two subjects each, outcomes over hours."""

    def __init__(self, ledger: Ledger):
        self.ledger, self.count = ledger, 0
        self.made: dict[tuple[str, str], list[str]] = {}  # (deployment, subject) -> prediction ids
        for name, task in (("cls", "classification"), ("reg", "regression")):
            ledger.create_deployment(
                name=name,
                task=task,
                schema=SCHEMA,
                policy={"name": "manual"},
                positive_label="yes" if task == "classification" else None,
                outcome_maturity_days=0,
                actor="test",
            )

    def predict(self, deployment: str, subject: str, plan: str) -> str:
        self.count += 1
        request_id = f"r{self.count}"
        features = {
            "customer_id": subject,
            "full_name": f"Name of {subject}",
            "plan": plan,
            "vip": self.count % 2 == 0,
        }
        plain, sealed = self.ledger.sealer.seal(
            SCHEMA, features, deployment=deployment, request_id=request_id
        )
        value = ["yes", "no"][self.count % 2] if deployment == "cls" else float(self.count)
        prediction = Prediction(
            deployment=deployment,
            deployment_version=self.ledger.deployment(deployment).version,
            request_id=request_id,
            body_digest=request_id,
            features=plain,
            sealed=sealed,
            outputs={"m1": {"value": value}, "m2": {"value": value}},
            served_model="m1",
            policy={"name": "manual"},
            leader="m1",
            flags=[],
            scoring={"mode": "shadow"},
            actor="key:test",
        )
        self.ledger.record_predictions([prediction])
        self.made.setdefault((deployment, subject), []).append(str(prediction.id))
        return str(prediction.id)

    def outcome(self, prediction_id: str, deployment: str, i: int) -> None:
        actual = ["yes", "no"][i % 2] if deployment == "cls" else i * 1.5
        self.ledger.record_outcome(prediction_id, actual, None, actor="key:test")

    def populate(self) -> None:
        for deployment in ("cls", "reg"):
            for subject in (ME, YOU):
                for i, plan in enumerate(PLANS):
                    pid = self.predict(deployment, subject, plan)
                    if i < 2:
                        self.outcome(pid, deployment, i)
            self.advance(1.5)
            self.outcome(
                self.made[(deployment, ME)][0], deployment, 7
            )  # a correction, an hour later

    def advance(self, hours: float) -> None:
        with self.ledger.engine.begin() as conn:
            conn.exec_driver_sql(
                f"UPDATE ledger_clock SET last_us = last_us + {int(hours * 3_600_000_000)}"
            )


def project(ledger: Ledger, page_size: int = 4) -> None:
    """Small pages, so a forget and the rows it erases fall in different pages than on rebuild."""
    for projection in ALL:
        Runner(ledger.engine, projection, page_size=page_size).catch_up()


def counts(
    ledger: Ledger, deployment: str, feature: str | None = None
) -> dict[tuple[str, Any], int]:
    answer = performance(ledger.engine, deployment, slice_feature=feature)
    return {(r["model_id"], r["slice_value"]): r["count"] for r in answer["results"]}


def per_model(cells: dict[tuple[str, Any], int]) -> dict[str, int]:
    out: dict[str, int] = {}
    for (model, _), n in cells.items():
        out[model] = out.get(model, 0) + n
    return out


def assert_rebuild_equals_incremental(ledger: Ledger) -> None:
    incremental = dump(ledger.engine)
    Runner(ledger.engine, PredictionsProjection).rebuild()
    assert_same_tables(incremental, dump(ledger.engine))


def rows_of(ledger: Ledger, deployment: str, **filters: Any) -> dict[str, dict[str, Any]]:
    answer = list_predictions(ledger.engine, deployment=deployment, limit=1000, **filters)
    return {item["prediction_id"]: item for item in answer["items"]}


def test_a_scoped_forget_moves_counts_to_erased_and_a_rebuild_equals_it(ledger: Ledger) -> None:
    scene = Scene(ledger)
    scene.populate()
    project(ledger)
    before = {(d, f): counts(ledger, d, f) for d in ("cls", "reg") for f in (None, "plan", "vip")}

    ledger.forget_subject(ME, reason="erasure request 1", actor="key:admin", deployment="cls")
    project(ledger)
    mine = scene.made[("cls", ME)]
    scene.outcome(mine[0], "cls", 4)  # a correction of an erased prediction lands in `erased`
    scene.outcome(mine[2], "cls", 5)  # and so does a first outcome
    project(ledger)

    overall = counts(ledger, "cls")
    assert overall == {
        key: n + 1 for key, n in before[("cls", None)].items()
    }  # only the new outcome
    for feature in ("plan", "vip"):
        sliced = counts(ledger, "cls", feature)
        assert per_model(sliced) == {m: n for (m, _), n in overall.items()}  # totals unchanged
        assert {m: n for (m, v), n in sliced.items() if v == "erased"} == {"m1": 3, "m2": 3}
        assert all(
            n <= before[("cls", feature)][key] for key, n in sliced.items() if key[1] != "erased"
        )
    for feature in (None, "plan", "vip"):  # the same subject in the other deployment is untouched
        assert counts(ledger, "reg", feature) == before[("reg", feature)]

    rows = rows_of(ledger, "cls")
    for pid in mine:
        assert rows[pid]["erased"] is True
        assert (
            rows[pid]["features"]["customer_id"] == rows[pid]["features"]["full_name"] == "erased"
        )
        assert rows[pid]["features"]["plan"] in PLANS  # not personal: kept, and still filterable
    assert not any(rows[pid]["erased"] for pid in scene.made[("cls", YOU)])
    assert (
        not {"customer_id", "full_name"} & rows[scene.made[("cls", YOU)][0]]["features"].keys()
    )  # sealed
    assert not any(item["erased"] for item in rows_of(ledger, "reg").values())
    gold = rows_of(ledger, "cls", features={"plan": "gold"})
    assert {mine[0], mine[2]} <= gold.keys() and mine[1] not in gold
    assert_rebuild_equals_incremental(ledger)

    cls = {feature: counts(ledger, "cls", feature) for feature in (None, "plan", "vip")}
    ledger.forget_subject(ME, reason="erasure request 3", actor="key:admin")  # now everywhere
    project(ledger)
    assert {
        feature: counts(ledger, "cls", feature) for feature in cls
    } == cls  # erased once, not twice
    assert {m: n for (m, v), n in counts(ledger, "reg", "plan").items() if v == "erased"} == {
        "m1": 2,
        "m2": 2,
    }
    assert counts(ledger, "reg") == before[("reg", None)]
    assert_rebuild_equals_incremental(ledger)


def test_a_forget_everywhere_erases_every_deployment_and_not_a_later_return(ledger: Ledger) -> None:
    scene = Scene(ledger)
    scene.populate()
    project(ledger)
    before = {d: counts(ledger, d) for d in ("cls", "reg")}

    forgotten = ledger.forget_subject(ME, reason="erasure request 2", actor="key:admin")
    back = scene.predict("reg", ME, "basic")  # the subject comes back: a new key, a row not erased
    scene.outcome(back, "reg", 3)
    project(ledger)

    for deployment in ("cls", "reg"):
        sliced = counts(ledger, deployment, "plan")
        assert {m: n for (m, v), n in sliced.items() if v == "erased"} == {"m1": 2, "m2": 2}
        assert per_model(sliced) == {m: n for (m, _), n in counts(ledger, deployment).items()}
        rows = rows_of(ledger, deployment)
        assert all(rows[pid]["erased"] for pid in scene.made[(deployment, ME)] if pid != back)
        assert not any(rows[pid]["erased"] for pid in scene.made[(deployment, YOU)])
    assert counts(ledger, "cls") == before["cls"]
    assert rows_of(ledger, "reg")[back]["erased"] is False
    assert ("m1", "basic") in counts(ledger, "reg", "plan")
    for model in (
        "m1",
        "m2",
    ):  # the error sums moved with the counts: every slicing sums to the total
        total = [r for r in performance(ledger.engine, "reg")["results"] if r["model_id"] == model][
            0
        ]
        sliced = [
            r
            for r in performance(ledger.engine, "reg", slice_feature="plan")["results"]
            if r["model_id"] == model
        ]
        assert (
            abs(sum(r["count"] * r["mae"] for r in sliced) - total["count"] * total["mae"]) < 1e-6
        )
        assert (
            abs(
                sum(r["count"] * r["mean_error"] for r in sliced)
                - total["count"] * total["mean_error"]
            )
            < 1e-6
        )
    assert forgotten.position is not None
    earlier = list_predictions(ledger.engine, deployment="cls", as_of=forgotten.position - 1)[
        "items"
    ]
    assert earlier and not any(item["erased"] for item in earlier)  # the index's flag follows as_of
    assert_rebuild_equals_incremental(ledger)
