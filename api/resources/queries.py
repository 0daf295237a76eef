"""Reads from the projections: the prediction index, performance, the model index.

They run on the standby when one is configured (api/replica.py). Every answer says the
ledger position it answers at (`position`) and whether it covers the asked `as_of`
(`complete`). `min_position=N` asks to see at least position N (a write just made): the
read waits up to a few seconds for the projection to pass it.
"""

from __future__ import annotations

from typing import Any

import falcon

from api import params
from api.errors import Problem
from api.services import Services
from ledger.errors import InvalidCommand
from ledger.timeline import parse_micros
from projections.query_catalog import get_model, list_models
from projections.query_performance import performance
from projections.query_predictions import list_predictions

WAIT_SECONDS = 5.0
FEATURE_PREFIX = "feature."


def instant(req: falcon.Request, name: str) -> int | None:
    """An ISO-8601 instant with an offset as µs since the epoch (422 otherwise)."""
    raw = req.get_param(name)
    if not raw:
        return None
    try:
        return parse_micros(raw, name)
    except InvalidCommand:
        raise Problem(
            422,
            "invalid_instant",
            f"{name} must be an ISO-8601 instant such as 2026-03-03T12:00:00Z",
            name,
        ) from None


def flag(req: falcon.Request, name: str) -> bool | None:
    raw = req.get_param(name)
    if raw is None:
        return None
    if raw.lower() not in ("true", "false", "1", "0"):
        raise Problem(422, "invalid_boolean", f"{name} must be true or false", name)
    return raw.lower() in ("true", "1")


def read_position(req: falcon.Request, services: Services) -> tuple[int | None, float]:
    """(as_of, wait): `min_position` turns into an as_of the read waits for."""
    as_of = params.as_of(req, services.ledger.engine)
    least = req.get_param_as_int("min_position", min_value=0)
    if least is None:
        return as_of, 0.0
    return (least if as_of is None else max(as_of, least)), WAIT_SECONDS


class PredictionIndexResource:
    """GET /v1/predictions: filters, newest first, `limit` and a cursor pinned to a position."""

    def __init__(self, services: Services):
        self.services = services

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        as_of, wait = read_position(req, self.services)
        features = {
            k[len(FEATURE_PREFIX) :]: v
            for k, v in req.params.items()
            if k.startswith(FEATURE_PREFIX)
        }
        resp.media = list_predictions(
            self.services.read_engine("predictions"),
            deployment=req.get_param("deployment"),
            model=req.get_param("model"),
            from_us=instant(req, "from"),
            to_us=instant(req, "to"),
            features=features,
            has_outcome=flag(req, "has_outcome"),
            flagged=flag(req, "flagged"),
            limit=params.limit(req),
            cursor=req.get_param("cursor"),
            as_of=as_of,
            wait=wait,
        )


class PerformanceResource:
    """GET /v1/performance: metrics per model and slice value, each with its count."""

    def __init__(self, services: Services):
        self.services = services

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        deployment = req.get_param("deployment")
        if not deployment:
            raise Problem(
                422, "deployment_required", "name the deployment: ?deployment=NAME", "deployment"
            )
        as_of, wait = read_position(req, self.services)
        resp.media = performance(
            self.services.read_engine("predictions"),
            deployment,
            model=req.get_param("model"),
            from_us=instant(req, "from"),
            to_us=instant(req, "to"),
            window_days=req.get_param_as_int("window_days", min_value=1),
            slice_feature=req.get_param("slice"),
            as_of=as_of,
            wait=wait,
        )


def model_index(services: Services, req: falcon.Request, resp: falcon.Response) -> None:
    """GET /v1/models (mounted as the upload resource's on_get: one resource per path)."""
    as_of, wait = read_position(req, services)
    answer: dict[str, Any] = list_models(
        services.read_engine("models"),
        deployment=req.get_param("deployment"),
        limit=params.limit(req),
        after=params.name_cursor(req),
        as_of=as_of,
        wait=wait,
    )
    answer["next_cursor"] = params.next_name_cursor(answer.pop("next_after"))
    resp.media = answer


class ModelResource:
    """GET /v1/models/{model_id}: one model's provenance and roles over time."""

    def __init__(self, services: Services):
        self.services = services

    def on_get(self, req: falcon.Request, resp: falcon.Response, model_id: str) -> None:
        as_of, wait = read_position(req, self.services)
        resp.media = get_model(self.services.read_engine("models"), model_id, as_of, wait)


def add_routes(app: falcon.App, services: Services) -> None:
    app.add_route("/v1/predictions", PredictionIndexResource(services))
    app.add_route("/v1/performance", PerformanceResource(services))
    app.add_route("/v1/models/{model_id}", ModelResource(services))
