"""Train a spec and record it: datasets, run, artifacts, model, and a deployment's challenger."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from uuid import UUID

import orjson
import pandas as pd

from ledger.application import Ledger
from ledger.artifacts import CAPTURED_TRUSTED_TYPES, dumps_skops
from ledger.errors import LedgerError, UntrustedArtifact
from ledger.privacy import trained_subjects_record
from trainers import io, profile, steps
from trainers.code_version import code_version
from trainers.evaluate import evaluate
from trainers.matrix import frame_to_matrix
from trainers.plain import to_plain
from trainers.schema import check_fits_schema
from trainers.spec import InvalidSpec, load_spec

REF_HEX_DIGITS = 32


class TrainingFailed(LedgerError):
    """Training stopped; the run is recorded as failed with this error."""

    code = "training_failed"


def train_and_record(
    ledger: Ledger,
    spec: Mapping[str, Any],
    actor: str,
    deployment: str | None = None,
    rows_provider: io.RowsProvider | None = None,
    trigger: Mapping[str, Any] | None = None,
    occurred_at: int | None = None,
) -> str:
    """Fit the spec, record everything it rests on, and return the registered model's id.

    `occurred_at` (µs): when the run happened in loaded history, kept in the run's Started
    event and in the leader change it may make; the caller checks who may give one.
    """
    spec = _fitting(ledger, load_spec(spec), deployment)
    run_id, train, test = _start(
        ledger, spec, actor, deployment, rows_provider, trigger, occurred_at
    )
    try:
        model, completed = _fit_and_store(ledger, spec, train, test)
    except Exception as error:  # any failure of a started run is recorded, then re-raised
        ledger.fail_training(run_id, error=_describe(error), actor=actor)
        raise TrainingFailed(
            f"training run {run_id} failed: {_describe(error)}", run_id=str(run_id)
        ) from error
    model_id = ledger.finish_training(
        run_id, model={**model, "actor": actor}, actor=actor, **completed
    )
    if deployment:
        ledger.add_model(deployment, model_id, actor, occurred_at)
    return str(model_id)


def _fitting(ledger: Ledger, spec: dict[str, Any], deployment: str | None) -> dict[str, Any]:
    """Refuse, before anything is recorded, a model the deployment could not take."""
    if not deployment:
        return spec
    target = ledger.deployment(deployment)
    check_fits_schema(spec, target.schema, deployment)
    target.check_fits([f["name"] for f in spec["features"]], spec["task"])
    declared, wanted = spec["positive_label"], target.positive_label
    if declared is not None and wanted is not None and str(declared) != str(wanted):
        raise InvalidSpec(
            f"positive_label {declared!r} differs from deployment {deployment!r}'s {wanted!r}",
            field="positive_label",
        )
    return {**spec, "positive_label": declared if declared is not None else wanted}


def _start(
    ledger: Ledger,
    spec: dict[str, Any],
    actor: str,
    deployment: str | None,
    rows_provider: Any,
    trigger: Mapping[str, Any] | None,
    occurred_at: int | None = None,
) -> tuple[UUID, pd.DataFrame, pd.DataFrame]:
    started = {
        "spec_name": spec["name"],
        "spec": to_plain(io.redacted(spec)),
        "deployment": deployment or spec["deployment"],
        "features": [f["name"] for f in spec["features"]],
        "target": spec["target"],
        "algorithm": spec["algorithm"],
        "params": steps.pipeline_params(
            steps.build_pipeline(spec["features"], spec["algorithm"], spec["params"], spec["seed"])
        ),
        "code_version": code_version(configured_commit=ledger.settings.git_commit),
        "trigger": to_plain(dict(trigger)) if trigger else None,
        "actor": actor,
        "occurred_at": occurred_at,
    }
    try:
        frame = steps.typed_frame(io.load_frame(spec, rows_provider), spec)
        train, test = steps.split(frame, spec)
    except Exception as error:  # no data, no datasets: the run still says why it stopped
        run_id = ledger.start_training(dataset_ids={}, **started)
        ledger.fail_training(run_id, error=_describe(error), actor=actor)
        raise TrainingFailed(
            f"training run {run_id} failed: {_describe(error)}",
            field=getattr(error, "field", None),  # the spec's field or column to fix
            run_id=str(run_id),
        ) from error
    source = io.describe_source(spec["source"])
    dataset_ids = {
        role: str(
            ledger.register_dataset(
                source=source,
                role=role,
                actor=actor,
                **profile.describe_dataset(part, spec["time_column"]),
            )
        )
        for role, part in (("train", train), ("test", test))
    }
    return ledger.start_training(dataset_ids=dataset_ids, **started), train, test


def _fit_and_store(
    ledger: Ledger, spec: dict[str, Any], train: pd.DataFrame, test: pd.DataFrame
) -> tuple[dict[str, Any], dict[str, Any]]:
    features, hasher = (
        spec["features"],
        ledger.sealer.subject_ref,
    )  # keyed: useless without the secret
    pipeline = steps.fit(
        steps.build_pipeline(features, spec["algorithm"], spec["params"], spec["seed"]),
        train,
        features,
        spec["target"],
    )
    classes = to_plain(list(pipeline.classes_)) if spec["task"] == "classification" else None
    positive = steps.positive_label(classes, spec["positive_label"]) if classes else None
    X_test = frame_to_matrix(test, features)
    metrics = evaluate(
        pipeline,
        X_test,
        steps.targets(test, spec["target"]),
        spec["task"],
        spec["metrics"],
        positive,
    )
    digest = _store(ledger, pipeline)
    detector = steps.fit_outlier_detector(train, features, spec["seed"])
    reference = {
        "rows": len(train),
        "positive_label": positive,
        "features": profile.reference_profile(train, features, hasher),
        "input": steps.input_layout(pipeline, features),
        "outlier_detector": steps.detector_summary(
            detector, train, features, _store(ledger, detector)
        ),
        "background": _background(ledger, train, features, spec["seed"]),
    }
    model = {
        "name": spec["name"],
        "artifact_digest": digest,
        "features": [f["name"] for f in features],
        "algorithm": spec["algorithm"],
        "task": spec["task"],
        "classes": classes,
    }
    completed = {
        "metrics": metrics,
        "artifact_digest": digest,
        "reference_profile": to_plain(reference),
        "trained_subjects": _subjects(ledger, train, spec["subject"]),
    }
    return model, completed


def _store(ledger: Ledger, fitted: Any) -> str:
    """Store the skops bytes, refused first if they hold a type the ledger would not load."""
    import skops.io as sio

    content = dumps_skops(fitted)
    refused = sorted(set(sio.get_untrusted_types(data=content)) - set(CAPTURED_TRUSTED_TYPES))
    if refused:
        raise UntrustedArtifact(
            f"the fitted model holds types the ledger will not load: {', '.join(refused)}"
        )
    return ledger.artifacts.put(content)


def _background(
    ledger: Ledger, train: pd.DataFrame, features: list[Any], seed: int
) -> dict[str, Any]:
    """The stored training rows explanations measure contributions against."""
    rows = steps.background_rows(train, features, seed)
    content = orjson.dumps(rows, option=orjson.OPT_SORT_KEYS)
    return {
        "artifact_digest": ledger.artifacts.put(content, media_type="application/json"),
        "rows": len(rows),
        "seed": seed,
        "personal_features": "left missing (imputed by the model)",
    }


def _subjects(ledger: Ledger, train: pd.DataFrame, subject: str | None) -> dict[str, Any] | None:
    """Which subjects' rows trained the model, as keyed refs, never the ids."""
    if not subject:
        return None
    record = trained_subjects_record(ledger.sealer, train[subject].dropna().tolist())
    # 128-bit prefixes halve the event; forget matches prefixes of at least 16 hex digits
    return {
        "field": subject,
        **record,
        "refs": [r[:REF_HEX_DIGITS] for r in record["refs"]],
        "ref_hex_digits": REF_HEX_DIGITS,
    }


def _describe(error: BaseException) -> str:
    detail = getattr(error, "detail", None) or str(error) or type(error).__name__
    return f"{type(error).__name__}: {detail}"[:2000]
