"""Recording predictions: the hot path, straight from the mapper to the group committer.

Application.save builds a ProcessingEvent, checks runtime protocols and wraps every
event in a Recording; for a prediction (one Made event, no snapshot, no cache) none of
that is needed, and under many request threads it is GIL time taken from everyone. The
API records NewPrediction (no aggregate at all, the same stored bytes); aggregates still
work. The stored events are built once and kept, so that a batch refused for one retried
request id can be inserted again without the retried row.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple
from uuid import UUID

import sqlalchemy as sa
from eventsourcing.persistence import IntegrityError, OperationalError, StoredEvent

from ledger.database import is_postgres
from ledger.domain.predictions import NewPrediction, Prediction
from ledger.errors import Conflict, StorageUnavailable
from ledger.ids import as_uuid
from ledger.storage import EVENTS_TABLE


class RecordedPrediction(NamedTuple):
    """A prediction as stored, with its position (None when a retry returned the original)."""

    prediction: Prediction | NewPrediction
    position: int | None


Recorded = list[RecordedPrediction]


def record_predictions(
    app: Any,
    predictions: Sequence[Prediction | NewPrediction],
    made: Sequence[Sequence[StoredEvent]] | None = None,
) -> Recorded:
    """Record new predictions; a retried one returns the original (same body) or 409.

    `made`: each prediction's stored events, when the caller encoded them already.
    """
    if made is None:
        made = [stored_events(app, p) for p in predictions]
    try:
        stored = zip(predictions, insert(app, made), strict=True)
        return [RecordedPrediction(p, position) for p, position in stored]
    except IntegrityError:
        pass  # some request ids were seen before: sort out which, insert the rest
    fresh: dict[Any, int] = {}
    originals: dict[Any, Prediction | NewPrediction] = {}
    for index, prediction in enumerate(predictions):
        earlier = predictions[fresh[prediction.id]] if prediction.id in fresh else None
        original = (
            earlier or originals.get(prediction.id) or app._existing_prediction(prediction.id)
        )
        if original is None:
            fresh[prediction.id] = index
        elif original.body_digest != prediction.body_digest:
            raise Conflict(
                f"request_id {prediction.request_id!r} was already used with a different body",
                field="request_id",
            )
        elif earlier is None:
            originals[prediction.id] = original
    try:
        positions = dict(zip(fresh, insert(app, [made[i] for i in fresh.values()]), strict=True))
    except IntegrityError:
        raise Conflict("a request id of this batch is being recorded concurrently; retry") from None
    return [
        RecordedPrediction(p, positions[p.id])
        if fresh.get(p.id) == i
        else RecordedPrediction(originals.get(p.id) or predictions[fresh[p.id]], None)
        for i, p in enumerate(predictions)
    ]


def stored_events(app: Any, prediction: Prediction | NewPrediction) -> list[StoredEvent]:
    if isinstance(prediction, NewPrediction):
        return [prediction.stored_event(app.mapper)]
    return [app.mapper.to_stored_event(e) for e in prediction.collect_events()]


def insert(app: Any, made: Sequence[Sequence[StoredEvent]]) -> list[int]:
    """Insert each prediction's events in one transaction; each prediction's first position."""
    if not made:
        return []
    stored = [e for events in made for e in events]
    try:
        ids = app.recorder.insert_events(stored)
    except OperationalError as error:
        raise StorageUnavailable(f"the event store is unavailable: {error}") from error
    firsts, offset = [], 0
    for events in made:
        firsts.append(ids[offset])
        offset += len(events)
    return firsts


def recorded_ids(engine: sa.Engine, prediction_ids: Sequence[UUID]) -> set[UUID]:
    """Which of these predictions are recorded already (one read per 500 ids)."""
    postgres = is_postgres(engine)
    found: set[UUID] = set()
    sql = sa.text(
        f"SELECT originator_id FROM {EVENTS_TABLE} "
        "WHERE originator_version = 1 AND originator_id IN :ids"
    ).bindparams(sa.bindparam("ids", expanding=True))
    with engine.connect() as conn:
        for start in range(0, len(prediction_ids), 500):
            chunk = prediction_ids[start : start + 500]
            keys = [str(i) if postgres else i.bytes for i in chunk]
            for (stored,) in conn.execute(sql, {"ids": keys}):
                found.add(as_uuid(stored))
    return found
