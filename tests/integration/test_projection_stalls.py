"""A projection that cannot apply an event is never silent, and a NUL does not stall one."""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from ledger.application import Ledger
from ledger.domain.predictions import Prediction
from ledger.settings import Settings
from projections import stalls
from projections.base import read_position
from projections.predictions import PredictionsProjection
from projections.registry import ALL
from projections.runner import Runner
from projections.stalls import Stall
from tests.integration.api_support import Api, make_api
from tests.integration.test_projection_world import World

BACKOFF = (0.05, 0.2)  # seconds: the first retry and the cap, short for the test


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(home=tmp_path, database_url=database_url, projection_stall_grace_seconds=0.0)


def caught_up(ledger: Ledger) -> None:
    for cls in ALL:
        Runner(ledger.engine, cls).catch_up()


@contextmanager
def following(ledger: Ledger) -> Iterator[Runner]:
    """The predictions projection's runner, following in a thread as `ledger project --follow` does."""
    runner = Runner(ledger.engine, PredictionsProjection, poll_interval=0.02, backoff=BACKOFF)
    stop = threading.Event()
    thread = threading.Thread(target=runner.follow, args=(stop,))
    thread.start()
    try:
        yield runner
    finally:
        stop.set()
        thread.join(10)


def until(check: Callable[[], Any], seconds: float = 15.0) -> Any:
    deadline = time.monotonic() + seconds
    while not (found := check()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)
    return found


def stall_of(ledger: Ledger) -> Stall | None:
    with ledger.engine.connect() as conn:
        try:
            return stalls.read(conn, "predictions")
        except sa.exc.ProgrammingError:
            return None  # no runner has made the table yet


def position_of(ledger: Ledger) -> int:
    with ledger.engine.connect() as conn:
        state = read_position(conn, "predictions")
    assert state is not None
    return state.position


def head_of(ledger: Ledger) -> int:
    from ledger import log

    with ledger.engine.connect() as conn:
        return log.head(conn)


def gauge(metrics: str, family: str) -> float:
    found = re.search(rf'^{family}{{projection="predictions"}} (\S+)$', metrics, re.MULTILINE)
    assert found, f"{family} missing from /metrics"
    return float(found.group(1))


def poison(monkeypatch: pytest.MonkeyPatch, bad: int) -> None:
    """The predictions projection fails on every page holding position `bad`."""
    copy = PredictionsProjection.apply_range

    def failing(self: PredictionsProjection, conn: sa.Connection, after: int, upto: int) -> None:
        if after < bad <= upto:
            raise ValueError(f"event {bad} cannot be applied\nsecond line of the error")
        copy(self, conn, after, upto)

    monkeypatch.setattr(PredictionsProjection, "apply_range", failing)


def stall_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "stalled at position" in r.getMessage()]


def test_a_stall_is_on_healthz_metrics_and_reads_until_the_projection_moves_again(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="ledger.projections")
    world = World(ledger, seed=3)
    world.add_model("cls")
    world.predict("cls", 4)
    caught_up(ledger)
    bad = world.predict("cls", 3)[1]
    world.predict("cls", 2)
    poison(monkeypatch, bad)
    with following(ledger):
        stall = until(lambda: (s := stall_of(ledger)) is not None and s.event == bad and s)
        assert position_of(ledger) == bad - 1  # the events before it were applied meanwhile
        time.sleep(1.0)  # a few backoff steps
        api = make_api(ledger)
        lag = head_of(ledger) - (bad - 1)
        assert_stall_shown(api, bad, lag)

        attempts = stall_of(ledger).attempts  # type: ignore[union-attr]
        logged = len(stall_lines(caplog))
        assert 3 <= attempts <= 15, (
            f"{attempts} attempts in ~1 s: backoff (0.05 s doubling to 0.2 s)"
        )
        assert logged in (attempts, attempts + 1)  # one line per attempt (a retry may be under way)
        assert f"stalled at position {bad - 1}" in stall_lines(caplog)[-1]
        assert stall.error == "ValueError"

        monkeypatch.undo()  # the cause removed: the projection moves on and says so
        until(lambda: stall_of(ledger) is None and position_of(ledger) == head_of(ledger))
        time.sleep(1.1)  # /healthz caches for a second
        assert_stall_gone(api)
    assert any("moving again" in r.getMessage() for r in caplog.records)


def assert_stall_shown(api: Api, bad: int, lag: int) -> None:
    health = api.call("GET", "/healthz", role=None)
    assert health.status_code == 503, health.text
    assert health.json["status"] == "stalled"
    (entry,) = [p for p in health.json["projections"] if p["name"] == "predictions"]
    assert entry["position"] == bad - 1 and entry["lag"] == lag
    assert entry["stall"]["position"] == bad - 1 and entry["stall"]["event"] == bad
    assert entry["stall"]["error"] == "ValueError"
    assert entry["stall"]["reason"] == f"event {bad} cannot be applied"  # one line
    assert entry["stall"]["since"].endswith("Z") and entry["stall"]["attempts"] >= 1
    others = [p for p in health.json["projections"] if p["name"] != "predictions"]
    assert others and not any("stall" in p for p in others)  # the others kept going

    metrics = api.call("GET", "/metrics").text
    assert gauge(metrics, "ledger_projection_stalled") == 1
    assert gauge(metrics, "ledger_projector_lag_events") == lag
    assert gauge(metrics, "ledger_projection_position") == bad - 1

    read = api.call("GET", "/v1/predictions", "auditor", params={"deployment": "cls"})
    assert read.status_code == 200
    assert read.headers["X-Projection-Position"] == f"predictions={bad - 1}"
    assert read.headers["X-Projection-Lag"] == f"predictions={lag}"
    assert read.headers["X-Projection-Stalled"].startswith(f"predictions; position={bad - 1};")


def assert_stall_gone(api: Api) -> None:
    health = api.call("GET", "/healthz", role=None)
    assert health.status_code == 200, health.text
    assert health.json["status"] == "ok"
    assert not any("stall" in p for p in health.json["projections"])
    assert gauge(api.call("GET", "/metrics").text, "ledger_projection_stalled") == 0
    read = api.call("GET", "/v1/predictions", "auditor", params={"deployment": "cls"})
    assert read.headers["X-Projection-Lag"] == "predictions=0"
    assert "X-Projection-Stalled" not in read.headers


def test_a_stall_left_by_a_dead_runner_is_not_shown_once_passed(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = World(ledger, seed=4)
    world.add_model("cls")
    caught_up(ledger)
    bad = world.predict("cls", 2)[0]
    poison(monkeypatch, bad)
    with following(ledger):
        until(lambda: stall_of(ledger) is not None)
    monkeypatch.undo()
    assert stall_of(ledger) is not None  # the runner stopped while stalled: its row stays
    with following(ledger):  # a new runner clears it once it has applied the event
        until(lambda: stall_of(ledger) is None and position_of(ledger) == head_of(ledger))
    health = make_api(ledger).call("GET", "/healthz", role=None)
    assert health.status_code == 200


def made(world: World, request_id: str, region: str) -> Prediction:
    """A prediction recorded below the API edge, with the texts given."""
    d = world.ledger.deployment("cls")
    prediction = Prediction(
        deployment="cls",
        deployment_version=d.version,
        request_id=request_id,
        body_digest="x",
        features={"region": region, "plan": "a", "age": 30.0, "tenure": 2, "vip": False},
        sealed=None,
        outputs={m: {"value": 1} for m in d.models},
        served_model=d.leader or d.models[0],
        policy=d.policy,
        leader=d.leader,
        flags=[],
        scoring={"mode": "single"},
        actor="key:test",
    )
    world.ledger.record_predictions([prediction])
    world.predictions.append(("cls", str(prediction.id)))
    return prediction


def test_a_nul_in_an_event_reads_as_a_replacement_character_in_read_tables(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An event recorded before the ledger refused U+0000 at every door (ledger.values).
    monkeypatch.setattr("ledger.transcoder.values.refuse_escaped_nul", lambda data: None)
    world = World(ledger, seed=5)
    world.add_model("cls")
    caught_up(ledger)
    prediction = made(world, "r\x00x", "no\x00rth")
    escaped = made(world, "r\\u0000x", "south")  # the text of an escape, not a NUL
    world.predict("cls", 3)
    with following(ledger):
        until(lambda: position_of(ledger) == head_of(ledger))
        assert stall_of(ledger) is None
    caught_up(ledger)  # the other projections read the same events
    shown = "\ufffd"  # PostgreSQL text cannot hold U+0000, SQLite's JSON functions cut there

    api = make_api(ledger)
    page = api.call("GET", "/v1/predictions", "auditor", params={"deployment": "cls"}).json
    (row,) = [p for p in page["items"] if p["prediction_id"] == str(prediction.id)]
    assert row["request_id"] == f"r{shown}x"
    assert row["features"]["region"] == f"no{shown}rth"
    assert ledger.prediction(prediction.id).request_id == "r\x00x"  # the event as recorded
    (other,) = [p for p in page["items"] if p["prediction_id"] == str(escaped.id)]
    assert other["request_id"] == "r\\u0000x"

    Runner(ledger.engine, PredictionsProjection).rebuild()  # the rebuild's paths read it too
    again = api.call("GET", "/v1/predictions", "auditor", params={"deployment": "cls"}).json
    assert [p["request_id"] for p in again["items"]] == [p["request_id"] for p in page["items"]]


def test_an_event_postgresql_cannot_store_stalls_the_projection_for_real(ledger: Ledger) -> None:
    if ledger.engine.dialect.name != "postgresql":
        pytest.skip("SQLite stores text of any length")
    world = World(ledger, seed=6)
    world.add_model("cls")
    caught_up(ledger)
    made(world, "r" * 400, "north")  # beyond the index's request_id column, below the API edge
    bad = head_of(ledger)
    world.predict("cls", 2)
    with following(ledger):
        stall = until(lambda: (s := stall_of(ledger)) is not None and s.event == bad and s)
    assert stall.error == "DataError" and "value too long" in stall.reason
    assert position_of(ledger) == bad - 1


def test_ledger_project_follow_logs_a_stall_once_per_backoff_and_keeps_the_others_going(
    ledger: Ledger, database_url: str, tmp_path: Path
) -> None:
    if ledger.engine.dialect.name != "postgresql":
        pytest.skip("a real failure to store needs PostgreSQL's column limits")
    world = World(ledger, seed=7)
    world.add_model("cls")
    made(world, "r" * 400, "north")
    bad = head_of(ledger)
    world.add_model("cls")  # later events the other projections apply
    log_path = tmp_path / "follow.log"
    with log_path.open("wb") as log_file:
        follower = subprocess.Popen(
            [os.path.join(os.path.dirname(sys.executable), "ledger"), "project", "--follow"],
            env={**os.environ, "LEDGER_DATABASE_URL": database_url},
            stdout=subprocess.DEVNULL,
            stderr=log_file,
        )
        try:
            until(lambda: (s := stall_of(ledger)) is not None and s.event == bad, 60)
            time.sleep(3.5)  # retries after 1 s, then 2 s more: about three attempts
            stall = stall_of(ledger)
            health = make_api(ledger).call("GET", "/healthz", role=None)
        finally:
            follower.terminate()
            follower.wait(20)
    assert stall is not None and stall.error == "DataError"
    lines = [line for line in log_path.read_text().splitlines() if "stalled at position" in line]
    assert 2 <= len(lines) <= 5 and len(lines) in (stall.attempts, stall.attempts + 1)
    assert health.status_code == 503
    moved = {p["name"]: p for p in health.json["projections"]}
    assert "stall" in moved["predictions"] and moved["predictions"]["position"] == bad - 1
    assert all(p["lag"] == 0 for name, p in moved.items() if name != "predictions")
