"""Scenarios 6/7, what the existing suites leave out.

Already covered: schemathesis over /openapi.json with a key per role
(tests/integration/test_openapi.py::test_the_app_keeps_to_its_spec); the route x caller
matrix with no, revoked, expired and garbage keys (test_authz.py); 429 with Retry-After
(test_authz.py::test_a_key_over_its_rate_limit_gets_429_with_retry_after); 411, 413, the
batch cap and the page cap (test_bad_inputs.py). Here: the limit is per key, and neither
counting nor refusing writes to the database.
"""

from __future__ import annotations

from dataclasses import replace

import sqlalchemy as sa
from falcon.testing import TestClient

from api.app import create_app


def event_count(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return conn.exec_driver_sql("SELECT count(*) FROM ledger_events").scalar_one()


def test_the_rate_limit_is_per_key_and_writes_nothing_to_the_database(ledger) -> None:
    strict = replace(ledger.settings, rate_limit_per_second=0.5, rate_limit_burst=3)
    client = TestClient(create_app(strict, ledger))
    greedy, patient = (ledger.issue_api_key(role="auditor", actor="test")[1] for _ in range(2))
    before = event_count(ledger.engine)
    greedy_statuses = [
        client.simulate_get("/v1/deployments", headers={"Authorization": f"Bearer {greedy}"})
        for _ in range(10)
    ]
    patient_status = client.simulate_get(
        "/v1/deployments", headers={"Authorization": f"Bearer {patient}"}
    )
    assert [s.status_code for s in greedy_statuses] == [200] * 3 + [429] * 7
    assert all(int(s.headers["Retry-After"]) >= 1 for s in greedy_statuses[3:])
    assert greedy_statuses[-1].json["code"] == "rate_limited"
    assert patient_status.status_code == 200, "one key's flood must not limit another key"
    assert event_count(ledger.engine) == before, "counting requests must not write to the ledger"
