"""Scenario 3: kill -9 `ledger project --follow` at random points under load, two at a time.

Extends tests/integration/test_projection_runner.py (one kill, no load; two runner
threads): here two follower processes always run at once, writers keep appending, one of
the two is killed at a random moment each round, and after every round the tables equal a
clean rebuild (a page applied twice, or by both followers, would show as a difference).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time

import pytest

from ledger.application import Ledger
from projections import events as ev
from projections.base import read_position
from projections.registry import ALL
from tests.integration.test_projection_runner import populate, rebuilt
from tests.integration.test_projection_world import World, assert_same_tables, dump
from tests.reliability.support import TIMEOUT, scaled

pytestmark = [pytest.mark.slow, pytest.mark.timeout(TIMEOUT)]
ROUNDS = scaled(5, 20)


def start_follower(database_url: str) -> subprocess.Popen:
    ledger_bin = os.path.join(os.path.dirname(sys.executable), "ledger")
    return subprocess.Popen(
        [ledger_bin, "project", "--follow", "--page-size", "7", "--poll", "0.05"],
        env={**os.environ, "LEDGER_DATABASE_URL": database_url},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def keep_writing(
    world: World, running: threading.Event, idle: threading.Event, stop: threading.Event
) -> None:
    """Predictions and outcomes while `running` is set; `idle` says a pause has taken hold."""
    i = 0
    while not stop.is_set():
        if not running.is_set():
            idle.set()
            time.sleep(0.02)
            continue
        idle.clear()
        world.predict("cls" if i % 2 else "reg", 3)
        world.outcome(i * 5)
        i += 1


def positions(ledger: Ledger) -> dict[str, int]:
    with ledger.engine.connect() as conn:
        out = {}
        for cls in ALL:
            try:
                state = read_position(conn, cls.name)
            except Exception:  # noqa: BLE001 - tables appear when a follower first starts
                state = None
            out[cls.name] = state[0] if state else 0
        return out


def caught_up(ledger: Ledger, timeout: float = 120) -> None:
    with ledger.engine.connect() as conn:
        top = ev.head(conn)
    deadline = time.monotonic() + timeout
    while min(positions(ledger).values()) < top:
        assert time.monotonic() < deadline, f"followers stuck at {positions(ledger)}, head {top}"
        time.sleep(0.05)


def test_killed_followers_restart_to_tables_equal_to_a_clean_rebuild(
    ledger: Ledger, database_url: str
) -> None:
    world = populate(ledger, predictions=40)
    rng = random.Random(20)
    running, idle, stop = threading.Event(), threading.Event(), threading.Event()
    writer = threading.Thread(target=keep_writing, args=(world, running, idle, stop), daemon=True)
    writer.start()
    followers = [start_follower(database_url), start_follower(database_url)]  # two at once
    try:
        for _ in range(ROUNDS):
            idle.clear()
            running.set()
            time.sleep(rng.uniform(0.3, 2.0))  # a random point: mid-page, between pages, idle
            victim = followers.pop(rng.randrange(2))
            victim.send_signal(signal.SIGKILL)
            victim.wait(10)
            followers.append(start_follower(database_url))  # the restart, beside the survivor
            time.sleep(rng.uniform(0.1, 0.5))
            running.clear()
            assert idle.wait(60), "the writer did not pause"
            caught_up(ledger)
            incremental = dump(ledger.engine)
            assert_same_tables(incremental, rebuilt(ledger))
    finally:
        stop.set()
        running.set()
        writer.join(30)
        for follower in followers:
            follower.kill()
            follower.wait(10)
