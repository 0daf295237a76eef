"""Datasets: what a model was trained, tested or profiled on, by content."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from ledger import ids


class Dataset(Aggregate):
    """A data set identified by a content fingerprint, with its shape and time range."""

    class Registered(Aggregate.Created):
        fingerprint: str
        rows: int
        columns: list[dict[str, Any]]
        time_range: dict[str, Any] | None
        source: str
        role: str
        actor: str

    @staticmethod
    def create_id(fingerprint: str, role: str, source: str, **_: Any) -> UUID:
        return ids.dataset_id(fingerprint, role, source)

    @event(Registered)
    def __init__(
        self,
        fingerprint: str,
        rows: int,
        columns: list[dict[str, Any]],
        time_range: dict[str, Any] | None,
        source: str,
        role: str,
        actor: str,
    ):
        self.fingerprint = fingerprint
        self.rows = rows
        self.columns = columns
        self.time_range = time_range
        self.source = source
        self.role = role
        self.registered_by = actor
