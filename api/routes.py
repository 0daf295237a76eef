"""The route x role table: the one source for the auth middleware and its tests.

`roles` is who may call a route: PUBLIC for no key at all. `own_only` names roles that
may read only what they themselves recorded (the resource checks ownership). A route
that is not in this table is refused (deny by default); a module adding a route adds
its row here with the same path template it passes to `app.add_route`.
"""

from __future__ import annotations

from dataclasses import dataclass

ADMIN, PREDICTOR, AUDITOR = "admin", "predictor", "auditor"
ANY = frozenset({ADMIN, PREDICTOR, AUDITOR})
PUBLIC: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Route:
    """One method on one path template, and the roles that may call it."""

    method: str
    path: str
    roles: frozenset[str]
    own_only: frozenset[str] = frozenset()

    @property
    def public(self) -> bool:
        return not self.roles


def _r(method: str, path: str, *roles: str, own_only: tuple[str, ...] = ()) -> Route:
    expanded = ANY if roles == ("any",) else PUBLIC if roles == ("none",) else frozenset(roles)
    return Route(method, path, expanded, frozenset(own_only))


ROUTES: tuple[Route, ...] = (
    _r("POST", "/v1/deployments", ADMIN),
    _r("GET", "/v1/deployments", "any"),
    _r("GET", "/v1/deployments/{name}", "any"),
    _r("PATCH", "/v1/deployments/{name}", ADMIN),
    _r("POST", "/v1/deployments/{name}/models", ADMIN),
    _r("DELETE", "/v1/deployments/{name}/models/{model_id}", ADMIN),
    _r("PUT", "/v1/deployments/{name}/leader", ADMIN),
    _r("POST", "/v1/models", ADMIN),
    _r("GET", "/v1/models", "any"),
    _r("GET", "/v1/models/{model_id}", "any"),
    _r("POST", "/v1/deployments/{name}/predictions", PREDICTOR),
    _r("POST", "/v1/outcomes", PREDICTOR),
    _r("GET", "/v1/predictions/{prediction_id}", AUDITOR, ADMIN, PREDICTOR, own_only=(PREDICTOR,)),
    _r("GET", "/v1/predictions", AUDITOR, ADMIN),
    _r("GET", "/v1/performance", AUDITOR, ADMIN),
    _r("POST", "/v1/ingestions", PREDICTOR),
    _r("POST", "/v1/deployments/{name}/quality-checks", PREDICTOR, ADMIN),
    _r("GET", "/v1/data-health", AUDITOR, ADMIN),
    _r("GET", "/v1/ledger/events", AUDITOR),
    _r("GET", "/v1/ledger/digest", AUDITOR),
    _r("GET", "/v1/ledger/verify", AUDITOR),
    _r("GET", "/v1/ledger/verify/jobs/{job_id}", AUDITOR),
    _r("GET", "/v1/exports/predictions", AUDITOR),
    _r("POST", "/v1/subjects/{subject_id}/forget", ADMIN),
    _r("POST", "/v1/keys", ADMIN),
    _r("DELETE", "/v1/keys/{key_id}", ADMIN),
    _r("GET", "/healthz", "none"),
    _r("GET", "/openapi.json", "none"),
    _r("GET", "/docs", "none"),
    _r("GET", "/docs/{file}", "none"),
    _r("GET", "/metrics", ADMIN),
    _r("GET", "/dashboard", "none"),
)

BY_KEY: dict[tuple[str, str], Route] = {(r.method, r.path): r for r in ROUTES}
PATHS: frozenset[str] = frozenset(r.path for r in ROUTES)


def route_for(method: str, path_template: str | None) -> Route | None:
    """The table's row for a routed request, or None (which the middleware refuses)."""
    if path_template is None:
        return None
    return BY_KEY.get((method, path_template))
