"""Retention: forget a deployment's subjects N days after their last prediction.

A deployment opts in with `set_retention` (stored in its settings, so the change is an
event with its actor). Automatically generated logs must be kept at least six months
(EU AI Act Art. 19): fewer than 183 days is refused unless the caller overrides it with
a reason, and the override is recorded in the same event. `run_retention` is what
`ledger autopilot` calls; each erasure it makes is a SubjectForgotten by this rule.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from ledger import log
from ledger.application import Ledger
from ledger.domain.deployments import Deployment
from ledger.domain.predictions import Prediction
from ledger.errors import InvalidCommand
from ledger.privacy import ForgetResult, forget_ref

RULE = "rule:retention v1"
LEGAL_FLOOR_DAYS = 183  # six months, the floor for automatically generated logs
DAY_US = 86_400 * 1_000_000


@dataclass
class RetentionReport:
    """What one run did: erasures per deployment, and deployments it refused to act on."""

    forgotten: dict[str, list[ForgetResult]] = field(default_factory=dict)
    refused: dict[str, str] = field(default_factory=dict)

    @property
    def count(self) -> int:
        return sum(len(v) for v in self.forgotten.values())


def check_retention(days: Any, override_reason: str | None) -> None:
    """Whole days, at least one; under the legal floor only with a stated reason."""
    if not isinstance(days, int) or isinstance(days, bool) or days < 1:
        raise InvalidCommand(
            "retention days must be a whole number of days, at least 1", field="days"
        )
    if days < LEGAL_FLOOR_DAYS and not (override_reason or "").strip():
        raise InvalidCommand(
            f"{days} days is below the {LEGAL_FLOOR_DAYS}-day legal floor for automatically generated "
            "logs (EU AI Act Art. 19): keep them longer, or override with a reason",
            field="days",
        )


def set_retention(
    ledger: Ledger, deployment: str, days: int, actor: str, override_reason: str | None = None
) -> dict[str, Any]:
    """Record the deployment's retention (and any override of the floor) as a settings change."""
    check_retention(days, override_reason)
    override = None
    if days < LEGAL_FLOOR_DAYS:
        override = {"reason": override_reason, "actor": actor, "floor_days": LEGAL_FLOOR_DAYS}
    retention = {"days": days, "override": override}
    ledger.change_deployment(deployment, actor, settings={"retention": retention})
    return retention


def run_retention(ledger: Ledger, now_us: int | None = None) -> RetentionReport:
    """Forget, per deployment with a retention, every subject whose last prediction is too old."""
    now_us = now_us if now_us is not None else int(time.time() * 1_000_000)
    report = RetentionReport()
    for name in deployment_names(ledger):
        retention = ledger.deployment(name).settings.get("retention")
        if not retention:
            continue
        try:
            check_retention(retention.get("days"), (retention.get("override") or {}).get("reason"))
        except InvalidCommand as error:  # set around set_retention: never act on it
            report.refused[name] = error.detail
            continue
        report.forgotten[name] = forget_due(ledger, name, retention["days"], now_us)
    if report.count:
        ledger.sealer.keys.purge()  # destroyed keys leave the database files now, not at some later vacuum
    return report


def forget_due(ledger: Ledger, deployment: str, days: int, now_us: int) -> list[ForgetResult]:
    reason = f"retention: no prediction in {deployment!r} for {days} days"
    return [
        forget_ref(ledger, ref, reason=reason, actor=RULE, deployment=deployment)
        for ref in due_subjects(ledger, deployment, now_us - days * DAY_US)
    ]


def due_subjects(ledger: Ledger, deployment: str, cutoff_us: int) -> list[str]:
    """Subjects with a live key in the deployment whose last prediction there is before the cutoff."""
    last: dict[str, int] = {}
    for ref, at in sealed_predictions(ledger.engine, deployment):
        last[ref] = max(at, last.get(ref, 0))
    live = ledger.sealer.keys.subjects_in(deployment)
    return sorted(ref for ref, at in last.items() if at < cutoff_us and ref in live)


def sealed_predictions(
    engine: sa.Engine, deployment: str, page: int = 5000
) -> Iterator[tuple[str, int]]:
    """(subject ref, recorded-at) of the deployment's sealed predictions, read from the log.

    Reads the whole log's predictions: correct even when projections lag, and run rarely.
    Their stored JSON is read as Prediction.Made version 1 wrote it (log.fields refuses others).
    """
    after = 0
    while True:
        with engine.connect() as conn:
            rows = log.rows(conn, after=after, classes=[Prediction.Made], limit=page)
        for row in rows:
            made = log.fields(row)
            ref = (made.get("sealed") or {}).get("subject_ref")
            if ref and made.get("deployment") == deployment:
                yield ref, int(row.recorded_at)
        if len(rows) < page:
            return
        after = rows[-1].position


def deployment_names(ledger: Ledger) -> list[str]:
    """Every deployment ever created (few: one event each)."""
    with ledger.engine.connect() as conn:
        return [e.name for e in log.by_topic(ledger.mapper, conn, [Deployment.Created])]
