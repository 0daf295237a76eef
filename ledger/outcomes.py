"""Recording outcomes: a retried outcome returns the original, and nothing is recorded twice.

An outcome may carry the client's `outcome_id`, scoped per deployment like a request id:
the same id with the same body returns the outcome first recorded under it, with another
body it is refused. An outcome without an id that equals the prediction's latest one is a
retry too. Anything else is recorded; a second outcome of a prediction is a correction.
The check reads recorded state (an OutcomeClaim per id, saved in the outcome's
transaction), so it holds across workers and restarts.

Who may report: the client that made the prediction, or a client granted report-outcomes
on its deployment. A prediction named by (deployment, request id) is looked up in the
reporter's own namespace, so it is the reporter's or unknown (404); a prediction named by
id that is another client's and not granted gets the same refusal (403) as an id that names
nothing, after the same single read, so a refusal never tells whether it exists. Outcome
ids, like request ids, are the reporting client's own.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError

from ledger import ids
from ledger.domain.access import granted
from ledger.domain.predictions import OutcomeClaim, Prediction
from ledger.errors import Conflict, NotAuthorized, NotFound, OutcomeIdReused


class NewOutcome(NamedTuple):
    """An outcome to record: what came true for a prediction, under the client's id if any.

    The prediction is named by its id, or (prediction_id None) by deployment and request id
    in the reporter's namespace.
    """

    prediction_id: UUID | str | None
    actual: Any
    observed_at: str | None
    outcome_id: str | None = None
    deployment: str | None = None
    request_id: str | None = None


class Reporter(NamedTuple):
    """Who reports: the actor events record, its client and the client's grants."""

    actor: str
    client: str = ids.DEFAULT_CLIENT
    grants: frozenset[str] = frozenset()

    def may_report(self, deployment: str, client: str) -> bool:
        """On a prediction of this client in this deployment."""
        return client == self.client or granted(self.grants, "report-outcomes", deployment)


class RecordedOutcome(NamedTuple):
    """The prediction, the outcome that answers for the item, and whether it was a retry."""

    prediction: Prediction
    outcome: dict[str, Any]
    retried: bool


def record_outcomes(
    app: Any, outcomes: Sequence[NewOutcome | tuple[Any, ...]], reporter: Reporter | str
) -> list[RecordedOutcome]:
    """Record the new outcomes of a list in one transaction: all of them or none.

    A reporter given as an actor alone is a key of the default client without grants.
    """
    by = reporter if isinstance(reporter, Reporter) else Reporter(reporter)
    for _attempt in range(5):  # concurrent outcomes race for a prediction's version or an id
        pending = _Pending(app)
        answers = [pending.add(i, NewOutcome(*item), by) for i, item in enumerate(outcomes)]
        try:
            pending.save()
            return answers
        except IntegrityError:
            continue
    raise Conflict("these predictions are being changed concurrently; retry")


class _Pending:
    """The predictions and outcome ids one list touches, read once and saved together."""

    def __init__(self, app: Any):
        self.app = app
        self.predictions: dict[UUID, Prediction] = {}
        self.changed: dict[UUID, Prediction] = {}
        self.claims: dict[UUID, OutcomeClaim] = {}

    def add(self, index: int, item: NewOutcome, by: Reporter) -> RecordedOutcome:
        prediction = self.reported(item, index, by)  # before anything else is read or said
        actor = by.actor
        if item.outcome_id is not None:
            claim_id = ids.outcome_claim_id(prediction.deployment, item.outcome_id, by.client)
            claim = self.claims.get(claim_id) or self._recorded_claim(claim_id)
            if claim is not None:
                return self.original(claim, prediction, item, index)
            self.claims[claim_id] = OutcomeClaim(
                deployment=prediction.deployment,
                outcome_id=item.outcome_id,
                prediction_id=str(prediction.id),
                client=by.client,
            )
        elif prediction.outcome is not None and same_outcome(prediction.outcome, item):
            return RecordedOutcome(prediction, prediction.outcome, True)
        prediction.record_outcome(item.actual, item.observed_at, actor, item.outcome_id)
        self.changed[prediction.id] = prediction
        return RecordedOutcome(prediction, prediction.outcomes[-1], False)

    def reported(self, item: NewOutcome, index: int, by: Reporter) -> Prediction:
        """The item's prediction, if the reporter may report on it."""
        if item.prediction_id is None:  # the reporter's own request id: nothing else to hide
            own = ids.prediction_id(str(item.deployment), str(item.request_id), by.client)
            return self.prediction(own, index)
        try:
            prediction_id = UUID(str(item.prediction_id))
        except ValueError:
            raise NotFound(f"prediction {item.prediction_id!r} not found: not a valid id") from None
        found = self.predictions.get(prediction_id) or self.app._existing_prediction(prediction_id)
        if found is None or not by.may_report(found.deployment, self.app.client_of(found.caller)):
            raise NotAuthorized(
                f"prediction {prediction_id} (item {index}) is none this client may report "
                "an outcome for: outcomes come from the client that made the prediction or "
                "from one granted report-outcomes on its deployment; nothing was recorded",
                field=str(index),
                index=index,
            )
        self.predictions[prediction_id] = found
        return found

    def prediction(self, prediction_id: UUID, index: int) -> Prediction:
        if prediction_id not in self.predictions:
            found = self.app._existing_prediction(prediction_id)
            if found is None:
                raise NotFound(
                    f"prediction {prediction_id} (item {index}) not found; nothing was recorded",
                    field=str(index),
                    index=index,
                )
            self.predictions[prediction_id] = found
        return self.predictions[prediction_id]

    def _recorded_claim(self, claim_id: UUID) -> OutcomeClaim | None:
        try:
            claim: OutcomeClaim = self.app.repository.get(claim_id)
            return claim
        except AggregateNotFoundError:
            return None

    def original(
        self, claim: OutcomeClaim, prediction: Prediction, item: NewOutcome, index: int
    ) -> RecordedOutcome:
        """The outcome first recorded under the item's id, if the item is the same outcome."""
        claimed = self.prediction(UUID(claim.prediction_id), index)
        outcome = claimed.outcome_with_id(claim.outcome_id)
        if outcome is None and claimed.id not in self.changed:
            # Read before the claim's transaction committed, which holds its outcome too.
            fresh = self.app._existing_prediction(claimed.id)
            if fresh is not None:
                self.predictions[claimed.id] = claimed = fresh
                outcome = claimed.outcome_with_id(claim.outcome_id)
        if outcome is None:
            raise Conflict(f"outcome_id {claim.outcome_id!r} is being recorded; retry")
        differences = [
            *([f"prediction {claimed.id}"] if claimed.id != prediction.id else []),
            *differing(outcome, item),
        ]
        if differences:
            raise OutcomeIdReused(
                f"outcome_id {claim.outcome_id!r} was already used for another outcome "
                f"({'; '.join(differences)}); a correction needs a new outcome_id",
                field="outcome_id",
                index=index,
            )
        return RecordedOutcome(claimed, outcome, True)

    def save(self) -> None:
        if self.changed or self.claims:
            self.app.save(*self.changed.values(), *self.claims.values())


def same_outcome(recorded: dict[str, Any], item: NewOutcome) -> bool:
    return not differing(recorded, item)


def differing(recorded: dict[str, Any], item: NewOutcome) -> list[str]:
    """What the item says otherwise than the recorded outcome, each as `field was (is)`."""
    found = []
    if not same_value(recorded["actual"], item.actual):
        found.append(f"actual {recorded['actual']!r}, not {item.actual!r}")
    if not same_instant(recorded["observed_at"], item.observed_at):
        found.append(f"observed_at {recorded['observed_at']!r}, not {item.observed_at!r}")
    return found


def same_value(a: Any, b: Any) -> bool:
    """Equal labels or numbers; true is not 1 (JSON tells them apart)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    return bool(a == b)


def same_instant(a: str | None, b: str | None) -> bool:
    """The same observed instant, however its offset is written."""
    if a is None or b is None or a == b:
        return a == b
    try:
        return datetime.fromisoformat(a) == datetime.fromisoformat(b)
    except ValueError:
        return False
