"""Data and model health: ingestion counts, batch quality checks, and GET /v1/data-health."""

from __future__ import annotations

from typing import Any

import falcon
import sqlalchemy as sa
from marshmallow import ValidationError

from api import params
from api.services import Services
from ledger.errors import LedgerError
from policies.quality_windows import check_batch
from projections import health_queries
from projections.model_health import model_health
from serving.rows import checked_rows

WAIT_SECONDS = 2.0  # an as_of the projection has not reached yet waits this long, then says so


def check_document(check: Any) -> dict[str, Any]:
    """A recorded quality check as the API answers it."""
    return {
        "check_id": str(check.id),
        "deployment": check.deployment,
        "key": check.key,
        "rows": check.covers.get("rows", 0),
        "batch": check.covers.get("batch"),
        "reference": check.reference,
        "features": check.features,
        "outlier_share": check.outliers.get("share"),
        "outliers": check.outliers.get("rows", []),
        "bad_rows": check.outliers.get("bad_rows", 0),
        "row_errors": check.outliers.get("type_errors", []),
        "results": check.results,
        "failing": check.failing,
        "passed": not check.failing,
    }


def data_health(services: Services, req: falcon.Request) -> dict[str, Any]:
    """Feeds and quality checks from the health tables, plus model health per deployment."""
    position = params.as_of(req, services.ledger.engine)
    engine = services.read_engine("health", "predictions", "deployments")
    query = params.query(req)
    deployment = query["deployment"]
    with engine.connect() as conn:
        ready = health_queries.tables(conn) is not None
    answer = (
        health_queries.data_health(
            engine,
            position,
            deployment,
            period_limit=query["limit"],
            check_limit=query["checks"],
            wait=WAIT_SECONDS,
        )
        if ready
        else {"feeds": [], "deployments": [], "position": 0, "complete": position is None}
    )
    days = query["days"]
    answer["model_health"] = [
        model_health_or_reason(engine, name, position, days)
        for name in deployment_names(engine, position, deployment)
    ]
    return answer


def deployment_names(engine: sa.Engine, position: int | None, only: str | None) -> list[str]:
    from projections.query_catalog import list_deployments

    try:
        names = [d["name"] for d in list_deployments(engine, position)["items"]]
    except LedgerError:
        return []  # the deployments read table is not built yet
    return [n for n in names if only is None or n == only]


def model_health_or_reason(
    engine: sa.Engine, name: str, position: int | None, days: int
) -> dict[str, Any]:
    """One deployment's model health, or why there is none yet (no outcomes, tables not built)."""
    try:
        return model_health(engine, name, position, days=days)
    except LedgerError as error:
        return {"deployment": name, "models": [], "unavailable": error.detail}


class IngestionsResource:
    """POST /v1/ingestions: a feed's received count for a period."""

    def __init__(self, services: Services):
        self.services = services

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        report = params.load(req)
        start = report["period_start"].isoformat() if report["period_start"] else None
        feed = self.services.ledger.report_ingestion(
            report["feed"],
            report["count"],
            req.context.principal.actor,
            period_start=start,
            source=report["source"],
        )
        resp.status = falcon.HTTP_201
        resp.media = {
            "feed": feed.name,
            "count": report["count"],
            "period_start": start,
            "reported_total": feed.reported,
        }


class QualityChecksResource:
    """POST /v1/deployments/{name}/quality-checks: check a batch against the reference profile."""

    def __init__(self, services: Services):
        self.services = services

    def on_post(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        batch = params.load(req)
        if len(batch["rows"]) > self.services.settings.max_batch_rows:
            raise ValidationError(
                f"send at most {self.services.settings.max_batch_rows} rows a check", "rows"
            )
        check = check_batch(
            self.services.ledger,
            name,
            batch["rows"],
            req.context.principal.actor,
            checker=checked_rows,
            batch_id=batch["batch_id"],
        )
        resp.status = falcon.HTTP_201
        resp.location = f"/v1/data-health?deployment={name}"
        resp.media = check_document(check)


class DataHealthResource:
    """GET /v1/data-health: feeds, drift, outliers, failing checks and model health; as_of."""

    def __init__(self, services: Services):
        self.services = services

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = data_health(self.services, req)


def add_routes(app: falcon.App, services: Services) -> None:
    app.add_route("/v1/ingestions", IngestionsResource(services))
    app.add_route("/v1/deployments/{name}/quality-checks", QualityChecksResource(services))
    app.add_route("/v1/data-health", DataHealthResource(services))
