"""Scenario 5: 16 concurrent writers and a follower; the follower's position only grows and
it misses nothing. (Two promotions with one If-Match, one 412: tests/integration/
test_api_deployments.py::test_two_concurrent_promotions_with_the_same_if_match_one_wins.)
"""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa

from ledger.application import Ledger
from projections import events as ev
from projections.base import read_position
from projections.predictions import PredictionsProjection
from projections.runner import Runner, wait_for
from tests.integration.test_projection_world import World
from tests.reliability.support import TIMEOUT, scaled

pytestmark = [pytest.mark.slow, pytest.mark.timeout(TIMEOUT)]
WRITERS = 16
EACH = scaled(150, 1_000)


def test_a_follower_of_16_writers_only_moves_forward_and_misses_nothing(ledger: Ledger) -> None:
    world = World(ledger, seed=5)
    world.add_model("cls")
    seen: list[int] = []
    stop = threading.Event()
    follower = threading.Thread(
        target=Runner(
            ledger.engine, PredictionsProjection, page_size=50, poll_interval=0.02
        ).follow,
        args=(stop, lambda position, _: seen.append(position)),
    )
    follower.start()
    deployment = ledger.deployment("cls")
    acknowledged: list[str] = []
    lock = threading.Lock()

    def write() -> None:
        for _ in range(EACH):
            with lock:  # the World's generator is not thread-safe; the insert runs outside
                prediction = world._prediction(deployment, "cls")
            ledger.record_predictions([prediction])
            with lock:
                acknowledged.append(str(prediction.id))

    writers = [threading.Thread(target=write) for _ in range(WRITERS)]
    try:
        for writer in writers:
            writer.start()
        for writer in writers:
            writer.join()
        with ledger.engine.connect() as conn:
            top = ev.head(conn)
        assert wait_for(ledger.engine, "predictions", top, timeout=120)
    finally:
        stop.set()
        follower.join(30)
    assert seen == sorted(seen) and len(set(seen)) == len(seen), "the follower's position went back"
    with ledger.engine.connect() as conn:
        generation = read_position(conn, "predictions")[1]
        table = PredictionsProjection.tables_for(generation)["predictions"]
        projected = {r[0] for r in conn.execute(sa.select(table.c.prediction_id))}
    assert len(acknowledged) == WRITERS * EACH
    assert projected == set(acknowledged), f"missed {len(set(acknowledged) - projected)}"
