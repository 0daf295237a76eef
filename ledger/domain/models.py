"""Models: a registered artifact with what it reads and how it came to be."""

from __future__ import annotations

from typing import Any

from eventsourcing.domain import Aggregate, event


class Model(Aggregate):
    """A model artifact (by sha256) registered from a training run or uploaded."""

    class Registered(Aggregate.Created):
        name: str
        artifact_digest: str
        features: list[str]
        algorithm: str
        task: str
        classes: list[Any] | None
        training_run_id: str | None
        provenance: str  # "captured" from a training run, or "declared" by an uploader
        declared: dict[str, Any]
        actor: str

    @event(Registered)
    def __init__(
        self,
        name: str,
        artifact_digest: str,
        features: list[str],
        algorithm: str,
        task: str,
        classes: list[Any] | None,
        training_run_id: str | None,
        provenance: str,
        declared: dict[str, Any],
        actor: str,
    ):
        self.name = name
        self.artifact_digest = artifact_digest
        self.features = features
        self.algorithm = algorithm
        self.task = task
        self.classes = classes
        self.training_run_id = training_run_id
        self.provenance = provenance
        self.declared = declared
        self.registered_by = actor
