"""OpenAPI 3 generated from the route table (api/routes/) with apispec and our schemas.

Each route's roles, tag, parameters, body and answers are its declaration's; every refusal
is a problem document. `python -m api.openapi --markdown` writes docs/API.md's route list.
"""

from __future__ import annotations

import re
import sys
from functools import cache
from pathlib import Path
from typing import Any

import falcon
import orjson
from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin

from api.routes import ROUTES, TAGS, Route
from api.routes.table import INTEGER_MAX, JSON, Answer, Many, OneOf, Param
from api.schemas.common import ProblemSchema

TITLE = "Provenance Ledger API"
STATIC = Path(__file__).parent / "static" / "docs"
PROBLEM_TYPE = "application/problem+json"
DATE_TIME = {"type": "string", "format": "date-time"}
FORMAT_SCHEMAS: dict[str, dict[str, Any]] = {
    "date-time": DATE_TIME,
    "as-of": {"anyOf": [{"type": "string", "pattern": "^pos:[0-9]{1,18}$"}, DATE_TIME]},
    "date-or-date-time": {"anyOf": [{"type": "string", "format": "date"}, DATE_TIME]},
    "version": {"type": "string", "pattern": '^(W/)?"?[0-9]{1,18}"?$'},
}


def param_schema(param: Param) -> dict[str, Any]:
    """The JSON schema of one declared parameter, as api/query.py parses it."""
    if param.type == "integer":
        schema: dict[str, Any] = {"type": "integer", "minimum": param.minimum}
        schema["maximum"] = INTEGER_MAX if param.maximum is None else param.maximum
        schema["minimum"] = -INTEGER_MAX if param.minimum is None else param.minimum
    elif param.type == "boolean":
        schema = {"type": "boolean"}
    elif param.format in FORMAT_SCHEMAS:
        schema = dict(FORMAT_SCHEMAS[param.format])
    else:
        schema = {"type": "string", "minLength": 1}
        if param.format:
            schema["format"] = param.format
        if param.max_length:
            schema["maxLength"] = param.max_length
        if param.enum:
            schema["enum"] = list(param.enum)
    if param.default is not None:
        schema["default"] = param.default
    return schema


def parameter(param: Param, where: str) -> dict[str, Any]:
    return {
        "name": f"{param.name}<name>" if param.prefix else param.name,
        "in": where,
        "required": param.required,
        "description": param.description,
        "schema": param_schema(param),
    }


def path_parameters(path: str) -> list[dict[str, Any]]:
    return [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in re.findall(r"{(\w+)[^}]*}", path)
    ]


def shape_schema(shape: Any) -> Any:
    """A schema class, an array of one, oneOf several, or a literal JSON schema."""
    if isinstance(shape, OneOf):
        return {"oneOf": [shape_schema(one) for one in shape.schemas]}
    if isinstance(shape, Many):
        return {"type": "array", "items": shape.schema, "minItems": shape.min_items}
    return shape


def content(shape: Any, media: str | tuple[str, ...]) -> dict[str, Any]:
    medias = (media,) if isinstance(media, str) else media
    return {m: {"schema": shape_schema(shape) if m == JSON else {"type": "string"}} for m in medias}


def answer(status: int, declared: Answer) -> dict[str, Any]:
    out: dict[str, Any] = {
        "description": declared.description,
        "content": content(declared.shape, declared.media),
    }
    if declared.headers:
        out["headers"] = {
            name: {"description": text, "schema": {"type": "string"}}
            for name, text in declared.headers.items()
        }
    return out


def refusals(route: Route) -> dict[str, Any]:
    """Every refusal a route can answer, each a problem document."""
    statuses = ["400"]
    if not route.public:
        statuses += ["401", "403", "429"]
    if "{" in route.path:
        statuses.append("404")
    if route.body is not None:
        statuses += ["409", "411", "413", "415", "422"]
    elif route.query:
        statuses.append("422")
    if any(p.name == "If-Match" for p in route.headers):
        statuses += ["412", "428"]
    statuses.append("503")
    problem = {"content": {PROBLEM_TYPE: {"schema": ProblemSchema}}}
    out = {
        s: {"description": "a problem (RFC 9457) with a stable code", **problem} for s in statuses
    }
    out["default"] = {"description": "any other refusal, always a problem", **problem}
    return out


def operation(route: Route) -> dict[str, Any]:
    """One OpenAPI operation object for a row of the route table."""
    roles = ", ".join(sorted(route.roles)) or "none (public)"
    own = f" ({', '.join(sorted(route.own_only))}: own only)" if route.own_only else ""
    spec: dict[str, Any] = {
        "summary": route.summary,
        "description": f"Roles: {roles}{own}. {route.description}".strip(),
        "tags": [route.tag],
        "operationId": f"{route.method.lower()}{re.sub(r'[^A-Za-z0-9]+', '_', route.path)}",
        "parameters": path_parameters(route.path)
        + [parameter(p, "query") for p in route.query]
        + [parameter(p, "header") for p in route.headers],
        "responses": {
            **{str(s): answer(s, a) for s, a in route.answers.items()},
            **refusals(route),
        },
        "security": [] if route.public else [{"bearer": []}],
    }
    if isinstance(route.body, dict):
        spec["requestBody"] = route.body
    elif route.body is not None:
        required = route.method != "DELETE"
        spec["requestBody"] = {"required": required, "content": content(route.body, JSON)}
    return spec


def _with_extras(routes: tuple[Route, ...]) -> list[Any]:
    bodies = [r.body for r in routes]
    flat = [b for body in bodies for b in (body.schemas if isinstance(body, OneOf) else (body,))]
    found = [b for b in flat if isinstance(b, type) and hasattr(b, "OPENAPI")]
    return list(dict.fromkeys(found))


@cache
def build_spec(routes: tuple[Route, ...] = ROUTES) -> dict[str, Any]:
    """The OpenAPI 3 document for the routes."""
    spec = APISpec(
        title=TITLE,
        version="1",
        openapi_version="3.0.3",
        plugins=[MarshmallowPlugin()],
        info={"description": "An event-sourced provenance ledger for ML models in production."},
        tags=[{"name": name, "description": text} for name, text in TAGS.items()],
    )
    spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer"})
    spec.components.schema("Problem", schema=ProblemSchema)
    for cls in _with_extras(routes):  # what marshmallow cannot say (e.g. minProperties)
        spec.components.schema(cls.__name__.removesuffix("Schema"), cls.OPENAPI, schema=cls)
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


@cache
def vendored(suffixes: frozenset[str]) -> frozenset[str]:
    """The docs page's vendored files by name (not hidden, of a type served)."""
    return frozenset(
        p.name
        for p in STATIC.iterdir()
        if p.is_file() and not p.name.startswith(".") and p.suffix in suffixes
    )


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
        # Only the vendored files, by name: no traversal, and no name reaches the filesystem.
        if name not in vendored(frozenset(self.TYPES)):
            raise falcon.HTTPNotFound(description=f"no docs file named {name[:100]!r}")
        resp.content_type = self.TYPES[path.suffix]
        resp.data = path.read_bytes()
        resp.cache_control = ["public", "max-age=3600"]


def add_routes(app: falcon.App, services: Any) -> None:
    """Mount /openapi.json, /docs and /docs/{file}."""
    docs = DocsResource()
    app.add_route("/openapi.json", OpenApiResource())
    app.add_route("/docs", docs)
    app.add_route("/docs/{file}", docs, suffix="file")


BEGIN, END = "<!-- routes: generated by python -m api.openapi --markdown -->", "<!-- routes end -->"
API_MD = Path(__file__).parent.parent / "docs" / "API.md"


def _param_text(p: Param) -> str:
    """`limit` (integer 1..1000, default 100), as the route list shows a parameter."""
    kind = p.format or p.type
    if p.type == "integer":
        kind += f" {p.minimum if p.minimum is not None else ''}..{p.maximum or ''}"
    if p.enum:
        kind = " | ".join(p.enum)
    extra = ", required" if p.required else f", default {p.default}" if p.default else ""
    return f"`{p.name}{'<name>' if p.prefix else ''}` ({kind}{extra})"


def _shape_text(shape: Any) -> str:
    if isinstance(shape, OneOf):
        return " or ".join(_shape_text(one) for one in shape.schemas)
    if isinstance(shape, Many):
        return f"[{_shape_text(shape.schema)}]"
    if isinstance(shape, type):
        return shape.__name__.removesuffix("Schema")
    return "-" if shape is None or "content" not in shape else " or ".join(shape["content"])


def _answers_text(route: Route) -> str:
    def one(status: int, a: Answer) -> str:
        media = a.media if isinstance(a.media, str) else ", ".join(a.media)
        return f"{status} {_shape_text(a.shape) if media == JSON else media}"

    return "; ".join(one(s, a) for s, a in route.answers.items())


def markdown(routes: tuple[Route, ...] = ROUTES) -> str:
    """The route list, one table per tag, as docs/API.md holds it between its markers."""
    lines = [BEGIN, ""]
    for tag, text in TAGS.items():
        lines += [f"### {tag}", text + ".", ""]
        for r in (r for r in routes if r.tag == tag):
            who = ", ".join(sorted(r.roles)) or "public"
            if r.own_only:
                who += f" ({', '.join(sorted(r.own_only))}: own only)"
            lines.append(f"- **{r.method} `{r.path}`**: {r.summary}. Roles: {who}.")
            if r.query:
                lines.append("  Query: " + ", ".join(_param_text(p) for p in r.query) + ".")
            if r.body is not None:
                lines.append(f"  Body: {_shape_text(r.body)}.")
            lines.append(f"  Answers: {_answers_text(r)}.")
        lines.append("")
    return "\n".join(lines + [END])


def with_routes(document: str, routes: tuple[Route, ...] = ROUTES) -> str:
    """docs/API.md with its route list replaced by the generated one."""
    start, end = document.index(BEGIN), document.index(END) + len(END)
    return document[:start] + markdown(routes) + document[end:]


def main(argv: list[str]) -> int:
    """`--markdown` rewrites docs/API.md's route list; otherwise print the spec as JSON."""
    if argv[1:] == ["--markdown"]:
        API_MD.write_text(with_routes(API_MD.read_text()))
        return 0
    sys.stdout.write(orjson.dumps(build_spec(), option=orjson.OPT_INDENT_2).decode() + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
