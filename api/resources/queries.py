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
from api.catalog import deployment_names
from api.errors import Problem
from api.services import Services
from ledger.errors import NotFound
from ledger.timeline import head_position
from projections.query_catalog import get_model, list_models
from projections.query_performance import performance
from projections.query_predictions import list_predictions

WAIT_SECONDS = 5.0
NAMES_SHOWN = 20  # a refusal lists this many known feature names, then says how many more


def read_position(req: falcon.Request, services: Services) -> tuple[int | None, float]:
    """(as_of, wait): `min_position` turns into an as_of the read waits for."""
    as_of = params.as_of(req, services.ledger.engine)
    least = params.query(req)["min_position"]
    if least is None:
        return as_of, 0.0
    wanted = least if as_of is None else max(as_of, least)
    if least > head_position(services.ledger.engine):
        return wanted, 0.0  # not recorded yet: no projection can pass it, so waiting is futile
    return wanted, WAIT_SECONDS


class PredictionIndexResource:
    """GET /v1/predictions: filters, newest first, `limit` and a cursor pinned to a position."""

    def __init__(self, services: Services):
        self.services = services

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        as_of, wait = read_position(req, self.services)
        query = params.query(req)
        check_features(self.services, query["deployment"], query["feature."])
        resp.media = list_predictions(
            self.services.read_engine("predictions"),
            deployment=query["deployment"],
            model=query["model"],
            from_us=query["from"],
            to_us=query["to"],
            features=query["feature."],
            has_outcome=query["has_outcome"],
            flagged=query["flagged"],
            limit=query["limit"],
            cursor=query["cursor"],
            as_of=as_of,
            wait=wait,
        )


def known_features(services: Services, deployment: str | None) -> list[str] | None:
    """The feature names of the deployment's input schema (of every deployment's, without
    one); None for a deployment that does not exist (its page is empty whatever the filter)."""
    names = [deployment] if deployment else deployment_names(services.ledger.engine, None)
    known: set[str] = set()
    for name in names:
        try:
            known.update(services.ledger.deployment(name).feature_names)
        except NotFound:
            if deployment:
                return None
    return sorted(known)


def check_features(services: Services, deployment: str | None, wanted: dict[str, str]) -> None:
    """422 `unknown_feature` for a filter on a feature the input schema does not name.

    422, not 400: the request is well formed, the deployment's own schema refuses it."""
    if not wanted:
        return
    known = known_features(services, deployment)
    if known is None:
        return
    unknown = sorted(set(wanted) - set(known))
    if not unknown:
        return
    shown = ", ".join(known[:NAMES_SHOWN]) or "none"
    if len(known) > NAMES_SHOWN:
        shown += f" and {len(known) - NAMES_SHOWN} more"
    where = f"deployment {deployment!r}" if deployment else "any deployment"
    raise Problem(
        422,
        "unknown_feature",
        f"{', '.join(repr(n) for n in unknown)} is not a feature of {where}; known: {shown}",
        f"feature.{unknown[0]}",
        unknown=unknown,
    )


class PerformanceResource:
    """GET /v1/performance: metrics per model and slice value, each with its count."""

    def __init__(self, services: Services):
        self.services = services

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        as_of, wait = read_position(req, self.services)
        query = params.query(req)
        resp.media = performance(
            self.services.read_engine("predictions"),
            query["deployment"],
            model=query["model"],
            from_us=query["from"],
            to_us=query["to"],
            window_days=query["window_days"],
            slice_feature=query["slice"],
            as_of=as_of,
            wait=wait,
        )


def model_index(services: Services, req: falcon.Request, resp: falcon.Response) -> None:
    """GET /v1/models (mounted as the upload resource's on_get: one resource per path)."""
    as_of, wait = read_position(req, services)
    answer: dict[str, Any] = list_models(
        services.read_engine("models"),
        deployment=params.query(req)["deployment"],
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
