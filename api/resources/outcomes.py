"""Outcomes: what came true, by prediction id or by deployment + request id.

A list is all or nothing: every item is checked and the outcomes are saved in one
transaction, so an unknown prediction (404 naming the item's index) records none.
A retried outcome is answered 200 with the original (ledger/outcomes.py has the rules,
including who may report: a request id is the caller's client's, and another client's
prediction, named by id, is refused 403 unless granted, as an id naming nothing is).
"""

from __future__ import annotations

from typing import Any

import falcon
from marshmallow import ValidationError

from api import params
from api.services import Services
from ledger.outcomes import NewOutcome, RecordedOutcome


def outcome_answer(recorded: RecordedOutcome) -> dict[str, Any]:
    prediction, outcome = recorded.prediction, recorded.outcome
    return {
        "prediction_id": str(prediction.id),
        "deployment": prediction.deployment,
        "request_id": prediction.request_id,
        "actual": outcome["actual"],
        "observed_at": outcome["observed_at"],
        "correction": outcome["correction"],
        "outcome_id": outcome["outcome_id"],
        "retried": recorded.retried,
    }


class OutcomesResource:
    """POST /v1/outcomes: one outcome or a list (201 if any is new, 200 when all are retries)."""

    def __init__(self, services: Services):
        self.services = services

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        body = params.body(req)
        many = isinstance(body, list)
        if many and not 1 <= len(body) <= self.services.settings.max_batch_rows:
            raise ValidationError(
                f"send 1 to {self.services.settings.max_batch_rows} outcomes", "body"
            )
        items = params.load(req)
        outcomes = [
            NewOutcome(
                i.get("prediction_id"),
                i["actual"],
                i["observed_at"] and i["observed_at"].isoformat(),
                i["outcome_id"],
                i.get("deployment"),
                i.get("request_id"),
            )
            for i in (items if many else [items])
        ]
        recorded = self.services.ledger.record_outcomes(outcomes, req.context.principal.reporter)
        answers = [outcome_answer(r) for r in recorded]
        resp.status = falcon.HTTP_200 if all(r.retried for r in recorded) else falcon.HTTP_201
        resp.media = {"outcomes": answers} if many else answers[0]


def add_routes(app: falcon.App, services: Services) -> None:
    app.add_route("/v1/outcomes", OutcomesResource(services))
