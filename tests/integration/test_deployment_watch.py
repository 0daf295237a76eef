"""A worker's cached deployment follows changes made elsewhere within the staleness bound,
with no query per request while its watch vouches, and by reading the version on each
request while it cannot (ledger/deployment_watch.py)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

import pytest
import sqlalchemy as sa

from ledger.application import Ledger
from ledger.deployment_watch import APPLICATION_NAME
from tests.integration.api_support import ROW, Api, deployment_with_models, make_api, predict


class Probes:
    """Counts the scorer's reads of a deployment's version (the real reads, passed through)."""

    def __init__(self, scorer) -> None:  # noqa: ANN001
        self.count = 0
        read = scorer.current_version

        def counted(name: str) -> int | None:
            self.count += 1
            return read(name)

        scorer.current_version = counted


def wait_for(condition: Callable[[], bool], seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the condition did not hold in time"
        time.sleep(0.02)


def served_after(api: Api, acked: float, bound: float, expect: Callable[[dict], bool]) -> float:
    """Predict until bound + 0.3 s after `acked`; every answer sent after acked + bound must
    satisfy `expect`. Returns how long after `acked` the first satisfying answer was sent."""
    first = None
    while (sent := time.monotonic()) < acked + bound + 0.3:
        answer = score(api)
        assert answer.status_code == 201, answer.text
        stored = api.ledger.prediction(answer.json["prediction_id"])
        ok = expect({"model_id": answer.json["model_id"], "outputs": set(stored.outputs)})
        if ok and first is None:
            first = sent - acked
        if sent >= acked + bound:
            assert ok, f"{sent - acked:.3f}s after the change, a request was served the old way"
    assert first is not None
    return first


def score(api: Api):  # noqa: ANN201
    return predict(api, {"features": ROW, "request_id": uuid.uuid4().hex})


def worker(ledger: Ledger) -> tuple[Api, object, Probes]:
    api = make_api(ledger)
    scorer = api.client.app.services.scorer
    return api, scorer, Probes(scorer)


def test_changes_from_another_process_are_served_within_the_bound(ledger, settings) -> None:
    api, scorer, probes = worker(ledger)
    bound = settings.deployment_staleness_ms / 1000
    leader, challenger = deployment_with_models(api)
    assert score(api).json["model_id"] == leader
    wait_for(lambda: scorer.watch.live)
    score(api)  # read once under the live watch
    before = probes.count
    for _ in range(30):
        assert score(api).json["model_id"] == leader
    assert probes.count == before, "a request read the version while the watch vouched"

    other = Ledger(settings)  # another process: this worker is not told directly
    try:
        other.promote("churn", challenger, "better", "test")
        acked = time.monotonic()
        latency = served_after(api, acked, bound, lambda a: a["model_id"] == challenger)
        other.retire_model("churn", leader, "worse", "test")
        acked = time.monotonic()
        served_after(api, acked, bound, lambda a: leader not in a["outputs"])
    finally:
        other.close()
    assert latency < bound


@pytest.mark.postgres
def test_a_lost_listener_falls_back_to_reading_the_version_then_recovers(
    ledger, settings, database_url
) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("LISTEN/NOTIFY is PostgreSQL's")
    api, scorer, probes = worker(ledger)
    bound = settings.deployment_staleness_ms / 1000
    leader, challenger = deployment_with_models(api)
    score(api)
    wait_for(lambda: scorer.watch.live)
    other = Ledger(settings)
    try:
        with other.engine.connect() as conn:
            killed = conn.execute(
                sa.text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE application_name = :name AND datname = current_database()"
                ),
                {"name": APPLICATION_NAME},
            ).scalar_one()
        assert killed == 1
        other.promote("churn", challenger, "while the listener is down", "test")
        acked = time.monotonic()
        before = probes.count
        served_after(api, acked, bound, lambda a: a["model_id"] == challenger)
        assert probes.count > before  # the fallback: the version is read again

        wait_for(lambda: scorer.watch.live)  # reconnected, listening again
        score(api)  # each cached deployment read once more
        before = probes.count
        for _ in range(10):
            score(api)
        assert probes.count == before
        other.promote("churn", leader, "the listener is back", "test")
        acked = time.monotonic()
        served_after(api, acked, bound, lambda a: a["model_id"] == leader)
    finally:
        other.close()


def test_a_change_made_in_this_process_is_served_by_the_next_request(ledger, settings) -> None:
    """Read-your-writes: a loader that adds a challenger and scores at once (the demo's
    history) never waits out the bound for its own change."""
    api, scorer, _ = worker(ledger)
    leader, challenger = deployment_with_models(api)
    score(api)
    wait_for(lambda: scorer.watch.live)
    for _ in range(3):
        api.ledger.promote("churn", challenger, "now", "test")
        assert score(api).json["model_id"] == challenger
        api.ledger.promote("churn", leader, "back", "test")
        assert score(api).json["model_id"] == leader
