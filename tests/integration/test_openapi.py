"""The OpenAPI document covers every route, and the live app keeps to it (schemathesis)."""

from __future__ import annotations

import json
from pathlib import Path

import falcon.testing
import numpy as np
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import checks as st_checks
from sklearn.linear_model import LogisticRegression

from api.app import create_app
from api.openapi import API_MD, with_routes
from api.routes import ROUTES
from ledger.application import Ledger
from ledger.artifacts import dumps_skops
from ledger.settings import Settings

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
    paths = client.simulate_get("/openapi.json").json["paths"]
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
    assert unmounted == [], "routes in api/routes.py that no module mounts"


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


CHECKS = [
    st_checks.not_a_server_error,
    st_checks.status_code_conformance,
    st_checks.content_type_conformance,
    st_checks.response_schema_conformance,
]


def key_for(keys: dict[str, str], method: str, path: str) -> dict[str, str]:
    """A key of a role the route allows (none for public routes)."""
    route = next((r for r in ROUTES if r.path == path and r.method == method.upper()), None)
    role = next((role for role in ROLE_PREFERENCE if route and role in route.roles), None)
    return {"Authorization": f"Bearer {keys[role]}"} if role else {}


def exercise(operation, headers: dict[str, str]) -> None:
    """A few generated requests against one operation, every check applied."""

    @given(case=operation.as_strategy())
    @settings(
        max_examples=8,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )
    def call(case):
        case.call_and_validate(headers=headers, checks=CHECKS)

    call()


def describe(error: BaseException) -> str:
    """The failure's message with each sub-failure, bounded."""
    parts = [str(error)] + [str(e) for e in getattr(error, "exceptions", ())]
    return "\n".join(parts)[:1500]


def test_the_app_keeps_to_its_spec(served):
    """schemathesis, bounded: no 5xx, and every answer matches the spec."""
    app, _, keys = served
    schema = schemathesis.openapi.from_wsgi("/openapi.json", app)
    failures = []
    for result in schema.get_all_operations():
        operation = result.ok()
        try:
            exercise(operation, key_for(keys, operation.method, operation.path))
        except (Exception, BaseExceptionGroup) as error:  # noqa: BLE001 - collect all, then report
            failures.append(f"{operation.method.upper()} {operation.path}: {describe(error)}")
    assert not failures, "\n\n".join(failures)
