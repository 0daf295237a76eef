"""The demo's history: 60 days of simulated traffic, loaded the way historic data is loaded.

Per demo deployment: a daily feed counting its predictions, then day by day on a simulated
clock a weekly rhythm of requests (fewer at weekends; one short day for churn, two silent
days for lifetime-value), sent through the prediction route's own function with a loader
key granted `load-history`, each batch with its historic instant (`occurred_at`); outcomes
observed three days later, a few corrected; the last DRIFT_DAYS days with the generator's
drift switch on (unless Settings.demo_drift is off), and two days into it a challenger
trained on drifted rows. Half-way the churn leader is promoted by hand with a reason; at
the end the churn deployment moves to best_recent and the rule decides on the recorded
evidence, and an autopilot pass retrains lifetime-value on its rules.
The ledger records it all now (recorded_at stays monotone), and a History.Loaded event
says which span was loaded, by which key, on a simulated clock: the log and `ledger state`
read it from there.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from api.auth import Principal, principal_of
from api.resources.predictions import predict_as
from api.services import Services
from ledger.application import Ledger
from ledger.domain.access import LOAD_HISTORY, historic_instant
from ledger.errors import NotFound
from ledger.settings import Settings
from policies import best_recent
from policies.health import run_health_pass

log = structlog.get_logger("ledger.demo")
LOADER_CLIENT = "demo-loader"
TARGETS = {"churn": "churned", "lifetime-value": "lifetime_value"}
DAYS, PER_DAY, DRIFT_DAYS, OUTCOME_LAG_DAYS = 60, 40, 12, 3
CHALLENGER_DAY = DAYS - DRIFT_DAYS + 2  # a challenger trained once the drift has begun
WEEKLY = (1.1, 1.2, 1.2, 1.1, 1.0, 0.6, 0.5)  # Monday first: quieter weekends
CORRECTED_EVERY = 25  # one outcome in 25 is corrected a day after it arrived
WINDOW = 300
FEED = (36, 86400, 0.5)  # expected a day, period seconds, tolerance: weekends stay within it
# (deployment, simulated day) -> rows that day: a feed that under-delivers, one that goes silent
UNUSUAL = {("churn", 20): 8, ("lifetime-value", 40): 0, ("lifetime-value", 41): 0}
NOT_FEATURES = ("event_time", "churned", "lifetime_value")
NOTE = (
    "the demo's history: predictions carry simulated instants (occurred_at); recorded_at "
    "is when this ledger recorded them"
)


def simulated_clock(ledger: Ledger, position: int | None = None) -> dict[str, Any] | None:
    """The loads of history on a simulated clock, as recorded (None when there was none)."""
    try:
        history = ledger.history(position)
    except NotFound:
        return None
    loads = [load for load in history.loads if load["simulated"]]
    return {"simulated": True, "loads": loads} if loads else None


def history_start() -> datetime:
    """Midnight UTC DAYS days ago: where the simulated clock starts."""
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return today - timedelta(days=DAYS)


def pending(ledger: Ledger) -> list[str]:
    """The demo deployments with no history loaded yet."""
    return [name for name in TARGETS if not _seeded(ledger, name)]


def interrupted(ledger: Ledger) -> list[str]:
    """The demo deployments that exist without a recorded load of their history: a first
    start stopped part way (creating, training or loading)."""
    clock = simulated_clock(ledger)
    loaded = {name for load in clock["loads"] for name in load["deployments"]} if clock else set()
    return [name for name in TARGETS if name not in loaded and deployment_exists(ledger, name)]


def deployment_exists(ledger: Ledger, name: str) -> bool:
    try:
        ledger.deployment(name)
        return True
    except NotFound:
        return False


def at_instant(loader: Principal, name: str, at: datetime) -> int | None:
    """A simulated instant as µs, through the check every historic instant passes."""
    return historic_instant(loader.grants, name, at.isoformat())


def seed(settings: Settings, ledger: Ledger, loader: Principal | None) -> None:
    """Feeds and 60 days of history for every demo deployment that has none yet."""
    services = Services.build(settings, ledger)
    start = history_start()
    today = start + timedelta(days=DAYS)
    to_load = pending(ledger)
    if to_load:
        if loader is None:
            raise RuntimeError("loading history needs a loader key")  # bootstrap gives one
        for name in to_load:
            expected, seconds, tolerance = FEED
            ledger.declare_feed(
                f"{name}-requests", expected, seconds, "demo:bootstrap", tolerance, deployment=name
            )
            _history(services, settings, loader, name, TARGETS[name], start)
        ledger.record_history_load(
            start.isoformat(),
            today.isoformat(),
            to_load,
            simulated=True,
            loader=loader.actor,
            note=NOTE,
            actor="demo:bootstrap",
        )
        # the grant is needed only while loading
        ledger.revoke_api_key(loader.key_id, reason="demo history loaded", actor="demo:bootstrap")
    # The timer closes the days that have passed; the windows cover calm, then drifted rows,
    # checked against the leader of the time, before best_recent decides.
    run_health_pass(ledger, datetime.now(UTC) + timedelta(seconds=1), window=WINDOW)
    if "churn" in to_load:
        _best_recent(ledger, "churn")
    if "lifetime-value" in to_load:
        _autopilot(ledger, "lifetime-value")
    clock = simulated_clock(ledger)
    for load in clock["loads"] if clock else ():
        log.info(
            "demo history on a simulated clock",
            simulated=True,
            span_from=load["from"],
            span_to=load["to"],
            deployments=load["deployments"],
            loader=load["loader"],
            note=load["note"],
        )


def new_loader(ledger: Ledger, names: list[str]) -> Principal:
    """The demo's history loader: a client of its own, granted load-history where it loads."""
    issued = ledger.issue_api_key(
        role="predictor",
        actor="demo:bootstrap",
        label="demo history loader",
        client=LOADER_CLIENT,
        grants=[f"{name}:{LOAD_HISTORY}" for name in names],
    )
    record = ledger.authenticate(issued.key)
    assert record is not None  # just issued
    return principal_of(record)


def _seeded(ledger: Ledger, name: str) -> bool:
    try:
        ledger.feed(f"{name}-requests")
        return True
    except NotFound:
        return False


def _history(
    services: Services,
    settings: Settings,
    loader: Principal,
    name: str,
    target: str,
    start: datetime,
) -> None:
    from trainers.demo_data import generate

    now = datetime.now(UTC)
    for day in range(DAYS):
        day_start = start + timedelta(days=day)
        drift = settings.demo_drift and day >= DAYS - DRIFT_DAYS
        rows = UNUSUAL.get((name, day), round(PER_DAY * WEEKLY[day_start.weekday()]))
        if rows == 0:
            continue  # the feed is silent that day
        frame = generate(rows, seed=1000 + day, drift=drift).astype(object)
        records = [{k: _plain(v) for k, v in r.items()} for r in frame.to_dict("records")]
        scored_at = day_start + timedelta(hours=12)
        body = {
            "request_id": f"demo-day-{day}",
            "instances": [{k: v for k, v in r.items() if k not in NOT_FEATURES} for r in records],
            "occurred_at": scored_at.isoformat(),
        }
        answer, _ = predict_as(services.serving, loader, name, body)
        observed = scored_at + timedelta(days=OUTCOME_LAG_DAYS)
        if observed < now:  # outcomes of the last days have not arrived yet
            _outcomes(services, loader, answer["predictions"], records, target, observed, now)
        decided_at = at_instant(loader, name, scored_at + timedelta(hours=2))
        if name == "churn" and day == DAYS // 2:
            _promote_by_hand(services.ledger, name, decided_at)
        if name == "churn" and day == CHALLENGER_DAY:
            _train_challenger(services.ledger, name, day_start, settings.demo_drift, decided_at)


def _outcomes(
    services: Services,
    loader: Principal,
    predictions: list[dict[str, Any]],
    records: list[dict[str, Any]],
    target: str,
    observed: datetime,
    now: datetime,
) -> None:
    pairs = list(zip(predictions, records, strict=True))
    services.ledger.record_outcomes(
        [(p["prediction_id"], r[target], observed.isoformat()) for p, r in pairs],
        loader.reporter,
    )
    corrected_at = observed + timedelta(days=1)
    if corrected_at >= now:
        return
    corrections = [
        (p["prediction_id"], _corrected(r[target]), corrected_at.isoformat())
        for p, r in pairs[::CORRECTED_EVERY]
    ]
    services.ledger.record_outcomes(corrections, loader.reporter)


def _corrected(actual: Any) -> Any:
    """A label that was reported wrong first: a flipped class, or a value off by 10%."""
    return 1 - actual if isinstance(actual, int) and actual in (0, 1) else round(actual * 1.1, 2)


def _train_challenger(
    ledger: Ledger, name: str, until: datetime, drift: bool, occurred_at: int | None
) -> None:
    """Once the drift has begun, a forest trained on drifted rows joins as a challenger."""
    from trainers.demo import demo_specs
    from trainers.record import train_and_record

    spec = next(
        s
        for s in demo_specs(end=until, rows=1500, seed=11, drift=drift)
        if s["deployment"] == name and "forest" in s["name"]
    )
    spec = {**spec, "name": f"{spec['name']}-retrained"}
    model_id = train_and_record(
        ledger, spec, "demo:operator", deployment=name, occurred_at=occurred_at
    )
    log.info(
        "demo challenger trained", deployment=name, model_id=model_id, data_until=until.isoformat()
    )


def _promote_by_hand(ledger: Ledger, name: str, occurred_at: int | None) -> None:
    """Half-way through, an operator moves the lead to the other model and says why."""
    deployment = ledger.deployment(name)
    other = next((m for m in deployment.models if m != deployment.leader), None)
    if other is not None:
        reason = "demo: trying the other model on live traffic after a support-calls spike"
        ledger.promote(name, other, reason=reason, actor="demo:operator", occurred_at=occurred_at)


def _best_recent(ledger: Ledger, name: str) -> None:
    """The deployment moves to best_recent; the rule decides on the recorded outcomes."""
    from projections.predictions import PredictionsProjection
    from projections.runner import catch_up

    deployment = ledger.deployment(name)
    catch_up(ledger.engine, PredictionsProjection)  # the rule reads the scored outcomes
    policy = {"name": "best_recent", "metric": "accuracy", "days": 30, "min_outcomes": 50}
    ledger.change_deployment(name, actor="demo:operator", policy=policy)
    decision = best_recent.decide(ledger, name)
    log.info("demo best_recent decision", deployment=deployment.name, **_loggable(decision))


def _autopilot(ledger: Ledger, name: str) -> None:
    """Autopilot rules on the deployment, then one pass: drift or enough new outcomes retrain."""
    from policies.autopilot.passes import run_pass

    rules = {"drift": {"psi": 0.2, "min_rows": 200, "window": 400}, "outcomes": {"count": 1000}}
    autopilot = {"data": "both", "min_training_rows": 50, "rules": rules}
    ledger.change_deployment(name, actor="demo:operator", settings={"autopilot": autopilot})
    report = run_pass(ledger, only=[name], housekeeping=False).deployments[0]
    log.info(
        "demo autopilot pass",
        deployment=name,
        fired=report.fired,
        model_id=report.model_id,
        note=report.note,
    )


def _loggable(decision: dict[str, Any]) -> dict[str, Any]:
    return {k: decision.get(k) for k in ("changed", "why", "reason", "model_id")}


def _plain(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    return value.item() if hasattr(value, "item") else value
