"""Scenario 10: export and rebuild of many events in bounded memory; an export cut short by
its client leaves no transaction open.

Peak RSS is the child's own `ru_maxrss` (getrusage of a waited child, in a probe process so
that nothing else of ours is counted).
"""

from __future__ import annotations

import os
import socket
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from ledger.application import Ledger
from ledger.settings import Settings
from tests.conftest import drop_postgres_database, fresh_postgres_database
from tests.e2e.server import Server
from tests.integration.test_projection_world import World
from tests.reliability.support import TIMEOUT, issue_keys, peak_rss_mb, scaled

pytestmark = [pytest.mark.slow, pytest.mark.timeout(TIMEOUT)]
EVENTS = scaled(10_000, 1_000_000)
PEAK_MB = 300
BATCH = 1000


def fill(url: str, home: Path, predictions: int) -> None:
    """`predictions` Prediction.Made events (two models each), written in batches."""
    ledger = Ledger(Settings(home=home, database_url=url))
    try:
        world = World(ledger, seed=1)
        world.add_model("cls")
        world.add_model("cls", profile=False)
        for _ in range(predictions // BATCH):
            world.predict("cls", BATCH)
            world.predictions.clear()  # the world's own list would grow with the log
    finally:
        ledger.close()


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def filled(request, tmp_path_factory):
    home = tmp_path_factory.mktemp(f"many-{request.param}")
    url = (
        f"sqlite:///{home / 'ledger.db'}"
        if request.param == "sqlite"
        else fresh_postgres_database()
    )
    started = time.monotonic()
    fill(url, home, EVENTS)
    print(f"\n{EVENTS} predictions written on {request.param} in {time.monotonic() - started:.1f}s")
    time.sleep(1.1)  # an export covers a closed period: `to` must be past the last event
    try:
        yield home, url
    finally:
        if request.param == "postgres":
            drop_postgres_database(url)


def ledger_argv(*args: str) -> list[str]:
    return [sys.executable, "-c", "from api.cli import main; main()", *args]


def test_export_of_many_predictions_stays_under_300_mb(filled):
    home, url = filled
    until = datetime.now(UTC).isoformat()
    env = {**os.environ, "LEDGER_HOME": str(home), "LEDGER_DATABASE_URL": url}
    started = time.monotonic()
    peak, output = peak_rss_mb(
        ledger_argv(
            "export",
            "--from",
            "2000-01-01",
            "--to",
            until,
            "--format",
            "jsonl",
            "--out",
            str(home / "exports"),
        ),
        env,
        cwd=home,
    )
    lines = sum(1 for f in (home / "exports").glob("*.jsonl") for _ in f.open())
    print(f"\nexport of {lines} rows: peak RSS {peak:.0f} MB in {time.monotonic() - started:.1f}s")
    assert lines == EVENTS, output
    assert peak < PEAK_MB


def test_rebuild_of_many_events_stays_under_300_mb(filled):
    home, url = filled
    env = {**os.environ, "LEDGER_HOME": str(home), "LEDGER_DATABASE_URL": url}
    started = time.monotonic()
    peak, _ = peak_rss_mb(ledger_argv("project", "--rebuild"), env, cwd=home)
    print(
        f"\nrebuild of every projection over {EVENTS} predictions: peak RSS {peak:.0f} MB "
        f"in {time.monotonic() - started:.1f}s"
    )
    assert peak < PEAK_MB


def idle_in_transaction(url: str) -> int:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(
                sa.text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND state LIKE 'idle in transaction%' AND pid <> pg_backend_pid()"
                )
            ).scalar_one()
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_a_client_that_hangs_up_mid_export_leaves_no_open_transaction(tmp_path):
    url = fresh_postgres_database()
    server = Server(tmp_path, url)
    try:
        fill(url, tmp_path, scaled(10_000, 100_000))
        keys = issue_keys(tmp_path, url)
        server.start()
        time.sleep(1.1)
        until = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        received = hang_up_after(
            server.port,
            keys["auditor"],
            f"/v1/exports/predictions?format=jsonl&from=2000-01-01&to={until}",
            256 * 1024,
        )
        assert received >= 256 * 1024, "the export ended before the client hung up"
        deadline = time.monotonic() + 10
        while (open_now := idle_in_transaction(url)) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert open_now == 0, "a transaction stayed open after the client went away"
        assert server.call("GET", "/healthz").status == 200
    finally:
        server.stop()
        drop_postgres_database(url)


def hang_up_after(port: int, key: str, path: str, nbytes: int) -> int:
    """GET `path`, read `nbytes` of the answer, then close the socket mid-stream."""
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        sock.sendall(
            f"GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\n\r\n".encode()
        )
        received = 0
        while received < nbytes:
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += len(chunk)
        sock.setsockopt(
            socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
        )  # RST
    return received
