"""A served ledger with a story for the dashboard: calm traffic, a check, drift, a promotion.

Shared by the dashboard's browser test and `python -m tests.e2e.screenshots`.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from ledger.application import Ledger
from ledger.settings import Settings
from policies.feeds import close_elapsed_periods
from policies.quality_windows import check_recent_windows
from projections.registry import ALL
from projections.runner import catch_up
from tests.e2e.server import Server
from trainers import demo_data

WINDOW = 200


def rows(n: int, seed: int, drift: bool) -> list[dict]:
    frame = demo_data.generate(n, seed=seed, drift=drift).astype(object)
    frame = frame.where(frame.notna(), None)
    return [
        {k: v for k, v in r.items() if k not in ("event_time", "churned", "lifetime_value")}
        | {"_churned": r["churned"]}
        for r in frame.to_dict("records")
    ]


def build(home: Path, url: str) -> dict[str, str]:
    """Two trained churn models and a key per role, written in-process."""
    from api.demo import create_deployment
    from trainers.demo import demo_specs

    ledger = Ledger(Settings(home=home, database_url=url, group_commit=False))
    try:
        specs = [s for s in demo_specs(rows=1500) if s["deployment"] == "churn"]
        create_deployment(ledger, "churn", specs)
        return {
            role: ledger.issue_api_key(role=role, actor="e2e")[1]
            for role in ("admin", "predictor", "auditor")
        }
    finally:
        ledger.close()


def predict_and_report(
    server: Server, keys: dict[str, str], batch: list[dict], request_id: str
) -> list[str]:
    instances = [{k: v for k, v in r.items() if k != "_churned"} for r in batch]
    answer = server.call(
        "POST",
        "/v1/deployments/churn/predictions",
        {"request_id": request_id, "instances": instances},
        key=keys["predictor"],
    )
    assert answer.status in (200, 201), answer.body
    ids = [p["prediction_id"] for p in answer.json["predictions"]]
    outcomes = [
        {"prediction_id": i, "actual": r["_churned"]} for i, r in zip(ids, batch, strict=True)
    ]
    reported = server.call("POST", "/v1/outcomes", outcomes, key=keys["predictor"])
    assert reported.status == 201, reported.body
    return ids


def promote_the_challenger(server: Server, keys: dict[str, str]) -> None:
    deployment = server.call("GET", "/v1/deployments/churn", key=keys["admin"]).json
    challenger = deployment["challengers"][0]["id"]
    promoted = server.call(
        "PUT",
        "/v1/deployments/churn/leader",
        {"model_id": challenger, "reason": "promoted by hand to serve it in production"},
        key=keys["admin"],
        headers={"If-Match": f'"{deployment["version"]}"'},
    )
    assert promoted.status == 200, promoted.body


def tell_the_story(server: Server, keys: dict[str, str]) -> tuple[datetime, list[str]]:
    """Calm traffic and its check, then drifted traffic and its check, a promotion and a feed
    short of its expected count; the instant between the two checks and the drifted ids."""
    ledger = Ledger(
        Settings(home=server.home, database_url=server.database_url, group_commit=False)
    )
    try:
        ledger.declare_feed("churn-requests", 500, 3600, "e2e", tolerance=0.1, deployment="churn")
        predict_and_report(server, keys, rows(WINDOW, seed=21, drift=False), "calm")
        check_recent_windows(ledger, window=WINDOW)
        time.sleep(1.1 - time.time() % 1)  # a whole second between the two checks, for the picker
        calm_instant = datetime.now(UTC).replace(microsecond=0)
        time.sleep(1.1)
        ids = predict_and_report(server, keys, rows(WINDOW, seed=22, drift=True), "drifted")
        check_recent_windows(ledger, window=WINDOW)
        promote_the_challenger(server, keys)
        close_elapsed_periods(ledger, now=datetime.now(UTC) + timedelta(hours=3))
        for projection in ALL:  # here, or by waiting for the server's projector if it runs them
            catch_up(ledger.engine, projection)
        return calm_instant, ids
    finally:
        ledger.close()


def wait_until_current(server: Server, key: str) -> dict:
    """Data health once the projector has caught up with every check and closed period."""
    deadline = time.monotonic() + 30
    health: dict = {}
    while time.monotonic() < deadline:
        answer = server.call("GET", "/v1/data-health", key=key)
        health = answer.json
        if (
            health["deployments"]
            and health["deployments"][0]["latest"]["key"].startswith("window:")
            and len(health["deployments"][0]["checks"]) == 2
            and health["feeds"][0]["flagged_periods"] >= 3
        ):
            return health
        time.sleep(0.3)
    raise AssertionError(f"data health never caught up: {str(health)[:2000]}")
