"""The prediction command: validate rows, score them, record each row as a Prediction."""

from __future__ import annotations

import hashlib
import os
from typing import Any

import orjson
from marshmallow import ValidationError

from api.auth import Principal
from api.errors import Problem
from api.schemas.predictions import PredictionRequestSchema
from api.services import Services
from ledger.domain.predictions import NewPrediction, Prediction
from policies.serving import DeploymentRuntime, RowScore

REQUEST_SCHEMA = PredictionRequestSchema()


def body_digest(row: dict[str, Any]) -> str:
    """sha256 of the row's canonical JSON: what decides "same body" on a retry."""
    return hashlib.sha256(orjson.dumps(row, option=orjson.OPT_SORT_KEYS)).hexdigest()


def predict(services: Services, name: str, body: Any, principal: Principal) -> tuple[dict[str, Any], bool]:
    """Score one row or a batch and record it; (answer, True when anything new was recorded)."""
    check_batch_size(body, services.settings.max_batch_rows)
    request = REQUEST_SCHEMA.load(body)
    runtime = services.scorer.runtime(name)
    batch = "instances" in request
    raw_rows = request["instances"] if batch else [request["features"]]
    request_ids = row_request_ids(request["request_id"], raw_rows, batch)
    rows = validate_rows(services, runtime, raw_rows, batch)
    scores = services.scorer.score(runtime, rows)
    if not recording_on(services):
        return unrecorded_answer(request, scores, request_ids, batch), False
    predictions = build_predictions(services, runtime, rows, scores, request_ids, request["request_id"] if batch else None, principal)
    recorded = services.ledger.record_predictions(predictions)
    answers = [row_answer(p, position is None) for p, position in recorded]
    created = any(position is not None for _, position in recorded)
    if not batch:
        return answers[0], created
    return {"request_id": request["request_id"], "predictions": answers}, created


def recording_on(services: Services) -> bool:
    """BENCHMARK BASELINE ONLY (issue 7): LEDGER_RECORD_PREDICTIONS=0 scores without recording.

    Same models, same validation, same scoring; nothing is sealed or stored, so the answer
    carries no prediction id. Never set it in production: predictions would leave no trace.
    """
    value = services.settings.extra.get("record_predictions", os.environ.get("LEDGER_RECORD_PREDICTIONS", "1"))
    return str(value).strip().lower() not in ("0", "false", "no", "off")


def unrecorded_answer(request: dict[str, Any], scores: list[RowScore], request_ids: list[str],
                      batch: bool) -> dict[str, Any]:
    """The answer with recording off: what row_answer says, without a prediction id."""
    answers = [{"request_id": request_id, "model_id": score.served_model,
                "value": score.served["value"], "probabilities": score.served.get("probabilities"),
                "flags": score.flags, "retried": False}
               for score, request_id in zip(scores, request_ids, strict=True)]
    return {"request_id": request["request_id"], "predictions": answers} if batch else answers[0]


def check_batch_size(body: Any, cap: int) -> None:
    instances = body.get("instances") if isinstance(body, dict) else None
    if isinstance(instances, list) and len(instances) > cap:
        raise Problem(413, "batch_too_large",
                      f"the batch has {len(instances)} rows; the limit is {cap}: split it", "instances",
                      limit=cap)


def row_request_ids(request_id: str, raw_rows: list[Any], batch: bool) -> list[str]:
    """A batch row's own request_id, else `<batch request_id>#<index>`."""
    if not batch:
        return [request_id]
    out = []
    for index, row in enumerate(raw_rows):
        own = row.get("request_id") if isinstance(row, dict) else None
        if own is not None and (not isinstance(own, str) or not 1 <= len(own) <= 200):
            raise ValidationError({"instances": {index: {"request_id": ["Not a valid request id."]}}})
        out.append(own or f"{request_id}#{index}")
    if len(set(out)) != len(out):
        raise Problem(422, "duplicate_request_id", "two rows of the batch share a request_id", "instances")
    return out


def validate_rows(services: Services, runtime: DeploymentRuntime, raw_rows: list[Any],
                  batch: bool) -> list[dict[str, Any]]:
    """Each row through the deployment's generated schema; errors name instances.i.field."""
    schema = services.row_schemas.get(runtime.name, runtime.version, runtime.schema)
    if batch:
        raw_rows = [{k: v for k, v in r.items() if k != "request_id"} if isinstance(r, dict) else r
                    for r in raw_rows]
    try:
        return schema.load(raw_rows, many=True)
    except ValidationError as error:
        messages = error.messages if batch else error.messages.get(0, error.messages)  # type: ignore[union-attr]
        raise ValidationError({"instances" if batch else "features": messages}) from None


def build_predictions(
    services: Services, runtime: DeploymentRuntime, rows: list[dict[str, Any]], scores: list[RowScore],
    request_ids: list[str], batch_id: str | None, principal: Principal,
) -> list[NewPrediction]:
    sealed = seal_personal(services, runtime, rows, request_ids)
    return [
        NewPrediction(
            deployment=runtime.name, deployment_version=runtime.version, request_id=request_id,
            # issue 9 hook (privacy): a sealed row's digest is keyed by its subject's data key
            body_digest=services.sealer.body_digest(row, sealed_record) if services.sealer else body_digest(row),
            features=plain, sealed=sealed_record,
            outputs=score.outputs, served_model=score.served_model, policy=runtime.policy,
            leader=runtime.leader, flags=score.flags, scoring=scoring(batch_id, index, len(rows), score.scorers),
            actor=principal.actor,
        )
        for index, (row, score, request_id, (plain, sealed_record)) in enumerate(
            zip(rows, scores, request_ids, sealed, strict=True))
    ]


def seal_personal(services: Services, runtime: DeploymentRuntime, rows: list[dict[str, Any]],
                  request_ids: list[str]) -> list[tuple[dict[str, Any], dict[str, Any] | None]]:
    """THE call site for personal data: sealed features never reach the log in plaintext."""
    if services.sealer is None:
        return [(row, None) for row in rows]
    return services.sealer.seal_many(runtime.schema, rows, deployment=runtime.name, request_ids=request_ids)


def scoring(batch_id: str | None, row: int, rows: int, scorers: dict[str, str]) -> dict[str, Any]:
    """How the row was scored: alone or row i of a batch, and by which scorer per model."""
    how: dict[str, Any] = {"mode": "single"} if batch_id is None else {
        "mode": "batch", "batch_id": batch_id, "row": row, "rows": rows}
    if scorers:
        how["scorer"] = dict(scorers)
    return how


def row_answer(prediction: Prediction | NewPrediction, retried: bool) -> dict[str, Any]:
    served = prediction.outputs[prediction.served_model]
    return {
        "prediction_id": str(prediction.id), "request_id": prediction.request_id,
        "model_id": prediction.served_model, "value": served["value"],
        "probabilities": served.get("probabilities"), "flags": prediction.flags, "retried": retried,
    }
