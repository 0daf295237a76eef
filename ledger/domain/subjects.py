"""Data subjects, known only by a keyed hash of their id: the record of their erasures."""

from __future__ import annotations

import uuid
from typing import Any

from eventsourcing.domain import Aggregate, event

from ledger import ids
from ledger.errors import InvalidCommand


def subject_aggregate_id(subject_ref: str) -> uuid.UUID:
    return uuid.uuid5(ids.NAMESPACE, f"subject:{subject_ref}")


class Subject(Aggregate):
    """A person whose personal data the ledger sealed; no event here holds personal data."""

    class Known(Aggregate.Created):
        subject_ref: str

    @staticmethod
    def create_id(subject_ref: str, **_: Any) -> uuid.UUID:
        return subject_aggregate_id(subject_ref)

    @event(Known)
    def __init__(self, subject_ref: str):
        self.subject_ref = subject_ref
        self.forgotten_everywhere = False
        self.forgotten_in: list[str] = []
        self.erasures = 0

    class Forgotten(Aggregate.Event):
        """SubjectForgotten: the keys of these deployments were destroyed; projections erase."""

        subject_ref: str
        deployment: (
            str | None
        )  # None: every deployment (a person's request); else retention's scope
        deployments: list[str]  # the deployments whose key for this subject is destroyed
        models: list[str]  # models trained on rows of this subject: they may hold its values
        reason: str
        actor: str

    def is_forgotten(self, deployment: str | None) -> bool:
        return self.forgotten_everywhere or (
            deployment is not None and deployment in self.forgotten_in
        )

    def forget(
        self,
        deployment: str | None,
        deployments: list[str],
        models: list[str],
        reason: str,
        actor: str,
    ) -> None:
        if not reason or not reason.strip():
            raise InvalidCommand(
                "an erasure needs a reason (e.g. the request's reference)", field="reason"
            )
        self._forgotten(
            subject_ref=self.subject_ref,
            deployment=deployment,
            deployments=sorted(deployments),
            models=sorted(models),
            reason=reason,
            actor=actor,
        )

    @event(Forgotten)
    def _forgotten(
        self,
        subject_ref: str,
        deployment: str | None,
        deployments: list[str],
        models: list[str],
        reason: str,
        actor: str,
    ) -> None:
        self.erasures += 1
        if deployment is None:
            self.forgotten_everywhere = True
        elif deployment not in self.forgotten_in:
            self.forgotten_in.append(deployment)
