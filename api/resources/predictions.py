"""Predictions: score one row or a batch; read one prediction's whole provenance."""

from __future__ import annotations

from typing import Any

import falcon

from api import params
from api.auth import Principal
from api.provenance import provenance
from api.services import Services
from ledger.domain.access import OCCURRED_AT_FIELD, historic_instant, may_predict
from ledger.errors import NotAuthorized
from serving.explain import explain_and_record
from serving.predict import predict
from serving.service import Serving


def predict_as(
    serving: Serving, principal: Principal, name: str, body: Any
) -> tuple[dict[str, Any], bool]:
    """A prediction request from this caller: its grants checked, then scored and recorded.

    What the HTTP route does after authentication, and what the demo's history loader calls
    with its own key: one path, one grant check, for live traffic and for loaded history.
    """
    if not may_predict(principal.grants, name):
        raise NotAuthorized(
            f"this key's client may predict only on the deployments it is granted "
            f"predict on, not {name!r}: ask an admin for a key with {name}:predict"
        )
    text = body.get(OCCURRED_AT_FIELD) if isinstance(body, dict) else None
    occurred_at = historic_instant(principal.grants, name, text)
    return predict(serving, name, body, principal.actor, principal.client, occurred_at)


class PredictionsResource:
    """POST /v1/deployments/{name}/predictions (201 new, 200 for a retry's original)."""

    def __init__(self, services: Services):
        self.services = services

    def on_post(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        answer, created = predict_as(
            self.services.serving, req.context.principal, name, params.body(req)
        )
        resp.status = falcon.HTTP_201 if created else falcon.HTTP_200
        if "prediction_id" in answer:
            resp.location = f"/v1/predictions/{answer['prediction_id']}"
        resp.media = answer


class PredictionResource:
    """GET /v1/predictions/{prediction_id}: the provenance (a predictor sees its client's)."""

    def __init__(self, services: Services):
        self.services = services

    def on_get(self, req: falcon.Request, resp: falcon.Response, prediction_id: str) -> None:
        position = params.as_of(req, self.services.ledger.engine)
        resp.media = provenance(self.services, prediction_id, req.context.principal, position)


class ExplanationResource:
    """GET /v1/predictions/{prediction_id}/explanation: exact contributions, computed on request."""

    def __init__(self, services: Services):
        self.services = services

    def on_get(self, req: falcon.Request, resp: falcon.Response, prediction_id: str) -> None:
        ledger = self.services.ledger
        position = params.as_of(req, ledger.engine)
        resp.media = explain_and_record(
            ledger, prediction_id, req.context.principal.actor, position
        )


def add_routes(app: falcon.App, services: Services) -> None:
    app.add_route("/v1/deployments/{name}/predictions", PredictionsResource(services))
    app.add_route("/v1/predictions/{prediction_id}", PredictionResource(services))
    app.add_route("/v1/predictions/{prediction_id}/explanation", ExplanationResource(services))
