"""Deployments: create, list, read (as of), change, add and retire models, promote."""

from __future__ import annotations

from typing import Any

import falcon

from api import catalog, params
from api.services import Services
from ledger.domain.access import historic_instant
from ledger.errors import LedgerError
from ledger.leadership import leader_histories, leader_since


def histories(services: Services, names: list[str], position: int | None) -> dict[str, Any]:
    """The leader changes of these deployments up to the position: one read of the log."""
    ledger = services.ledger
    with ledger.engine.connect() as conn:
        return leader_histories(conn, ledger.mapper, names, position)


def document(
    services: Services,
    deployment: Any,
    position: int | None = None,
    history: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A deployment as read: leader and challengers with model summaries, and who made the
    leader leader, when and why (its leader history up to the position)."""
    if history is None:
        history = histories(services, [deployment.name], position)[deployment.name]
    summaries = {m: model_summary(services, m, m == deployment.leader) for m in deployment.models}
    return {
        "name": deployment.name,
        "task": deployment.task,
        "version": deployment.version,
        "schema": deployment.schema,
        "policy": deployment.policy,
        "positive_label": deployment.positive_label,
        "outcome_maturity_days": deployment.outcome_maturity_days,
        "settings": deployment.settings,
        "leader": summaries.get(deployment.leader) if deployment.leader else None,
        "challengers": [s for m, s in summaries.items() if m != deployment.leader],
        "leader_set_by": deployment.leader_set_by,
        "leader_since": leader_since(history, deployment.leader),
        "leader_history": history,
        "as_of_position": position,
    }


def model_summary(services: Services, model_id: str, leads: bool) -> dict[str, Any]:
    try:
        model = services.ledger.model(model_id)
    except LedgerError:
        return {"id": model_id, "role": "leader" if leads else "challenger"}
    return {
        "id": model_id,
        "name": model.name,
        "algorithm": model.algorithm,
        "features": model.features,
        "provenance": model.provenance,
        "training_run_id": model.training_run_id,
        "role": "leader" if leads else "challenger",
    }


def respond(resp: falcon.Response, services: Services, deployment: Any, status: int = 200) -> None:
    services.deployment_changed(deployment.name)
    resp.status = status
    resp.etag = params.etag(deployment.version)
    resp.media = document(services, deployment)


class DeploymentsResource:
    """POST and GET /v1/deployments."""

    def __init__(self, services: Services):
        self.services = services

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        command = params.load(req)
        deployment = self.services.ledger.create_deployment(
            actor=req.context.principal.actor, **command
        )
        respond(resp, self.services, deployment, 201)
        resp.location = f"/v1/deployments/{deployment.name}"

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        ledger = self.services.ledger
        position = params.as_of(req, ledger.engine)
        names, last = catalog.page(
            catalog.deployment_names(ledger.engine, position),
            params.name_cursor(req),
            params.limit(req),
        )
        found = histories(self.services, names, position)
        items = [
            document(self.services, ledger.deployment(name, position), position, found[name])
            for name in names
        ]
        resp.media = {"items": items, "next_cursor": params.next_name_cursor(last)}


class DeploymentResource:
    """GET and PATCH /v1/deployments/{name}."""

    def __init__(self, services: Services):
        self.services = services

    def on_get(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        position = params.as_of(req, self.services.ledger.engine)
        deployment = self.services.ledger.deployment(name, position)
        resp.etag = params.etag(deployment.version)
        resp.media = document(self.services, deployment, position)

    def on_patch(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        version = params.if_match(req)
        change = params.load(req)
        deployment = self.services.ledger.change_deployment(
            name, req.context.principal.actor, expected_version=version, **change
        )
        respond(resp, self.services, deployment)


class DeploymentModelsResource:
    """POST /v1/deployments/{name}/models: add a challenger (If-Match optional)."""

    def __init__(self, services: Services):
        self.services = services

    def on_post(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        version = params.if_match(req, required=False)
        command = params.load(req)
        if version is not None:
            self.services.ledger.deployment(name).check_version(version)
        deployment = self.services.ledger.add_model(
            name, command["model_id"], req.context.principal.actor
        )
        respond(resp, self.services, deployment, 201)
        resp.location = f"/v1/models/{command['model_id']}"


class DeploymentModelResource:
    """DELETE /v1/deployments/{name}/models/{model_id}: retire (an event; nothing is deleted)."""

    def __init__(self, services: Services):
        self.services = services

    def on_delete(
        self, req: falcon.Request, resp: falcon.Response, name: str, model_id: str
    ) -> None:
        reason = params.query(req)["reason"] or (
            params.load(req)["reason"] if req.content_length else "retired over the API"
        )
        deployment = self.services.ledger.retire_model(
            name, model_id, reason, req.context.principal.actor
        )
        respond(resp, self.services, deployment)


class LeaderResource:
    """PUT /v1/deployments/{name}/leader: promote a model (If-Match required)."""

    def __init__(self, services: Services):
        self.services = services

    def on_put(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        version = params.if_match(req)
        command = params.load(req)
        principal = req.context.principal
        deployment = self.services.ledger.promote(
            name,
            str(command["model_id"]),
            command["reason"],
            principal.actor,
            expected_version=version,
            occurred_at=historic_instant(principal.grants, name, command.get("occurred_at")),
        )
        respond(resp, self.services, deployment)


def add_routes(app: falcon.App, services: Services) -> None:
    app.add_route("/v1/deployments", DeploymentsResource(services))
    app.add_route("/v1/deployments/{name}", DeploymentResource(services))
    app.add_route("/v1/deployments/{name}/models", DeploymentModelsResource(services))
    app.add_route("/v1/deployments/{name}/models/{model_id}", DeploymentModelResource(services))
    app.add_route("/v1/deployments/{name}/leader", LeaderResource(services))
