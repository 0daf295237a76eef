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


def test_the_request_line_written_directly_is_the_line_structlog_writes(capsys, monkeypatch):
    import structlog

    observability.configure_logging("INFO")
    monkeypatch.setattr(observability.time, "time_ns", lambda: 1_772_539_200_250_000_123)
    structlog.contextvars.bind_contextvars(request_id="same-1")
    try:
        capsys.readouterr()
        observability.log.info(
            "request", method="POST", route="/v1/x/{name}", status=201, duration_ms=0.41
        )
        through_structlog = capsys.readouterr().err
        observability.log_request("POST", "/v1/x/{name}", 201, 0.41)
        direct = capsys.readouterr().err
    finally:
        structlog.contextvars.clear_contextvars()
    assert direct == through_structlog
    assert json.loads(direct)["timestamp"] == "2026-03-03T12:00:00.250000Z"


def test_the_request_line_follows_the_level_and_a_capturing_test():
    from structlog.testing import capture_logs

    observability.configure_logging("INFO")
    with capture_logs() as logs:
        observability.log_request("GET", "/healthz", 200, 1.0)
    assert logs == [
        {
            "event": "request",
            "log_level": "info",
            "method": "GET",
            "route": "/healthz",
            "status": 200,
            "duration_ms": 1.0,
        }
    ]


def test_the_request_line_is_not_written_above_info(capsys):
    observability.configure_logging("WARNING")
    try:
        capsys.readouterr()
        observability.log_request("GET", "/healthz", 200, 1.0)
        assert capsys.readouterr().err == ""
    finally:
        observability.configure_logging("INFO")


@pytest.mark.parametrize(
    "nanoseconds",
    [
        0,
        1_772_539_200_000_000_000,
        1_772_539_200_000_000_999,
        1_772_539_259_999_999_999,
        86_399_123_456_789,
    ],
)
def test_utc_stamp_is_what_structlogs_iso_utc_timestamper_writes(nanoseconds):
    from datetime import UTC, datetime, timedelta

    instant = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=nanoseconds // 1000)
    assert observability.utc_stamp(nanoseconds) == instant.isoformat().replace("+00:00", "Z")


def test_a_fresh_request_id_is_a_uuid4s_hex(monkeypatch):
    import uuid

    for given in (bytes(16), b"\xff" * 16, bytes(range(16))):
        monkeypatch.setattr(observability.os, "urandom", lambda n, given=given: given)
        assert observability.fresh_request_id() == uuid.UUID(bytes=given, version=4).hex
    monkeypatch.undo()
    fresh = uuid.UUID(hex=observability.fresh_request_id())
    assert fresh.version == 4 and fresh.variant == uuid.RFC_4122


def test_a_single_row_is_counted_as_a_batch_of_one_would_be(monkeypatch):
    counted: list[tuple[str, ...]] = []

    class Child:
        def __init__(self, key: tuple[str, ...]):
            self.key = key

        def inc(self, amount: int = 1) -> None:
            counted.extend([self.key] * amount)

    class Found:
        def child(self, *key: str) -> Child:
            return Child(key)

    monkeypatch.setattr(observability, "metrics", Found)
    for answer in ({"model_id": "m1"}, {"model_id": None}, {"value": 1}):
        counted.clear()
        observability.count_served("churn", {"predictions": [answer]})
        as_batch = list(counted)
        counted.clear()
        observability.count_served("churn", answer)
        assert counted == as_batch
