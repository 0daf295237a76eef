"""Scenario 1: kill -9 gunicorn workers while retrying clients send predictions.

There is no writer process to kill: each worker commits its own group (docs/STORAGE.md),
so killing a worker also kills its writer thread mid-batch.
"""

from __future__ import annotations

import os
import random
import signal
import threading
import time

import pytest

from tests.reliability.support import (
    TIMEOUT,
    Tally,
    gunicorn_workers,
    predict_once,
    recorded_predictions,
    run_clients,
    scaled,
    served,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(TIMEOUT)]
REQUESTS = scaled(1_000, 10_000)
KILLS = scaled(4, 20)


def kill_workers(server, clients, tally: Tally, kills: int, killed: list[int]) -> None:
    """kill -9 a random worker each time another 1/(kills+1) of the requests is acknowledged."""
    rng = random.Random(8)
    while len(killed) < kills and any(c.is_alive() for c in clients):
        time.sleep(0.05)
        if len(tally.acknowledged) < REQUESTS * (len(killed) + 1) // (kills + 1):
            continue
        workers = gunicorn_workers(server)
        if workers:
            victim = rng.choice(workers)
            os.kill(victim, signal.SIGKILL)
            killed.append(victim)


def test_every_acknowledged_prediction_is_recorded_once_through_worker_kills(
    database_url, tmp_path
):
    server, keys = served(tmp_path, database_url)
    try:
        tally, killed = Tally(), []
        started = time.monotonic()
        clients = run_clients(
            server, keys["predictor"], REQUESTS, threads=12, tally=tally, budget=scaled(240, 1200)
        )
        killer = threading.Thread(target=kill_workers, args=(server, clients, tally, KILLS, killed))
        killer.start()
        for client in clients:
            client.join()
        killer.join()
        elapsed = time.monotonic() - started
        recorded = recorded_predictions(database_url)
        acknowledged = {a["prediction_id"] for a in tally.acknowledged.values()}
        print(
            f"\n{REQUESTS} requests, {len(killed)} workers killed, {len(tally.statuses)} attempts "
            f"({sum(1 for _, s, _ in tally.statuses if s == 0)} broken connections) in {elapsed:.1f}s"
        )
        assert len(killed) == KILLS, "the load ended before the workers were killed"
        assert not tally.gave_up and len(tally.acknowledged) == REQUESTS
        assert not tally.mismatched_retries
        assert acknowledged <= set(recorded), "an acknowledged prediction is missing"
        assert set(recorded) == acknowledged and set(recorded.values()) == {1}
        assert not [s for _, s, _ in tally.statuses if s >= 500 and s != 503]
        assert_retries_return_the_original(server, keys["predictor"], tally)
    finally:
        server.stop()


def assert_retries_return_the_original(server, key: str, tally: Tally) -> None:
    """A late retry of an acknowledged request id answers with the original prediction."""
    sample = random.Random(3).sample(sorted(tally.acknowledged), min(200, len(tally.acknowledged)))
    for request_id in sample:
        i = int(request_id.rsplit("-", 1)[1])
        answer = predict_once(server, key, request_id, i)
        assert answer is not None and answer.status == 200, answer
        original = tally.acknowledged[request_id]
        assert (answer.json["prediction_id"], answer.json["value"]) == (
            original["prediction_id"],
            original["value"],
        )
