"""The OpenAPI document covers every route, and the live app keeps to it (schemathesis)."""

from __future__ import annotations

import json
import zlib
from pathlib import Path
from typing import Any

import falcon.testing
import numpy as np
import pytest
import schemathesis
from hypothesis import strategies as st
from schemathesis.config import SchemathesisConfig
from schemathesis.config._checks import (
    MISSING_REQUIRED_HEADER_EXPECTED_STATUSES,
    NEGATIVE_DATA_REJECTION_EXPECTED_STATUSES,
    POSITIVE_DATA_ACCEPTANCE_EXPECTED_STATUSES,
)
from sklearn.linear_model import LogisticRegression

from api.app import create_app
from api.demo import ensure_signing_key
from api.openapi import API_MD, build_spec, with_routes
from api.params import next_cursor, next_name_cursor
from api.routes import ROUTES
from ledger.application import Ledger
from ledger.artifacts import dumps_skops
from ledger.settings import Settings
from projections.query_predictions import encode_cursor
from projections.registry import ALL
from projections.runner import Runner
from tests.integration.api_support import ROW, deployment_with_models, make_api, predict

FEATURES = ["tenure", "charges"]
ROLE_PREFERENCE = ("admin", "auditor", "predictor")


class NotTrusted:
    """A class skops does not know: loading it could run arbitrary code."""

    def predict(self, X):  # noqa: N803 - scikit-learn's name
        return X


def upload_model(client: falcon.testing.TestClient, admin: str, deployment: str, seed: int) -> dict:
    """A small fitted classifier uploaded as skops with declared metadata."""
    rng = np.random.default_rng(seed)
    X, y = rng.normal(size=(60, 2)), np.array([0, 1] * 30)
    model = LogisticRegression(C=1.0 + seed).fit(X, y)
    metadata = {
        "name": f"lr-{seed}",
        "task": "classification",
        "features": FEATURES,
        "deployment": deployment,
        "declared": {"trained_on": "synthetic", "seed": seed},
    }
    resp = client.simulate_post(
        "/v1/models",
        body=dumps_skops(model),
        headers={
            "Authorization": f"Bearer {admin}",
            "Content-Type": "application/octet-stream",
            "X-Model-Metadata": json.dumps(metadata),
        },
    )
    assert resp.status_code == 201, resp.text
    return resp.json


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory):
    """An app on SQLite with one deployment of two uploaded models, and a key per role."""
    home = tmp_path_factory.mktemp("openapi")
    settings = Settings(home=Path(home), database_url=f"sqlite:///{home / 'ledger.db'}")
    ledger = Ledger(settings)
    keys = {role: ledger.issue_api_key(role=role, actor="test")[1] for role in ROLE_PREFERENCE}
    app = create_app(settings, ledger)
    client = falcon.testing.TestClient(app)
    admin = {"Authorization": f"Bearer {keys['admin']}"}
    deployment = {
        "name": "churn",
        "task": "classification",
        "positive_label": 1,
        "schema": {"features": [{"name": name, "type": "number"} for name in FEATURES]},
    }
    assert (
        client.simulate_post("/v1/deployments", json=deployment, headers=admin).status_code == 201
    )
    for seed in (1, 2):
        upload_model(client, keys["admin"], "churn", seed)
    yield app, client, keys
    app.services.close()


def test_every_route_in_the_table_is_in_the_spec(served):
    _, client, _ = served
    served_spec = client.simulate_get("/openapi.json").json
    assert served_spec == json.loads(json.dumps(build_spec()))  # what the schemathesis run reads
    paths = served_spec["paths"]
    missing = [
        f"{r.method} {r.path}" for r in ROUTES if r.method.lower() not in paths.get(r.path, {})
    ]
    assert missing == []


def test_every_route_in_the_spec_is_mounted(served):
    app, _, _ = served
    unmounted = []
    for route in ROUTES:
        found = app._router.find(route.path.replace("{", "").replace("}", ""))
        responder = found[1].get(route.method) if found else None
        if (
            found is None or getattr(responder, "__self__", None) is not found[0]
        ):  # else falcon's 405
            unmounted.append(f"{route.method} {route.path}")
    assert unmounted == [], "routes in api/routes/ that no module mounts"


def test_protected_routes_declare_bearer_and_problem_answers(served):
    _, client, _ = served
    spec = client.simulate_get("/openapi.json").json
    assert spec["components"]["securitySchemes"]["bearer"] == {"type": "http", "scheme": "bearer"}
    keys = spec["paths"]["/v1/keys"]["post"]
    assert keys["security"] == [{"bearer": []}]
    assert "application/problem+json" in keys["responses"]["401"]["content"]


def test_every_operation_has_one_tag_of_its_area(served):
    _, client, _ = served
    spec = client.simulate_get("/openapi.json").json
    declared = {tag["name"] for tag in spec["tags"]}
    tags = [op["tags"] for ops in spec["paths"].values() for op in ops.values()]
    assert all(len(t) == 1 and t[0] in declared for t in tags) and len(declared) >= 10


def test_docs_api_md_lists_the_routes_the_table_declares():
    document = API_MD.read_text()
    assert document == with_routes(document), "run: python -m api.openapi --markdown"


def test_the_docs_page_loads_only_vendored_files(served):
    _, client, _ = served
    page = client.simulate_get("/docs").text
    assert "http://" not in page and "https://" not in page
    assert client.simulate_get("/docs/swagger-ui-bundle.js").status_code == 200
    assert client.simulate_get("/docs/..%2Fsecrets").status_code == 404


def test_an_uploaded_model_is_declared_and_joins_as_challenger(served):
    _, client, keys = served
    deployment = client.simulate_get(
        "/v1/deployments/churn", headers={"Authorization": f"Bearer {keys['auditor']}"}
    ).json
    assert len(deployment["challengers"]) == 1 and deployment["leader"]["provenance"] == "declared"


def test_an_artifact_with_untrusted_types_is_refused(served):
    _, client, keys = served
    import skops.io as sio

    resp = client.simulate_post(
        "/v1/models",
        body=sio.dumps(NotTrusted()),
        headers={
            "Authorization": f"Bearer {keys['admin']}",
            "Content-Type": "application/octet-stream",
            "X-Model-Metadata": json.dumps({"name": "x", "task": "regression", "features": ["a"]}),
        },
    )
    assert resp.status_code == 422 and resp.json["code"] == "untrusted_artifact"


# Statuses a request valid per the spec may still get from the ledger's state, beyond
# schemathesis' defaults: 412 (a stale If-Match) and 422 (rows that the deployment's own
# schema refuses, a promotion the policy refuses, an export period not yet closed). A
# request valid per the spec is never refused for its shape: see `no_shape_refusal`.
STATE_REFUSALS = ["412", "422"]
EXAMPLES = 20  # fuzzed requests per operation, role and mode, after the coverage phase
CONFIG = SchemathesisConfig.from_dict(
    {
        # The run sends each role's key itself: no generated (or removed) Authorization header.
        "generation": {
            "mode": "all",
            "max-examples": EXAMPLES,
            "deterministic": True,
            "with-security-parameters": False,
        },
        "phases": {"stateful": {"enabled": False}},
        "checks": {
            # A POST without a body (and so without Content-Length) is 411, not 400.
            "negative_data_rejection": {
                "expected-statuses": [*NEGATIVE_DATA_REJECTION_EXPECTED_STATUSES, "411"]
            },
            "positive_data_acceptance": {
                "expected-statuses": [*POSITIVE_DATA_ACCEPTANCE_EXPECTED_STATUSES, *STATE_REFUSALS]
            },
            # If-Match is required to change a deployment: its absence is 428, as RFC 6585 says.
            "missing_required_header": {
                "expected-statuses": [*MISSING_REQUIRED_HEADER_EXPECTED_STATUSES, "428"]
            },
        },
    }
)
SHAPE_CODES = {
    "unknown_parameter",
    "invalid_parameter",
    "missing_parameter",
    "invalid_limit",
    "invalid_cursor",
    "invalid_body",
    "malformed_json",
    "body_required",
}
ROLES = ("admin", "predictor", "auditor", None)


@schemathesis.check
def no_shape_refusal(ctx, response, case):
    """A request valid per the spec is never refused for its shape (query or JSON)."""
    if case.meta is None or not case.meta.generation.mode.is_positive:
        return None
    if response.status_code in (400, 422):
        code = (response.json() or {}).get("code")
        if code in SHAPE_CODES:
            raise AssertionError(f"a valid request was refused: {response.status_code} {code}")
    return None


schemathesis.openapi.format(
    "name-cursor", st.text("abcdefghij-_0123456789", min_size=1, max_size=12).map(next_name_cursor)
)
schemathesis.openapi.format("position-cursor", st.integers(0, 10**12).map(next_cursor))
schemathesis.openapi.format(
    "index-cursor",
    st.tuples(st.integers(0, 10**9), st.integers(0, 10**9)).map(lambda p: encode_cursor(*p)),
)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory):
    """A demo-like ledger on SQLite: a deployment of two models, predictions, outcomes, a
    feed, a signing key, the read tables built; and a key per role."""
    home = tmp_path_factory.mktemp("spec")
    settings = Settings(
        home=Path(home),
        database_url=f"sqlite:///{home / 'ledger.db'}",
        rate_limit_per_second=0,
    )
    ledger = Ledger(settings)
    api = make_api(ledger)
    deployment_with_models(api)
    ensure_signing_key(ledger, settings)
    for index in range(6):
        body = {"request_id": f"r{index}", "features": {**ROW, "age": 30.0 + index}}
        answer = predict(api, body)
        assert answer.status_code == 201
    outcome = {"deployment": "churn", "request_id": "r0", "actual": "yes"}
    assert api.call("POST", "/v1/outcomes", "predictor", json=outcome).status_code == 201
    ledger.declare_feed("crm", 1000, 3600, actor="test")
    feed = {"feed": "crm", "count": 10}
    assert api.call("POST", "/v1/ingestions", "predictor", json=feed).status_code == 201
    for cls in ALL:
        Runner(ledger.engine, cls).catch_up()
    WORLD_APP.app = api.client.app
    job = api.call("GET", "/v1/ledger/verify", "auditor").json["job_id"]
    WORLD_APP.known = {
        "name": "churn",
        "model_id": answer.json["model_id"],
        "prediction_id": answer.json["prediction_id"],
        "job_id": job,
        "subject_id": ROW["customer"],
    }
    yield api
    api.client.app.services.close()


class WorldApp:
    """The WSGI app the run calls: the `world` fixture's, built after collection."""

    app: Any = None
    known: dict[str, str] = {}  # path parameters that name something that exists

    def __call__(self, environ: dict, start_response: Any) -> Any:
        return self.app(environ, start_response)


# The spec as generated from the route table (the app serves exactly this document).
WORLD_APP = WorldApp()
spec = schemathesis.openapi.from_dict(build_spec(), config=CONFIG)
spec.app = WORLD_APP


# A parameter family's template name, as a valid request fills it in: a feature the
# world's deployment has (`feature.<name>` is any feature of the input schema).
TEMPLATES = {"feature.<name>": "feature.age"}


@spec.hook
def map_case(context, case):
    """Every other valid request names things that exist (else most answer 404)."""
    if case.meta is None or not case.meta.generation.mode.is_positive:
        return case
    for template, name in TEMPLATES.items():
        if case.query and template in case.query:
            case.query[name] = case.query.pop(template)
    if not case.path_parameters:
        return case
    if zlib.crc32(repr(sorted(case.path_parameters.items())).encode()) % 2:
        for name in case.path_parameters:
            case.path_parameters[name] = WORLD_APP.known.get(name, case.path_parameters[name])
    return case


def conformance(role: str | None):
    """schemathesis, seeded and bounded, with this role's key (or none), valid and invalid
    requests (examples, coverage and fuzzing phases): every check passes (no 5xx, answers
    match their schemas, valid requests accepted, invalid ones refused)."""

    @spec.parametrize()
    def test(case, world):
        headers = {"Authorization": f"Bearer {world.keys[role]}"} if role else {}
        case.call_and_validate(headers=headers, additional_checks=[no_shape_refusal])

    return test


test_the_app_keeps_to_its_spec_as_admin = conformance("admin")
test_the_app_keeps_to_its_spec_as_predictor = conformance("predictor")
test_the_app_keeps_to_its_spec_as_auditor = conformance("auditor")
test_the_app_keeps_to_its_spec_without_a_key = conformance(None)
