"""Group commit on both backends: acknowledged means stored exactly once; failures stay contained."""

from __future__ import annotations

import multiprocessing
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence

import pytest
from eventsourcing.persistence import IntegrityError, OperationalError, StoredEvent

from ledger.database import is_postgres
from ledger.group_commit import GroupCommitter
from ledger.storage import EVENTS_TABLE

TOPIC = "ledger.domain.predictions:Prediction.Made"


def stored(originator_id: uuid.UUID | None = None, version: int = 1) -> StoredEvent:
    return StoredEvent(
        originator_id=originator_id or uuid.uuid4(),
        originator_version=version,
        topic=TOPIC,
        state=b'{"row":1}',
    )


def rows_by_originator(ledger) -> dict[uuid.UUID, int]:
    """Position of every stored event, by originator (each test event has one)."""
    notes = ledger.recorder.select_notifications(start=None, limit=1_000_000)
    counts = Counter(n.originator_id for n in notes)
    assert max(counts.values(), default=1) == 1, "an event was stored twice"
    return {n.originator_id: n.id for n in notes}


def hammer(
    insert: Callable[[Sequence[StoredEvent]], Sequence[int]], threads: int, writes: int
) -> dict:
    """`threads` callers × `writes` single-event inserts; what each caller saw acknowledged."""
    acked: dict[uuid.UUID, int] = {}
    errors: list[BaseException] = []

    def caller() -> None:
        for _ in range(writes):
            event = stored()
            try:
                (position,) = insert([event])
            except BaseException as error:  # collected, asserted below
                errors.append(error)
                continue
            acked[event.originator_id] = position

    workers = [threading.Thread(target=caller) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert not errors, errors[:3]
    return acked


def test_every_acknowledged_write_of_16_threads_is_stored_exactly_once(ledger):
    batches: list[int] = []
    ledger.recorder.committer._on_batch = batches.append
    acked = hammer(ledger.recorder.insert_events, threads=16, writes=500)
    assert len(acked) == 16 * 500
    assert rows_by_originator(ledger) == acked  # each at the position its caller was told
    assert max(batches) > 1, "callers never shared a transaction"


def _child(url: str, home: str, out) -> None:  # noqa: ANN001
    from ledger.application import Ledger
    from ledger.settings import Settings

    ledger = Ledger(Settings(home=home, database_url=url))
    try:
        out.put(
            sorted((str(k), v) for k, v in hammer(ledger.recorder.insert_events, 4, 100).items())
        )
    finally:
        ledger.close()


def test_worker_processes_each_with_a_writer_store_every_acknowledged_write(ledger, settings):
    ctx = multiprocessing.get_context("fork")  # forked from one parent, as gunicorn workers are
    out = ctx.Queue()
    children = [
        ctx.Process(target=_child, args=(settings.database_url, str(settings.home), out))
        for _ in range(2)
    ]
    for c in children:
        c.start()
    acked = {uuid.UUID(k): v for _ in children for k, v in out.get(timeout=120)}
    for c in children:
        c.join(timeout=30)
    assert len(acked) == 2 * 4 * 100
    assert rows_by_originator(ledger) == acked


class Gate:
    """Holds the writer in its first insert so that the next callers queue into one batch."""

    def __init__(self, insert: Callable[[Sequence[StoredEvent]], Sequence[int]]):
        self.insert = insert
        self.entered, self.opened = threading.Event(), threading.Event()
        self.batches: list[int] = []

    def __call__(self, events: Sequence[StoredEvent]) -> Sequence[int]:
        if not self.entered.is_set():
            self.entered.set()
            assert self.opened.wait(30)
        self.batches.append(len(events))
        return self.insert(events)


def submit_together(
    committer: GroupCommitter,
    gate: Gate,
    first: StoredEvent,
    events: list[StoredEvent],
    while_held: Callable[[], None] = lambda: None,
) -> list:
    """Submit `first` alone, then `events` while the writer is held; each caller's outcome."""
    outcomes: list = [None] * (len(events) + 1)

    def call(index: int, event: StoredEvent) -> None:
        try:
            outcomes[index] = committer.submit([event])
        except Exception as error:  # noqa: BLE001 - the outcome under test
            outcomes[index] = error

    threads = [threading.Thread(target=call, args=(0, first))]
    threads[0].start()
    assert gate.entered.wait(30)
    threads += [threading.Thread(target=call, args=(i + 1, e)) for i, e in enumerate(events)]
    for t in threads[1:]:
        t.start()
    deadline = time.monotonic() + 30
    while committer._queue.qsize() < len(events) and time.monotonic() < deadline:
        time.sleep(0.01)
    while_held()
    gate.opened.set()
    for t in threads:
        t.join(30)
    return outcomes


def test_a_poisoned_item_fails_alone_and_the_rest_of_its_batch_commits(ledger):
    existing = stored()
    ledger.recorder.insert_events([existing])
    gate = Gate(ledger.recorder.batch_writer.insert)
    committer = GroupCommitter(gate)
    fresh = [stored() for _ in range(9)]
    poisoned = stored(existing.originator_id, 1)  # a retried request: its id is taken
    outcomes = submit_together(committer, gate, stored(), fresh[:4] + [poisoned] + fresh[4:])
    committer.close()
    assert gate.batches[:2] == [1, 10], "the ten callers should have formed one batch"
    assert isinstance(outcomes[5], IntegrityError)
    assert str(existing.originator_id) in str(outcomes[5])
    assert all(isinstance(o, list) for i, o in enumerate(outcomes) if i != 5)
    stored_now = rows_by_originator(ledger)
    assert all(
        stored_now[e.originator_id] == o[0]
        for e, o in zip(fresh, outcomes[1:5] + outcomes[6:], strict=True)
    )
    assert len(stored_now) == 1 + 1 + 9


def test_a_database_error_fails_every_caller_of_the_batch_and_nothing_unstored_is_acknowledged(
    ledger,
):
    gate = Gate(ledger.recorder.batch_writer.insert)
    committer = GroupCommitter(gate)
    events = [stored() for _ in range(8)]

    def break_the_table() -> None:
        with ledger.engine.begin() as conn:
            conn.exec_driver_sql(f"ALTER TABLE {EVENTS_TABLE} RENAME TO moved_away")

    outcomes = submit_together(committer, gate, stored(), events, while_held=break_the_table)
    with ledger.engine.begin() as conn:
        conn.exec_driver_sql(f"ALTER TABLE moved_away RENAME TO {EVENTS_TABLE}")
    assert all(isinstance(o, OperationalError) for o in outcomes), outcomes
    assert rows_by_originator(ledger) == {}
    late = stored()
    (position,) = committer.submit([late])  # the writer reconnects and carries on
    committer.close()
    assert rows_by_originator(ledger) == {late.originator_id: position}


def test_a_lost_postgres_connection_fails_the_batch_and_the_writer_reconnects(ledger):
    if not is_postgres(ledger.engine):
        pytest.skip("PostgreSQL only: SQLite has no server connection to lose")
    ledger.recorder.insert_events([stored()])  # the writer has its connection now
    with ledger.engine.begin() as conn:  # only this test's own database, never the server
        conn.exec_driver_sql(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    with pytest.raises(OperationalError):
        ledger.recorder.insert_events([stored()])
    ledger.recorder.insert_events([stored()])
    assert len(rows_by_originator(ledger)) == 2


def prediction(request_id: str, value: int = 1):  # noqa: ANN201
    from ledger.domain.predictions import Prediction

    return Prediction(
        deployment="churn",
        deployment_version=1,
        request_id=request_id,
        body_digest=f"body-{value}",
        features={"age": value},
        sealed=None,
        outputs={"m": {"value": value}},
        served_model="m",
        policy={"name": "manual"},
        leader="m",
        flags=[],
        scoring={"mode": "alone"},
        actor="key:test",
    )


def test_a_batch_with_a_retried_row_records_the_new_rows_and_returns_the_original(ledger):
    ((first, position),) = ledger.record_predictions([prediction("a")])
    again = ledger.record_predictions(
        [prediction("b"), prediction("a"), prediction("c"), prediction("b")]
    )
    assert [(p.request_id, pos is None) for p, pos in again] == [
        ("b", False),
        ("a", True),
        ("c", False),
        ("b", True),
    ]
    assert again[1][0].id == first.id and again[1][0].version == 1
    assert ledger.prediction(again[2][0].id).request_id == "c"
    assert len(rows_by_originator(ledger)) == 3


def test_a_retried_row_with_another_body_refuses_the_batch_and_records_none_of_it(ledger):
    from ledger.errors import Conflict

    ledger.record_predictions([prediction("a")])
    with pytest.raises(Conflict, match="different body"):
        ledger.record_predictions([prediction("new"), prediction("a", value=2)])
    assert len(rows_by_originator(ledger)) == 1
