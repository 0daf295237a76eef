"""The demo's history: 60 simulated days of traffic, two leader changes, a challenger and an
autopilot retrain, a short and a silent feed, drift, and a restart that seeds nothing twice."""

from __future__ import annotations

import json
from datetime import datetime

import click
import pytest
from click.testing import CliRunner
from structlog.testing import capture_logs

from api.cli import main
from api.demo import bootstrap, create_deployment, specs_by_deployment
from api.demo_health import CHALLENGER_DAY, DAYS, OUTCOME_LAG_DAYS, simulated_clock
from ledger.application import Ledger
from projections.cubes import DAY_US
from projections.deployments import DeploymentsProjection
from projections.health import HealthProjection
from projections.health_queries import data_health
from projections.models import ModelsProjection
from projections.predictions import PredictionsProjection
from projections.query_catalog import get_deployment, list_models
from projections.query_performance import performance
from projections.runner import catch_up


def test_the_demo_has_sixty_days_of_history_and_keeps_it(settings):
    bootstrap(settings)
    ledger = Ledger(settings)
    try:
        clock = simulated_clock(ledger)
        assert clock and clock["simulated"] and len(clock["loads"]) == 1
        load = clock["loads"][0]
        assert load["deployments"] == ["churn", "lifetime-value"]
        span = datetime.fromisoformat(load["to"]) - datetime.fromisoformat(load["from"])
        assert span.days == DAYS
        engine = ledger.engine
        for cls in (
            PredictionsProjection,
            DeploymentsProjection,
            HealthProjection,
            ModelsProjection,
        ):
            catch_up(engine, cls)
        first = int(datetime.fromisoformat(load["from"]).timestamp() * 1e6) // DAY_US
        counted = [_outcomes(engine, day) for day in range(first, first + DAYS)]
        # every simulated day has outcomes, except the last ones whose outcomes are not due yet
        assert all(counted[: DAYS - OUTCOME_LAG_DAYS])
        assert not any(counted[-(OUTCOME_LAG_DAYS - 1) :])
        assert len({c for c in counted if c}) > 1  # a weekly rhythm, not a flat line
        total = _outcomes(engine, None)

        # a challenger trained mid-way (churn) and an autopilot retrain (lifetime-value)
        assert len(get_deployment(engine, "churn")["models"]) == 3
        assert len(get_deployment(engine, "lifetime-value")["models"]) == 3
        history = get_deployment(engine, "churn")["leader_history"]
        first_leader, manual, rule = history
        assert manual["actor"] == "demo:operator" and manual["reason"]
        assert rule["actor"].startswith("rule:best_recent") and rule["evidence"]
        # leader changes and training runs of the loaded history carry its simulated instants
        assert first_leader["occurred_at"] == load["from"].replace("+00:00", ".000000Z")
        assert _day(manual["occurred_at"]) - first == DAYS // 2
        assert rule["occurred_at"] is None  # decided now, on the loaded evidence
        assert manual["recorded_at"] > first_leader["recorded_at"]  # recorded-at: the ledger's
        # (name, instant) pairs: the autopilot's retrain keeps its model's name
        trained = [(m["name"], m["occurred_at"]) for m in list_models(engine, limit=1000)["items"]]
        retrained = [(n, at) for n, at in trained if n.endswith("-retrained")]
        assert len(retrained) == 1 and _day(retrained[0][1]) - first == CHALLENGER_DAY
        started = [n for n, at in trained if at and _day(at) == first]
        assert len(started) == 4  # two initial models per deployment, trained at the start

        health = data_health(engine, deployment="churn")
        checks = [c for d in health["deployments"] for c in d["checks"]]
        assert any(f.startswith("drift_") for c in checks for f in c["failing"])
        flags = _flagged_days(engine, first)
        assert flags == {
            "churn-requests": {20: ["short"]},
            "lifetime-value-requests": {40: ["none"], 41: ["none"]},
        }

        with capture_logs() as logs:
            bootstrap(settings)  # a restart keeps the history: nothing is seeded twice
        catch_up(engine, PredictionsProjection)
        assert _outcomes(engine, None) == total
        assert len(get_deployment(engine, "churn")["leader_history"]) == len(history)
        assert simulated_clock(ledger) == clock  # no second load
        said = [e for e in logs if e["event"] == "demo history on a simulated clock"]
        assert said and said[0]["simulated"] and said[0]["span_from"] == load["from"]

        # `ledger state` says so, from the event; the event verifies with the rest
        cli = CliRunner()
        args = ["--db", settings.database_url]
        env = {"LEDGER_HOME": str(settings.home), "LEDGER_API_KEY": None}
        text = cli.invoke(main, [*args, "state"], env=env)
        assert text.exit_code == 0, text.output
        assert f"history loaded on a simulated clock: {load['from']} to {load['to']}" in text.output
        answer = json.loads(cli.invoke(main, [*args, "state", "--json"], env=env).output)
        assert [h["simulated"] for h in answer["history_loaded"]] == [True]
        assert answer["history_loaded"][0]["loader"].startswith("key:")
    finally:
        ledger.close()


def _flagged_days(engine, first: int) -> dict[str, dict[int, list[str]]]:
    """Per feed, the simulated days (counted from the first) whose closed period was flagged."""
    feeds = data_health(engine, period_limit=100)["feeds"]
    return {
        f["name"]: {_day(p["start"]) - first: p["flags"] for p in f["periods"] if p.get("flags")}
        for f in feeds
    }


def _day(instant: str) -> int:
    return int(datetime.fromisoformat(instant.replace("Z", "+00:00")).timestamp()) // 86400


def _outcomes(engine, day: int | None) -> int:
    """Outcomes counted for the churn leader on one day of prediction time (None: all days)."""
    bounds = {} if day is None else {"from_us": day * DAY_US, "to_us": (day + 1) * DAY_US}
    results = performance(engine, "churn", **bounds)["results"]
    return max((r["count"] for r in results), default=0)


def test_a_first_start_stopped_part_way_is_refused_with_what_to_do(settings):
    """A deployment was created and trained, then the start was stopped before its history
    was loaded: a later start says so and what to do, and writes nothing."""
    ledger = Ledger(settings)
    try:
        create_deployment(ledger, "churn", specs_by_deployment()["churn"])
        with ledger.engine.connect() as conn:
            before = conn.exec_driver_sql("SELECT max(id) FROM ledger_events").scalar_one()
    finally:
        ledger.close()
    with pytest.raises(click.ClickException) as refused:
        bootstrap(settings)
    assert "incomplete (churn" in refused.value.message
    assert "make clean" in refused.value.message and str(settings.home) in refused.value.message
    ledger = Ledger(settings)
    try:
        with ledger.engine.connect() as conn:
            after = conn.exec_driver_sql("SELECT max(id) FROM ledger_events").scalar_one()
    finally:
        ledger.close()
    assert after == before
