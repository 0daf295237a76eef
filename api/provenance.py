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
from ledger import ids
from ledger.errors import LedgerError, NotFound
from ledger.ids import DEFAULT_CLIENT
from ledger.read_cache import PredictionRecord, read_prediction
from ledger.timeline import iso

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
    return {
        "prediction_id": str(prediction.id),
        "deployment": prediction.deployment,
        "request_id": prediction.request_id,
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
        "outcome": prediction.outcome,
        "outcomes": prediction.outcomes,
        "position": record.position,
        "recorded_at": iso(record.recorded_at),
        "chain": chain_of(record),
        "as_of_position": position,
    }


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
