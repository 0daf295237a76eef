"""History loaded into the ledger: which span of historic instants, by whom, and whether the
instants were simulated (the demo's) or the original ones (a production-parallel replay)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from ledger import ids


class History(Aggregate):
    """One per ledger, an event per load: `ledger state` and the log read it from here, and an
    export or a verification covers it like any other event."""

    class Started(Aggregate.Created):
        actor: str

    @staticmethod
    def create_id(**_: Any) -> UUID:
        return ids.history_id()

    @event(Started)
    def __init__(self, actor: str):
        self.loads: list[dict[str, Any]] = []

    class Loaded(Aggregate.Event):
        span_from: str  # the earliest historic instant loaded (ISO-8601 UTC)
        span_to: str  # ... and the latest
        deployments: list[str]
        simulated: bool  # True: the instants are made up (a demo), not when it happened
        loader: str  # the actor whose key gave the instants (granted load-history)
        note: str
        actor: str

    def load(
        self,
        span_from: str,
        span_to: str,
        deployments: list[str],
        simulated: bool,
        loader: str,
        note: str,
        actor: str,
    ) -> None:
        self._loaded(
            span_from=span_from,
            span_to=span_to,
            deployments=list(deployments),
            simulated=simulated,
            loader=loader,
            note=note,
            actor=actor,
        )

    @event(Loaded)
    def _loaded(
        self,
        span_from: str,
        span_to: str,
        deployments: list[str],
        simulated: bool,
        loader: str,
        note: str,
        actor: str,
    ) -> None:
        self.loads.append(
            {
                "from": span_from,
                "to": span_to,
                "deployments": list(deployments),
                "simulated": simulated,
                "loader": loader,
                "note": note,
                "actor": actor,
                "version": self.version,
            }
        )

    @property
    def simulated(self) -> bool:
        return any(load["simulated"] for load in self.loads)
