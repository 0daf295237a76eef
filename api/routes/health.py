"""Data and model health: feeds' counts, batch quality checks, the data-health read."""

from __future__ import annotations

from api.routes.common import AS_OF, limit
from api.routes.table import ADMIN, AUDITOR, PREDICTOR, Answer, Param, Route, roles
from api.schemas.health import (
    DataHealthSchema,
    IngestionResultSchema,
    IngestionSchema,
    QualityCheckResultSchema,
    QualityCheckSchema,
)

TAG = "data health"

ROUTES = (
    Route(
        "POST",
        "/v1/ingestions",
        roles(PREDICTOR),
        "A feed's received count for a period",
        TAG,
        {201: Answer("the count as recorded", IngestionResultSchema)},
        body=IngestionSchema,
    ),
    Route(
        "POST",
        "/v1/deployments/{name}/quality-checks",
        roles(PREDICTOR, ADMIN),
        "Check rows against the reference profile",
        TAG,
        {201: Answer("what the check found", QualityCheckResultSchema)},
        body=QualityCheckSchema,
    ),
    Route(
        "GET",
        "/v1/data-health",
        roles(AUDITOR, ADMIN),
        "Feeds, drift, outliers, failing checks, model health",
        TAG,
        {200: Answer("feeds, deployments' checks and model health", DataHealthSchema)},
        query=(
            AS_OF,
            Param("deployment", "only this deployment"),
            limit(48, 24 * 31),
            Param(
                "checks",
                "quality checks per deployment",
                type="integer",
                minimum=1,
                maximum=200,
                default=20,
            ),
            Param(
                "days",
                "model health over the last N days",
                type="integer",
                minimum=1,
                maximum=90,
                default=14,
            ),
        ),
    ),
)
