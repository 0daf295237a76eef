"""The ledger's application service: each command is get, change, save."""

from __future__ import annotations

import getpass
import os
import secrets
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import cached_property
from typing import Any, NamedTuple, cast
from uuid import UUID

import sqlalchemy as sa
from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import IntegrityError, OperationalError, StoredEvent

from ledger import deployment_watch, ids, recording, values
from ledger import outcomes as outcomes_module
from ledger.artifacts import ArtifactStore
from ledger.database import create_engine, is_postgres
from ledger.domain.access import ApiKey, SigningKey
from ledger.domain.audits import Explanation
from ledger.domain.datasets import Dataset
from ledger.domain.deployments import Deployment
from ledger.domain.history import History
from ledger.domain.models import Model
from ledger.domain.predictions import NewPrediction, Prediction
from ledger.domain.training import TrainingRun
from ledger.errors import (
    AlreadyExists,
    Conflict,
    NotAuthorized,
    NotFound,
    StaleVersion,
    StorageUnavailable,
)
from ledger.health import HealthCommands
from ledger.key_digests import KeyDigests
from ledger.keyfiles import pepper
from ledger.outcomes import NewOutcome, RecordedOutcome, Reporter
from ledger.privacy import ForgetResult, Sealer, default_sealer, forget
from ledger.read_cache import ReadCache
from ledger.repository import LedgerRepository
from ledger.settings import Settings
from ledger.storage import LedgerFactory, LedgerRecorder
from ledger.timeline import parse_instant, version_at
from ledger.writer_process import inherited_socket


def cli_actor(ledger: Ledger) -> str:
    """Who a command-line change is by: the API key given to it, once checked, else the OS user.

    The key is checked as the API checks a bearer key, so a made-up key records nothing.
    """
    key = ledger.settings.api_key
    if key:
        record = ledger.authenticate(key)
        if record is None:
            raise NotAuthorized(
                "LEDGER_API_KEY is not a key this ledger issued, or it is revoked or expired: "
                "set a valid key, or unset it to act as your OS user"
            )
        return f"key:{record.key_id}"
    try:
        user = getpass.getuser()
    except Exception:  # no user name in some containers
        user = str(os.getuid())
    return f"os-user:{user}"


class IssuedKey(NamedTuple):
    """A new API key: its id, and the key itself, shown this once (only its HMAC is stored)."""

    key_id: str
    key: str


class Ledger(HealthCommands, Application[UUID]):
    """Records provenance events; reads that cross aggregates go to projections."""

    name = "Ledger"

    def __init__(self, settings: Settings, engine: sa.Engine | None = None):
        self.settings = settings  # read once by the entry point (Settings.from_env)
        self.engine = engine or create_engine(self.settings.database_url)
        super().__init__(env={"IS_SNAPSHOTTING_ENABLED": "n"})
        self.artifacts = ArtifactStore(self.engine, self.settings.artifact_cache_bytes)
        self.artifacts.create_table()
        if self.settings.group_commit:
            writer = inherited_socket()
            if writer and self.settings.writer_process and is_postgres(self.engine):
                self.recorder_.enable_writer_process(writer)
            else:
                self.recorder_.enable_group_commit(max_events=self.settings.group_commit_max_events)

    # eventsourcing's factory is invariant in its recorder type, so no subclass's factory
    # matches the base signature.
    def construct_factory(self, env: Any) -> LedgerFactory:  # type: ignore[override]
        return LedgerFactory(env, self.engine)

    def construct_repository(self) -> LedgerRepository:
        # No aggregate cache (the env sets none): the defaults are eventsourcing's own.
        return LedgerRepository(event_store=self.events, snapshot_store=self.snapshots)

    @property
    def recorder_(self) -> LedgerRecorder:
        assert isinstance(self.recorder, LedgerRecorder)
        return self.recorder

    def save(self, *objs: Any, **kwargs: Any) -> Any:
        deployments = [o.id for o in objs if isinstance(o, Deployment)]
        if deployments:  # announced in the same transaction, off the group committer
            kwargs["notify_deployments"] = [str(d) for d in deployments]
        try:
            saved = super().save(*objs, **kwargs)
        except OperationalError as error:
            raise StorageUnavailable(f"the event store is unavailable: {error}") from error
        if deployments:
            deployment_watch.saved(self.engine.url, deployments)
        return saved

    def get(self, aggregate_id: UUID, what: str, position: int | None = None) -> Any:
        """The aggregate now, or as it was at a ledger position."""
        try:
            if position is not None:
                with self.engine.connect() as conn:
                    version = version_at(conn, aggregate_id, position)
                if version is None:
                    raise NotFound(f"{what} did not exist at position {position}")
                return self.repository.get(aggregate_id, version=version)
            return self.repository.get(aggregate_id)
        except AggregateNotFoundError:
            raise NotFound(f"{what} not found") from None
        except OperationalError as error:
            raise StorageUnavailable(f"the event store is unavailable: {error}") from error

    # -- datasets, training runs, models ----------------------------------------
    def register_dataset(self, **kwargs: Any) -> UUID:
        """Register a dataset; the same content, role and source is the same dataset."""
        dataset_id = ids.dataset_id(kwargs["fingerprint"], kwargs["role"], kwargs["source"])
        try:
            self.save(Dataset(**kwargs))
        except IntegrityError:
            pass  # already registered: content-addressed, so identical
        return dataset_id

    def start_training(self, **kwargs: Any) -> UUID:
        run = TrainingRun(**kwargs)
        self.save(run)
        return run.id

    def finish_training(self, run_id: UUID, model: dict[str, Any], **completed: Any) -> UUID:
        """Complete the run and register its model in one transaction."""
        run: TrainingRun = self.get(run_id, f"training run {run_id}")
        registered = Model(training_run_id=str(run_id), provenance="captured", declared={}, **model)
        run.complete(model_id=str(registered.id), **completed)
        self.save(run, registered)
        return registered.id

    def fail_training(self, run_id: UUID, error: str, actor: str) -> None:
        run: TrainingRun = self.get(run_id, f"training run {run_id}")
        run.fail(error=error, actor=actor)
        self.save(run)

    def register_model(self, **kwargs: Any) -> UUID:
        model = Model(**kwargs)
        self.save(model)
        return model.id

    @cached_property
    def read_cache(self) -> ReadCache:
        """Models, datasets, finished runs, deployments at a version: what no event changes."""
        return ReadCache()

    def model(self, model_id: UUID | str, position: int | None = None) -> Model:
        uid = _uuid(model_id, "model")
        if position is not None:  # whether it existed then is a question for the store
            return cast(Model, self.get(uid, f"model {model_id}", position))
        return self.read_cache.get(
            uid, lambda: cast(Model, self.get(uid, f"model {model_id}"))
        )  # one event: immutable

    def training_run(self, run_id: UUID | str) -> TrainingRun:
        uid = _uuid(run_id, "training run")
        return self.read_cache.get(
            uid,
            lambda: cast(TrainingRun, self.get(uid, f"training run {run_id}")),
            final=lambda run: run.status != "running",
        )

    def dataset(self, dataset_id: UUID | str) -> Dataset:
        uid = _uuid(dataset_id, "dataset")
        return self.read_cache.get(
            uid, lambda: cast(Dataset, self.get(uid, f"dataset {dataset_id}"))
        )  # one event: immutable

    # -- deployments -------------------------------------------------------------
    def create_deployment(self, **kwargs: Any) -> Deployment:
        kwargs.setdefault("settings", {})
        deployment = Deployment.create(**kwargs)
        try:
            self.save(deployment)
        except IntegrityError:
            raise AlreadyExists(
                f"deployment {kwargs['name']!r} already exists", field="name"
            ) from None
        return deployment

    def deployment(self, name: str, position: int | None = None) -> Deployment:
        return cast(Deployment, self.get(ids.deployment_id(name), f"deployment {name!r}", position))

    def change_deployment(
        self,
        name: str,
        actor: str,
        expected_version: int | None = None,
        schema: dict[str, Any] | None = None,
        policy: dict[str, Any] | None = None,
        settings: dict[str, Any] | None = None,
    ) -> Deployment:
        deployment = self.deployment(name)
        if schema is not None:
            deployment.change_schema(schema, actor, expected_version)
            expected_version = deployment.version
        if policy is not None:
            deployment.change_policy(policy, actor, expected_version)
            expected_version = deployment.version
        if settings is not None:
            deployment.change_settings(settings, actor, expected_version)
        self._save_versioned(deployment)
        return deployment

    def add_model(
        self, name: str, model_id: UUID | str, actor: str, occurred_at: int | None = None
    ) -> Deployment:
        deployment = self.deployment(name)
        model = self.model(model_id)
        deployment.add_model(str(model.id), model.features, model.task, actor, occurred_at)
        self._save_versioned(deployment)
        return deployment

    def retire_model(self, name: str, model_id: str, reason: str, actor: str) -> Deployment:
        deployment = self.deployment(name)
        deployment.retire_model(
            model_id, values.require_text(reason, "reason", values.NOTE_MAX), actor
        )
        self._save_versioned(deployment)
        return deployment

    def promote(
        self,
        name: str,
        model_id: str,
        reason: str,
        actor: str,
        evidence: dict[str, Any] | None = None,
        expected_version: int | None = None,
        occurred_at: int | None = None,
    ) -> Deployment:
        deployment = self.deployment(name)
        deployment.promote(model_id, reason, actor, evidence, expected_version, occurred_at)
        self._save_versioned(deployment)
        return deployment

    def _save_versioned(self, aggregate: Any) -> None:
        # Two writers that read the same version race for the next one; the store picks one.
        try:
            self.save(aggregate)
        except IntegrityError:
            kind = type(aggregate).__name__.lower()
            raise StaleVersion(f"{kind} changed concurrently; read it again and retry") from None

    # -- predictions and outcomes --------------------------------------------------
    def record_predictions(
        self,
        predictions: Sequence[Prediction | NewPrediction],
        made: Sequence[Sequence[StoredEvent]] | None = None,
    ) -> recording.Recorded:
        """Record new predictions; a retried one returns the original (same body) or 409.

        Returns each prediction as stored, with its position (None for a returned original).
        `made`: their stored events, when the caller encoded them already (a batch does).
        """
        return recording.record_predictions(self, predictions, made)

    def recorded_prediction_ids(self, prediction_ids: Sequence[UUID]) -> set[UUID]:
        """Which of these predictions are recorded already."""
        return recording.recorded_ids(self.engine, prediction_ids)

    def _existing_prediction(self, prediction_id: UUID) -> Prediction | None:
        try:
            return self.repository.get(prediction_id)
        except AggregateNotFoundError:
            return None

    def prediction(self, prediction_id: UUID | str, position: int | None = None) -> Prediction:
        uid = _uuid(prediction_id, "prediction")
        return cast(Prediction, self.get(uid, f"prediction {prediction_id}", position))

    def record_outcome(
        self, prediction_id: UUID | str, actual: Any, observed_at: str | None, actor: str
    ) -> Prediction:
        """Append an outcome unconditionally (a second one is a correction); no retry rules."""
        for _attempt in range(5):  # concurrent outcomes for one prediction race for a version
            prediction = self.prediction(prediction_id)
            prediction.record_outcome(actual, observed_at, actor)
            try:
                self.save(prediction)
                return prediction
            except IntegrityError:
                continue
        raise Conflict(f"prediction {prediction_id} is being changed concurrently; retry")

    def record_outcomes(
        self, outcomes: Sequence[NewOutcome | tuple[Any, ...]], reporter: Reporter | str
    ) -> list[RecordedOutcome]:
        """Record a list of outcomes in one transaction, all or none; retries record nothing.

        The rules (who may report, outcome ids, retries, corrections) are ledger/outcomes.py's.
        """
        return outcomes_module.record_outcomes(self, outcomes, reporter)

    def record_explanation(
        self, prediction_id: str, model_id: str, method: str, actor: str, position: int | None
    ) -> bool:
        """Record that an explanation was given; False when this caller had one today already."""
        day = datetime.now(UTC).date().isoformat()
        given = Explanation(
            prediction_id=prediction_id,
            model_id=model_id,
            method=method,
            day=day,
            as_of_position=position,
            actor=actor,
        )
        try:
            self.save(given)
        except IntegrityError:
            return False  # same prediction, caller and day: recorded once
        return True

    # -- keys ----------------------------------------------------------------------
    @cached_property
    def key_digests(self) -> KeyDigests:
        """API-key digests under this server's pepper (read once per process)."""
        return KeyDigests(pepper(self.settings.secrets_dir, self.settings.pepper))

    def key_digest(self, key: str) -> str:
        return self.key_digests.digest(key)

    def issue_api_key(
        self,
        role: str,
        actor: str,
        label: str = "",
        expires_at: str | None = None,
        client: str | None = None,
        grants: Sequence[str] = (),
    ) -> IssuedKey:
        """Issue a key of a client (its own, named after it, when None) with its grants.

        The secret is returned once and only its HMAC is stored. A key of an existing
        client shares its request ids and predictions: that is how a key is rotated.
        """
        key_id = secrets.token_hex(6)
        key = f"pl_{key_id}_{secrets.token_urlsafe(24)}"
        self.save(
            ApiKey.issue(
                key_id=key_id,
                role=role,
                secret_digest=self.key_digest(key),
                expires_at=expires_at,
                label=label,
                actor=actor,
                client=client,
                grants=list(grants),
            )
        )
        return IssuedKey(key_id, key)

    def api_key(self, key_id: str) -> ApiKey:
        return cast(ApiKey, self.get(ids.api_key_id(key_id), f"API key {key_id}"))

    @cached_property
    def _clients(self) -> dict[str, str]:
        return {}

    def client_of(self, actor: str) -> str:
        """The client of the key an event names as actor (the default client for any other).

        A prediction's client is its key's: a key's client never changes, so it is read once.
        """
        client = self._clients.get(actor)
        if client is None:
            client = ids.DEFAULT_CLIENT
            kind, _, key_id = actor.partition(":")
            if kind == "key" and key_id:
                try:
                    client = cast(ApiKey, self.repository.get(ids.api_key_id(key_id))).client
                except AggregateNotFoundError:
                    pass
            if len(self._clients) >= 100_000:
                self._clients.clear()
            self._clients[actor] = client
        return client

    def revoke_api_key(self, key_id: str, reason: str, actor: str) -> None:
        key: ApiKey = self.get(ids.api_key_id(key_id), f"API key {key_id}")
        key.revoke(reason, actor)
        self.save(key)

    def authenticate(self, key: str) -> ApiKey | None:
        """The key's record if the key is genuine, unrevoked and unexpired."""
        parts = key.split("_")
        if len(parts) < 3 or parts[0] != "pl":
            return None
        try:
            record: ApiKey = self.repository.get(ids.api_key_id(parts[1]))
        except AggregateNotFoundError:
            return None
        if not self.key_digests.matches(record.secret_digest, key):
            return None
        if record.revoked:
            return None
        expires = record.expires_at and parse_instant(record.expires_at, "expires_at")
        if expires and expires <= datetime.now(UTC):
            return None
        return record

    # -- history loaded with historic instants ------------------------------------
    def record_history_load(
        self,
        span_from: str,
        span_to: str,
        deployments: Sequence[str],
        simulated: bool,
        loader: str,
        note: str,
        actor: str,
    ) -> History:
        """Record that historic data was loaded: the span of its instants, whose key gave them,
        and whether they are simulated (what the log and `ledger state` then say)."""
        try:
            history = self.history()
        except NotFound:
            history = History(actor=actor)
        history.load(span_from, span_to, list(deployments), simulated, loader, note, actor)
        self.save(history)
        return history

    def history(self, position: int | None = None) -> History:
        """Every load of historic data (NotFound when there was none), or as at a position."""
        return cast(History, self.get(ids.history_id(), "history", position))

    def record_signing_key(
        self, key_id: str, public_key: str, actor: str, replaces: str | None = None
    ) -> None:
        new = SigningKey(
            key_id=key_id,
            algorithm="ed25519",
            public_key=public_key,
            replaces=replaces,
            actor=actor,
        )
        if replaces:
            old: SigningKey = self.get(ids.signing_key_id(replaces), f"signing key {replaces}")
            old.rotate(successor=key_id, actor=actor)
            self.save(old, new)
        else:
            self.save(new)

    # -- privacy (ledger/privacy, docs/PRIVACY.md) ------------------------------------
    @cached_property
    def sealer(self) -> Sealer:
        """Seals personal fields per subject; its key table is created on first use."""
        return default_sealer(self.engine, self.settings)

    def forget_subject(
        self, subject_id: Any, reason: str, actor: str, deployment: str | None = None
    ) -> ForgetResult:
        """Record SubjectForgotten and destroy the subject's keys (crypto-shredding)."""
        return forget(self, subject_id, reason, actor, deployment)

    def close(self) -> None:
        super().close()
        self.engine.dispose()


def _uuid(value: UUID | str, what: str) -> UUID:
    if isinstance(value, UUID):
        return value
    try:
        return UUID(str(value))
    except ValueError:
        raise NotFound(f"{what} {value!r} not found: not a valid id") from None
