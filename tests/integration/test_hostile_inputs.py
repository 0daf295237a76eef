"""Hostile input on every route of the table: never a 5xx (but a deliberate 503 with
Retry-After), every refusal a problem with a `code`, and nothing of the inside leaks.

For each route in api.routes.ROUTES, with its first role's key, the path parameters are
filled with things that exist and with hostile values, and every declared query parameter,
header and body field is sent each hostile value: NUL (raw and percent-encoded), lone
surrogates, huge and tiny numbers, deep nesting, 2 MB strings, digits that are not ASCII
digits, impossible instants, forged cursors.
"""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from api.demo import ensure_signing_key
from api.routes import ROUTES
from api.routes.table import OneOf, Route
from ledger.application import Ledger
from ledger.settings import Settings
from projections.registry import ALL
from projections.runner import catch_up
from tests.conftest import drop_postgres_database, fresh_postgres_database
from tests.integration.api_support import ROW, SCHEMA, Api, deployment_with_models, make_api

TWO_MB = 2 * 1024 * 1024
DEEP = 100_000
HUGE_INT = "9" * 5000

# Query and path values, as text (sent percent-encoded unless raw below).
HOSTILE_TEXT = [
    "\x00",
    "a\x00b",
    "²",
    "١",
    "+5",
    " 5",
    "5.0",
    "-1",
    "1e308",
    "1e-320",
    "-0.0",
    str(10**30),
    HUGE_INT,
    "2026-13-01T00:00:00Z",
    "2026-02-30T00:00:00Z",
    "9999-12-31T23:59:59+23:59",
    "pos:99999999999999999999",
    "pos:-1",
    "pos:",
    "",
    base64.urlsafe_b64encode(b"\x8f\x01garbage\xff").decode().rstrip("="),
    base64.urlsafe_b64encode(b"p:1\x00").decode().rstrip("="),
    base64.urlsafe_b64encode(b"n:\x00").decode().rstrip("="),
    base64.urlsafe_b64encode(b"p:" + b"9" * 40).decode().rstrip("="),
    "A" * 10_000,
]
# Already percent-encoded: a NUL, a lone surrogate as UTF-8 would spell it, a bare '%'.
HOSTILE_ENCODED = ["%00", "a%00b", "%ED%A0%80", "%FF", "%"]

# Body field values, as JSON text.
HOSTILE_JSON = [
    '"\\u0000"',
    '"a\\u0000b"',
    '"\\ud800"',
    '"\\udfff\\ud800"',
    "1e308",
    "1e-320",
    "-0.0",
    str(10**30),
    HUGE_INT,
    '"²"',
    '"١"',
    '"2026-13-01T00:00:00Z"',
    '"pos:99999999999999999999"',
    '""',
    "[" * DEEP + "]" * DEEP,
    "[" * 600 + "]" * 600,  # within orjson's parse depth, beyond its dump depth
    '{"a":' * 300 + "1" + "}" * 300,
    '"' + "x" * TWO_MB + '"',
]
# Whole bodies, as JSON text.
HOSTILE_BODIES = [
    "[" * DEEP + "]" * DEEP,
    '{"a":' * DEEP + "1" + "}" * DEEP,
    '"\\ud800"',
    HUGE_INT,
    "\x00",
    '{"\\u0000": 1}',
    '{"\\ud800": 1}',
    '"' + "x" * TWO_MB + '"',
    '{"' + "k" * TWO_MB + '": 1}',
    "{" + ",".join(f'"k{i}": 1' for i in range(10_000)) + "}",
]
LEAKS = re.compile(
    r"Traceback|File \"|\bSELECT\b|\bINSERT\b|psycopg2|sqlite3|/work|/tmp|\.py\b", re.I
)
ECHO_BOUND = 64 * 1024  # a refusal repeats what is at fault, never a megabyte of it
ROLE_ORDER = ("admin", "predictor", "auditor")
DESTRUCTIVE = {"/v1/keys/{key_id}", "/v1/subjects/{subject_id}/forget"}


class World:
    """An app on a small ledger: a deployment, predictions, an outcome, a feed, a key."""

    def __init__(self, api: Api, known: dict[str, str]):
        self.api = api
        self.known = known

    def call(self, route: Route, path: str, **kwargs: Any) -> Any:
        role = next((r for r in ROLE_ORDER if r in route.roles), None)
        return self.api.call(route.method, path, role, **kwargs)


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    home = tmp_path_factory.mktemp("hostile")
    url = (
        f"sqlite:///{home / 'ledger.db'}"
        if request.param == "sqlite"
        else fresh_postgres_database()
    )
    settings = Settings(home=Path(home), database_url=url, rate_limit_per_second=0)
    ledger = Ledger(settings)
    try:
        api = make_api(ledger)
        model_ids = deployment_with_models(api)
        ensure_signing_key(ledger, settings)
        answer = api.call(
            "POST",
            "/v1/deployments/churn/predictions",
            "predictor",
            json={"request_id": "r0", "features": ROW},
        )
        assert answer.status_code == 201, answer.text
        outcome = {"deployment": "churn", "request_id": "r0", "actual": "yes"}
        assert api.call("POST", "/v1/outcomes", "predictor", json=outcome).status_code == 201
        ledger.declare_feed("crm", 1000, 3600, actor="test")
        for projection in ALL:
            catch_up(ledger.engine, projection)
        known = {
            "name": "churn",
            "model_id": model_ids[1],
            "prediction_id": answer.json["prediction_id"],
            "job_id": api.call("GET", "/v1/ledger/verify", "auditor").json["job_id"],
            "subject_id": "c-nobody",
            "key_id": ledger.issue_api_key(role="auditor", actor="test").key_id,
            "file": "swagger-ui-bundle.js",
        }
        yield World(api, known)
        api.client.app.services.close()
    finally:
        ledger.close()
        if request.param == "postgres":
            drop_postgres_database(url)


def fault(answer: Any) -> str | None:
    """What is wrong with an answer to hostile input, or None."""
    status = answer.status_code
    if status >= 500 and not (status == 503 and answer.headers.get("Retry-After")):
        return f"{status}: {answer.text[:200]}"
    content_type = answer.headers.get("Content-Type", "")
    if 400 <= status < 500:
        if not content_type.startswith("application/problem+json"):
            return f"{status} is {content_type}, not a problem"
        if not (answer.json or {}).get("code"):
            return f"{status} problem without a code"
    if status >= 400 and len(answer.content) > ECHO_BOUND:
        return f"{status} of {len(answer.content)} bytes: the refusal echoes the input"
    if "json" in content_type and LEAKS.search(answer.text):
        return f"{status} leaks: {LEAKS.search(answer.text).group(0)!r} in {answer.text[:200]}"
    return None


def path_of(route: Route, values: dict[str, str]) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], route.path)


def existing(route: Route, world: World) -> str:
    return path_of(route, {k: quote(v, safe="") for k, v in world.known.items()})


def query_cases(route: Route) -> list[str]:
    """Query strings: each declared parameter given each hostile value; one unknown name."""
    names = [p.name + ("x" if p.prefix else "") for p in route.query] or ["unknown"]
    cases = [f"{quote(n)}={quote(v, safe='')}" for n in names for v in HOSTILE_TEXT]
    cases += [f"{quote(n)}={v}" for n in names for v in HOSTILE_ENCODED]
    cases += [f"{names[0]}=1&{names[0]}=2", f"%00={names[0]}", "x" * TWO_MB + "=1"]
    cases += [f"{n}{'x' * TWO_MB}=%00" for n in names if n.endswith(".x")]
    return cases


def base_body(route: Route, world: World) -> dict[str, Any]:
    """A body the route would take (so a hostile field is the only thing wrong)."""
    model = world.known["model_id"]
    return {
        "/v1/deployments": {
            "name": "h",
            "task": "classification",
            "schema": SCHEMA,
            "policy": {"name": "manual"},
            "positive_label": "yes",
        },
        "/v1/deployments/{name}": {"policy": {"name": "manual"}},
        "/v1/deployments/{name}/models": {"model_id": model},
        "/v1/deployments/{name}/models/{model_id}": {"reason": "r"},
        "/v1/deployments/{name}/leader": {"model_id": model, "reason": "r"},
        "/v1/deployments/{name}/predictions": {"request_id": "h", "features": dict(ROW)},
        "/v1/outcomes": {"deployment": "churn", "request_id": "r0", "actual": "yes"},
        "/v1/ingestions": {"feed": "crm", "count": 1},
        "/v1/deployments/{name}/quality-checks": {"rows": [dict(ROW)]},
        "/v1/subjects/{subject_id}/forget": {"reason": "r"},
        "/v1/keys": {"role": "auditor"},
    }.get(route.path, {})


def field_paths(route: Route, body: dict[str, Any]) -> list[tuple[str, ...]]:
    """Every declared body field, and each feature of a row the route scores."""
    shape = route.body.schemas[0] if isinstance(route.body, OneOf) else route.body
    paths = [(name,) for name in shape().fields] if isinstance(shape, type) else []
    paths += [("features", name) for name in body.get("features", {})]
    paths += [("rows", "0", name) for name in (body.get("rows") or [{}])[0]]
    return paths


def with_hostile(body: dict[str, Any], path: tuple[str, ...], token: str) -> str:
    """The body as JSON text with the field at `path` set to a JSON token."""
    marker = "\x01hostile\x01"
    copy = json.loads(json.dumps(body))
    node: Any = copy
    for key in path[:-1]:
        node = node[int(key)] if isinstance(node, list) else node[key]
    node[int(path[-1]) if isinstance(node, list) else path[-1]] = marker
    return json.dumps(copy).replace(json.dumps(marker), token)


def headers_for(route: Route) -> dict[str, str]:
    return {"If-Match": "1"} if any(h.name == "If-Match" for h in route.headers) else {}


def ids(route: Route) -> str:
    return f"{route.method} {route.path}"


@pytest.mark.parametrize("route", ROUTES, ids=ids)
def test_hostile_path_and_query_values_are_refused_cleanly(route: Route, world: World):
    faults = []
    known = existing(route, world)
    for query in query_cases(route):
        answer = world.call(route, known, query_string=query, headers=headers_for(route))
        if problem := fault(answer):
            faults.append(f"?{query[:60]} -> {problem}")
    names = re.findall(r"\{(\w+)\}", route.path)
    for name in names:
        for value in [quote(v, safe="") for v in HOSTILE_TEXT] + HOSTILE_ENCODED:
            values = {k: quote(v, safe="") for k, v in world.known.items()}
            values[name] = value
            answer = world.call(route, path_of(route, values), headers=headers_for(route))
            if problem := fault(answer):
                faults.append(f"{{{name}}}={value[:40]} -> {problem}")
    assert not faults, "\n".join(faults)


HEADERED = [r for r in ROUTES if r.headers]


@pytest.mark.parametrize("route", HEADERED, ids=ids)
def test_hostile_header_values_are_refused_cleanly(route: Route, world: World):
    faults = []
    upload = route.path == "/v1/models"  # skops bytes, the metadata in a header
    content = "application/octet-stream" if upload else "application/json"
    body = b"PK\x03\x04" if upload else json.dumps(base_body(route, world))
    for header in route.headers:
        values = [v for v in HOSTILE_TEXT if "\x00" not in v] + HOSTILE_JSON[:4]
        if upload:  # the metadata's JSON with each hostile value in each of its fields
            metadata = {"name": "m", "task": "classification", "features": ["a"]}
            fields = [(name,) for name in metadata] + [("features", "0")]
            values += [with_hostile(metadata, f, t) for f in fields for t in HOSTILE_JSON[:14]]
        for value in values:
            answer = world.call(
                route,
                existing(route, world),
                headers={header.name: value, "Content-Type": content},
                body=body,
            )
            if problem := fault(answer):
                faults.append(f"{header.name}: {value[:40]} -> {problem}")
    assert not faults, "\n".join(faults)


BODIED = [r for r in ROUTES if r.body is not None and not isinstance(r.body, dict)]


@pytest.mark.parametrize("route", BODIED, ids=ids)
def test_hostile_bodies_are_refused_cleanly(route: Route, world: World):
    faults = []
    path = existing(route, world)
    json_headers = {"Content-Type": "application/json", **headers_for(route)}
    if route.path in DESTRUCTIVE:
        path = path_of(route, {**world.known, "subject_id": "c-nobody"})
    for text in HOSTILE_BODIES:
        answer = world.call(route, path, headers=json_headers, body=text)
        if problem := fault(answer):
            faults.append(f"body {text[:30]} -> {problem}")
    body = base_body(route, world)
    for field in field_paths(route, body):
        for token in HOSTILE_JSON:
            text = with_hostile(body, field, token)
            answer = world.call(route, path, headers=json_headers, body=text)
            if problem := fault(answer):
                faults.append(f"{'.'.join(field)}={token[:30]} -> {problem}")
    assert not faults, "\n".join(faults)


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


PROMISES = [
    ("GET", "/v1/deployments", "limit=%C2%B2", None, 400, "invalid_limit"),
    ("GET", "/v1/deployments", "limit=%D9%A1", None, 400, "invalid_limit"),
    ("GET", "/v1/predictions", "as_of=pos:99999999999999999999", None, 400, "invalid_parameter"),
    ("GET", "/v1/predictions", "deployment=a%00b", None, 400, "invalid_parameter"),
    ("GET", "/v1/deployments", "cursor=" + b64(b"n:a\x00"), None, 400, "invalid_cursor"),
    ("GET", "/v1/ledger/events", "cursor=" + b64(b"p:1\x00"), None, 400, "invalid_cursor"),
    ("GET", "/v1/predictions/a%00b", "", None, 404, "not_found"),
    ("POST", "/v1/keys", "", "[" * DEEP + "]" * DEEP, 400, "too_deep"),
    ("POST", "/v1/keys", "", '{"a":' * DEEP + "1" + "}" * DEEP, 400, "too_deep"),
    (
        "POST",
        "/v1/ingestions",
        "",
        '{"feed": "crm", "count": ' + HUGE_INT + "}",
        422,
        "invalid_field",
    ),
]


@pytest.mark.parametrize(("method", "path", "query", "body", "status", "code"), PROMISES)
def test_hostile_values_get_the_documented_refusal(world, method, path, query, body, status, code):
    template = re.sub(r"/a%00b$", "/{prediction_id}", path)
    route = next(r for r in ROUTES if (r.method, r.path) == (method, template))
    headers = {"Content-Type": "application/json"} if body is not None else {}
    answer = world.call(route, path, query_string=query, body=body, headers=headers)
    assert (answer.status_code, answer.json["code"]) == (status, code), answer.text
