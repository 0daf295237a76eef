"""Deployments: a typed input schema, a policy and the models that score its requests."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from ledger import ids
from ledger.errors import Conflict, InvalidCommand, NotFound, SchemaMismatch, StaleVersion
from ledger.values import CATEGORY_MAX

TASKS = ("classification", "regression")
FEATURE_TYPES = ("number", "integer", "category", "boolean")
POLICIES = ("manual", "best_recent", "majority_vote")


def check_schema(schema: dict[str, Any]) -> None:
    """A schema names each feature once, with a known type, and a subject field it has."""
    features = schema.get("features")
    if not isinstance(features, list) or not features:
        raise InvalidCommand(
            "the input schema needs a non-empty list of features", field="schema.features"
        )
    names = [f.get("name") for f in features]
    if len(set(names)) != len(names):
        raise InvalidCommand("feature names in the schema must be unique", field="schema.features")
    for f in features:
        if f.get("type") not in FEATURE_TYPES:
            raise InvalidCommand(
                f"feature {f.get('name')!r} has type {f.get('type')!r}; use one of {', '.join(FEATURE_TYPES)}",
                field="schema.features",
            )
        check_max_length(f)
    subject = schema.get("subject_field")
    if subject is not None and subject not in names:
        raise InvalidCommand(
            f"subject_field {subject!r} is not a feature of the schema",
            field="schema.subject_field",
        )
    personal = [f["name"] for f in features if f.get("personal")]
    if personal and subject is None:
        raise InvalidCommand(
            f"personal features ({', '.join(personal)}) need a subject_field naming whose data they are",
            field="schema.subject_field",
        )


def check_max_length(feature: dict[str, Any]) -> None:
    """A category may bound its values' length (`max_length`); no other type has one."""
    if "max_length" not in feature:
        return
    bound = feature["max_length"]
    if feature["type"] != "category" or type(bound) is not int or not 1 <= bound <= CATEGORY_MAX:
        raise InvalidCommand(
            f"feature {feature.get('name')!r}: max_length is for a category, 1 to {CATEGORY_MAX}",
            field="schema.features",
        )


def check_policy(policy: dict[str, Any], task: str) -> None:
    name = policy.get("name")
    if name not in POLICIES:
        raise InvalidCommand(
            f"policy {name!r} is unknown; use one of {', '.join(POLICIES)}", field="policy.name"
        )
    if name == "majority_vote" and task != "classification":
        raise InvalidCommand("majority_vote needs a classification deployment", field="policy.name")
    if name == "best_recent":
        for key, kind in (("days", int), ("min_outcomes", int), ("metric", str)):
            if not isinstance(policy.get(key), kind):
                raise InvalidCommand(
                    f"best_recent needs {key} ({kind.__name__})", field=f"policy.{key}"
                )


class Deployment(Aggregate):
    """Where requests are scored: every active model scores, the policy picks the answer."""

    class Created(Aggregate.Created):
        name: str
        task: str
        schema: dict[str, Any]
        policy: dict[str, Any]
        positive_label: Any
        outcome_maturity_days: int
        settings: dict[str, Any]
        actor: str

    @staticmethod
    def create_id(name: str, **_: Any) -> UUID:
        return ids.deployment_id(name)

    @classmethod
    def create(cls, **kwargs: Any) -> Deployment:
        if kwargs.get("task") not in TASKS:
            raise InvalidCommand(f"task must be one of {', '.join(TASKS)}", field="task")
        check_schema(kwargs["schema"])
        check_policy(kwargs["policy"], kwargs["task"])
        if kwargs.get("outcome_maturity_days", 0) < 0:
            raise InvalidCommand(
                "outcome_maturity_days cannot be negative", field="outcome_maturity_days"
            )
        return cls(**kwargs)

    @event(Created)
    def __init__(
        self,
        name: str,
        task: str,
        schema: dict[str, Any],
        policy: dict[str, Any],
        positive_label: Any,
        outcome_maturity_days: int,
        settings: dict[str, Any],
        actor: str,
    ):
        self.name = name
        self.task = task
        self.schema = schema
        self.policy = policy
        self.positive_label = positive_label
        self.outcome_maturity_days = outcome_maturity_days
        self.settings = settings
        self.models: list[str] = []
        self.model_features: dict[str, list[str]] = {}
        self.leader: str | None = None
        self.leader_set_by: dict[str, Any] | None = None

    class SchemaChanged(Aggregate.Event):
        schema: dict[str, Any]
        actor: str

    class PolicyChanged(Aggregate.Event):
        policy: dict[str, Any]
        actor: str

    class SettingsChanged(Aggregate.Event):
        settings: dict[str, Any]
        actor: str

    class ModelAdded(Aggregate.Event):
        model_id: str
        features: list[str]
        actor: str

    class ModelRetired(Aggregate.Event):
        model_id: str
        reason: str
        actor: str

    class LeaderChanged(Aggregate.Event):
        class_version = 2  # 2 adds occurred_at
        model_id: str
        previous: str | None
        reason: str
        evidence: dict[str, Any]
        actor: str
        occurred_at: int | None  # µs: the historic instant of loaded history, else None

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["occurred_at"] = None

    # -- guards ----------------------------------------------------------------
    @property
    def feature_names(self) -> list[str]:
        return [f["name"] for f in self.schema["features"]]

    def check_version(self, expected: int | None) -> None:
        if expected is not None and expected != self.version:
            raise StaleVersion(
                f"deployment {self.name!r} is at version {self.version}, not {expected}; read it again"
            )

    def check_active(self, model_id: str) -> None:
        if model_id not in self.models:
            raise NotFound(
                f"model {model_id} is not active in deployment {self.name!r}", field="model_id"
            )

    def check_fits(self, features: list[str], task: str) -> None:
        if task != self.task:
            raise SchemaMismatch(
                f"a {task} model cannot join the {self.task} deployment {self.name!r}"
            )
        missing = sorted(set(features) - set(self.feature_names))
        if missing:
            raise SchemaMismatch(
                f"the model reads {', '.join(missing)}, which deployment {self.name!r} does not have"
            )

    # -- commands ----------------------------------------------------------------
    def change_schema(
        self, schema: dict[str, Any], actor: str, expected_version: int | None
    ) -> None:
        self.check_version(expected_version)
        check_schema(schema)
        names = {f["name"] for f in schema["features"]}
        for model_id, features in self.model_features.items():
            if not set(features) <= names:
                raise SchemaMismatch(f"active model {model_id} reads features the new schema drops")
        self._schema_changed(schema=schema, actor=actor)

    def change_policy(
        self, policy: dict[str, Any], actor: str, expected_version: int | None
    ) -> None:
        self.check_version(expected_version)
        check_policy(policy, self.task)
        self._policy_changed(policy=policy, actor=actor)

    def change_settings(
        self, settings: dict[str, Any], actor: str, expected_version: int | None
    ) -> None:
        self.check_version(expected_version)
        self._settings_changed(settings={**self.settings, **settings}, actor=actor)

    def add_model(
        self,
        model_id: str,
        features: list[str],
        task: str,
        actor: str,
        occurred_at: int | None = None,
    ) -> None:
        if model_id in self.models:
            raise Conflict(f"model {model_id} is already active in deployment {self.name!r}")
        self.check_fits(features, task)
        self._model_added(model_id=model_id, features=list(features), actor=actor)
        if self.leader is None:
            self._leader_changed(
                model_id=model_id,
                previous=None,
                reason="first model of the deployment",
                evidence={},
                actor=actor,
                occurred_at=occurred_at,
            )

    def retire_model(self, model_id: str, reason: str, actor: str) -> None:
        self.check_active(model_id)
        if model_id == self.leader and len(self.models) > 1:
            raise Conflict(
                f"model {model_id} leads {self.name!r}: promote another model before retiring it"
            )
        self._model_retired(model_id=model_id, reason=reason, actor=actor)

    def promote(
        self,
        model_id: str,
        reason: str,
        actor: str,
        evidence: dict[str, Any] | None = None,
        expected_version: int | None = None,
        occurred_at: int | None = None,
    ) -> None:
        """`occurred_at` (µs): the historic instant of loaded history, checked by the caller
        (`ledger.domain.access.historic_instant`); recorded-at stays the ledger's."""
        self.check_version(expected_version)
        self.check_active(model_id)
        if not reason or not reason.strip():
            raise InvalidCommand("a promotion needs a reason", field="reason")
        if model_id == self.leader:
            raise Conflict(f"model {model_id} already leads {self.name!r}")
        self._leader_changed(
            model_id=model_id,
            previous=self.leader,
            reason=reason,
            evidence=evidence or {},
            actor=actor,
            occurred_at=occurred_at,
        )

    # -- mutators ----------------------------------------------------------------
    @event(SchemaChanged)
    def _schema_changed(self, schema: dict[str, Any], actor: str) -> None:
        self.schema = schema

    @event(PolicyChanged)
    def _policy_changed(self, policy: dict[str, Any], actor: str) -> None:
        self.policy = policy

    @event(SettingsChanged)
    def _settings_changed(self, settings: dict[str, Any], actor: str) -> None:
        self.settings = settings

    @event(ModelAdded)
    def _model_added(self, model_id: str, features: list[str], actor: str) -> None:
        self.models.append(model_id)
        self.model_features[model_id] = features

    @event(ModelRetired)
    def _model_retired(self, model_id: str, reason: str, actor: str) -> None:
        self.models.remove(model_id)
        self.model_features.pop(model_id, None)
        if self.leader == model_id:
            self.leader = None

    @event(LeaderChanged)
    def _leader_changed(
        self,
        model_id: str,
        previous: str | None,
        reason: str,
        evidence: dict[str, Any],
        actor: str,
        occurred_at: int | None = None,
    ) -> None:
        self.leader = model_id
        self.leader_set_by = {"actor": actor, "reason": reason, "evidence": evidence}
