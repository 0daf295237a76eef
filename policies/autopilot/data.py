"""What a retraining reads: the original source again, the ledger's labelled predictions, or both.

Ledger rows are the deployment's predictions joined with their matured outcomes, from
the prediction index. Sealed fields (the subject, personal features) are opened from the
stored events only when the spec reads them; a row whose subject was forgotten cannot be
opened and is left out, so no erased subject's values ever reach a training set.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import pandas as pd

from ledger import log
from ledger.application import Ledger
from ledger.domain.deployments import Deployment
from ledger.domain.predictions import Prediction
from ledger.privacy.sealing import ERASED, sealed_fields
from policies.autopilot.evidence import labelled_predictions
from projections.cubes import DAY_US
from trainers import io

LEDGER_TIME_COLUMN = (
    "predicted_at"  # a spec without a time column splits ledger rows by prediction time
)
PAGE = 500


class RetrainingInput(NamedTuple):
    """What a retraining trains on."""

    spec: dict[str, Any]  # the spec to train
    rows: list[dict[str, Any]] | None  # rows to pass in; None: the spec reads its source
    made_of: dict[str, Any]  # mode, source and ledger rows used


def retraining_input(
    ledger: Ledger,
    deployment: Deployment,
    spec: Mapping[str, Any],
    mode: str,
    now_us: int,
    ledger_days: int | None = None,
) -> RetrainingInput:
    """The spec to train, the rows to pass in (None: the source) and what the data is made of."""
    if mode == "source":
        made_of = {"mode": mode, "source": io.describe_source(spec["source"])}
        return RetrainingInput(dict(spec), None, made_of)
    since = now_us - ledger_days * DAY_US if ledger_days else None
    rows, summary = ledger_rows(ledger, deployment, spec, now_us, since)
    trained = _ledger_spec(spec, deployment.name)
    if mode == "both":
        source = io.load_frame(spec)
        summary["source"], summary["source_rows"] = io.describe_source(spec["source"]), len(source)
        rows = _records(source, trained) + rows
    summary["mode"] = mode
    return RetrainingInput(trained, rows, summary)


def ledger_rows(
    ledger: Ledger,
    deployment: Deployment,
    spec: Mapping[str, Any],
    now_us: int,
    since_us: int | None,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Flat rows (features, target, time) from matured labelled predictions; erased subjects left out."""
    labelled = labelled_predictions(ledger, deployment, now_us, since_us)
    wanted = _sealed_wanted(spec, deployment.schema)
    opened = open_sealed(ledger, [r["prediction_id"] for r in labelled]) if wanted else {}
    time_column = spec["time_column"] or LEDGER_TIME_COLUMN
    rows, erased = [], 0
    for r in labelled:
        features = dict(r["features"])
        if wanted:
            values = opened.get(r["prediction_id"], {})
            if values is ERASED:
                erased += 1
                continue
            features.update(values)
        features[spec["target"]] = r["actual"]
        features[time_column] = pd.Timestamp(r["recorded_at"], unit="us", tz="UTC")
        rows.append(features)
    positions = [r["position"] for r in labelled]
    summary = {
        "ledger_rows": len(rows),
        "ledger_rows_erased": erased,
        "ledger_positions": [min(positions), max(positions)] if positions else None,
    }
    return rows, summary


def _sealed_wanted(spec: Mapping[str, Any], schema: Mapping[str, Any]) -> bool:
    sealed = set(sealed_fields(schema))
    return bool(sealed & ({f["name"] for f in spec["features"]} | {spec["subject"]}))


def open_sealed(ledger: Ledger, prediction_ids: list[str]) -> dict[str, Any]:
    """Each prediction's sealed values (or ERASED), read from its Made event."""
    opened: dict[str, Any] = {}
    for start in range(0, len(prediction_ids), PAGE):
        for pid, made in _made_events(ledger, prediction_ids[start : start + PAGE]):
            sealed = made.sealed
            if sealed:
                opened[pid] = ledger.sealer.unseal(sealed, binding=pid)
    return opened


def _made_events(ledger: Ledger, ids: list[str]) -> list[tuple[str, Any]]:
    """These predictions' Made events, by prediction id."""
    with ledger.engine.connect() as conn:
        found = log.rows(conn, classes=[Prediction.Made], originators=ids)
    return [(row.originator_id, log.decode(ledger.mapper, row)) for row in found]


def _ledger_spec(spec: Mapping[str, Any], deployment: str) -> dict[str, Any]:
    """The stored spec, reading rows passed in and split by time without its old cutoff."""
    time_column = spec["time_column"] or LEDGER_TIME_COLUMN
    split = {**spec["split"], "kind": "time", "column": time_column, "cutoff": None}
    return {
        **spec,
        "source": {"kind": "ledger", "deployment": deployment},
        "time_column": time_column,
        "split": split,
    }


def _records(frame: pd.DataFrame, spec: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The source frame's rows as mappings, missing values as None (the ledger rows' way)."""
    if spec["time_column"] not in frame.columns:
        raise _no_time(spec)
    if not isinstance(frame[spec["time_column"]].dtype, pd.DatetimeTZDtype):
        frame = frame.assign(
            **{spec["time_column"]: pd.to_datetime(frame[spec["time_column"]], utc=True)}
        )
    return frame.astype(object).where(frame.notna(), None).to_dict("records")


def _no_time(spec: Mapping[str, Any]) -> Exception:
    from ledger.errors import InvalidCommand

    return InvalidCommand(
        f"data: both needs the source to have the time column {spec['time_column']!r} "
        "to split old and new rows by time; use data: ledger or data: source",
        field="data",
    )
