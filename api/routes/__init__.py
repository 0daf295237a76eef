"""The route table: every operation declared once, by area (one module each).

`roles` is who may call a route: PUBLIC for no key at all. `own_only` names roles that
may read only what they themselves recorded (the resource checks ownership). A route
that is not in this table is refused (deny by default). Query parameters not declared
are refused (api/query.py), answers are dumped through the declared schemas, and the
OpenAPI document and docs/API.md's route list are generated from the table.
"""

from __future__ import annotations

from api.routes import (
    deployments,
    exports,
    health,
    keys,
    ledger,
    models,
    outcomes,
    predictions,
    service,
    subjects,
)
from api.routes.table import ADMIN, ANY, AUDITOR, PREDICTOR, PUBLIC, Answer, Param, Route

__all__ = ["ADMIN", "ANY", "AUDITOR", "PREDICTOR", "PUBLIC", "Answer", "Param", "Route"]

ROUTES: tuple[Route, ...] = (
    *deployments.ROUTES,
    *models.ROUTES,
    *predictions.ROUTES,
    *outcomes.ROUTES,
    *health.ROUTES,
    *ledger.ROUTES,
    *exports.ROUTES,
    *subjects.ROUTES,
    *keys.ROUTES,
    *service.ROUTES,
)

# One tag per area, in the order /docs and docs/API.md show them; each route names one.
TAGS: dict[str, str] = {
    "deployments": "Deployments and the models they serve",
    "models": "Uploaded and trained models, their provenance and roles",
    "predictions": "Scoring, one prediction's provenance, the index, performance",
    "outcomes": "What came true",
    "data health": "Feeds, quality checks, drift and model health",
    "ledger and proof": "Raw events, signed digests, verification",
    "exports": "Compliance exports",
    "subjects and privacy": "Erasure of a subject's personal data",
    "keys": "API keys",
    "service": "Liveness, metrics, this document, the docs and the dashboard",
}

BY_KEY: dict[tuple[str, str], Route] = {(r.method, r.path): r for r in ROUTES}
PATHS: frozenset[str] = frozenset(r.path for r in ROUTES)


def route_for(method: str, path_template: str | None) -> Route | None:
    """The table's row for a routed request, or None (which the middleware refuses)."""
    if path_template is None:
        return None
    return BY_KEY.get((method, path_template))
