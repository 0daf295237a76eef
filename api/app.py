"""The Falcon application factory: builds services, middleware, routes and error handlers."""

from __future__ import annotations

from typing import Any

import falcon
import falcon.media
import orjson

from api import dashboard, errors, observability, openapi, params
from api.answers import AnswerMiddleware
from api.auth import AuthMiddleware
from api.limits import BodyLimitMiddleware
from api.query import QueryMiddleware
from api.resources import (
    deployments,
    exports,
    health,  # ingestions, quality checks, data health
    keys,
    ledger_endpoints,
    models,
    outcomes,
    predictions,
    queries,  # prediction index, performance, model index
    readiness,  # GET /readyz
    subjects,  # POST /v1/subjects/{subject_id}/forget
)
from api.security_headers import SecurityHeadersMiddleware
from api.services import Services
from ledger.application import Ledger
from ledger.settings import Settings

# Every module that mounts routes: each has add_routes(app, services). Add yours here
# (one line), and its routes to api/routes/, whose path templates must match add_route's.
ROUTE_MODULES: tuple[Any, ...] = (
    deployments,
    predictions,
    outcomes,
    keys,
    models,
    ledger_endpoints,
    observability,
    openapi,
    subjects,
    health,
    dashboard,
    exports,
    queries,
    readiness,
)


class LedgerApp(falcon.App):
    """falcon.App that keeps its Services (tests and start-up hooks reach them here)."""

    services: Services


def _json_handler() -> falcon.media.JSONHandler:
    # orjson refuses NaN and Infinity tokens (422 via params.json_loads) and is fast.
    return falcon.media.JSONHandler(
        dumps=lambda obj: orjson.dumps(obj, option=orjson.OPT_NON_STR_KEYS).decode(),
        loads=params.json_loads,
    )


def middleware(services: Services) -> list[Any]:
    """Outermost first: observability (logs and metrics), the security headers, auth, the
    body limit, the query parsed from the route table, and answers dumped through the
    table's schemas."""
    return [
        *observability.middleware(services),
        SecurityHeadersMiddleware(),
        AuthMiddleware(services.keys, services.limiter),
        BodyLimitMiddleware(services.settings.max_body_bytes),
        QueryMiddleware(),
        AnswerMiddleware(),
    ]


def create_app(
    settings: Settings | None = None, ledger: Ledger | None = None, other_servers: bool = False
) -> LedgerApp:
    """Build the WSGI app; call it after a fork (each worker owns its connections).

    `other_servers`: other processes serve the same ledger (gunicorn's workers do), so a
    deployment change answers only once they serve it too (Services.deployment_changed).
    """
    services = Services.build(settings, ledger, other_servers)
    app = LedgerApp(middleware=middleware(services))
    handler = _json_handler()
    app.req_options.media_handlers.update({falcon.MEDIA_JSON: handler})
    app.resp_options.media_handlers.update({falcon.MEDIA_JSON: handler})
    app.req_options.strip_url_path_trailing_slash = True
    errors.register(app)
    for module in ROUTE_MODULES:
        module.add_routes(app, services)
    app.services = services
    return app
