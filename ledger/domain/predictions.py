"""Predictions: what was asked, what every active model answered, and what came true."""

from __future__ import annotations

import operator
from collections.abc import Sequence
from dataclasses import InitVar, dataclass, field, fields
from datetime import datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event
from eventsourcing.persistence import Mapper, StoredEvent
from eventsourcing.utils import get_topic

from ledger import ids

OCCURRED_AT = "occurred_at"
"""Key in Prediction.Made's `scoring` for when the row was scored in business time (epoch
micros), set only when historic traffic is loaded. recorded_at stays when the ledger
recorded it (monotone, what as_of reads); the projections' prediction day reads this first."""


class Prediction(Aggregate):
    """One scored row; its id derives from (deployment, client, request id), so retries dedupe.

    The client is not in the event: it is the client of the key the event names as actor
    (recorded once, in the key's Issued event; a key's client never changes), and an actor
    that is no issued key is the default client's.
    """

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
    def create_id(deployment: str, request_id: str, **_: Any) -> UUID:
        return ids.prediction_id(deployment, request_id)  # the default client's: see the class

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
        class_version = 2
        actual: Any
        observed_at: str | None
        correction: bool
        actor: str
        outcome_id: str | None  # the client's id of this outcome, if it sent one

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["outcome_id"] = None

    def record_outcome(
        self, actual: Any, observed_at: str | None, actor: str, outcome_id: str | None = None
    ) -> None:
        self._outcome_recorded(
            actual=actual,
            observed_at=observed_at,
            correction=bool(self.outcomes),
            actor=actor,
            outcome_id=outcome_id,
        )

    @event(OutcomeRecorded)
    def _outcome_recorded(
        self,
        actual: Any,
        observed_at: str | None,
        correction: bool,
        actor: str,
        outcome_id: str | None,
    ) -> None:
        self.outcomes.append(
            {
                "actual": actual,
                "observed_at": observed_at,
                "correction": correction,
                "actor": actor,
                "version": self.version,
                "outcome_id": outcome_id,
            }
        )

    def outcome_with_id(self, outcome_id: str) -> dict[str, Any] | None:
        """The outcome recorded under this client id, if any."""
        return next((o for o in self.outcomes if o["outcome_id"] == outcome_id), None)


class OutcomeClaim(Aggregate):
    """An outcome id taken in a deployment by a client: its id derives from (deployment,
    client, outcome id), so the store refuses a second claim and a retried outcome finds the
    first, while another client's same id is another claim."""

    class Claimed(Aggregate.Created):
        class_version = 2
        deployment: str
        outcome_id: str
        prediction_id: str
        client: str  # the reporting client, whose outcome ids these are

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["client"] = ids.DEFAULT_CLIENT  # claimed before clients: the shared ids

    @staticmethod
    def create_id(deployment: str, outcome_id: str, client: str, **_: Any) -> UUID:
        return ids.outcome_claim_id(deployment, outcome_id, client)

    @event(Claimed)
    def __init__(self, deployment: str, outcome_id: str, prediction_id: str, client: str):
        self.deployment = deployment
        self.outcome_id = outcome_id
        self.prediction_id = prediction_id
        self.client = client


PREDICTION_TOPIC = get_topic(Prediction)
MADE_TOPIC = get_topic(Prediction.Made)
# The event's own fields in its order (after originator id, version, timestamp and topic).
MADE_FIELDS = tuple(fields(Prediction.Made))[4:]
MADE_NAMES = tuple(f.name for f in MADE_FIELDS)
_made_values = operator.attrgetter(*MADE_NAMES)  # the fields' values, in order, in one C call


def with_made_fields(cls: type) -> type:
    """Give `cls` the Made event's own fields, first and in the event's order.

    The event is the one definition: a field added to Made is a field of NewPrediction.
    """
    own = cls.__dict__.get("__annotations__", {})
    cls.__annotations__ = {**{f.name: f.type for f in MADE_FIELDS}, **own}
    return cls


@dataclass(slots=True)
@with_made_fields
class NewPrediction:
    """A prediction to record, without the aggregate: its Made event, stored as Prediction's.

    Building the aggregate, collecting its event and walking it through the mapper cost
    ~100 µs a row on the serving path; this writes the same state dict (timestamp, topic,
    then the fields in the event's order) through the same transcoder, byte for byte
    (tests/unit/test_new_prediction.py), for a fraction of that.
    """

    # Whose request id it is: derives the id, and is the client of the key named as actor.
    client: InitVar[str] = ids.DEFAULT_CLIENT
    # The id when the caller derived it already (ids.prediction_ids, as a batch does).
    known_id: InitVar[UUID | None] = None
    # The timestamp when the caller has one (a batch's rows are made at one instant).
    at: InitVar[datetime | None] = None
    id: UUID = field(init=False)
    timestamp: datetime = field(init=False)

    if TYPE_CHECKING:  # the Made event's fields, which with_made_fields adds at import

        def __init__(self, **made_fields: Any) -> None: ...

        def __getattr__(self, name: str) -> Any: ...

    def __post_init__(self, client: str, known_id: UUID | None, at: datetime | None) -> None:
        self.id = (
            ids.prediction_id(self.deployment, self.request_id, client)
            if known_id is None
            else known_id
        )
        self.timestamp = Prediction.Made.create_timestamp() if at is None else at

    def stored_event(
        self, mapper: Mapper[UUID], known_alike: bool = False, timestamp: Any = None
    ) -> StoredEvent:
        """What mapper.to_stored_event(Prediction(...)'s Made event) returns.

        `known_alike`: the caller has checked that orjson writes this state as the standard
        encoder would (see ledger.transcoder), as a batch does for all its rows at once.
        `timestamp`: this prediction's timestamp as the transcoder writes it (`typed`), when
        a batch whose rows share it converted it once.
        """
        encode_alike = getattr(mapper.transcoder, "encode_alike", None)
        state = self.made_state(timestamp)
        data = (
            encode_alike(state)
            if known_alike and encode_alike is not None
            else mapper.transcoder.encode(state)
        )
        return self._stored(mapper, data)

    def made_state(self, timestamp: Any = None) -> dict[str, Any]:
        """The Made event's state as the mapper hands it to the transcoder."""
        state: dict[str, Any] = {
            "timestamp": self.timestamp if timestamp is None else timestamp,
            "originator_topic": PREDICTION_TOPIC,
        }
        state.update(zip(MADE_NAMES, _made_values(self), strict=True))
        return state

    def _stored(self, mapper: Mapper[UUID], data: bytes) -> StoredEvent:
        if mapper.compressor:
            data = mapper.compressor.compress(data)
        if mapper.cipher:
            data = mapper.cipher.encrypt(data)
        return StoredEvent(
            originator_id=self.id, originator_version=1, topic=MADE_TOPIC, state=data
        )


def stored_made_events(
    predictions: Sequence[NewPrediction], mapper: Mapper[UUID], known_alike: bool, timestamp: Any
) -> list[StoredEvent]:
    """[p.stored_event(mapper, known_alike, timestamp) for p in predictions], for a batch.

    States found written alike (`known_alike`) are encoded in one transcoder call
    (`encode_alike_many`): a batch's rows share the timestamp, which starts each state.
    """
    encode_many = getattr(mapper.transcoder, "encode_alike_many", None)
    if not known_alike or encode_many is None:
        return [p.stored_event(mapper, known_alike, timestamp) for p in predictions]
    encoded = encode_many([p.made_state(timestamp) for p in predictions])
    return [p._stored(mapper, data) for p, data in zip(predictions, encoded, strict=True)]
