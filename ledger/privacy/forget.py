"""Forgetting a subject: record SubjectForgotten, then destroy its keys."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError

from ledger.domain.subjects import Subject, subject_aggregate_id
from ledger.errors import NotFound

if TYPE_CHECKING:
    from ledger.application import Ledger

TRAINING_COMPLETED = "ledger.domain.training:TrainingRun.Completed"
SUBJECT_FORGOTTEN = "ledger.domain.subjects:Subject.Forgotten"
MIN_REF_PREFIX = 16  # a trainer may store refs truncated to save space; shorter would collide


@dataclass
class ForgetResult:
    """What a forget did: nothing recorded twice, and which models learned from the subject."""

    subject_ref: str
    already_forgotten: bool
    deployment: str | None = None
    deployments: list[str] = field(default_factory=list)
    models: list[str] = field(default_factory=list)
    position: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "subject_ref": self.subject_ref,
            "status": "already_forgotten" if self.already_forgotten else "forgotten",
            "deployment": self.deployment,
            "deployments": self.deployments,
            "models": self.models,
            "position": self.position,
        }


def forget(
    ledger: Ledger, subject_id: Any, reason: str, actor: str, deployment: str | None = None
) -> ForgetResult:
    """Erase a subject (everywhere, or in one deployment): 404 if the ledger never saw it."""
    return forget_ref(ledger, ledger.sealer.subject_ref(subject_id), reason, actor, deployment)


def forget_ref(
    ledger: Ledger, ref: str, reason: str, actor: str, deployment: str | None = None
) -> ForgetResult:
    """Forget by subject reference (what retention knows); the event first, then the keys."""
    sealer = ledger.sealer
    live = [s for s in sealer.keys.scopes(ref) if deployment is None or s == deployment]
    subject = _existing_subject(ledger, ref)
    if not live and subject is not None and subject.is_forgotten(deployment):
        sealer.destroy(ref, deployment)  # finishes an erasure whose key deletion was interrupted
        return ForgetResult(ref, True, deployment)
    models = models_trained_on(ledger, ref)
    if not live and subject is None and not models:
        raise NotFound("no subject with this id is known to the ledger", field="subject")
    subject = subject or Subject(subject_ref=ref)
    subject.forget(deployment, live, models, reason, actor)
    try:
        recordings = ledger.save(subject)
    except IntegrityError:  # a concurrent forget of the same subject won the race
        return ForgetResult(ref, True, deployment)
    sealer.destroy(ref, deployment)
    return ForgetResult(
        ref, False, deployment, sorted(live), models, recordings[-1].notification.id
    )


def models_trained_on(ledger: Ledger, ref: str) -> list[str]:
    """Models whose training run recorded this subject among its rows."""
    found = set()
    for run in _completed_runs(ledger):
        if _learned_from(getattr(run, "trained_subjects", None), ref):
            found.add(run.model_id)
    return sorted(found)


def _completed_runs(ledger: Ledger, page: int = 500) -> Iterator[Any]:
    # Training runs are few (one per fit), so reading their completions is cheap.
    start: int | None = None
    while True:
        notes = ledger.recorder.select_notifications(
            start, page, topics=[TRAINING_COMPLETED], inclusive_of_start=start is None
        )
        for note in notes:
            yield ledger.mapper.to_domain_event(note)
        if len(notes) < page:
            return
        start = notes[-1].id


def _learned_from(trained: Any, ref: str) -> bool:
    """Accepts {"refs": [...]} (see trained_subjects_record) or a bare list of refs."""
    if not trained:
        return False
    refs = (
        (trained.get("refs") or trained.get("subject_refs") or [])
        if isinstance(trained, dict)
        else trained
    )
    return any(r == ref or (len(r) >= MIN_REF_PREFIX and ref.startswith(r)) for r in refs)


def _existing_subject(ledger: Ledger, ref: str) -> Subject | None:
    try:
        return ledger.repository.get(subject_aggregate_id(ref))
    except AggregateNotFoundError:
        return None


def was_forgotten(ledger: Ledger, ref: str, deployment: str) -> bool:
    """Whether the subject's data in this deployment was erased."""
    subject = _existing_subject(ledger, ref)
    return subject is not None and subject.is_forgotten(deployment)
