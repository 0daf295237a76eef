"""The runner: a crash between rows and commit, a kill -9, and two runners at once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence

import pytest

from ledger.application import Ledger
from projections.base import read_position
from projections.events import Event
from projections.locks import runner_lock
from projections.predictions import PredictionsProjection
from projections.registry import ALL
from projections.runner import Runner, wait_for
from tests.integration.test_projection_world import World, assert_same_tables, dump


def populate(ledger: Ledger, predictions: int = 60) -> World:
    world = World(ledger, seed=7)
    for name in ("cls", "reg"):
        world.add_model(name)
        world.add_model(name, profile=False)
    for i in range(predictions // 10):
        world.predict("cls", 5)
        world.predict("reg", 5)
        for j in range(6):
            world.outcome(i * 7 + j)
        world.advance(0.6)
    return world


def rebuilt(ledger: Ledger) -> dict:
    for cls in ALL:
        Runner(ledger.engine, cls).rebuild()
    return dump(ledger.engine)


class CrashOnce(PredictionsProjection):
    """Writes a page's rows, then dies before the commit, once."""

    crashed = False

    def apply(self, conn, events: Sequence[Event]) -> None:  # noqa: ANN001
        super().apply(conn, events)
        if not CrashOnce.crashed and any(e.kind == "Prediction.OutcomeRecorded" for e in events):
            CrashOnce.crashed = True
            raise RuntimeError("killed between the rows and the commit")


def test_a_crash_between_rows_and_commit_leaves_nothing_half_done(ledger: Ledger) -> None:
    populate(ledger)
    CrashOnce.crashed = False
    for cls in ALL:
        if cls is not PredictionsProjection:
            Runner(ledger.engine, cls).catch_up()
    runner = Runner(ledger.engine, CrashOnce, page_size=7)
    with pytest.raises(RuntimeError):
        runner.catch_up()
    with ledger.engine.connect() as conn:
        stopped_at = read_position(conn, "predictions")
    assert stopped_at is not None and stopped_at[0] > 0
    Runner(ledger.engine, PredictionsProjection, page_size=7).catch_up()  # the restart
    assert_same_tables(dump(ledger.engine), rebuilt(ledger))


@pytest.mark.slow
def test_kill_9_of_ledger_project_follow_then_restart_equals_rebuild(
    ledger: Ledger, database_url: str
) -> None:
    populate(ledger, predictions=200)
    follower = _start_follow(database_url, page_size=1)
    try:
        assert _until(lambda: _position(ledger) > 20, 180), "the follower never started"
        os.kill(follower.pid, signal.SIGKILL)
        follower.wait(10)
    finally:
        if follower.poll() is None:
            follower.kill()
    with ledger.engine.connect() as conn:
        from projections.events import head

        assert _position(ledger) < head(conn), "killed too late to be mid-run"
    for cls in ALL:  # the restart: a runner picks up from the committed position
        Runner(ledger.engine, cls, page_size=50).catch_up()
    assert_same_tables(dump(ledger.engine), rebuilt(ledger))


def test_two_runners_started_at_once_one_works_the_other_waits(ledger: Ledger) -> None:
    populate(ledger, predictions=20)
    stop_first, stop_second = threading.Event(), threading.Event()
    first = threading.Thread(
        target=Runner(ledger.engine, PredictionsProjection, poll_interval=0.05).follow,
        args=(stop_first,),
    )
    second = threading.Thread(
        target=Runner(ledger.engine, PredictionsProjection, poll_interval=0.05).follow,
        args=(stop_second,),
    )
    first.start()
    second.start()
    try:
        with ledger.engine.connect() as conn:
            from projections.events import head

            top = head(conn)
        assert wait_for(ledger.engine, "predictions", top, timeout=30)
        probe = runner_lock(ledger.engine, "predictions")
        assert not probe.acquire(wait=False), "nobody holds the lock"
        assert first.is_alive() and second.is_alive(), (
            "both runners keep running: one works, one waits"
        )
        stop_first.set()
        first.join(10)
    finally:
        stop_first.set()
        stop_second.set()
        first.join(10)
        second.join(10)
    assert not first.is_alive() and not second.is_alive()


def _start_follow(database_url: str, page_size: int) -> subprocess.Popen:
    env = {**os.environ, "LEDGER_DATABASE_URL": database_url}
    return subprocess.Popen(
        [
            os.path.join(os.path.dirname(sys.executable), "ledger"),
            "project",
            "--follow",
            "--page-size",
            str(page_size),
            "--poll",
            "0.05",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _position(ledger: Ledger) -> int:
    with ledger.engine.connect() as conn:
        try:
            state = read_position(conn, "predictions")
        except Exception:  # the table does not exist until the follower starts
            return 0
    return state[0] if state else 0


def _until(condition, timeout: float) -> bool:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return False
