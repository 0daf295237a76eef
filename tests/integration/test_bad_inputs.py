"""A table of bad inputs: each gets its status, a stable code, and the field when one is at fault."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from falcon.testing import TestClient

from api.app import create_app
from tests.integration.api_support import ROW, SCHEMA, Api, deployment_with_models, make_api

PRED = "/v1/deployments/churn/predictions"


def row(**changes: Any) -> dict[str, Any]:
    return {"features": {**ROW, **changes}, "request_id": "r"}


# (name, role, method, path, keyword arguments for simulate_request, status, code, field)
CASES: list[tuple[str, str, str, str, dict[str, Any], int, str, str | None]] = [
    ("no body, no length", "predictor", "POST", PRED, {}, 411, "length_required", None),
    (
        "body over the limit",
        "predictor",
        "POST",
        PRED,
        {"body": b"{" + b" " * 5000 + b"}", "headers": {"Content-Type": "application/json"}},
        413,
        "body_too_large",
        "body",
    ),
    (
        "empty body",
        "predictor",
        "POST",
        PRED,
        {"body": b"", "headers": {"Content-Type": "application/json", "Content-Length": "0"}},
        400,
        "body_required",
        None,
    ),
    (
        "malformed JSON",
        "predictor",
        "POST",
        PRED,
        {"body": b'{"features": ', "headers": {"Content-Type": "application/json"}},
        400,
        "malformed_json",
        None,
    ),
    (
        "NaN token",
        "predictor",
        "POST",
        PRED,
        {
            "body": b'{"features": {"income": NaN}, "request_id": "r"}',
            "headers": {"Content-Type": "application/json"},
        },
        422,
        "invalid_field",
        "features.income",
    ),
    (
        "overflowing number",
        "predictor",
        "POST",
        PRED,
        {
            "body": b'{"features": {"income": 1e400}}',
            "headers": {"Content-Type": "application/json"},
        },
        422,
        "invalid_field",
        "features.income",
    ),
    (
        "not JSON",
        "predictor",
        "POST",
        PRED,
        {"body": b"income=1", "headers": {"Content-Type": "text/plain"}},
        415,
        "unsupported_media_type",
        None,
    ),
    (
        "unknown field",
        "predictor",
        "POST",
        PRED,
        {"json": row(colour="red")},
        422,
        "invalid_field",
        "features.colour",
    ),
    (
        "string for a number",
        "predictor",
        "POST",
        PRED,
        {"json": row(income="52000")},
        422,
        "invalid_field",
        "features.income",
    ),
    (
        "null for a required number",
        "predictor",
        "POST",
        PRED,
        {"json": row(income=None)},
        422,
        "invalid_field",
        "features.income",
    ),
    (
        "boolean as a word",
        "predictor",
        "POST",
        PRED,
        {"json": row(active="yes")},
        422,
        "invalid_field",
        "features.active",
    ),
    (
        "fraction for an integer",
        "predictor",
        "POST",
        PRED,
        {"json": row(visits=3.5)},
        422,
        "invalid_field",
        "features.visits",
    ),
    (
        "number for a category",
        "predictor",
        "POST",
        PRED,
        {"json": row(plan=3)},
        422,
        "invalid_field",
        "features.plan",
    ),
    (
        "features not an object",
        "predictor",
        "POST",
        PRED,
        {"json": {"features": [1], "request_id": "r"}},
        422,
        "invalid_field",
        "features",
    ),
    (
        "no request_id",
        "predictor",
        "POST",
        PRED,
        {"json": {"features": ROW}},
        422,
        "invalid_field",
        "request_id",
    ),
    (
        "both shapes",
        "predictor",
        "POST",
        PRED,
        {"json": {"features": ROW, "instances": [ROW], "request_id": "r"}},
        422,
        "invalid_field",
        "features",
    ),
    (
        "a bad batch row",
        "predictor",
        "POST",
        PRED,
        {"json": {"instances": [ROW, {**ROW, "income": "x"}], "request_id": "b"}},
        422,
        "invalid_field",
        "instances.1.income",
    ),
    (
        "batch over the cap",
        "predictor",
        "POST",
        PRED,
        {"json": {"instances": [ROW] * 4, "request_id": "b"}},
        413,
        "batch_too_large",
        "instances",
    ),
    (
        "unknown deployment",
        "predictor",
        "POST",
        "/v1/deployments/nope/predictions",
        {"json": row()},
        404,
        "not_found",
        None,
    ),
    ("top-level array", "predictor", "POST", PRED, {"json": [1, 2]}, 422, "invalid_body", "body"),
    (
        "a boolean given as 0",
        "admin",
        "POST",
        "/v1/deployments",
        {
            "json": {
                "name": "zero",
                "task": "regression",
                "schema": {"features": [{"name": "a", "type": "number", "personal": 0}]},
            }
        },
        422,
        "invalid_field",
        "schema.features.0.personal",
    ),
    (
        "as_of without an offset",
        "auditor",
        "GET",
        "/v1/deployments/churn",
        {"params": {"as_of": "2026-03-03"}},
        400,
        "invalid_parameter",
        "as_of",
    ),
    (
        "as_of nonsense",
        "auditor",
        "GET",
        "/v1/deployments/churn",
        {"params": {"as_of": "yesterday"}},
        400,
        "invalid_parameter",
        "as_of",
    ),
    (
        "page over the cap",
        "auditor",
        "GET",
        "/v1/deployments",
        {"params": {"limit": "1001"}},
        400,
        "invalid_limit",
        "limit",
    ),
    (
        "page size in superscript digits",
        "auditor",
        "GET",
        "/v1/deployments",
        {"params": {"limit": "\u00b2"}},
        400,
        "invalid_limit",
        "limit",
    ),
    (
        "a query parameter the route does not read",
        "auditor",
        "GET",
        "/v1/predictions",
        {"params": {"model_id": "x"}},
        400,
        "unknown_parameter",
        "model_id",
    ),
    (
        "a boolean that is not true or false",
        "auditor",
        "GET",
        "/v1/predictions",
        {"params": {"has_outcome": "1"}},
        400,
        "invalid_parameter",
        "has_outcome",
    ),
    (
        "a query parameter on a route that reads none",
        "predictor",
        "POST",
        "/v1/outcomes?dry_run=true",
        {"json": {"prediction_id": "00000000-0000-0000-0000-000000000000", "actual": 1}},
        400,
        "unknown_parameter",
        "dry_run",
    ),
    (
        "bad cursor",
        "auditor",
        "GET",
        "/v1/deployments",
        {"params": {"cursor": "!!"}},
        400,
        "invalid_cursor",
        "cursor",
    ),
    (
        "unknown prediction",
        "auditor",
        "GET",
        "/v1/predictions/00000000-0000-0000-0000-000000000000",
        {},
        404,
        "not_found",
        None,
    ),
    (
        "prediction id not a uuid",
        "auditor",
        "GET",
        "/v1/predictions/p-123",
        {},
        404,
        "not_found",
        None,
    ),
    (
        "outcome without a reference",
        "predictor",
        "POST",
        "/v1/outcomes",
        {"json": {"actual": 1}},
        422,
        "invalid_field",
        "prediction_id",
    ),
    (
        "outcome for an unknown request",
        "predictor",
        "POST",
        "/v1/outcomes",
        {"json": {"deployment": "churn", "request_id": "never", "actual": "yes"}},
        404,
        "not_found",
        "0",
    ),
    (
        "outcome with a naive time",
        "predictor",
        "POST",
        "/v1/outcomes",
        {
            "json": {
                "deployment": "churn",
                "request_id": "r",
                "actual": "yes",
                "observed_at": "2026-03-03T12:00",
            }
        },
        422,
        "invalid_field",
        "observed_at",
    ),
    (
        "unknown task",
        "admin",
        "POST",
        "/v1/deployments",
        {"json": {"name": "x", "task": "clustering", "schema": SCHEMA}},
        422,
        "invalid_field",
        "task",
    ),
    (
        "duplicate feature names",
        "admin",
        "POST",
        "/v1/deployments",
        {
            "json": {
                "name": "x",
                "task": "regression",
                "schema": {"features": [{"name": "a", "type": "number"}] * 2},
            }
        },
        422,
        "invalid",
        "schema.features",
    ),
    (
        "reserved feature name",
        "admin",
        "POST",
        "/v1/deployments",
        {
            "json": {
                "name": "x",
                "task": "regression",
                "schema": {"features": [{"name": "request_id", "type": "number"}]},
            }
        },
        422,
        "invalid_field",
        "schema.features.0.name",
    ),
    (
        "majority vote for regression",
        "admin",
        "POST",
        "/v1/deployments",
        {
            "json": {
                "name": "x",
                "task": "regression",
                "schema": SCHEMA,
                "policy": {"name": "majority_vote"},
            }
        },
        422,
        "invalid",
        "policy.name",
    ),
    (
        "promotion without If-Match",
        "admin",
        "PUT",
        "/v1/deployments/churn/leader",
        {"json": {"model_id": "00000000-0000-0000-0000-000000000000", "reason": "x"}},
        428,
        "if_match_required",
        None,
    ),
    (
        "If-Match not a version",
        "admin",
        "PUT",
        "/v1/deployments/churn/leader",
        {
            "json": {"model_id": "00000000-0000-0000-0000-000000000000", "reason": "x"},
            "headers": {"If-Match": "*x"},
        },
        422,
        "invalid_if_match",
        "If-Match",
    ),
    (
        "promotion of an inactive model",
        "admin",
        "PUT",
        "/v1/deployments/churn/leader",
        {
            "json": {"model_id": "00000000-0000-0000-0000-000000000000", "reason": "x"},
            "headers": {"If-Match": "4"},
        },
        404,
        "not_found",
        "model_id",
    ),
    (
        "promotion without a reason",
        "admin",
        "PUT",
        "/v1/deployments/churn/leader",
        {
            "json": {"model_id": "00000000-0000-0000-0000-000000000000"},
            "headers": {"If-Match": "4"},
        },
        422,
        "invalid_field",
        "reason",
    ),
    (
        "empty patch",
        "admin",
        "PATCH",
        "/v1/deployments/churn",
        {"json": {}, "headers": {"If-Match": "4"}},
        422,
        "invalid_body",
        "body",
    ),
    ("unknown route", "admin", "GET", "/v1/nothing-here", {}, 404, "not_found", None),
    ("wrong method", "admin", "DELETE", "/v1/deployments", {}, 405, "method_not_allowed", None),
    (
        "a body nested 40 levels",
        "predictor",
        "POST",
        PRED,
        {"body": b"[" * 40 + b"]" * 40, "headers": {"Content-Type": "application/json"}},
        400,
        "too_deep",
        "body",
    ),
    (
        "a category of 1,001 characters",
        "predictor",
        "POST",
        PRED,
        {"json": row(plan="x" * 1001)},
        422,
        "invalid_field",
        "features.plan",
    ),
    (
        "a lone surrogate",
        "predictor",
        "POST",
        PRED,
        {
            "body": b'{"features": {"plan": "\\ud800"}}',
            "headers": {"Content-Type": "application/json"},
        },
        422,
        "invalid_field",
        "features.plan",
    ),
    (
        "1e20 for a number",
        "predictor",
        "POST",
        PRED,
        {"json": row(income=1e20)},
        422,
        "invalid_field",
        "features.income",
    ),
    (
        "2^53 for a number",
        "predictor",
        "POST",
        PRED,
        {"json": row(income=2**53)},
        422,
        "invalid_field",
        "features.income",
    ),
    (
        "1e20 for an integer",
        "predictor",
        "POST",
        PRED,
        {"json": row(visits=1e20)},
        422,
        "invalid_field",
        "features.visits",
    ),
    (
        "NUL in a category",
        "predictor",
        "POST",
        PRED,
        {"json": row(plan="a\x00b")},
        422,
        "invalid_field",
        "features.plan",
    ),
    (
        "NUL in a request id",
        "predictor",
        "POST",
        PRED,
        {"json": {"features": ROW, "request_id": "r\x00"}},
        422,
        "invalid_field",
        "request_id",
    ),
    (
        "NUL in a batch row's request id",
        "predictor",
        "POST",
        PRED,
        {"json": {"instances": [{**ROW, "request_id": "r\x00"}], "request_id": "b"}},
        422,
        "invalid_field",
        "instances.0.request_id",
    ),
    (
        "NUL in an outcome's actual",
        "predictor",
        "POST",
        "/v1/outcomes",
        {"json": {"deployment": "churn", "request_id": "r", "actual": "y\x00"}},
        422,
        "invalid_field",
        "actual",
    ),
    (
        "1e20 as an outcome's actual",
        "predictor",
        "POST",
        "/v1/outcomes",
        {"json": {"deployment": "churn", "request_id": "r", "actual": 1e20}},
        422,
        "invalid_field",
        "actual",
    ),
    (
        "NUL in an outcome id",
        "predictor",
        "POST",
        "/v1/outcomes",
        {"json": {"deployment": "churn", "request_id": "r", "actual": "y", "outcome_id": "\x00"}},
        422,
        "invalid_field",
        "outcome_id",
    ),
    (
        "an ingestion count past 2^53 - 1",
        "predictor",
        "POST",
        "/v1/ingestions",
        {"json": {"feed": "f", "count": 2**60}},
        422,
        "invalid_field",
        "count",
    ),
    (
        "NUL in a feature's name",
        "admin",
        "POST",
        "/v1/deployments",
        {
            "json": {
                "name": "n",
                "task": "regression",
                "schema": {"features": [{"name": "a\x00", "type": "number"}]},
            }
        },
        422,
        "invalid_field",
        "schema.features.0.name",
    ),
    (
        "max_length on a number",
        "admin",
        "POST",
        "/v1/deployments",
        {
            "json": {
                "name": "n",
                "task": "regression",
                "schema": {"features": [{"name": "a", "type": "number", "max_length": 5}]},
            }
        },
        422,
        "invalid_field",
        "schema.features.0.max_length",
    ),
    (
        "NUL in a deployment's settings",
        "admin",
        "POST",
        "/v1/deployments",
        {
            "json": {
                "name": "n",
                "task": "regression",
                "schema": SCHEMA,
                "settings": {"a": ["\x00"]},
            }
        },
        422,
        "invalid_field",
        "settings",
    ),
    (
        "NUL in a query parameter",
        "auditor",
        "GET",
        "/v1/predictions",
        {"query_string": "deployment=%00"},
        400,
        "invalid_parameter",
        "deployment",
    ),
    (
        "NUL in a feature filter",
        "auditor",
        "GET",
        "/v1/predictions",
        {"query_string": "feature.plan=a%00"},
        400,
        "invalid_parameter",
        "feature.plan",
    ),
    (
        "NUL in a path parameter",
        "auditor",
        "GET",
        "/v1/deployments/a%00b",
        {},
        404,
        "not_found",
        "name",
    ),
]

# Bodies past the test app's 4,000-byte limit: answered by an app that takes 4 MB.
BIG_CASES = [
    (
        "a 5,000-digit integer",
        "predictor",
        "POST",
        PRED,
        {
            "body": b'{"features": {"income": ' + b"9" * 5000 + b'}, "request_id": "r"}',
            "headers": {"Content-Type": "application/json"},
        },
        422,
        "invalid_field",
        "features.income",
    ),
    (
        "a body nested 100,000 levels",
        "predictor",
        "POST",
        PRED,
        {"body": b"[" * 100_000 + b"]" * 100_000, "headers": {"Content-Type": "application/json"}},
        400,
        "too_deep",
        "body",
    ),
    (
        "a 2 MB category",
        "predictor",
        "POST",
        PRED,
        {"json": row(plan="x" * 2_000_000)},
        422,
        "invalid_field",
        "features.plan",
    ),
]


@pytest.fixture
def api(ledger) -> Api:
    small = replace(ledger.settings, max_body_bytes=4000, max_batch_rows=3)
    api = make_api(ledger)
    api.client = TestClient(create_app(small, ledger))
    deployment_with_models(api)
    assert api.call("GET", "/v1/deployments/churn").json["version"] == 4
    return api


def test_every_bad_input_gets_its_status_code_and_field(api: Api, cases: Any = None) -> None:
    failures = []
    for name, role, method, path, kwargs, status, code, field in cases or CASES:
        result = api.call(method, path, role=role, **kwargs)
        body = result.json if result.content else {}
        got = (result.status_code, body.get("code"), body.get("field"))
        if (
            got != (status, code, field)
            or result.headers.get("Content-Type") != "application/problem+json"
        ):
            failures.append(
                f"{name}: got {got}, want {(status, code, field)}: {body.get('detail')}"
            )
        elif set(body) < {"type", "title", "status", "detail", "code"}:
            failures.append(f"{name}: not a problem document: {body}")
    assert not failures, "\n".join(failures)


def test_big_bad_values_get_their_status_code_and_field(api: Api) -> None:
    big = replace(api.ledger.settings, max_body_bytes=4_000_000, max_batch_rows=3)
    api.client = TestClient(create_app(big, api.ledger))
    test_every_bad_input_gets_its_status_code_and_field(api, BIG_CASES)


def test_predicting_with_no_active_model_is_409(ledger) -> None:
    api = make_api(ledger)
    api.call(
        "POST",
        "/v1/deployments",
        json={"name": "empty", "task": "classification", "schema": SCHEMA},
    )
    result = api.call("POST", "/v1/deployments/empty/predictions", role="predictor", json=row())
    assert (result.status_code, result.json["code"]) == (409, "no_active_model")


@pytest.mark.postgres
def test_a_database_that_went_away_answers_503_with_retry_after(tmp_path) -> None:
    from ledger.application import Ledger
    from ledger.settings import Settings
    from tests.conftest import drop_postgres_database, fresh_postgres_database

    url = fresh_postgres_database()
    ledger = Ledger(Settings(home=tmp_path, database_url=url))
    try:
        api = make_api(ledger)
        deployment_with_models(api)
        assert api.call("POST", PRED, role="predictor", json=row()).status_code == 201
        drop_postgres_database(url)
        for method, path, kwargs in (
            ("POST", PRED, {"json": {**row(), "request_id": "r2"}}),
            ("GET", "/v1/deployments/churn", {}),
        ):
            result = api.call(method, path, role="predictor", **kwargs)
            assert result.status_code == 503, result.text
            assert result.json["code"] == "storage_unavailable" and result.headers["Retry-After"]
    finally:
        ledger.close()
