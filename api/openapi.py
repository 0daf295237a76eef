"""OpenAPI 3 for every route in api/routes.py, built with apispec from our marshmallow schemas.

The route table says who may call what; OPERATIONS below says what each call takes and
answers (schema names from api/schemas/). A route without an entry still appears, with
a generic JSON answer, so the spec never silently drops a route.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import falcon
import orjson
from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from marshmallow import Schema

from api.routes import ROUTES, Route
from api.schemas.common import ProblemSchema

TITLE = "Provenance Ledger API"
STATIC = Path(__file__).parent / "static" / "docs"
PROBLEM_TYPE = "application/problem+json"


@dataclass(frozen=True)
class Operation:
    """What one route takes and answers, by schema name: `X[]` a list of X, a tuple one of
    several (None: no body, or generic JSON)."""

    summary: str
    request: str | tuple[str, ...] | None = None
    response: str | tuple[str, ...] | None = None
    status: int = 200
    query: tuple[str, ...] = ()
    media: str = "application/json"
    also: tuple[int, ...] = ()  # other success statuses with the same answer


_AS_OF = ("as_of",)
_PAGE = ("limit", "cursor")
OPERATIONS: dict[tuple[str, str], Operation] = {
    ("POST", "/v1/deployments"): Operation(
        "Create a deployment", "DeploymentCreateSchema", "DeploymentSchema", 201
    ),
    ("GET", "/v1/deployments"): Operation(
        "List deployments", None, "DeploymentPageSchema", query=_AS_OF + _PAGE
    ),
    ("GET", "/v1/deployments/{name}"): Operation(
        "One deployment", None, "DeploymentSchema", query=_AS_OF
    ),
    ("PATCH", "/v1/deployments/{name}"): Operation(
        "Change policy or schema", "DeploymentPatchSchema", "DeploymentSchema"
    ),
    ("POST", "/v1/deployments/{name}/models"): Operation(
        "Add a challenger", "AddModelSchema", "DeploymentSchema"
    ),
    ("DELETE", "/v1/deployments/{name}/models/{model_id}"): Operation(
        "Retire a model", None, "DeploymentSchema"
    ),
    ("PUT", "/v1/deployments/{name}/leader"): Operation(
        "Promote a leader", "PromoteSchema", "DeploymentSchema"
    ),
    ("POST", "/v1/models"): Operation(
        "Upload a skops model with declared metadata", None, "UploadedModelSchema", 201
    ),
    ("GET", "/v1/models"): Operation(
        "The model index", None, "ModelListSchema", query=_AS_OF + _PAGE
    ),
    ("GET", "/v1/models/{model_id}"): Operation(
        "One model with its provenance", None, "ModelSchema", query=_AS_OF
    ),
    ("POST", "/v1/deployments/{name}/predictions"): Operation(
        "Score one row or a batch",
        "PredictionRequestSchema",
        ("PredictionResultSchema", "BatchResultSchema"),
        201,
        also=(200,),
    ),
    ("POST", "/v1/outcomes"): Operation(
        "Report actual outcomes",
        ("OutcomeSchema", "OutcomeSchema[]"),
        ("OutcomeResultSchema", "OutcomeListSchema"),
        201,
        also=(200,),
    ),
    ("GET", "/v1/predictions/{prediction_id}"): Operation(
        "The provenance of one prediction", None, "ProvenanceSchema", query=_AS_OF
    ),
    ("GET", "/v1/predictions"): Operation(
        "The prediction index",
        None,
        "PredictionListSchema",
        query=_AS_OF + _PAGE + ("deployment", "model_id", "from", "to"),
    ),
    ("GET", "/v1/performance"): Operation(
        "Metrics per model, window and slice",
        None,
        "PerformanceSchema",
        query=_AS_OF + ("deployment", "window", "slice"),
    ),
    ("POST", "/v1/ingestions"): Operation(
        "A feed's received count for a period", "IngestionSchema", "IngestionResultSchema", 201
    ),
    ("POST", "/v1/deployments/{name}/quality-checks"): Operation(
        "Check rows against the reference profile",
        "QualityCheckSchema",
        "QualityCheckResultSchema",
        201,
    ),
    ("GET", "/v1/data-health"): Operation(
        "Feeds, drift, outliers, failing checks, model health",
        None,
        "DataHealthSchema",
        query=_AS_OF + ("deployment", "limit", "checks", "days"),
    ),
    ("GET", "/v1/ledger/events"): Operation(
        "Raw stored events as JSON lines, from a position",
        None,
        None,
        query=("from", "limit"),
        media="application/x-ndjson",
    ),
    ("GET", "/v1/ledger/digest"): Operation("The signed head of the chain", None, "DigestSchema"),
    ("GET", "/v1/ledger/verify"): Operation(
        "Verify the chain (long runs answer 202 and a job)",
        None,
        "VerifyJobSchema",
        query=("from", "to"),
    ),
    ("GET", "/v1/ledger/verify/jobs/{job_id}"): Operation(
        "A verification job", None, "VerifyJobSchema"
    ),
    ("GET", "/v1/exports/predictions"): Operation(
        "Compliance export", None, None, query=("format", "from", "to")
    ),
    ("POST", "/v1/subjects/{subject_id}/forget"): Operation(
        "Erase a subject's personal data", "ForgetRequestSchema", "ForgetResultSchema"
    ),
    ("POST", "/v1/keys"): Operation("Issue an API key", "KeyCreateSchema", "KeyIssuedSchema", 201),
    ("DELETE", "/v1/keys/{key_id}"): Operation("Revoke an API key", None, "KeyRevokedSchema"),
    ("GET", "/healthz"): Operation("Liveness", None, "HealthSchema"),
    ("GET", "/openapi.json"): Operation("This specification"),
    ("GET", "/docs"): Operation("The API docs page", media="text/html"),
    ("GET", "/docs/{file}"): Operation("The docs page's vendored files", media="*/*"),
    ("GET", "/metrics"): Operation("Prometheus metrics", media="text/plain"),
    ("GET", "/dashboard"): Operation("The web dashboard", media="text/html"),
}


@cache
def schema_classes() -> dict[str, type[Schema]]:
    """Every marshmallow schema class in api.schemas, by class name."""
    found: dict[str, type[Schema]] = {"ProblemSchema": ProblemSchema}
    try:
        package = importlib.import_module("api.schemas")
    except ImportError:  # no schemas yet: every body is documented as a generic object
        return found
    for info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"api.schemas.{info.name}")
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, Schema) and value is not Schema:
                found.setdefault(value.__name__, value)
    return found


def _path_parameters(path: str) -> list[dict[str, Any]]:
    return [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in re.findall(r"{(\w+)[^}]*}", path)
    ]


def _query_parameters(names: tuple[str, ...]) -> list[dict[str, Any]]:
    schemas = {"limit": {"type": "integer", "minimum": 1, "maximum": 1000}}
    return [
        {
            "name": name,
            "in": "query",
            "required": False,
            "schema": schemas.get(name, {"type": "string"}),
        }
        for name in names
    ]


def _schema(name: str | tuple[str, ...] | None) -> Any:
    """A schema class, a list of one, or oneOf several; a generic object when unknown."""
    if isinstance(name, tuple):
        return {"oneOf": [_schema(one) for one in name]}
    if name and name.endswith("[]"):
        return {"type": "array", "items": _schema(name[:-2])}
    return schema_classes().get(name or "", None) or {"type": "object"}


def _body(name: str | tuple[str, ...] | None, media: str) -> dict[str, Any]:
    schema = _schema(name) if media == "application/json" else {"type": "string"}
    return {"content": {media: {"schema": schema}}}


def _upload_body() -> dict[str, Any]:
    """POST /v1/models: multipart (file + metadata) or the raw skops bytes."""
    metadata = {
        "type": "string",
        "description": "JSON of " + "ModelUpload (name, task, features, ...)",
    }
    return {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file", "metadata"],
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        "metadata": metadata,
                    },
                }
            },
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
        },
    }


def _error_responses(route: Route, op: Operation) -> dict[str, Any]:
    problem = {"content": {PROBLEM_TYPE: {"schema": ProblemSchema}}}
    statuses = ["default"]
    if not route.public:
        statuses += ["401", "403"]
    if route.method != "GET" or op.query:
        statuses += ["400", "422"]
    if "{" in route.path:
        statuses.append("404")
    statuses.append("503")
    out = {
        status: {"description": "a problem (RFC 9457) with a stable code", **problem}
        for status in statuses
    }
    out["default"]["description"] = "any other refusal, always as a problem"
    return out


def operation(route: Route) -> dict[str, Any]:
    """One OpenAPI operation object for a row of the route table."""
    op = OPERATIONS.get((route.method, route.path), Operation(f"{route.method} {route.path}"))
    roles = ", ".join(sorted(route.roles)) or "none"
    answer = {"description": op.summary, **_body(op.response, op.media)}
    responses: dict[str, Any] = {str(op.status): answer, **_error_responses(route, op)}
    for status in op.also:
        responses[str(status)] = {
            **answer,
            "description": f"{op.summary} (a retried request's original)",
        }
    if route.path == "/v1/ledger/verify":
        responses["202"] = {
            "description": "a long run: poll the job",
            **_body("VerifyJobSchema", op.media),
        }
    spec: dict[str, Any] = {
        "summary": op.summary,
        "description": f"Roles: {roles}.",
        "parameters": _path_parameters(route.path) + _query_parameters(op.query),
        "responses": responses,
        "security": [] if route.public else [{"bearer": []}],
    }
    if op.request:
        spec["requestBody"] = {"required": True, **_body(op.request, "application/json")}
    if (route.method, route.path) == ("POST", "/v1/models"):
        spec["requestBody"] = _upload_body()
        spec["parameters"].append(
            {
                "name": "X-Model-Metadata",
                "in": "header",
                "required": False,
                "schema": {"type": "string"},
                "description": "the metadata as JSON, with a raw skops body",
            }
        )
    return spec


def build_spec(routes: tuple[Route, ...] = ROUTES) -> dict[str, Any]:
    """The OpenAPI 3 document for the routes."""
    spec = APISpec(
        title=TITLE,
        version="1",
        openapi_version="3.0.3",
        plugins=[MarshmallowPlugin()],
        info={"description": "An event-sourced provenance ledger for ML models in production."},
    )
    spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer"})
    spec.components.schema("Problem", schema=ProblemSchema)
    by_path: dict[str, dict[str, Any]] = {}
    for route in routes:
        by_path.setdefault(route.path, {})[route.method.lower()] = operation(route)
    for path, operations in by_path.items():
        spec.path(path=path, operations=operations)
    return spec.to_dict()


class OpenApiResource:
    """GET /openapi.json."""

    def __init__(self) -> None:
        self._body: bytes | None = None

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        if self._body is None:  # built on first use: every route module is loaded by then
            self._body = orjson.dumps(build_spec())
        resp.content_type = falcon.MEDIA_JSON
        resp.data = self._body


class DocsResource:
    """GET /docs and its vendored files (Swagger UI, no CDN)."""

    TYPES = {
        ".html": "text/html; charset=utf-8",
        ".js": "text/javascript",
        ".css": "text/css",
        ".png": "image/png",
    }

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        self._send(resp, "index.html")

    def on_get_file(self, req: falcon.Request, resp: falcon.Response, file: str) -> None:
        self._send(resp, file)

    def _send(self, resp: falcon.Response, name: str) -> None:
        path = STATIC / name
        # Only files that sit directly in the vendored directory: no traversal.
        if (
            "/" in name
            or name.startswith(".")
            or not path.is_file()
            or path.suffix not in self.TYPES
        ):
            raise falcon.HTTPNotFound(description=f"no docs file named {name!r}")
        resp.content_type = self.TYPES[path.suffix]
        resp.data = path.read_bytes()
        resp.cache_control = ["public", "max-age=3600"]


def add_routes(app: falcon.App, services: Any) -> None:
    """Mount /openapi.json, /docs and /docs/{file}."""
    docs = DocsResource()
    app.add_route("/openapi.json", OpenApiResource())
    app.add_route("/docs", docs)
    app.add_route("/docs/{file}", docs, suffix="file")
