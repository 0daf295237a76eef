"""The writer process on both backends: every worker's inserts through one process, answered
per caller; a conflict stays with its caller; a lost writer is never an acknowledgement."""

from __future__ import annotations

import os
import signal
import threading
import time
import uuid
from collections.abc import Iterator

import pytest
from eventsourcing.persistence import IntegrityError, OperationalError, StoredEvent

from ledger.writer_process import (
    WriterClient,
    WriterSupervisor,
    decode_events,
    decode_reply,
    encode_events,
    encode_reply,
)
from tests.integration.test_group_commit import TOPIC, hammer, rows_by_originator, stored


@pytest.fixture
def writer(ledger, settings) -> Iterator[WriterSupervisor]:
    """The host's writer process on the test's database, as the gunicorn master runs it."""
    ledger.recorder.close_writer()
    supervisor = WriterSupervisor(settings.database_url, restart_delay=0.05)
    supervisor.start()
    ledger.recorder.enable_writer_process(supervisor.path)
    try:
        yield supervisor
    finally:
        ledger.recorder.close_writer()
        supervisor.stop()


def test_frames_carry_events_and_answers_exactly():
    events = [stored(), stored(uuid.uuid4(), 7), StoredEvent(uuid.uuid4(), 1, "t:é", b"\x00" * 3)]
    frame = encode_events(events)
    assert decode_events(frame[4:]) == events
    assert decode_reply(encode_reply([3, 4, 2**40], None)[4:]) == [3, 4, 2**40]
    with pytest.raises(IntegrityError, match="taken"):
        decode_reply(encode_reply((), IntegrityError("taken"))[4:])
    with pytest.raises(OperationalError, match="gone"):
        decode_reply(encode_reply((), OperationalError("gone"))[4:])
    with pytest.raises(ValueError):
        decode_events(frame[4:] + b"x")


def test_every_acknowledged_write_of_16_threads_is_stored_once_at_its_position(ledger, writer):
    acked = hammer(ledger.recorder.insert_events, threads=16, writes=200)
    assert len(acked) == 16 * 200
    assert rows_by_originator(ledger) == acked


def test_a_retried_id_fails_its_caller_alone_while_others_commit(ledger, writer):
    existing = stored()
    (first,) = ledger.recorder.insert_events([existing])
    fresh = [stored() for _ in range(15)]
    poisoned = stored(existing.originator_id, 1)  # a retried request: its id is taken
    outcomes: dict[int, object] = {}

    def call(index: int, event: StoredEvent) -> None:
        try:
            outcomes[index] = ledger.recorder.insert_events([event])
        except Exception as error:  # noqa: BLE001 - the outcome under test
            outcomes[index] = error

    events = fresh[:8] + [poisoned] + fresh[8:]
    threads = [threading.Thread(target=call, args=(i, e)) for i, e in enumerate(events)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert isinstance(outcomes[8], IntegrityError)
    assert str(existing.originator_id) in str(outcomes[8])
    stored_now = rows_by_originator(ledger)
    assert stored_now[existing.originator_id] == first
    for index, event in enumerate(events):
        if index != 8:
            assert stored_now[event.originator_id] == outcomes[index][0]
    assert len(stored_now) == 1 + len(fresh)


def test_a_killed_writer_is_replaced_and_the_next_call_is_recorded(ledger, writer):
    (before,) = ledger.recorder.insert_events([stored()])
    killed = writer.pid
    os.kill(killed, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while writer.pid == killed and time.monotonic() < deadline:  # dead, and replaced
        time.sleep(0.01)
    late = stored()
    (position,) = ledger.recorder.insert_events([late])  # on a new connection, not the dead one
    assert writer.pid != killed and writer.starts == 2
    assert position > before
    assert rows_by_originator(ledger)[late.originator_id] == position


def test_a_caller_in_flight_when_the_writer_dies_is_told_unavailable_never_acknowledged(
    ledger, writer
):
    ledger.recorder.insert_events([stored()])
    os.kill(writer.pid, signal.SIGSTOP)  # it reads no frame now
    in_flight = stored()
    outcome: list[object] = []

    def call() -> None:
        try:
            outcome.append(ledger.recorder.insert_events([in_flight]))
        except Exception as error:  # noqa: BLE001 - the outcome under test
            outcome.append(error)

    caller = threading.Thread(target=call)
    caller.start()
    time.sleep(0.3)
    os.kill(writer.pid, signal.SIGKILL)
    caller.join(30)
    assert len(outcome) == 1 and isinstance(outcome[0], OperationalError), outcome
    assert "may or may not be recorded" in str(outcome[0])
    assert in_flight.originator_id not in rows_by_originator(ledger)


def test_no_writer_at_all_is_unavailable_within_the_connect_bound(tmp_path):
    client = WriterClient(str(tmp_path / "absent.sock"), connect_seconds=0.2)
    started = time.monotonic()
    with pytest.raises(OperationalError, match="not accepting"):
        client.submit([StoredEvent(uuid.uuid4(), 1, TOPIC, b"{}")])
    assert time.monotonic() - started < 5


def test_the_writer_commits_what_it_holds_and_leaves_when_the_life_pipe_closes(ledger, settings):
    supervisor = WriterSupervisor(settings.database_url)
    supervisor.start()
    client = WriterClient(supervisor.path)
    event = stored()
    (position,) = client.submit([event])
    pid = supervisor.pid
    os.kill(pid, signal.SIGTERM)  # the process group's signal at shutdown: it stays for the workers
    time.sleep(0.2)
    assert client.submit([stored()])[0] > position
    client.close()
    started = time.monotonic()
    supervisor.stop()
    assert time.monotonic() - started < 10, "it should leave on EOF, not on the kill after 15 s"
    assert (
        not os.path.exists(f"/proc/{pid}/cmdline")
        or b"writer_process" not in open(f"/proc/{pid}/cmdline", "rb").read()
    )
    assert not os.path.exists(supervisor.dir)
    assert rows_by_originator(ledger)[event.originator_id] == position
