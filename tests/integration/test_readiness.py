"""Ready means reads are served: before the projections catch up, reads are 503 with
Retry-After and /readyz says which projections are still catching up; after, both 200."""

from __future__ import annotations

from api.routes import ROUTES
from projections.registry import ALL
from projections.runner import catch_up
from tests.integration.api_support import create_deployment, make_api


def test_reads_wait_for_the_projections_and_readyz_says_when_they_are_served(ledger):
    writer = make_api(ledger)
    assert create_deployment(writer).status_code == 201
    api = make_api(ledger)  # a process started on a non-empty ledger, nothing projected yet

    read = api.call("GET", "/v1/predictions", "auditor")
    assert read.status_code == 503, read.text
    assert read.headers["Retry-After"] and read.json["code"] == "projection_not_ready"
    ready = api.call("GET", "/readyz", None)
    assert ready.status_code == 503 and ready.headers["Retry-After"]
    assert ready.json["code"] == "not_ready"
    behind = {p["name"]: p for p in ready.json["projections"]}
    assert set(behind) == {p.name for p in ALL}
    assert all(p["position"] is None and p["head"] > 0 for p in behind.values())
    assert api.call("GET", "/healthz", None).status_code == 200  # alive all along

    for projection in ALL:
        catch_up(ledger.engine, projection)
    assert api.call("GET", "/v1/predictions", "auditor").status_code == 200
    ready = api.call("GET", "/readyz", None)
    assert ready.status_code == 200 and ready.json["status"] == "ready"
    assert ready.json["position"] > 0


def test_readyz_is_public_like_healthz():
    public = {r.path for r in ROUTES if r.public}
    assert {"/healthz", "/readyz"} <= public
