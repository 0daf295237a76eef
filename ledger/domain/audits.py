"""Audit records: what auditors and compliance officers took out of the ledger."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from ledger import ids


class Export(Aggregate):
    """A compliance export: who exported what, pinned to which position, with which digests."""

    class Recorded(Aggregate.Created):
        kind: str
        params: dict[str, Any]
        position: int
        files: list[dict[str, Any]]
        actor: str

    @event(Recorded)
    def __init__(
        self,
        kind: str,
        params: dict[str, Any],
        position: int,
        files: list[dict[str, Any]],
        actor: str,
    ):
        self.kind = kind
        self.params = params
        self.position = position
        self.files = files
        self.exported_by = actor


class Restore(Aggregate):
    """A ledger restored from a backup: which dump, up to which position and chain head."""

    class Recorded(Aggregate.Created):
        source: str
        restored_position: int
        restored_head: str | None
        actor: str

    @event(Recorded)
    def __init__(self, source: str, restored_position: int, restored_head: str | None, actor: str):
        self.source = source
        self.restored_position = restored_position
        self.restored_head = restored_head
        self.restored_by = actor


class Explanation(Aggregate):
    """A prediction's explanation was given: to whom, on which day, by which method."""

    class Given(Aggregate.Created):
        prediction_id: str
        model_id: str
        method: str
        day: str
        as_of_position: int | None
        actor: str

    @staticmethod
    def create_id(prediction_id: str, actor: str, day: str, **_: Any) -> UUID:
        return ids.explanation_id(prediction_id, actor, day)

    @event(Given)
    def __init__(
        self,
        prediction_id: str,
        model_id: str,
        method: str,
        day: str,
        as_of_position: int | None,
        actor: str,
    ):
        self.prediction_id = prediction_id
        self.model_id = model_id
        self.method = method
        self.day = day
        self.as_of_position = as_of_position
        self.given_to = actor
