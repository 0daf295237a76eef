"""`ledger autopilot`: one pass of every automatic decision, rebuilds included.

A pass runs the data-health pass (feed periods, quality windows), `best_recent` for the
deployments that use it, retention, and then each deployment's rebuild rules. When a
rule fires, the leader's training spec (as stored on its run) is trained again on new
data and the model joins as a challenger; the run's `trigger` holds the rule, its
version and the evidence. The autopilot never promotes: `best_recent` may, `manual`
waits for a person, under `majority_vote` the new model votes. Each deployment's report
describes its actual policy (policies.policy_text).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from ledger.application import Ledger
from ledger.domain.deployments import Deployment
from ledger.errors import Conflict, InvalidCommand, LedgerError
from policies import best_recent, policy_text
from policies.autopilot import config
from policies.autopilot.data import retraining_input
from policies.autopilot.evidence import LastTraining, last_trainings, refresh
from policies.autopilot.rules import Context, Verdict, evaluate
from policies.health import run_health_pass
from policies.retention import deployment_names, run_retention
from projections import events as ev
from projections.locks import runner_lock
from trainers.record import TrainingFailed, train_and_record


@dataclass
class DeploymentReport:
    """One deployment's part of a pass: the rules evaluated, what fired, what was trained."""

    name: str
    policy: str = "manual"
    policy_text: str = ""  # the deployment's policy with its settings, in words
    configured: bool = False
    verdicts: list[dict[str, Any]] = field(default_factory=list)
    fired: list[str] = field(default_factory=list)
    model_id: str | None = None
    training_run: str | None = None
    data: dict[str, Any] | None = None
    note: str | None = None


@dataclass
class PassReport:
    """What one pass did, housekeeping first, then each deployment."""

    started_at: str
    position: int
    housekeeping: dict[str, Any] = field(default_factory=dict)
    deployments: list[DeploymentReport] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def run_pass(
    ledger: Ledger,
    file_entries: Mapping[str, Mapping[str, Any]] | None = None,
    now_us: int | None = None,
    only: list[str] | None = None,
    housekeeping: bool = True,
) -> PassReport:
    """One autopilot pass; a second pass with no new evidence retrains nothing."""
    now_us = now_us if now_us is not None else int(time.time() * 1_000_000)
    lock = runner_lock(ledger.engine, "autopilot")
    if not lock.acquire(wait=False):
        raise AutopilotBusy(
            "another autopilot pass is running on this ledger; try again when it ends"
        )
    try:
        report = PassReport(_iso(now_us), _head(ledger))
        if housekeeping:
            report.housekeeping = _housekeeping(ledger, now_us)
        refresh(ledger)
        names = deployment_names(ledger)
        _check_names(file_entries or {}, only, names)
        trainings = last_trainings(ledger)
        for name in names:
            if only is None or name in only:
                entry = (file_entries or {}).get(name)
                report.deployments.append(
                    rebuild(ledger, name, entry, trainings.get(name, NEVER), now_us)
                )
        return report
    finally:
        lock.release()


NEVER = LastTraining(0, 0, None, None, None)


class AutopilotBusy(Conflict):
    """Two passes at once would retrain twice on the same evidence."""

    code = "autopilot_busy"


def rebuild(
    ledger: Ledger, name: str, file_entry: Mapping[str, Any] | None, last: LastTraining, now_us: int
) -> DeploymentReport:
    """Evaluate one deployment's rules; retrain once if any fired."""
    deployment = ledger.deployment(name)
    report = DeploymentReport(
        name,
        str(deployment.policy.get("name", "manual")),
        policy_text.describe(deployment.policy, deployment.outcome_maturity_days),
    )
    settings = config.effective(
        deployment.settings.get("autopilot"), file_entry, f"deployment {name!r}"
    )
    if settings is None or not settings["enabled"] or not settings["rules"]:
        report.note = (
            "no autopilot rules configured"
            if settings is None or settings["enabled"]
            else "disabled"
        )
        return report
    report.configured = True
    verdicts = evaluate(Context(ledger, deployment, last, now_us), settings["rules"])
    report.verdicts = [{"rule": v.id, "fired": v.fired, "reason": v.reason} for v in verdicts]
    fired = [v for v in verdicts if v.fired]
    report.fired = [v.id for v in fired]
    if fired:
        _retrain(ledger, deployment, settings, fired, last, now_us, report)
    return report


def _retrain(
    ledger: Ledger,
    deployment: Deployment,
    settings: Mapping[str, Any],
    fired: list[Verdict],
    last: LastTraining,
    now_us: int,
    report: DeploymentReport,
) -> None:
    """Train the leader's stored spec again on new data; the new model joins as a challenger."""
    spec = _leader_spec(ledger, deployment)
    if spec is None:
        report.note = (
            "the leader was uploaded, not trained here: there is no stored spec to train again"
        )
        return
    spec, rows, data = retraining_input(
        ledger, deployment, spec, settings["data"], now_us, settings["ledger_days"]
    )
    report.data = data
    available = len(rows) if rows is not None else None
    if available is not None and available < settings["min_training_rows"]:
        report.note = (
            f"not retrained: {available} rows of predictions with matured outcomes; "
            f"min_training_rows is {settings['min_training_rows']}"
        )
        return
    trigger = {
        **fired[0].trigger(),
        "also": [v.trigger() for v in fired[1:]],
        "data": data,
        "last_training": {"run_id": last.run_id, "position": last.position},
        "evaluated_at": _iso(now_us),
        "evaluated_at_us": now_us,
    }
    try:
        report.model_id = train_and_record(
            ledger,
            spec,
            fired[0].id,
            deployment=deployment.name,
            rows_provider=rows,
            trigger=trigger,
        )
    except TrainingFailed as error:  # recorded as a failed run with its trigger; the pass goes on
        report.note, report.training_run = (
            f"retraining failed: {error.detail}",
            str(error.extra.get("run_id")),
        )
        return
    report.training_run = ledger.model(report.model_id).training_run_id


def _leader_spec(ledger: Ledger, deployment: Deployment) -> dict[str, Any] | None:
    if deployment.leader is None:
        return None
    model = ledger.model(deployment.leader)
    if not model.training_run_id:
        return None
    from trainers.spec import load_spec

    return load_spec(ledger.training_run(model.training_run_id).spec)


def _housekeeping(ledger: Ledger, now_us: int) -> dict[str, Any]:
    """Health pass, best_recent and retention; one failing does not stop the others."""
    from datetime import UTC, datetime

    done: dict[str, Any] = {}
    steps = {
        "health": lambda: run_health_pass(ledger, datetime.fromtimestamp(now_us / 1e6, tz=UTC)),
        "best_recent": lambda: _best_recent(ledger),
        "retention": lambda: _retention(ledger, now_us),
    }
    for step, run in steps.items():
        try:
            done[step] = run()
        except LedgerError as error:
            done[step] = {"error": f"{error.code}: {error.detail}"}
    return done


def _best_recent(ledger: Ledger) -> dict[str, Any]:
    """Let best_recent decide for the deployments that use it; each says what it did and why."""
    decided = {}
    for name in deployment_names(ledger):
        if ledger.deployment(name).policy.get("name") != "best_recent":
            continue
        try:
            decided[name] = _plain(best_recent.decide(ledger, name))
        except LedgerError as error:  # one deployment's refusal does not stop the others
            decided[name] = {"error": f"{error.code}: {error.detail}"}
    return decided


def _retention(ledger: Ledger, now_us: int) -> dict[str, Any]:
    found = run_retention(ledger, now_us)
    return {
        "forgotten": {name: len(done) for name, done in found.forgotten.items()},
        "refused": found.refused,
    }


def _check_names(entries: Mapping[str, Any], only: list[str] | None, names: list[str]) -> None:
    unknown = sorted((set(entries) | set(only or [])) - set(names))
    if unknown:
        raise InvalidCommand(
            f"no deployment named {', '.join(unknown)}; the ledger has "
            f"{', '.join(names) or 'none'}",
            field="deployments",
        )


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, str | int | float | bool | dict | list):
        return value
    return asdict(value) if hasattr(value, "__dataclass_fields__") else str(value)


def _head(ledger: Ledger) -> int:
    with ledger.engine.connect() as conn:
        return ev.head(conn)


def _iso(now_us: int) -> str:
    from ledger.timeline import iso

    return iso(now_us)
