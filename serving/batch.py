"""A batch request column-wise: each step runs once per column (or model), not once per row.

A batch of thousands of rows spends its time in per-row Python: one flag check per value,
one vote per row, one leaf walk per stored event, and the garbage collector scanning the
heap again and again while ~100 objects a row pile up. Here the rows are validated a column
at a time (`serving.rows.column_loader`, from the same fields as one row's schema), every
model scores them in one call, the flags are decided once per distinct value of a feature
(by `row_flags` itself), the vote once when the policy does not look at values, the
prediction ids are derived once for sealing and the event, the rows share one timestamp,
each subject's key and cipher are made ready once for the batch's rows (`Sealer.seal_many`),
the digests take the keys the sealing held in one go (`Sealer.body_digests`), and the stored
events are checked for the transcoder together and encoded in one call
(`stored_made_events`). What is recorded and answered is
exactly what the row path (`serving.predict`) gives; tests/integration/test_batch_columns.py holds
the two equal, stored bytes included.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from eventsourcing.persistence import StoredEvent

from ledger import ids
from ledger.domain.predictions import NewPrediction, Prediction, stored_made_events
from ledger.ids import DEFAULT_CLIENT
from ledger.transcoder import orjson_writes_alike
from serving.flags import Profile, row_flags
from serving.predict import (
    REQUEST_SCHEMA,
    KeyMadeMeanwhile,
    ScoredRequest,
    check_batch_size,
    record_answers,
    retries_checked,
    row_request_ids,
    scoring,
    validate_rows,
)
from serving.scoring import DeploymentRuntime, NoActiveModel, RowScore, score_isolated, vote
from serving.service import Serving


def predict_batch(
    serving: Serving,
    name: str,
    body: Any,
    actor: str,
    client: str = DEFAULT_CLIENT,
    occurred_at: int | None = None,
) -> tuple[dict[str, Any], bool]:
    """`serving.predict.predict` for a body with `instances`: the same answer, the same events."""
    with collector_paused():
        scored = score_batch(serving, name, body)
        try:
            predictions, made = batch_predictions(serving, scored, actor, client, occurred_at)
        except KeyMadeMeanwhile:  # a concurrent copy of this request made the subject's key
            predictions, made = batch_predictions(serving, scored, actor, client, occurred_at)
        answers, created = record_answers(serving, predictions, made)
        return {"request_id": scored.request_id, "predictions": answers}, created


def score_batch(serving: Serving, name: str, body: Any) -> ScoredRequest:
    """`serving.predict.score_request` for a batch, scored column-wise."""
    check_batch_size(body, serving.settings.max_batch_rows)
    request = REQUEST_SCHEMA.load(body)
    runtime = serving.scorer.runtime(name)
    raw_rows = request["instances"]
    request_ids = row_request_ids(request["request_id"], raw_rows, True)
    rows = validate_rows(serving, runtime, raw_rows, True)  # column-wise in RowSchema.load
    scores = score_columns(runtime, rows)
    return ScoredRequest(request["request_id"], True, runtime, rows, scores, request_ids)


def score_columns(runtime: DeploymentRuntime, rows: list[dict[str, Any]]) -> list[RowScore]:
    """What `Scorer.score` gives, computed once per model, feature value or policy."""
    if not runtime.models or runtime.leader is None:
        raise NoActiveModel(f"deployment {runtime.name!r} has no active model; add one first")
    per_model = {m.model_id: score_isolated(m, rows, runtime.leader) for m in runtime.models}
    scorers = {m.model_id: m.scorer for m in runtime.models}
    outputs = [
        dict(zip(per_model, row, strict=True)) for row in zip(*per_model.values(), strict=True)
    ]
    if runtime.policy_name == "majority_vote":
        chosen = [vote(runtime, row_outputs) for row_outputs in outputs]
    else:  # the served model is the leader whatever the values: one vote decides every row
        chosen = [vote(runtime, outputs[0])] * len(rows)
    flags = column_flags(runtime.profile, rows)
    return [
        RowScore(row_outputs, served, row_flags_, scorers, tally)
        for row_outputs, (served, tally), row_flags_ in zip(outputs, chosen, flags, strict=True)
    ]


def column_flags(profile: Profile, rows: list[dict[str, Any]]) -> list[list[str]]:
    """Each row's `row_flags`, decided by `row_flags` once per distinct value of a feature."""
    flags: list[list[str]] = [[] for _ in rows]
    for name in profile.names:
        alone = Profile(
            ranges={name: profile.ranges[name]} if name in profile.ranges else {},
            categories={name: profile.categories[name]} if name in profile.categories else {},
            names=(name,),
        )
        column = [row.get(name) for row in rows]
        keys = list(zip(map(type, column), column, strict=True))  # 1, 1.0, True: three keys
        decided = {key: row_flags(alone, {name: key[1]}) for key in set(keys)}
        if any(decided.values()):
            for row_flags_, key in zip(flags, keys, strict=True):
                found = decided[key]
                if found:
                    row_flags_.extend(found)
    return flags


def batch_predictions(
    serving: Serving,
    scored: ScoredRequest,
    actor: str,
    client: str = DEFAULT_CLIENT,
    occurred_at: int | None = None,
) -> tuple[list[NewPrediction], list[list[StoredEvent]]]:
    """The batch's predictions, as `build_predictions` makes them, and their stored events."""
    runtime, rows = scored.runtime, scored.rows
    prediction_ids = ids.prediction_ids(runtime.name, scored.request_ids, client)
    sealed = serving.sealer.seal_many(
        runtime.schema,
        rows,
        deployment=runtime.name,
        request_ids=scored.request_ids,
        before_new_keys=retries_checked(serving, scored, client),
        client=client,
        bindings=[str(i) for i in prediction_ids],
    )
    digests = serving.sealer.body_digests(rows, [record for _, record in sealed])
    count = len(rows)
    at = Prediction.Made.create_timestamp()  # the rows of a batch are made at one instant
    predictions = [
        NewPrediction(
            deployment=runtime.name,
            deployment_version=runtime.version,
            request_id=request_id,
            body_digest=digest,
            features=plain,
            sealed=sealed_record,
            outputs=score.outputs,
            served_model=score.served_model,
            policy=runtime.policy,
            leader=runtime.leader,
            flags=score.flags,
            scoring=scoring(
                scored.request_id, index, count, score.scorers, score.tally, occurred_at
            ),
            actor=actor,
            client=client,
            known_id=prediction_id,
            at=at,
        )
        for index, (digest, score, request_id, (plain, sealed_record), prediction_id) in enumerate(
            zip(digests, scored.scores, scored.request_ids, sealed, prediction_ids, strict=True)
        )
    ]
    mapper = serving.ledger.mapper
    typed = getattr(mapper.transcoder, "typed", None)
    written = typed(at) if typed is not None else None  # converted once for every row
    alike = batch_writes_alike(runtime, scored.scores)
    made = stored_made_events(predictions, mapper, known_alike=alike, timestamp=written)
    return predictions, [[event] for event in made]


def batch_writes_alike(runtime: DeploymentRuntime, scores: list[RowScore]) -> bool:
    """Whether orjson writes every row's state as the standard encoder would.

    The features are the row schema's (finite numbers, text, booleans); the flags, request
    ids and sealed records are text; so only the models' outputs, their tallies and the
    deployment's policy can hold what orjson writes otherwise (NaN, infinity).
    """
    return orjson_writes_alike(
        [runtime.policy, [s.outputs for s in scores], [s.tally for s in scores]]
    )


_paused = 0
_paused_lock = threading.Lock()


@contextmanager
def collector_paused() -> Iterator[None]:
    """The cyclic garbage collector off while a batch runs (on again when the last one ends).

    A batch's objects form no cycles and are freed by reference counting; with the
    collector on, the ~100 objects a row allocates set off a full collection of the whole
    heap every few thousand rows, a third of a batch's CPU time.
    """
    global _paused
    with _paused_lock:
        ours = _paused > 0 or gc.isenabled()  # else someone else turned it off: leave it so
        if ours:
            _paused += 1
            gc.disable()
    try:
        yield
    finally:
        if ours:
            with _paused_lock:
                _paused -= 1
                if _paused == 0:
                    gc.enable()
