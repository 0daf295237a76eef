"""Scenario: kill -9 the host's writer process while retrying clients send predictions.

Under gunicorn on PostgreSQL every worker records through one writer process
(ledger/writer_process.py). Killed mid-batch, it leaves callers in flight without an
answer: each must get 503 (its events may or may not be committed) or its real answer,
never an acknowledgement of something not committed; the master starts another writer,
and recording carries on.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator

import pytest

from tests.conftest import drop_postgres_database, fresh_postgres_database
from tests.reliability.support import (
    TIMEOUT,
    Tally,
    predict_once,
    recorded_predictions,
    run_clients,
    scaled,
    served,
    writer_process,
)
from tests.reliability.test_worker_kill import assert_retries_return_the_original

pytestmark = [pytest.mark.slow, pytest.mark.timeout(TIMEOUT), pytest.mark.postgres]
REQUESTS = scaled(1_000, 10_000)
KILLS = scaled(4, 20)


def next_writer(server, old: int | None, timeout: float = 30) -> int:
    """The writer running now, once it is another than `old`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pid = writer_process(server)
        if pid is not None and pid != old:
            return pid
        time.sleep(0.05)
    raise AssertionError(f"no writer process replaced {old} within {timeout} s")


def kill_writers(server, clients, tally: Tally, kills: int, killed: list[int]) -> None:
    """kill -9 the writer each time another 1/(kills+1) of the requests is acknowledged."""
    victim = next_writer(server, None)
    while len(killed) < kills and any(c.is_alive() for c in clients):
        time.sleep(0.05)
        if len(tally.acknowledged) < REQUESTS * (len(killed) + 1) // (kills + 1):
            continue
        os.kill(victim, signal.SIGKILL)
        killed.append(victim)
        victim = next_writer(server, victim)


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """The writer process serves PostgreSQL only (SQLite keeps a writer thread)."""
    url = fresh_postgres_database()
    try:
        yield url
    finally:
        drop_postgres_database(url)


def test_every_acknowledged_prediction_is_recorded_once_through_writer_kills(
    postgres_url, tmp_path
):
    database_url = postgres_url
    server, keys = served(tmp_path, database_url)
    try:
        tally, killed = Tally(), []
        started = time.monotonic()
        clients = run_clients(
            server, keys["predictor"], REQUESTS, threads=12, tally=tally, budget=scaled(240, 1200)
        )
        killer = threading.Thread(target=kill_writers, args=(server, clients, tally, KILLS, killed))
        killer.start()
        for client in clients:
            client.join()
        killer.join()
        elapsed = time.monotonic() - started
        recorded = recorded_predictions(database_url)
        acknowledged = {a["prediction_id"] for a in tally.acknowledged.values()}
        unavailable = sum(1 for _, s, _ in tally.statuses if s == 503)
        print(
            f"\n{REQUESTS} requests, {len(killed)} writers killed, {len(tally.statuses)} attempts "
            f"({unavailable} answered 503) in {elapsed:.1f}s"
        )
        assert len(killed) == KILLS, "the load ended before the writers were killed"
        assert not tally.gave_up and len(tally.acknowledged) == REQUESTS
        assert not tally.mismatched_retries
        assert acknowledged <= set(recorded), "an acknowledged prediction is missing"
        assert set(recorded) == acknowledged and set(recorded.values()) == {1}
        assert not [s for _, s, _ in tally.statuses if s >= 500 and s != 503]
        assert not [s for _, s, _ in tally.statuses if s == 0], "a worker broke a connection"
        assert writer_process(server) is not None, "no writer after the last kill"
        assert_retries_return_the_original(server, keys["predictor"], tally)
    finally:
        server.stop()


def test_a_retry_through_the_writer_process_is_answered_as_a_retry_or_409(postgres_url, tmp_path):
    server, keys = served(tmp_path, postgres_url)
    try:
        assert writer_process(server) is not None, "the server records through no writer process"
        first = predict_once(server, keys["predictor"], "same-id", 1)
        again = predict_once(server, keys["predictor"], "same-id", 1)
        other = predict_once(server, keys["predictor"], "same-id", 2)  # another body
        assert first.status == 201 and first.json["retried"] is False
        assert again.status == 200 and again.json["retried"] is True
        assert again.json["prediction_id"] == first.json["prediction_id"]
        assert other.status == 409 and other.json["code"] == "conflict", other.body
        assert recorded_predictions(postgres_url) == {first.json["prediction_id"]: 1}
    finally:
        server.stop()
