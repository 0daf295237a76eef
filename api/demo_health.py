"""The demo's monitoring story, so the dashboard has something real to show on first start.

Per demo deployment: a feed counting its predictions, a day of calm traffic from the
seeded generator, then (unless Settings.demo_drift is off) traffic with the generator's drift
switch on; outcomes for every row; then one health pass (feed periods, quality windows).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

from api.auth import Principal
from api.services import Services
from ledger.application import Ledger
from ledger.errors import NotFound
from ledger.settings import Settings
from policies.health import run_health_pass
from serving.predict import predict

ACTOR = Principal(key_id="demo-traffic", role="predictor")
TARGETS = {"churn": "churned", "lifetime-value": "lifetime_value"}
ROWS_PER_PHASE, BATCH, WINDOW = 600, 200, 300
NOT_FEATURES = ("event_time", "churned", "lifetime_value")


def seed(settings: Settings, ledger: Ledger) -> None:
    """Feeds, traffic and checks for every demo deployment that has none yet."""
    services = Services.build(settings, ledger)
    for name, target in TARGETS.items():
        if _seeded(ledger, name):
            continue
        ledger.declare_feed(
            f"{name}-requests", ROWS_PER_PHASE, 3600, "demo:bootstrap", 0.2, deployment=name
        )
        phases = [(False, 101)] + ([(True, 102)] if settings.demo_drift else [])
        for drift, seed_value in phases:
            _traffic(services, name, target, drift, seed_value)
    # The timer closes the hours that have passed; the windows cover calm, then drifted rows.
    run_health_pass(ledger, datetime.now(UTC) + timedelta(seconds=1), window=WINDOW)


def _seeded(ledger: Ledger, name: str) -> bool:
    try:
        ledger.feed(f"{name}-requests")
        return True
    except NotFound:
        return False


def _traffic(services: Services, name: str, target: str, drift: bool, seed_value: int) -> None:
    from trainers.demo_data import generate

    frame = generate(ROWS_PER_PHASE, seed=seed_value, drift=drift).astype(object)
    records = [{k: _plain(v) for k, v in row.items()} for row in frame.to_dict("records")]
    tag = "drifted" if drift else "calm"
    for start in range(0, len(records), BATCH):
        chunk = records[start : start + BATCH]
        body = {
            "request_id": f"demo-{tag}-{start}",
            "instances": [{k: v for k, v in r.items() if k not in NOT_FEATURES} for r in chunk],
        }
        answer, _ = predict(services.serving, name, body, ACTOR.actor)
        outcomes = [
            (p["prediction_id"], r[target], None)
            for p, r in zip(answer["predictions"], chunk, strict=True)
        ]
        services.ledger.record_outcomes(outcomes, ACTOR.actor)


def _plain(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    return value.item() if hasattr(value, "item") else value
