"""Aggregates: given events, when a command, then events; a refused command records nothing."""

from __future__ import annotations

from typing import Any

import pytest

from ledger.domain.access import ApiKey, SigningKey
from ledger.domain.deployments import Deployment
from ledger.domain.predictions import Prediction
from ledger.domain.training import TrainingRun
from ledger.errors import Conflict, InvalidCommand, NotFound, SchemaMismatch, StaleVersion

SCHEMA = {
    "features": [
        {"name": "age", "type": "number"},
        {"name": "plan", "type": "category"},
        {"name": "email", "type": "category", "personal": True},
    ],
    "subject_field": "email",
}
A, B = "model-a", "model-b"


def given(*events: Any) -> Any:
    """The aggregate those past events make: replayed, with nothing pending."""
    aggregate = None
    for event in events:
        aggregate = event.mutate(aggregate)
    return aggregate


def history(*commands: str) -> list[Any]:
    """Events of a churn deployment after the named commands, as stored events would replay."""
    deployment = Deployment.create(
        name="churn",
        task="classification",
        schema=SCHEMA,
        policy={"name": "manual"},
        positive_label=1,
        outcome_maturity_days=7,
        settings={},
        actor="admin",
    )
    steps = {
        "add a": lambda d: d.add_model(A, ["age"], "classification", "admin"),
        "add b": lambda d: d.add_model(B, ["age", "plan"], "classification", "admin"),
    }
    for command in commands:
        steps[command](deployment)
    return deployment.collect_events()


def then(aggregate: Any) -> list[str]:
    """Names of the events the command left pending (what save would record)."""
    return [type(e).__qualname__ for e in aggregate.collect_events()]


def refused(aggregate: Any, error: type[Exception], command: Any, match: str | None = None) -> None:
    version = aggregate.version
    with pytest.raises(error, match=match):
        command(aggregate)
    assert then(aggregate) == [] and aggregate.version == version


def test_the_first_model_of_a_deployment_becomes_its_leader():
    deployment = given(*history())
    deployment.add_model(A, ["age"], "classification", "admin")
    assert then(deployment) == ["Deployment.ModelAdded", "Deployment.LeaderChanged"]
    assert (
        deployment.leader == A
        and deployment.leader_set_by["reason"] == "first model of the deployment"
    )


def test_a_second_model_joins_as_a_challenger():
    deployment = given(*history("add a"))
    deployment.add_model(B, ["age", "plan"], "classification", "admin")
    assert then(deployment) == ["Deployment.ModelAdded"]
    assert deployment.models == [A, B] and deployment.leader == A


def test_a_model_reading_features_the_schema_lacks_is_refused():
    deployment = given(*history("add a"))
    refused(
        deployment,
        SchemaMismatch,
        lambda d: d.add_model(B, ["age", "income"], "classification", "x"),
        "income",
    )


def test_a_model_of_another_task_is_refused():
    refused(given(*history()), SchemaMismatch, lambda d: d.add_model(A, ["age"], "regression", "x"))


def test_adding_an_active_model_twice_is_refused():
    refused(
        given(*history("add a")), Conflict, lambda d: d.add_model(A, ["age"], "classification", "x")
    )


def test_promotion_records_who_why_and_the_previous_leader():
    deployment = given(*history("add a", "add b"))
    deployment.promote(B, "better AUC", "admin", {"auc": 0.9}, expected_version=deployment.version)
    (event,) = deployment.collect_events()
    assert type(event) is Deployment.LeaderChanged
    assert (event.model_id, event.previous, event.reason, event.evidence, event.actor) == (
        B,
        A,
        "better AUC",
        {"auc": 0.9},
        "admin",
    )


def test_promotion_with_a_stale_version_is_refused():
    deployment = given(*history("add a", "add b"))
    refused(
        deployment,
        StaleVersion,
        lambda d: d.promote(B, "why", "x", expected_version=d.version - 1),
        "read it again",
    )


@pytest.mark.parametrize("reason", ["", "   "])
def test_promotion_without_a_reason_is_refused(reason):
    refused(given(*history("add a", "add b")), InvalidCommand, lambda d: d.promote(B, reason, "x"))


def test_promoting_an_inactive_model_or_the_leader_is_refused():
    deployment = given(*history("add a", "add b"))
    refused(deployment, NotFound, lambda d: d.promote("model-z", "why", "x"))
    refused(deployment, Conflict, lambda d: d.promote(A, "why", "x"))


def test_retiring_the_leader_while_others_are_active_is_refused():
    deployment = given(*history("add a", "add b"))
    refused(deployment, Conflict, lambda d: d.retire_model(A, "old", "x"), "promote another")


def test_retiring_a_challenger_then_the_last_model_leaves_no_leader():
    deployment = given(*history("add a", "add b"))
    deployment.retire_model(B, "worse", "admin")
    deployment.retire_model(A, "replaced", "admin")
    assert then(deployment) == ["Deployment.ModelRetired", "Deployment.ModelRetired"]
    assert deployment.models == [] and deployment.leader is None


def test_a_schema_change_that_drops_a_feature_an_active_model_reads_is_refused():
    deployment = given(*history("add a"))
    narrower = {"features": [{"name": "plan", "type": "category"}]}
    refused(deployment, SchemaMismatch, lambda d: d.change_schema(narrower, "x", d.version))


def test_a_policy_change_is_recorded_and_a_bad_policy_refused():
    deployment = given(*history())
    refused(
        deployment,
        InvalidCommand,
        lambda d: d.change_policy({"name": "best_recent"}, "x", d.version),
    )
    deployment.change_policy({"name": "majority_vote"}, "admin", deployment.version)
    assert then(deployment) == ["Deployment.PolicyChanged"]


def test_a_deployment_with_a_bad_schema_or_task_is_never_created():
    with pytest.raises(InvalidCommand, match="unique"):
        Deployment.create(
            name="d",
            task="classification",
            schema={"features": [{"name": "a", "type": "number"}, {"name": "a", "type": "number"}]},
            policy={"name": "manual"},
            positive_label=1,
            outcome_maturity_days=0,
            settings={},
            actor="x",
        )
    with pytest.raises(InvalidCommand, match="task"):
        Deployment.create(
            name="d",
            task="ranking",
            schema=SCHEMA,
            policy={"name": "manual"},
            positive_label=1,
            outcome_maturity_days=0,
            settings={},
            actor="x",
        )


def test_revoking_a_key_twice_is_refused():
    key = ApiKey.issue(
        key_id="k1", role="predictor", secret_digest="d", expires_at=None, label="", actor="a"
    )
    key = given(*key.collect_events())
    key.revoke("leaked", "admin")
    assert then(key) == ["ApiKey.Revoked"] and key.revoked
    refused(key, InvalidCommand, lambda k: k.revoke("again", "admin"), "already revoked")


def test_a_key_with_an_unknown_role_is_never_issued():
    with pytest.raises(InvalidCommand, match="role"):
        ApiKey.issue(
            key_id="k", role="root", secret_digest="d", expires_at=None, label="", actor="a"
        )


def test_a_signing_key_rotates_once():
    key = given(
        *SigningKey(
            key_id="s1", algorithm="ed25519", public_key="pk", replaces=None, actor="a"
        ).collect_events()
    )
    key.rotate("s2", "admin")
    assert then(key) == ["SigningKey.Rotated"]
    refused(key, InvalidCommand, lambda k: k.rotate("s3", "admin"))


def test_a_training_run_completes_or_fails_but_never_both():
    run = given(
        *TrainingRun(
            spec_name="s",
            spec={},
            deployment=None,
            dataset_ids={},
            features=["age"],
            target="y",
            algorithm="lr",
            params={},
            code_version={},
            trigger=None,
            actor="a",
        ).collect_events()
    )
    run.fail("out of memory", "a")
    assert then(run) == ["TrainingRun.Failed"]
    refused(
        run,
        InvalidCommand,
        lambda r: r.complete(
            metrics={},
            artifact_digest="d",
            reference_profile={},
            trained_subjects=None,
            model_id="m",
            actor="a",
        ),
    )


def test_outcomes_of_a_prediction_are_appended_and_a_second_is_a_correction():
    prediction = given(
        *Prediction(
            deployment="churn",
            deployment_version=3,
            request_id="r1",
            body_digest="b",
            features={"age": 3},
            sealed=None,
            outputs={A: {"value": 1}},
            served_model=A,
            policy={"name": "manual"},
            leader=A,
            flags=[],
            scoring={"mode": "alone"},
            actor="k",
        ).collect_events()
    )
    prediction.record_outcome(0, None, "k")
    prediction.record_outcome(1, "2026-01-01T00:00:00Z", "k")
    assert then(prediction) == ["Prediction.OutcomeRecorded"] * 2
    assert [o["correction"] for o in prediction.outcomes] == [False, True]
    assert prediction.outcome["actual"] == 1 and prediction.value == 1
