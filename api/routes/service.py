"""The service itself: liveness, metrics, this specification, the docs and the dashboard."""

from __future__ import annotations

from api.routes.table import ADMIN, Answer, Route, roles
from api.schemas.ledger import HealthSchema, ReadinessSchema

TAG = "service"
HTML = "text/html; charset=utf-8"
ICON = "image/x-icon"

ROUTES = (
    Route(
        "GET",
        "/healthz",
        roles("none"),
        "Liveness, and each projection's position, lag and stall",
        TAG,
        {
            200: Answer("alive", HealthSchema),
            503: Answer("a projection has been stalled past the grace", HealthSchema),
        },
    ),
    Route(
        "GET",
        "/readyz",
        roles("none"),
        "Readiness: reads are served",
        TAG,
        {200: Answer("every projection has caught up", ReadinessSchema)},
        description="503 `not_ready` with Retry-After and `projections` (name, position, head) "
        "while a projection is still catching up with the ledger as of the process' start.",
    ),
    Route(
        "GET",
        "/openapi.json",
        roles("none"),
        "This specification",
        TAG,
        {200: Answer("OpenAPI 3", {"type": "object"})},
    ),
    Route(
        "GET",
        "/docs",
        roles("none"),
        "The API docs page",
        TAG,
        {200: Answer("Swagger UI", {"type": "string"}, media=HTML)},
    ),
    Route(
        "GET",
        "/docs/{file}",
        roles("none"),
        "The docs page's vendored files",
        TAG,
        {
            200: Answer(
                "a vendored file",
                {"type": "string"},
                media=(HTML, "text/javascript", "text/css", "image/png"),
            )
        },
    ),
    Route(
        "GET",
        "/metrics",
        roles(ADMIN),
        "Prometheus metrics",
        TAG,
        {200: Answer("the exposition format", {"type": "string"}, media="text/plain")},
    ),
    Route(
        "GET",
        "/dashboard",
        roles("none"),
        "The web dashboard",
        TAG,
        {200: Answer("the page", {"type": "string"}, media=HTML)},
    ),
    Route(
        "GET",
        "/",
        roles("none"),
        "The landing page: links to the dashboard and the API docs",
        TAG,
        {200: Answer("the page", {"type": "string"}, media=HTML)},
    ),
    Route(
        "GET",
        "/favicon.ico",
        roles("none"),
        "The service's icon",
        TAG,
        {200: Answer("the icon", {"type": "string"}, media=ICON)},
    ),
)
