"""The whole provenance of one prediction, assembled from the events behind it.

One lookup costs one round trip for the prediction (its events, where it was made, its
chain hash: ledger.read_cache.read_prediction); the deployment at its version, the models,
their training runs and datasets never change once final and come from the ledger's cache.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from api.auth import Principal
from api.routes import route_for
from api.services import Services
from ledger import ids, log
from ledger.domain.feeds import QualityCheck, batch_check_key, quality_check_id
from ledger.domain.predictions import OCCURRED_AT
from ledger.errors import LedgerError, NotFound
from ledger.ids import DEFAULT_CLIENT
from ledger.read_cache import PredictionRecord, lookup_engine, read_prediction
from ledger.timeline import iso
from projections.health_queries import covering

OWN_ROUTE = route_for("GET", "/v1/predictions/{prediction_id}")


def provenance(
    services: Services, prediction_id: str, principal: Principal, position: int | None
) -> dict[str, Any]:
    """Features, every output, the served model's lineage, policy, leader, the vote's tally,
    outcomes, chain."""
    record = lookup(services, prediction_id, position)
    prediction = record.prediction
    client = services.ledger.client_of(prediction.caller)
    if (
        OWN_ROUTE
        and principal.role in OWN_ROUTE.own_only
        and not may_read(principal, prediction, client)
    ):
        raise missing(prediction_id, position)  # others' predictions read as ones never made
    deployment = deployment_at(services, prediction.deployment, prediction.deployment_version)
    outcomes = [stamped(outcome, record) for outcome in prediction.outcomes]
    return {
        "prediction_id": str(prediction.id),
        "deployment": prediction.deployment,
        "request_id": prediction.request_id,
        "body_digest": prediction.body_digest,
        "features": features_of(services, prediction),
        "sealed_fields": (prediction.sealed or {}).get("fields", []),
        "outputs": prediction.outputs,
        "served": {
            **model_lineage(services, prediction.served_model),
            **prediction.outputs[prediction.served_model],
        },
        "shadow": [
            {**model_summary(services, m), **out}
            for m, out in prediction.outputs.items()
            if m != prediction.served_model
        ],
        "policy": prediction.policy,
        "deployment_version": prediction.deployment_version,
        "leader": {"model_id": prediction.leader, "set_by": deployment.leader_set_by},
        "flags": prediction.flags,
        "scoring": prediction.scoring,
        "tally": prediction.scoring.get("tally"),  # majority_vote: how the served value won
        "caller": prediction.caller,
        "client": client,
        "outcome": outcomes[-1] if outcomes else None,
        "outcomes": outcomes,
        "position": record.position,
        "recorded_at": iso(record.recorded_at),
        "occurred_at": _occurred_at(prediction.scoring),
        "chain": chain_of(record),
        "coverage": coverage_of(services, record, position),
        "as_of_position": position,
    }


def _occurred_at(scoring: dict[str, Any]) -> str | None:
    """The historic instant loaded history gave, else None (it occurred when recorded)."""
    at = scoring.get(OCCURRED_AT)
    return None if at is None else iso(at)


def may_read(principal: Principal, prediction: Any, client: str) -> bool:
    """A client's own predictions, or any on a deployment it is granted read on.

    Keys of the default client (issued before clients) share a namespace but were never
    declared one party: each still reads only its own predictions.
    """
    if principal.may("read", prediction.deployment):
        return True
    if client != principal.client:
        return False
    return principal.client != DEFAULT_CLIENT or prediction.caller == principal.actor


def missing(prediction_id: str, position: int | None) -> NotFound:
    """The one answer for a prediction that is not there, or not there for this caller."""
    if position is not None:
        return NotFound(f"prediction {prediction_id} did not exist at position {position}")
    return NotFound(f"prediction {prediction_id} not found")


def lookup(services: Services, prediction_id: str, position: int | None) -> PredictionRecord:
    """The prediction as of the position (now when None), or NotFound as Ledger.prediction says it."""
    try:
        uid = UUID(str(prediction_id))
    except ValueError:
        raise NotFound(f"prediction {prediction_id!r} not found: not a valid id") from None
    ledger = services.ledger
    record = read_prediction(ledger.engine, ledger.mapper, uid, position)
    if record is None:
        raise missing(prediction_id, position)
    return record


def deployment_at(services: Services, name: str, version: int) -> Any:
    """The deployment as it was at a version: no later event changes that."""
    ledger = services.ledger
    uid = ids.deployment_id(name)
    return ledger.read_cache.get(
        ("deployment", uid, version), lambda: ledger.repository.get(uid, version=version)
    )


def stamped(outcome: dict[str, Any], record: PredictionRecord) -> dict[str, Any]:
    """An outcome with when and where the ledger recorded it, and who reported it."""
    # `version` is the prediction's version the outcome was recorded on: its event is the next
    position, recorded_at = record.stamps[outcome["version"] + 1]
    return {
        **outcome,
        "recorded_at": iso(recorded_at),
        "position": position,
        "reporter": outcome["actor"],
    }


def coverage_of(
    services: Services, record: PredictionRecord, as_of: int | None
) -> dict[str, Any] | None:
    """The quality checks and feed periods that covered the prediction (None before the data
    health tables are built): its window check from the tables, its batch's check from the log."""
    prediction = record.prediction
    with lookup_engine(services.ledger.engine).connect() as conn:
        found = covering(conn, prediction.deployment, record.position, record.recorded_at, as_of)
        batch_id = (prediction.scoring or {}).get("batch_id")
        if found is not None and batch_id:
            found["quality_checks"] += batch_checks(
                services, conn, prediction.deployment, str(batch_id), found["position"]
            )
    return found


def batch_checks(
    services: Services, conn: Any, deployment: str, batch_id: str, upto: int
) -> list[dict[str, Any]]:
    """The check recorded for the prediction's batch (its key names the batch), if any."""
    check_id = quality_check_id(deployment, batch_check_key(batch_id))
    rows = log.rows(conn, originators=[check_id], classes=[QualityCheck.Recorded], upto=upto)
    checks = []
    for row in rows:
        event = log.decode(services.ledger.mapper, row)
        checks.append(
            {
                "check_id": row.originator_id,
                "key": event.key,
                "source": "batch",
                "position": row.position,
                "recorded_at": iso(row.recorded_at),
                "rows": int(event.covers.get("rows", 0)),
                "window": None,
                "batch": event.covers.get("batch"),
                "failing": list(event.failing),
                "passed": not event.failing,
                "actor": event.actor,
            }
        )
    return checks


def chain_of(record: PredictionRecord) -> dict[str, Any]:
    """The notary's chain hash at the prediction's position, or pending until the notary covers it."""
    if record.chain_hash is None:
        return {"status": "pending", "hash": None}
    return {"status": "chained", "hash": record.chain_hash.hex()}


def features_of(services: Services, prediction: Any) -> dict[str, Any]:
    if prediction.sealed and services.sealer is not None:
        return services.sealer.unseal_for_display(prediction)
    return dict(prediction.features)


def model_summary(services: Services, model_id: str) -> dict[str, Any]:
    model = services.ledger.model(model_id)
    return {
        "model_id": model_id,
        "name": model.name,
        "algorithm": model.algorithm,
        "features": model.features,
        "provenance": model.provenance,
        "artifact_digest": model.artifact_digest,
    }


def model_lineage(services: Services, model_id: str) -> dict[str, Any]:
    """The model with its training run (spec, params, code, metrics) and datasets."""
    model = services.ledger.model(model_id)
    summary = {
        **model_summary(services, model_id),
        "declared": model.declared,
        "registered_by": model.registered_by,
        "training_run": None,
    }
    if model.training_run_id:
        run = services.ledger.training_run(model.training_run_id)
        summary["training_run"] = {
            "id": str(run.id),
            "spec_name": run.spec_name,
            "algorithm": run.algorithm,
            "params": run.params,
            "code_version": run.code_version,
            "metrics": run.metrics,
            "target": run.target,
            "trigger": run.trigger,
            "status": run.status,
            "datasets": {role: dataset_summary(services, d) for role, d in run.dataset_ids.items()},
        }
    return summary


def dataset_summary(services: Services, dataset_id: str) -> dict[str, Any]:
    try:
        d = services.ledger.dataset(dataset_id)
    except LedgerError:
        return {"id": dataset_id, "missing": True}
    return {
        "id": dataset_id,
        "fingerprint": d.fingerprint,
        "rows": d.rows,
        "time_range": d.time_range,
        "source": d.source,
        "role": d.role,
        "columns": d.columns,
    }
