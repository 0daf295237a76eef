"""Training runs: the spec, data, code and parameters that produced a model."""

from __future__ import annotations

from typing import Any

from eventsourcing.domain import Aggregate, event

from ledger.errors import InvalidCommand


class TrainingRun(Aggregate):
    """One fit of one spec: started, then completed or failed, never both."""

    class Started(Aggregate.Created):
        class_version = 2  # 2 adds occurred_at
        spec_name: str
        spec: dict[str, Any]
        deployment: str | None
        dataset_ids: dict[str, str]
        features: list[str]
        target: str
        algorithm: str
        params: dict[str, Any]
        code_version: dict[str, Any]
        trigger: dict[str, Any] | None
        actor: str
        occurred_at: int | None  # µs: the historic instant of loaded history, else None

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["occurred_at"] = None

    @event(Started)
    def __init__(
        self,
        spec_name: str,
        spec: dict[str, Any],
        deployment: str | None,
        dataset_ids: dict[str, str],
        features: list[str],
        target: str,
        algorithm: str,
        params: dict[str, Any],
        code_version: dict[str, Any],
        trigger: dict[str, Any] | None,
        actor: str,
        occurred_at: int | None = None,
    ):
        self.spec_name = spec_name
        self.spec = spec
        self.deployment = deployment
        self.dataset_ids = dataset_ids
        self.features = features
        self.target = target
        self.algorithm = algorithm
        self.params = params
        self.code_version = code_version
        self.trigger = trigger
        self.occurred_at = occurred_at
        self.status = "running"
        self.metrics: dict[str, Any] = {}
        self.artifact_digest: str | None = None
        self.reference_profile: dict[str, Any] = {}
        self.trained_subjects: dict[str, Any] | None = None
        self.model_id: str | None = None
        self.error: str | None = None

    class Completed(Aggregate.Event):
        metrics: dict[str, Any]
        artifact_digest: str
        reference_profile: dict[str, Any]
        trained_subjects: dict[str, Any] | None
        model_id: str
        actor: str

    class Failed(Aggregate.Event):
        error: str
        actor: str

    def check_running(self) -> None:
        if self.status != "running":
            raise InvalidCommand(f"training run {self.id} is already {self.status}")

    def complete(self, **kwargs: Any) -> None:
        self.check_running()
        self._completed(**kwargs)

    def fail(self, error: str, actor: str) -> None:
        self.check_running()
        self._failed(error=error, actor=actor)

    @event(Completed)
    def _completed(
        self,
        metrics: dict[str, Any],
        artifact_digest: str,
        reference_profile: dict[str, Any],
        trained_subjects: dict[str, Any] | None,
        model_id: str,
        actor: str,
    ) -> None:
        self.status = "completed"
        self.metrics = metrics
        self.artifact_digest = artifact_digest
        self.reference_profile = reference_profile
        self.trained_subjects = trained_subjects
        self.model_id = model_id

    @event(Failed)
    def _failed(self, error: str, actor: str) -> None:
        self.status = "failed"
        self.error = error
