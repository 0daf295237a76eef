"""The prediction command: validate rows, score them, record each row as a Prediction.

`score_request` is everything that happens before recording; `predict` records what it
scored. Nothing in production answers without recording: the benchmark's no-recording
baseline composes `score_request` with `unrecorded_answer` itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from eventsourcing.persistence import StoredEvent
from marshmallow import ValidationError

from ledger import values
from ledger.domain.predictions import OCCURRED_AT, NewPrediction, Prediction
from ledger.errors import Conflict, InvalidCommand, TooLarge
from ledger.ids import DEFAULT_CLIENT, prediction_id
from ledger.privacy.sealing import BeforeNewKeys, SealedRow
from serving.requests import PredictionRequestSchema
from serving.scoring import DeploymentRuntime, RowScore
from serving.service import Serving

REQUEST_SCHEMA = PredictionRequestSchema()


class BatchTooLarge(TooLarge):
    """A batch over the configured row cap."""

    code = "batch_too_large"


class DuplicateRequestId(InvalidCommand):
    code = "duplicate_request_id"


@dataclass(frozen=True)
class ScoredRequest:
    """One request's rows as validated and scored, not yet recorded."""

    request_id: str
    batch: bool
    runtime: DeploymentRuntime
    rows: list[dict[str, Any]]
    scores: list[RowScore]
    request_ids: list[str]


def predict(
    serving: Serving,
    name: str,
    body: Any,
    actor: str,
    client: str = DEFAULT_CLIENT,
    occurred_at: int | None = None,
) -> tuple[dict[str, Any], bool]:
    """Score one row or a batch and record it; (answer, True when anything new was recorded).

    Request ids are the client's: the same id from another client is another prediction.
    `occurred_at` (µs) is the historic instant of loaded history, kept in `scoring`; who
    may give one is checked by the caller (`historic_instant`, in the access module).
    """
    if isinstance(body, dict) and "instances" in body:
        from serving.batch import predict_batch  # column-wise; it builds on this module

        return predict_batch(serving, name, body, actor, client, occurred_at)
    scored = score_request(serving, name, body)
    try:
        predictions = build_predictions(serving, scored, actor, client, occurred_at)
    except KeyMadeMeanwhile:  # a concurrent copy of this request made the subject's key
        predictions = build_predictions(serving, scored, actor, client, occurred_at)
    answers, created = record_answers(serving, predictions)
    return answers[0], created  # a batch went to serving.batch above


def record_answers(
    serving: Serving,
    predictions: list[NewPrediction],
    made: Sequence[Sequence[StoredEvent]] | None = None,
) -> tuple[list[dict[str, Any]], bool]:
    """Record the predictions; each row's answer, and True when anything new was recorded."""
    recorded = serving.ledger.record_predictions(predictions, made)
    answers = [row_answer(p, position is None) for p, position in recorded]
    return answers, any(position is not None for _, position in recorded)


def score_request(serving: Serving, name: str, body: Any) -> ScoredRequest:
    """The request's rows validated against the deployment's schema and scored by every active model."""
    check_batch_size(body, serving.settings.max_batch_rows)
    request = REQUEST_SCHEMA.load(body)
    runtime = serving.scorer.runtime(name)
    batch = "instances" in request
    raw_rows = request["instances"] if batch else [request["features"]]
    request_ids = row_request_ids(request["request_id"], raw_rows, batch)
    rows = validate_rows(serving, runtime, raw_rows, batch)
    scores = serving.scorer.score(runtime, rows)
    return ScoredRequest(request["request_id"], batch, runtime, rows, scores, request_ids)


def unrecorded_answer(scored: ScoredRequest) -> dict[str, Any]:
    """What `predict` answers, without a prediction id: for a baseline that records nothing."""
    answers = [
        {
            "request_id": request_id,
            "model_id": score.served_model,
            "value": score.served["value"],
            "probabilities": score.served.get("probabilities"),
            "flags": score.flags,
            "retried": False,
        }
        for score, request_id in zip(scored.scores, scored.request_ids, strict=True)
    ]
    return {"request_id": scored.request_id, "predictions": answers} if scored.batch else answers[0]


def check_batch_size(body: Any, cap: int) -> None:
    instances = body.get("instances") if isinstance(body, dict) else None
    if isinstance(instances, list) and len(instances) > cap:
        raise BatchTooLarge(
            f"the batch has {len(instances)} rows; the limit is {cap}: split it",
            field="instances",
            limit=cap,
        )


def row_request_ids(request_id: str, raw_rows: list[Any], batch: bool) -> list[str]:
    """A batch row's own request_id, else `<batch request_id>#<index>`."""
    if not batch:
        return [request_id]
    out = []
    for index, row in enumerate(raw_rows):
        own = row.get("request_id") if isinstance(row, dict) else None
        fault = None if own is None else request_id_fault(own)
        if fault is not None:
            raise ValidationError({"instances": {index: {"request_id": [fault]}}})
        out.append(own or f"{request_id}#{index}")
    if len(set(out)) != len(out):
        raise DuplicateRequestId("two rows of the batch share a request_id", field="instances")
    return out


def request_id_fault(own: Any) -> str | None:
    """What is wrong with a batch row's own request id, or None."""
    if type(own) is not str or not own:
        return "Not a valid request id."
    why = values.text_fault(own, values.ID_MAX)
    return None if why is None else f"The request id {why}."


def validate_rows(
    serving: Serving, runtime: DeploymentRuntime, raw_rows: list[Any], batch: bool
) -> list[dict[str, Any]]:
    """Each row through the deployment's generated schema; errors name instances.i.field."""
    schema = serving.row_schemas.get(runtime.name, runtime.version, runtime.schema)
    if batch:
        raw_rows = [
            {k: v for k, v in r.items() if k != "request_id"} if isinstance(r, dict) else r
            for r in raw_rows
        ]
    try:
        return schema.load(raw_rows, many=True)
    except ValidationError as error:
        messages = error.messages if batch else error.messages.get(0, error.messages)  # type: ignore[union-attr]
        raise ValidationError({"instances" if batch else "features": messages}) from None


def build_predictions(
    serving: Serving,
    scored: ScoredRequest,
    actor: str,
    client: str = DEFAULT_CLIENT,
    occurred_at: int | None = None,
) -> list[NewPrediction]:
    runtime, rows = scored.runtime, scored.rows
    batch_id = scored.request_id if scored.batch else None
    sealed = serving.sealer.seal_many(
        runtime.schema,
        rows,
        deployment=runtime.name,
        request_ids=scored.request_ids,
        before_new_keys=retries_checked(serving, scored, client),
        client=client,
    )
    return [
        NewPrediction(
            deployment=runtime.name,
            deployment_version=runtime.version,
            request_id=request_id,
            # a sealed row's digest is keyed by its subject's data key
            body_digest=serving.sealer.body_digest(row, sealed_record),
            features=plain,
            sealed=sealed_record,
            outputs=score.outputs,
            served_model=score.served_model,
            policy=runtime.policy,
            leader=runtime.leader,
            flags=score.flags,
            scoring=scoring(batch_id, index, len(rows), score.scorers, score.tally, occurred_at),
            actor=actor,
            client=client,
        )
        for index, (row, score, request_id, (plain, sealed_record)) in enumerate(
            zip(rows, scored.scores, scored.request_ids, sealed, strict=True)
        )
    ]


class KeyMadeMeanwhile(Conflict):
    """A recorded row whose subject had no key when this request looked: another subject's,
    an erased one's, or a concurrent copy of this request made it since (then, once, the
    request is sealed again and answered as the retry it is)."""


def retries_checked(serving: Serving, scored: ScoredRequest, client: str) -> BeforeNewKeys:
    """Refuse a retry that would be refused anyway before a new subject key is made for it.

    Runs only when some row's subject has no key yet. A retried row needing a new key was
    recorded for another subject, or for one since erased; either way it is refused (409)
    and no key is created: a refused request never leaves a key, and an erased subject's
    retry does not bring one back.
    """

    def check(new_subject_rows: list[int], sealed: dict[int, SealedRow]) -> None:
        ids = [prediction_id(scored.runtime.name, r, client) for r in scored.request_ids]
        recorded = serving.ledger.recorded_prediction_ids(ids)
        for index in (i for i, pid in enumerate(ids) if pid in recorded):
            request_id = scored.request_ids[index]
            if index in new_subject_rows:
                raise KeyMadeMeanwhile(
                    f"request_id {request_id!r} was already used, for another subject or for "
                    "one whose data was since erased: send a new request_id",
                    field="request_id",
                )
            digest = serving.sealer.body_digest(scored.rows[index], sealed[index].sealed)
            if digest != serving.ledger.prediction(ids[index]).body_digest:
                raise Conflict(
                    f"request_id {request_id!r} was already used with a different body",
                    field="request_id",
                )

    return check


def scoring(
    batch_id: str | None,
    row: int,
    rows: int,
    scorers: dict[str, str],
    tally: dict[str, Any] | None = None,
    occurred_at: int | None = None,
) -> dict[str, Any]:
    """How the row was scored: alone or row i of a batch, by which scorer per model, under
    majority_vote the tally that chose the served model, and for loaded history when."""
    how: dict[str, Any] = (
        {"mode": "single"}
        if batch_id is None
        else {"mode": "batch", "batch_id": batch_id, "row": row, "rows": rows}
    )
    if scorers:
        how["scorer"] = dict(scorers)
    if tally is not None:
        how["tally"] = tally
    if occurred_at is not None:
        how[OCCURRED_AT] = occurred_at
    return how


def row_answer(prediction: Prediction | NewPrediction, retried: bool) -> dict[str, Any]:
    served = prediction.outputs[prediction.served_model]
    return {
        "prediction_id": str(prediction.id),
        "request_id": prediction.request_id,
        "model_id": prediction.served_model,
        "value": served["value"],
        "probabilities": served.get("probabilities"),
        "flags": prediction.flags,
        "retried": retried,
    }
