"""The whole provenance of one prediction, assembled from the events behind it."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import sqlalchemy as sa

from api.auth import Principal
from api.routes import route_for
from api.services import Services
from ledger import ids
from ledger.errors import LedgerError, NotFound
from ledger.storage import EVENTS_TABLE, is_postgres
from ledger.timeline import iso

OWN_ROUTE = route_for("GET", "/v1/predictions/{prediction_id}")


def provenance(services: Services, prediction_id: str, principal: Principal,
               position: int | None) -> dict[str, Any]:
    """Features, every output, the served model's lineage, policy, leader, outcomes, chain."""
    ledger = services.ledger
    prediction = ledger.prediction(prediction_id, position)
    if OWN_ROUTE and principal.role in OWN_ROUTE.own_only and prediction.caller != principal.actor:
        raise NotFound(f"prediction {prediction_id} not found")  # others' predictions stay invisible
    deployment: Any = ledger.repository.get(ids.deployment_id(prediction.deployment),
                                       version=prediction.deployment_version)
    made_at, recorded_at = made_position(ledger.engine, prediction.id)
    return {
        "prediction_id": str(prediction.id), "deployment": prediction.deployment,
        "request_id": prediction.request_id, "features": features_of(services, prediction),
        "sealed_fields": (prediction.sealed or {}).get("fields", []),
        "outputs": prediction.outputs,
        "served": {**model_lineage(services, prediction.served_model),
                   **prediction.outputs[prediction.served_model]},
        "shadow": [{**model_summary(services, m), **out} for m, out in prediction.outputs.items()
                   if m != prediction.served_model],
        "policy": prediction.policy, "deployment_version": prediction.deployment_version,
        "leader": {"model_id": prediction.leader, "set_by": deployment.leader_set_by},
        "flags": prediction.flags, "scoring": prediction.scoring, "caller": prediction.caller,
        "outcome": prediction.outcome, "outcomes": prediction.outcomes,
        "position": made_at, "recorded_at": iso(recorded_at),
        "chain": chain_at(ledger.engine, made_at), "as_of_position": position,
    }


def features_of(services: Services, prediction: Any) -> dict[str, Any]:
    if prediction.sealed and services.sealer is not None:
        return services.sealer.unseal_for_display(prediction)
    return dict(prediction.features)


def model_summary(services: Services, model_id: str) -> dict[str, Any]:
    model = services.ledger.model(model_id)
    return {"model_id": model_id, "name": model.name, "algorithm": model.algorithm,
            "features": model.features, "provenance": model.provenance, "artifact_digest": model.artifact_digest}


def model_lineage(services: Services, model_id: str) -> dict[str, Any]:
    """The model with its training run (spec, params, code, metrics) and datasets."""
    model = services.ledger.model(model_id)
    summary = {**model_summary(services, model_id), "declared": model.declared,
               "registered_by": model.registered_by, "training_run": None}
    if model.training_run_id:
        run = services.ledger.training_run(model.training_run_id)
        summary["training_run"] = {
            "id": str(run.id), "spec_name": run.spec_name, "algorithm": run.algorithm, "params": run.params,
            "code_version": run.code_version, "metrics": run.metrics, "target": run.target,
            "trigger": run.trigger, "status": run.status,
            "datasets": {role: dataset_summary(services, d) for role, d in run.dataset_ids.items()},
        }
    return summary


def dataset_summary(services: Services, dataset_id: str) -> dict[str, Any]:
    try:
        d = services.ledger.dataset(dataset_id)
    except LedgerError:
        return {"id": dataset_id, "missing": True}
    return {"id": dataset_id, "fingerprint": d.fingerprint, "rows": d.rows, "time_range": d.time_range,
            "source": d.source, "role": d.role, "columns": d.columns}


def made_position(engine: sa.Engine, prediction_id: UUID) -> tuple[int, int]:
    """(position, recorded-at µs) of the event that made the prediction."""
    with engine.connect() as conn:
        key: Any = str(prediction_id) if is_postgres(conn) else prediction_id.bytes
        row = conn.execute(sa.text(
            f"SELECT id, recorded_at FROM {EVENTS_TABLE} WHERE originator_id = :o AND originator_version = 1"
        ), {"o": key}).one()
    return int(row[0]), int(row[1])


def chain_at(engine: sa.Engine, position: int) -> dict[str, Any]:
    """The notary's chain hash at the position, or pending until the notary covers it."""
    try:
        from ledger.notary.store import has_notary_tables, iter_chain_rows
    except ImportError:
        return {"status": "pending", "hash": None}
    if not has_notary_tables(engine):
        return {"status": "pending", "hash": None}
    for _position, _content, chained in iter_chain_rows(engine, position, position):
        return {"status": "chained", "hash": chained.hex()}
    return {"status": "pending", "hash": None}
