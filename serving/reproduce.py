"""Reproduce a recorded prediction from its artifact and features, bit for bit.

Each model is scored the way the original was: alone, or at its row of a batch of the
same rows (a row scored alone and in a batch can differ in the last bits), and by the
scorer that made it (compiled-v1 or pipeline; predictions from before the compiled
scorer existed record none and were scored by the pipeline).
"""

from __future__ import annotations

import importlib.metadata
import platform
from dataclasses import dataclass, field
from typing import Any

from ledger import log
from ledger.application import Ledger
from ledger.domain.predictions import Prediction
from ledger.errors import InvalidCommand
from ledger.privacy.forget import was_forgotten
from ledger.privacy.keys import Forgotten, MasterKeyMismatch
from ledger.privacy.sealing import ERASED
from serving.compiled import PIPELINE
from serving.scoring import ModelRuntime, score_model

PACKAGES = ("scikit-learn", "numpy", "scipy", "pandas", "skops")
ERASED_INPUT = object()  # an erased personal field: scoring it is refused, not guessed


class SubjectErased(Forgotten):
    """A model of the prediction reads a personal field of an erased subject (410)."""

    code = "subject_erased"


@dataclass
class ModelCheck:
    """One model's recorded output beside the reproduced one."""

    model_id: str
    artifact_digest: str
    recorded: dict[str, Any]
    reproduced: dict[str, Any]

    @property
    def identical(self) -> bool:
        return self.recorded == self.reproduced


@dataclass
class Reproduction:
    prediction_id: str
    scoring: dict[str, Any]
    checks: list[ModelCheck]
    version_changes: dict[str, tuple[str | None, str | None]] = field(default_factory=dict)

    @property
    def identical(self) -> bool:
        return all(c.identical for c in self.checks)

    def to_dict(self) -> dict[str, Any]:
        return {
            "prediction_id": self.prediction_id,
            "scoring": self.scoring,
            "identical": self.identical,
            "models": [
                {
                    "model_id": c.model_id,
                    "artifact_digest": c.artifact_digest,
                    "identical": c.identical,
                    "recorded": c.recorded,
                    "reproduced": c.reproduced,
                }
                for c in self.checks
            ],
            "package_versions_changed": {
                k: {"recorded": a, "now": b} for k, (a, b) in self.version_changes.items()
            },
        }


def reproduce(ledger: Ledger, prediction_id: str) -> Reproduction:
    """Score the recorded features again with every recorded model and compare."""
    prediction = ledger.prediction(prediction_id)
    rows, index = _scoring_rows(ledger, prediction)
    position = _position_of(ledger, prediction)
    schema = ledger.deployment(prediction.deployment, position).schema
    specs = {f["name"]: f for f in schema["features"]}
    checks, changes = [], {}
    for model_id, recorded in prediction.outputs.items():
        model = ledger.model(model_id)
        _refuse_erased_inputs(prediction, model_id, list(model.features), rows)
        estimator = ledger.artifacts.load_model(model.artifact_digest)  # digest verified on load
        runtime = ModelRuntime(
            model_id,
            estimator,
            [specs[n] for n in model.features],
            hasattr(estimator, "predict_proba") and model.task == "classification",
        )
        reproduced = score_model(runtime, rows, scorer_of(prediction.scoring, model_id))[index]
        checks.append(ModelCheck(model_id, model.artifact_digest, recorded, reproduced))
        if model.training_run_id and recorded != reproduced:
            changes.update(
                _version_changes(ledger.training_run(model.training_run_id).code_version)
            )
    return Reproduction(str(prediction.id), prediction.scoring, checks, changes)


def scorer_of(scoring: dict[str, Any], model_id: str) -> str:
    """The scorer the original used for this model (pipeline when none was recorded)."""
    return str((scoring.get("scorer") or {}).get(model_id, PIPELINE))


def _features(ledger: Ledger, prediction: Any) -> dict[str, Any]:
    """The recorded features; an erased subject's personal fields as ERASED_INPUT."""
    sealed = prediction.sealed
    if not sealed:
        return dict(prediction.features)
    own_id = getattr(prediction, "originator_id", None) or prediction.id
    try:
        values = ledger.sealer.unseal(sealed, binding=str(own_id))
    except MasterKeyMismatch:
        # A key made for the subject after its erasure does not open the old record.
        if not was_forgotten(ledger, sealed["subject_ref"], sealed["scope"]):
            raise
        values = ERASED
    if values is ERASED:
        return {**prediction.features, **dict.fromkeys(sealed["fields"], ERASED_INPUT)}
    return {**prediction.features, **values}  # type: ignore[dict-item]


def _refuse_erased_inputs(
    prediction: Prediction, model_id: str, inputs: list[str], rows: list[dict[str, Any]]
) -> None:
    """A model that reads a personal field of an erased subject cannot score the row again."""
    for row in rows:
        erased = [name for name in inputs if row.get(name) is ERASED_INPUT]
        if erased:
            ref = str((prediction.sealed or {}).get("subject_ref", ""))[:12]
            raise SubjectErased(
                f"prediction {prediction.id} cannot be re-scored: the data of subject {ref}… "
                f"was erased, and model {model_id} takes {', '.join(erased)} as input",
                field="prediction_id",
            )


def _scoring_rows(ledger: Ledger, prediction: Prediction) -> tuple[list[dict[str, Any]], int]:
    """The rows the original scored together, and this prediction's index among them."""
    scoring = prediction.scoring
    if scoring.get("mode") != "batch":
        return [_features(ledger, prediction)], 0
    batch = _batch_members(ledger, prediction)
    if len(batch) != scoring["rows"]:
        raise InvalidCommand(
            f"found {len(batch)} of the {scoring['rows']} rows of batch {scoring['batch_id']!r}; cannot rescore it"
        )
    return [_features(ledger, p) for p in batch], scoring["row"]


def _batch_members(ledger: Ledger, prediction: Prediction) -> list[Any]:
    """The batch's predictions: saved together, so recorded at the same instant."""
    recorded_at = _recorded_at(ledger, prediction)
    with ledger.engine.connect() as conn:
        made = log.events(ledger.mapper, conn, recorded_at=recorded_at, classes=[Prediction.Made])
    members = {}
    for event in made:
        same = (
            event.deployment == prediction.deployment
            and event.scoring.get("batch_id") == prediction.scoring["batch_id"]
        )
        if same:
            members[event.scoring["row"]] = _EventView(event)
    return [members[i] for i in sorted(members)]


class _EventView:
    """A Made event read as a prediction (features, sealed, id)."""

    def __init__(self, event: Any):
        self.features, self.sealed = event.features, event.sealed
        self.id = event.originator_id
        self.originator_id = event.originator_id


def _position_of(ledger: Ledger, prediction: Prediction) -> int:
    return _made_row(ledger, prediction)[0]


def _recorded_at(ledger: Ledger, prediction: Prediction) -> int:
    return _made_row(ledger, prediction)[1]


def _made_row(ledger: Ledger, prediction: Prediction) -> tuple[int, int]:
    with ledger.engine.connect() as conn:
        (row,) = log.rows(conn, originators=[prediction.id], version=1)
    return int(row.position), int(row.recorded_at)


def _version_changes(code_version: dict[str, Any]) -> dict[str, tuple[str | None, str | None]]:
    """Packages whose version now differs from the one recorded at training."""
    recorded = code_version.get("packages") or {}
    changes = {}
    for name in PACKAGES:
        try:
            now = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            now = None
        before = recorded.get(name)
        if before is not None and before != now:
            changes[name] = (before, now)
    python = code_version.get("python")
    if python and python != platform.python_version():
        changes["python"] = (python, platform.python_version())
    return changes
