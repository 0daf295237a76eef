"""The scoring path: every active model scores every row, the policy picks the answer.

A deployment's runtime (models, their column orders, the training profiles behind the
inline flags) is built once per deployment version and reused until the version moves:
the process's DeploymentWatch says when it may have (within `deployment_staleness_ms`),
and while it cannot vouch, each request compares the stored version instead.
Rows enter each model as ONE 2-D object array in that model's `features` order, built
by trainers.matrix (the conversion its pipelines were trained on: numbers as floats with
NaN for missing, categories as str or None).
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from sklearn import config_context
from sklearn.pipeline import Pipeline

from ledger import ids
from ledger.application import Ledger
from ledger.deployment_watch import DeploymentWatch
from ledger.errors import Conflict, LedgerError
from ledger.version_probe import VersionProbe
from serving.compiled import COMPILED, PIPELINE, CompiledModel, compile_model
from serving.flags import Profile, merged_profile, row_flags
from trainers.matrix import column_readers, row_values, rows_to_matrix

log = logging.getLogger("serving.scoring")


class NoActiveModel(Conflict):
    """The deployment has no model to score with."""

    code = "no_active_model"


@dataclass
class ModelRuntime:
    """One loaded model and the column order it reads."""

    model_id: str
    estimator: Any
    columns: list[dict[str, Any]]  # the schema's feature specs, in the model's column order
    classifier: bool
    load_error: str | None = None

    def __post_init__(self) -> None:
        self.transforms, self.final = split_pipeline(self.estimator)
        self.compiled: CompiledModel | None = (
            compile_model(self.estimator) if self.estimator is not None else None
        )
        self.readers = column_readers(self.columns)
        classes = getattr(self.final, "classes_", None) if self.classifier else None
        self.labels = None if classes is None else [str(label) for label in classes.tolist()]

    @property
    def scorer(self) -> str:
        """How this model scores new rows: compiled when every step is known, else the pipeline."""
        return COMPILED if self.compiled is not None else PIPELINE


@dataclass
class DeploymentRuntime:
    """What scoring needs of one deployment version, built once and reused."""

    name: str
    version: int
    task: str
    schema: dict[str, Any]
    policy: dict[str, Any]
    leader: str | None
    models: list[ModelRuntime]
    profile: Profile
    stamp: tuple[int, int] | None = None  # the watch's stamp when this was last read

    def __post_init__(self) -> None:
        self.deployment_id: UUID = ids.deployment_id(self.name)

    @property
    def policy_name(self) -> str:
        return str(self.policy.get("name", "manual"))


@dataclass
class RowScore:
    """One row's outputs by model, the served model and its inline flags."""

    outputs: dict[str, dict[str, Any]]
    served_model: str
    flags: list[str]
    scorers: dict[str, str] = field(default_factory=dict)  # model id -> compiled-v1 | pipeline
    tally: dict[str, Any] | None = None  # majority_vote: each model's vote and the winning count

    @property
    def served(self) -> dict[str, Any]:
        return self.outputs[self.served_model]


class Scorer:
    """Runtimes per deployment, cached per version; scores rows vectorised per model."""

    def __init__(self, ledger: Ledger, staleness_ms: float = 0.0):
        self.ledger = ledger
        self._runtimes: dict[str, DeploymentRuntime] = {}
        self._lock = threading.Lock()
        self._probe = VersionProbe(ledger.engine)
        # 0: no watch, every request compares the version
        self.watch = DeploymentWatch(ledger.engine, staleness_ms / 1000) if staleness_ms else None

    def runtime(self, name: str) -> DeploymentRuntime:
        """The deployment's runtime at its current version (rebuilt when it moved)."""
        cached = self._runtimes.get(name)
        watch = self.watch
        if (
            cached is not None
            and watch is not None
            and watch.fresh(cached.deployment_id, cached.stamp)
        ):
            return cached
        deployment_id = ids.deployment_id(name)
        # Read before the version: a change committed during the read moves the stamp.
        stamp = watch.stamp(deployment_id) if watch is not None else None
        if cached is not None and self.current_version(name) == cached.version:
            cached.stamp = stamp
            return cached
        with self._lock:
            built = self._build(name)
            built.stamp = stamp
            self._runtimes[name] = built
        if watch is not None:
            watch.track(deployment_id, built.version)
        return built

    def close(self) -> None:
        """Stop the watch's thread and close the probe's connection."""
        if self.watch is not None:
            self.watch.close()
        self._probe.close()

    def forget(self, name: str) -> None:
        """Drop a cached runtime (this process changed the deployment)."""
        self._runtimes.pop(name, None)

    def current_version(self, name: str) -> int | None:
        """The deployment's latest version: one indexed read, no event decoding."""
        return self._probe.latest(ids.deployment_id(name))

    def _build(self, name: str) -> DeploymentRuntime:
        deployment = self.ledger.deployment(name)
        specs = {f["name"]: f for f in deployment.schema["features"]}
        models, profiles = [], []
        for model_id in deployment.models:
            model = self.ledger.model(model_id)
            estimator, load_error = self._load(model, leads=model_id == deployment.leader)
            columns = [specs[name] for name in model.features]
            models.append(
                ModelRuntime(
                    model_id,
                    estimator,
                    columns,
                    hasattr(estimator, "predict_proba") and model.task == "classification",
                    load_error,
                )
            )
            profiles.append(self._profile_of(model))
        return DeploymentRuntime(
            name=name,
            version=deployment.version,
            task=deployment.task,
            schema=deployment.schema,
            policy=dict(deployment.policy),
            leader=deployment.leader,
            models=models,
            profile=merged_profile(profiles, deployment.schema),
        )

    def _load(self, model: Any, leads: bool) -> tuple[Any, str | None]:
        """The estimator; a challenger that fails to load is kept, failing, so the leader still serves."""
        try:
            return self.ledger.artifacts.load_model(model.artifact_digest), None
        except LedgerError as error:
            if leads:
                raise
            log.warning("challenger %s of %s cannot load: %s", model.id, model.name, error.detail)
            return None, f"{error.code}: {error.detail}"

    def _profile_of(self, model: Any) -> dict[str, Any] | None:
        if not model.training_run_id:
            return None  # uploaded models carry no captured training profile
        return self.ledger.training_run(model.training_run_id).reference_profile or None

    def score(self, runtime: DeploymentRuntime, rows: list[dict[str, Any]]) -> list[RowScore]:
        """Score validated rows with every active model and choose each row's served output."""
        if not runtime.models or runtime.leader is None:
            raise NoActiveModel(f"deployment {runtime.name!r} has no active model; add one first")
        per_model = {m.model_id: score_isolated(m, rows, runtime.leader) for m in runtime.models}
        scorers = {m.model_id: m.scorer for m in runtime.models}
        scores = []
        for index, row in enumerate(rows):
            outputs = {model_id: results[index] for model_id, results in per_model.items()}
            served, tally = vote(runtime, outputs)
            scores.append(
                RowScore(outputs, served, row_flags(runtime.profile, row), scorers, tally)
            )
        return scores


def score_isolated(
    model: ModelRuntime, rows: list[dict[str, Any]], leader: str | None
) -> list[dict[str, Any]]:
    """The leader's failure fails the request; a shadow's is recorded in its output instead."""
    if model.model_id == leader:
        return score_model(model, rows)
    try:
        return score_model(model, rows)
    except Exception as error:  # noqa: BLE001 - any shadow failure must not stop serving
        log.warning("shadow model %s failed: %s", model.model_id, error)
        failure = f"{type(error).__name__}: {error}"[:500]
        return [{"value": None, "probabilities": None, "error": failure} for _ in rows]


def score_model(
    model: ModelRuntime, rows: list[dict[str, Any]], scorer: str | None = None
) -> list[dict[str, Any]]:
    """Each row's value (and probabilities for a classifier), as plain Python values.

    `scorer` (compiled-v1 or pipeline; default: the model's own) is how a reproduction
    scores the way the original did.
    """
    if model.load_error:
        raise RuntimeError(f"the model could not be loaded: {model.load_error}")
    compiled, final = model.compiled, model.final
    if (scorer or model.scorer) == COMPILED:
        if compiled is None:
            raise RuntimeError(
                "the model was scored compiled but no longer compiles (a step changed)"
            )
        if len(rows) == 1 and compiled.scores_one:
            return [score_one(model, compiled, rows[0])]
        value_array, probability_array = compiled.score(rows_to_matrix(rows, model.columns))
    else:
        value_array, probability_array = _pipeline_score(model, rows_to_matrix(rows, model.columns))
    values = value_array.tolist()
    if not model.classifier:
        return [{"value": v, "probabilities": None} for v in values]
    labels = [str(label) for label in final.classes_.tolist()]
    assert probability_array is not None  # every classifier's scorer returns probabilities
    probabilities = probability_array.tolist()
    return [
        {"value": v, "probabilities": dict(zip(labels, p, strict=True))}
        for v, p in zip(values, probabilities, strict=True)
    ]


def score_one(model: ModelRuntime, compiled: CompiledModel, row: dict[str, Any]) -> dict[str, Any]:
    """score_model of one row by the compiled scorer's one-row form (the same numbers)."""
    value, probabilities = compiled.one(row_values(row, model.readers))
    if not model.classifier:
        return {"value": value, "probabilities": None}
    # every classifier has classes and every classifier's scorer returns probabilities
    assert model.labels is not None and probabilities is not None
    return {"value": value, "probabilities": dict(zip(model.labels, probabilities, strict=True))}


def _pipeline_score(model: ModelRuntime, array: Any) -> tuple[Any, Any]:
    """Values and (for a classifier) probabilities through the fitted pipeline's own steps."""
    # Parameters were validated at fit; data checks stay on (a NaN reaching a model is an error).
    with config_context(skip_parameter_validation=True):
        prepared = model.transforms.transform(array) if model.transforms is not None else array
        values = model.final.predict(prepared)
        return values, model.final.predict_proba(prepared) if model.classifier else None


def split_pipeline(estimator: Any) -> tuple[Any | None, Any]:
    """(a Pipeline's transforms, its final step); (None, estimator) for anything else.

    Pipeline.predict and predict_proba each rerun every transform, and the transforms
    (validation, imputation, encoding) are most of a row's cost: score runs them once.
    """
    if isinstance(estimator, Pipeline) and len(estimator.steps) > 1:
        return estimator[:-1], estimator.steps[-1][1]
    return None, estimator


def choose(runtime: DeploymentRuntime, outputs: dict[str, dict[str, Any]]) -> str:
    """The model whose output is served: the leader, or for majority_vote the commonest value."""
    return vote(runtime, outputs)[0]


def vote(
    runtime: DeploymentRuntime, outputs: dict[str, dict[str, Any]]
) -> tuple[str, dict[str, Any] | None]:
    """The served model and, under majority_vote, the tally that chose it.

    The tally: each voting model's value, the winning value, how many voted for it, and
    the models that could not vote (their scoring failed). With two models a disagreement
    is a tie, which the leader breaks, so fewer than three models serve the leader.
    """
    leader = runtime.leader if runtime.leader in outputs else next(iter(outputs))
    if runtime.policy_name != "majority_vote":
        return leader, None
    votes = {m: o["value"] for m, o in outputs.items() if "error" not in o}
    counts = Counter(_vote_key(v) for v in votes.values())
    top = max(counts.values(), default=0)
    winners = {value for value, n in counts.items() if n == top}
    if len(outputs) < 3 or _vote_key(outputs[leader]["value"]) in winners:
        served = leader
    else:
        served = next(m for m, v in votes.items() if _vote_key(v) in winners)
    tally = {
        "votes": votes,
        "winner": outputs[served]["value"],
        "count": counts.get(_vote_key(outputs[served]["value"]), 0),
        "voters": len(votes),
        "abstained": sorted(set(outputs) - set(votes)),
        "tie_to_leader": served == leader and len(winners) > 1,
    }
    return served, tally


def _vote_key(value: Any) -> str:
    return repr(value)
