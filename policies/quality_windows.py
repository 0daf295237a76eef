"""Quality checks recorded as events: over batches sent in, and over windows of recent predictions.

The reference is the leader's training run: its per-feature profile and the
IsolationForest fitted beside it. Outliers are scored here, in micro-batches, never
on the request path; each check names the predictions (or batch rows) it covers.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson
import sqlalchemy as sa

from ledger import log
from ledger.application import Ledger
from ledger.domain.deployments import Deployment
from ledger.domain.feeds import QualityCheck, batch_check_key, window_check_key
from ledger.domain.predictions import Prediction
from policies.outliers import detector_from
from policies.quality import (
    CheckedRows,
    OutlierScorer,
    Report,
    RowChecker,
    check_rows,
    thresholds_from,
)
from projections import events as ev
from projections import health_queries as q
from projections.deployments import DeploymentsProjection
from projections.health import HealthProjection
from projections.runner import catch_up

RULE = "quality.check_recent_windows/v1"
DEFAULT_WINDOW = 500  # predictions per window check: enough rows for PSI and KS to mean something


@dataclass
class Reference:
    """What a deployment's rows are checked against."""

    profile: dict[str, Any]
    names: dict[str, Any]  # the model and training run the profile came from
    scorer: OutlierScorer | None


def reference_for(ledger: Ledger, deployment: Deployment) -> Reference | None:
    """The leader's training profile and outlier detector (None for an uploaded model)."""
    if deployment.leader is None:
        return None
    model = ledger.model(deployment.leader)
    if not model.training_run_id:
        return None
    run = ledger.training_run(model.training_run_id)
    profile = run.reference_profile or {}
    names = {"model_id": deployment.leader, "training_run_id": model.training_run_id}
    return Reference(profile, names, outlier_scorer(ledger, profile))


def outlier_scorer(ledger: Ledger, profile: Mapping[str, Any]) -> OutlierScorer | None:
    """Rows -> outlier flags: the stored IsolationForest with its recorded cut and rules
    (policies.outliers)."""
    detector_info, layout = profile.get("outlier_detector") or {}, profile.get("input") or []
    if not detector_info.get("artifact_digest") or not layout:
        return None
    return detector_from(ledger.artifacts.load_model(detector_info["artifact_digest"]), profile)


def check_batch(
    ledger: Ledger,
    name: str,
    rows: list[dict[str, Any]],
    actor: str,
    *,
    checker: RowChecker,
    batch_id: str | None = None,
) -> QualityCheck:
    """Check rows sent in against the deployment's reference and record the result.

    `checker` loads each row as the prediction path would (serving.rows.checked_rows): a
    row that does not load is counted as a bad row, never an error of the whole check.
    """
    deployment = ledger.deployment(name)
    reference = reference_for(ledger, deployment)
    digest = hashlib.sha256(orjson.dumps(rows, option=orjson.OPT_SORT_KEYS)).hexdigest()
    batch_id = batch_id or digest[:16]
    report = _check(deployment, reference, rows, checker(deployment.schema, rows))
    covers = {"batch": {"id": batch_id, "rows": len(rows), "digest": digest}, "rows": len(rows)}
    return _record(
        ledger, deployment, batch_check_key(batch_id), "batch", covers, reference, report, actor
    )


def _check(
    deployment: Deployment,
    reference: Reference | None,
    rows: list[dict[str, Any]],
    checked: CheckedRows | None = None,
) -> Report:
    thresholds = thresholds_from(deployment.settings)
    profile = reference.profile if reference else {}
    scorer = reference.scorer if reference else None
    return check_rows(rows, deployment.schema, profile, thresholds, scorer, checked)


def _record(
    ledger: Ledger,
    deployment: Deployment,
    key: str,
    source: str,
    covers: dict[str, Any],
    reference: Reference | None,
    report: Report,
    actor: str,
) -> QualityCheck:
    return ledger.record_quality_check(
        key,
        deployment=deployment.name,
        source=source,
        covers=covers,
        reference=reference.names if reference else {},
        features=report.features,
        outliers=report.outliers,
        results=report.results,
        failing=report.failing,
        thresholds=thresholds_from(deployment.settings),
        actor=actor,
    )


def check_recent_windows(
    ledger: Ledger, window: int | None = None, flush: bool = False
) -> list[QualityCheck]:
    """Check every full window of predictions not yet checked (and the partial rest if `flush`)."""
    catch_up(ledger.engine, HealthProjection)
    catch_up(ledger.engine, DeploymentsProjection)
    references, cursors = _deployments(ledger)
    if not cursors:
        return []
    recorded: list[QualityCheck] = []
    pending: dict[str, list[ev.Event]] = {name: [] for name in cursors}
    for event in _predictions_after(ledger.engine, min(cursors.values())):
        name = event.state["deployment"]
        if name in pending and event.position > cursors[name]:
            pending[name].append(event)
            size = window or int(references[name][0].settings.get("quality_window", DEFAULT_WINDOW))
            if len(pending[name]) >= size:
                recorded.append(_check_window(ledger, *references[name], pending.pop(name)))
                pending[name] = []
    if flush:
        recorded += [
            _check_window(ledger, *references[n], rows) for n, rows in pending.items() if rows
        ]
    return recorded


def _deployments(ledger: Ledger) -> tuple[dict[str, tuple[Deployment, Reference]], dict[str, int]]:
    """Deployments with a reference, and the last prediction position each has had checked."""
    with ledger.engine.connect() as conn:
        names = _current_deployments(conn)
        checked = {name: q.last_window_end(conn, name) for name in names}
    references = {}
    for name in names:
        deployment = ledger.deployment(name)
        reference = reference_for(ledger, deployment)
        if reference is not None:
            references[name] = (deployment, reference)
    return references, {name: checked[name] for name in references}


def _current_deployments(conn: sa.Connection) -> list[str]:
    from projections.base import read_position

    state = read_position(conn, DeploymentsProjection.name)
    if state is None:
        return []
    t = DeploymentsProjection.tables_for(state.generation)["versions"]
    return list(
        conn.execute(sa.select(t.c.name).where(t.c.valid_to.is_(None)).order_by(t.c.name)).scalars()
    )


def _predictions_after(engine: sa.Engine, position: int, page: int = 2000):  # noqa: ANN202 - a generator
    """Prediction.Made events after a position, in order, an id range at a time."""
    with engine.connect() as conn:
        upto = ev.head(conn)
    while position < upto:
        with engine.connect() as conn:
            rows, high = log.raw_page(conn, position, upto, page, [Prediction.Made])
        for row in rows:
            yield ev.decode(row)
        position = high


def _check_window(
    ledger: Ledger, deployment: Deployment, reference: Reference, events: list[ev.Event]
) -> QualityCheck:
    rows = [dict(e.state["features"]) for e in events]
    report = _check(deployment, reference, rows)
    ids = [e.originator_id for e in events]
    report.outliers["predictions"] = [ids[i] for i in report.outliers.get("rows", [])]
    covers = {
        "predictions": ids,
        "rows": len(ids),
        "from_position": events[0].position,
        "to_position": events[-1].position,
    }
    key = window_check_key(events[0].position, events[-1].position)
    return _record(ledger, deployment, key, "window", covers, reference, report, f"rule:{RULE}")
