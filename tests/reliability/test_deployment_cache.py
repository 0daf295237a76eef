"""Every gunicorn worker serves a deployment change once the change is answered.

Each worker caches its deployments' runtimes and learns of changes from its deployment
watch (ledger/deployment_watch.py) within LEDGER_DEPLOYMENT_STALENESS_MS, not from a query
per request; a change over HTTP answers once that bound has passed. Here a real gunicorn
runs two workers; the test keeps one HTTP connection open to each (keep-alive pins a
connection to the worker that accepted it, found through /proc), changes the deployment
through the API, and checks every answer sent after the change was answered: the new
leader serves it, and a retired model no longer scores it. On
PostgreSQL it then kills each worker's listening connection and checks the same while the
workers fall back to reading the version, and after they listen again.
"""

from __future__ import annotations

import http.client
import json
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from ledger.application import Ledger
from ledger.deployment_watch import APPLICATION_NAME
from ledger.settings import Settings
from tests.e2e.server import REPO, Server
from tests.reliability.support import (
    FEATURES,
    PREDICT,
    TIMEOUT,
    build_deployment,
    gunicorn_workers,
    issue_keys,
    row,
    upload_body,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(TIMEOUT)]
WORKERS = 2
BOUND = Settings.__dataclass_fields__["deployment_staleness_ms"].default / 1000


class KeptAliveServer(Server):
    """The production gunicorn configuration, with keep-alive on so a connection stays put."""

    def command(self, *extra: str) -> list[str]:
        return [
            sys.executable,
            "-m",
            "gunicorn",
            "-c",
            str(REPO / "deploy" / "gunicorn.conf.py"),
            "--bind",
            f"127.0.0.1:{self.port}",
            "--workers",
            str(WORKERS),
            "--threads",
            "4",
            "--keep-alive",
            "300",
            *extra,
            "api.wsgi:app",
        ]


def worker_of(connection: http.client.HTTPConnection, workers: list[int]) -> int | None:
    """The worker process holding the server end of this client connection."""
    assert connection.sock is not None
    client_port = connection.sock.getsockname()[1]
    inode = None
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[2].split(":")[1], 16) == client_port:  # remote end: the client
            inode = fields[9]
    for pid in workers:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") == f"socket:[{inode}]":
                    return pid
            except FileNotFoundError:
                continue
    return None


class Client:
    """One kept-alive connection per worker."""

    def __init__(self, server: Server, key: str):
        self.server, self.key = server, key
        self.by_worker: dict[int, http.client.HTTPConnection] = {}
        workers = gunicorn_workers(server)
        assert len(workers) == WORKERS
        for _ in range(60):
            connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
            self.predict(connection)
            pid = worker_of(connection, workers)
            if pid is None or pid in self.by_worker:
                connection.close()
            else:
                self.by_worker[pid] = connection
            if len(self.by_worker) == WORKERS:
                return
        raise AssertionError(f"connections reached only workers {sorted(self.by_worker)}")

    def predict(self, connection: http.client.HTTPConnection) -> dict[str, Any]:
        body = json.dumps({"request_id": uuid.uuid4().hex, "features": row(1)})
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {self.key}"}
        connection.request("POST", PREDICT, body, headers)
        response = connection.getresponse()
        answer = json.loads(response.read())
        assert response.status == 201, answer
        return answer

    def served_after(self, acked: float, expect: Any, ledger: Ledger) -> int:
        """Each worker predicts for 0.5 s after `acked`; every answer must satisfy `expect`.
        How many answers were checked."""
        checked = 0
        while time.monotonic() < acked + 0.5:
            for pid, connection in self.by_worker.items():
                sent = time.monotonic()
                answer = self.predict(connection)
                outputs = set(ledger.prediction(answer["prediction_id"]).outputs)
                assert expect(answer["model_id"], outputs), (
                    f"worker {pid}: {sent - acked:.3f}s after the change was answered, served stale"
                )
                checked += 1
        return checked


def change(server: Server, key: str, method: str, path: str, body: dict) -> float:
    """Send a deployment change; the moment its answer arrived, which waits out the bound."""
    version = server.call("GET", "/v1/deployments/churn", key=key).json["version"]
    sent = time.monotonic()
    answer = server.call(method, path, body, key=key, headers={"If-Match": f'"{version}"'})
    assert answer.status in (200, 201, 204), answer.body
    acked = time.monotonic()
    assert acked - sent >= BOUND, f"answered {acked - sent:.3f}s after it was sent"
    return acked


def add_model(server: Server, key: str, name: str, seed: int) -> str:
    metadata = {
        "name": name,
        "task": "classification",
        "features": list(FEATURES),
        "deployment": "churn",
        "declared": {"by": "reliability"},
    }
    uploaded = server.call(
        "POST",
        "/v1/models",
        raw=upload_body(seed),
        key=key,
        headers={
            "Content-Type": "application/octet-stream",
            "X-Model-Metadata": json.dumps(metadata),
        },
    )
    assert uploaded.status == 201, uploaded.body
    return str(uploaded.json["model_id"])


def kill_listeners(url: str) -> int:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return int(
                conn.execute(
                    sa.text(
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                        "WHERE application_name = :name AND datname = current_database()"
                    ),
                    {"name": APPLICATION_NAME},
                ).scalar_one()
            )
    finally:
        engine.dispose()


def listeners(url: str) -> int:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return int(
                conn.execute(
                    sa.text(
                        "SELECT count(*) FROM pg_stat_activity "
                        "WHERE application_name = :name AND datname = current_database()"
                    ),
                    {"name": APPLICATION_NAME},
                ).scalar_one()
            )
    finally:
        engine.dispose()


def test_every_worker_serves_a_change_within_the_bound(database_url, tmp_path) -> None:
    keys = issue_keys(tmp_path, database_url)
    server = KeptAliveServer(tmp_path, database_url).start()
    ledger = Ledger(Settings(home=tmp_path, database_url=database_url, group_commit=False))
    try:
        build_deployment(server, keys)
        first = server.call("GET", "/v1/deployments/churn", key=keys["admin"]).json["leader"]["id"]
        second = add_model(server, keys["admin"], "lr-2", seed=2)
        third = add_model(server, keys["admin"], "lr-3", seed=3)
        client = Client(server, keys["predictor"])
        time.sleep(BOUND)  # each worker's watch is up and has vouched for its cache

        acked = change(server, keys["admin"], "PUT", "/v1/deployments/churn/leader",
                       {"model_id": second, "reason": "promoted"})  # fmt: skip
        client.served_after(acked, lambda served, _: served == second, ledger)

        acked = change(server, keys["admin"], "DELETE", f"/v1/deployments/churn/models/{first}",
                       {"reason": "retired"})  # fmt: skip
        client.served_after(acked, lambda _, outputs: first not in outputs, ledger)

        if not database_url.startswith("postgresql"):
            return
        assert listeners(database_url) == WORKERS
        assert kill_listeners(database_url) == WORKERS
        acked = change(server, keys["admin"], "PUT", "/v1/deployments/churn/leader",
                       {"model_id": third, "reason": "listeners down"})  # fmt: skip
        client.served_after(acked, lambda served, _: served == third, ledger)
        deadline = time.monotonic() + 10
        while listeners(database_url) < WORKERS:
            assert time.monotonic() < deadline, "the listeners did not come back"
            time.sleep(0.05)
        acked = change(server, keys["admin"], "PUT", "/v1/deployments/churn/leader",
                       {"model_id": second, "reason": "listeners back"})  # fmt: skip
        client.served_after(acked, lambda served, _: served == second, ledger)
    finally:
        ledger.close()
        server.stop()
