"""Predictions: what was asked, what every active model answered, and what came true."""

from __future__ import annotations

from typing import Any

from eventsourcing.domain import Aggregate, event

from ledger import ids


class Prediction(Aggregate):
    """One scored row; its id derives from (deployment, request id), so retries dedupe."""

    class Made(Aggregate.Created):
        deployment: str
        deployment_version: int
        request_id: str
        body_digest: str
        features: dict[str, Any]
        sealed: dict[str, Any] | None
        outputs: dict[str, Any]
        served_model: str
        policy: dict[str, Any]
        leader: str | None
        flags: list[str]
        scoring: dict[str, Any]
        actor: str

    @staticmethod
    def create_id(deployment: str, request_id: str, **_: Any):  # type: ignore[override]
        return ids.prediction_id(deployment, request_id)

    @event(Made)
    def __init__(
        self,
        deployment: str,
        deployment_version: int,
        request_id: str,
        body_digest: str,
        features: dict[str, Any],
        sealed: dict[str, Any] | None,
        outputs: dict[str, Any],
        served_model: str,
        policy: dict[str, Any],
        leader: str | None,
        flags: list[str],
        scoring: dict[str, Any],
        actor: str,
    ):
        self.deployment = deployment
        self.deployment_version = deployment_version
        self.request_id = request_id
        self.body_digest = body_digest
        self.features = features
        self.sealed = sealed
        self.outputs = outputs
        self.served_model = served_model
        self.policy = policy
        self.leader = leader
        self.flags = flags
        self.scoring = scoring
        self.caller = actor
        self.outcomes: list[dict[str, Any]] = []

    @property
    def value(self) -> Any:
        return self.outputs[self.served_model]["value"]

    @property
    def outcome(self) -> dict[str, Any] | None:
        """The latest outcome: corrections supersede, nothing is overwritten."""
        return self.outcomes[-1] if self.outcomes else None

    class OutcomeRecorded(Aggregate.Event):
        actual: Any
        observed_at: str | None
        correction: bool
        actor: str

    def record_outcome(self, actual: Any, observed_at: str | None, actor: str) -> None:
        self._outcome_recorded(
            actual=actual, observed_at=observed_at, correction=bool(self.outcomes), actor=actor
        )

    @event(OutcomeRecorded)
    def _outcome_recorded(self, actual: Any, observed_at: str | None, correction: bool, actor: str) -> None:
        self.outcomes.append(
            {"actual": actual, "observed_at": observed_at, "correction": correction, "actor": actor,
             "version": self.version}
        )
