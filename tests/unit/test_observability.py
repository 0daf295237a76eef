"""The request observer: request ids, JSON log lines, and counted answers."""

from __future__ import annotations

import json

import falcon
import falcon.testing
import pytest

from api import observability


class Predict:
    def on_post(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        resp.media = {"predictions": [{"model_id": "m1"}, {"model_id": "m2"}]}


@pytest.fixture
def client(monkeypatch) -> falcon.testing.TestClient:
    # Single-process mode: an earlier in-process `serve` may have left the multiprocess dir set.
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    app = falcon.App(middleware=observability.middleware(services=None))
    app.add_route("/v1/deployments/{name}/predictions", Predict())
    observability.add_routes(app, services=None)
    return falcon.testing.TestClient(app)


def test_a_callers_request_id_is_echoed(client):
    resp = client.simulate_post(
        "/v1/deployments/churn/predictions", headers={"X-Request-Id": "abc-1"}
    )
    assert resp.headers["X-Request-Id"] == "abc-1"


def test_an_unsafe_request_id_is_replaced_by_a_fresh_one(client):
    resp = client.simulate_get("/nowhere", headers={"X-Request-Id": "bad id\n" * 3})
    assert resp.status_code == 404
    assert len(resp.headers["X-Request-Id"]) == 32


def test_every_request_is_logged_as_json_with_its_request_id(client, capsys):
    observability.configure_logging("INFO")
    client.simulate_post("/v1/deployments/churn/predictions", headers={"X-Request-Id": "log-me"})
    lines = [
        json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")
    ]
    request_lines = [line for line in lines if line.get("event") == "request"]
    assert request_lines[-1]["request_id"] == "log-me"
    assert request_lines[-1]["route"] == "/v1/deployments/{name}/predictions"


def test_metrics_count_requests_by_route_and_served_rows_by_model(client):
    client.simulate_post("/v1/deployments/churn/predictions")
    text = client.simulate_get("/metrics").text
    assert 'ledger_predictions_total{deployment="churn",model="m2"}' in text
    assert 'route="/v1/deployments/{name}/predictions"' in text
    assert "ledger_group_commit_batch_callers" in text


class Broken:
    def on_post(self, req: falcon.Request, resp: falcon.Response, subject_id: str) -> None:
        raise RuntimeError("boom")


def test_a_500_logs_the_route_template_never_the_subject_in_the_path(caplog):
    from api import errors

    app = falcon.App(middleware=observability.middleware(services=None))
    errors.register(app)
    app.add_route("/v1/subjects/{subject_id}/forget", Broken())
    with caplog.at_level("ERROR", logger="api.errors"):
        resp = falcon.testing.TestClient(app).simulate_post("/v1/subjects/alice@example.org/forget")
    assert resp.status_code == 500
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "/v1/subjects/{subject_id}/forget" in logged
    assert "alice@example.org" not in logged


def test_whatever_a_sidecars_child_says_becomes_one_json_line(capsys):
    from api.sidecars import log_line

    observability.configure_logging("INFO")
    said = [
        "following: deployments, models",
        "Error: a projection runner stopped",
        json.dumps({"event": "digest written", "level": "warning", "position": 7}),
        json.dumps({"started_at": "2026-11-01T00:00:00Z", "deployments": []}),
    ]
    for text in said:
        log_line("projector", text)
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert [line["sidecar"] for line in lines] == ["projector"] * 4
    assert [line["level"] for line in lines] == ["info", "error", "warning", "info"]
    assert lines[2]["position"] == 7 and lines[3]["report"]["deployments"] == []
