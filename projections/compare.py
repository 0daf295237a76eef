"""Compare two ledgers' answers to the same requests: the production-parallel verdict."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from ledger import log
from ledger.application import Ledger
from ledger.domain.predictions import Prediction
from ledger.ids import as_uuid

PAGE = 2000


@dataclass
class Answer:
    value: Any
    served_model: str
    outputs: dict[str, Any]


@dataclass
class Comparison:
    """Agreement on the served value, per-model accuracy on outcomes, and the rows that differ."""

    compared: int = 0
    agreed: int = 0
    only_baseline: int = 0
    only_candidate: int = 0
    differences: list[dict[str, Any]] = field(default_factory=list)
    model_metrics: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def agreement_rate(self) -> float | None:
        return self.agreed / self.compared if self.compared else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "compared": self.compared,
            "agreed": self.agreed,
            "agreement_rate": self.agreement_rate,
            "only_baseline": self.only_baseline,
            "only_candidate": self.only_candidate,
            "model_metrics": self.model_metrics,
            "differences": self.differences,
        }


def answers(
    ledger: Ledger, after: int = 0, until: int | None = None, deployment: str | None = None
) -> Iterator[tuple[tuple[str, str], Answer]]:
    """(deployment, request id) -> the served answer, in position order."""
    last = after
    while True:
        with ledger.engine.connect() as conn:
            rows = log.rows(conn, after=last, upto=until, classes=[Prediction.Made], limit=PAGE)
        if not rows:
            return
        for row in rows:
            made = log.decode(ledger.mapper, row)
            if deployment and made.deployment != deployment:
                continue
            served = made.served_model
            yield (
                (made.deployment, made.request_id),
                Answer(made.outputs[served]["value"], served, made.outputs),
            )
        last = rows[-1].position


def outcomes(ledger: Ledger) -> dict[tuple[str, str], Any]:
    """The latest actual outcome per (deployment, request id)."""
    found: dict[tuple[str, str], Any] = {}
    with ledger.engine.connect() as conn:
        originators = log.originators(conn, [Prediction.OutcomeRecorded])
    for originator_id in originators:
        prediction = ledger.prediction(as_uuid(originator_id))
        if prediction.outcome is not None:
            found[(prediction.deployment, prediction.request_id)] = prediction.outcome["actual"]
    return found


def compare(
    baseline: Ledger,
    candidate: Ledger,
    after: int = 0,
    deployment: str | None = None,
    max_differences: int = 100,
    candidate_after: int | None = None,
) -> Comparison:
    """Join both ledgers' answers on (deployment, request id); outcomes come from the baseline,
    and for requests only the candidate answered (a replayed file) from the candidate.

    Each side counts its predictions after its own position (`candidate_after`, default
    `after`): a clone shares the history below the cut, which is no side's own.
    """
    base = dict(answers(baseline, after, None, deployment))
    result = Comparison()
    actuals, candidate_actuals = outcomes(baseline), outcomes(candidate)
    hits: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    seen = set()
    since = after if candidate_after is None else candidate_after
    for key, answer in answers(candidate, since, None, deployment):
        original = base.get(key)
        if original is None:
            result.only_candidate += 1
            if key in candidate_actuals:
                _tally(hits, "candidate", answer, candidate_actuals[key])
            continue
        seen.add(key)
        result.compared += 1
        if answer.value == original.value:
            result.agreed += 1
        elif len(result.differences) < max_differences:
            result.differences.append(
                {
                    "deployment": key[0],
                    "request_id": key[1],
                    "baseline": {"value": original.value, "model": original.served_model},
                    "candidate": {"value": answer.value, "model": answer.served_model},
                }
            )
        if key in actuals:
            _tally(hits, "baseline", original, actuals[key])
            _tally(hits, "candidate", answer, actuals[key])
    result.only_baseline = len(base) - len(seen)
    result.model_metrics = {
        k: {"accuracy": c / n, "count": n} for k, (c, n) in sorted(hits.items()) if n
    }
    return result


def _tally(hits: dict[str, list[int]], side: str, answer: Answer, actual: Any) -> None:
    """Count each model's output of one answer against the actual outcome."""
    for model_id, output in answer.outputs.items():
        tally = hits[f"{side}:{model_id}"]
        tally[0] += output["value"] == actual
        tally[1] += 1
