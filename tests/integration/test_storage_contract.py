"""The storage contract, run on SQLite and PostgreSQL: what every reader of the log relies on."""

from __future__ import annotations

import threading
import time
import uuid

import pytest
import sqlalchemy as sa
from eventsourcing.persistence import IntegrityError, StoredEvent

from ledger.database import is_postgres
from ledger.errors import ArtifactCorrupt, UntrustedArtifact
from ledger.storage import CLOCK_TABLE, EVENTS_TABLE

TOPIC = "ledger.domain.predictions:Prediction.Made"


def stored(
    originator_id: uuid.UUID | None = None, version: int = 1, state: bytes = b'{"n":1}'
) -> StoredEvent:
    return StoredEvent(
        originator_id=originator_id or uuid.uuid4(),
        originator_version=version,
        topic=TOPIC,
        state=state,
    )


def positions(ledger) -> list[int]:
    return [n.id for n in ledger.recorder.select_notifications(start=None, limit=1_000_000)]


def recorded_at(ledger) -> list[int]:
    with ledger.engine.connect() as conn:
        return list(
            conn.exec_driver_sql(f"SELECT recorded_at FROM {EVENTS_TABLE} ORDER BY id").scalars()
        )


def test_inserted_events_are_selected_back_by_originator_and_in_the_notification_log(ledger):
    first, second = uuid.uuid4(), uuid.uuid4()
    ids = ledger.recorder.insert_events(
        [stored(first, 1, b'{"a":1}'), stored(first, 2, b'{"a":2}')]
    )
    ids += ledger.recorder.insert_events([stored(second, 1, b'{"b":1}')])
    assert [e.state for e in ledger.recorder.select_events(first)] == [b'{"a":1}', b'{"a":2}']
    assert [
        (n.originator_id, n.originator_version)
        for n in ledger.recorder.select_notifications(None, 10)
    ] == [(first, 1), (first, 2), (second, 1)]
    assert positions(ledger) == sorted(ids)


def test_a_duplicate_originator_version_raises_integrity_error_on_both_paths(ledger):
    event = stored()
    ledger.recorder.insert_events([event])
    with pytest.raises(IntegrityError):
        ledger.recorder.insert_events([stored(event.originator_id, 1)])  # group commit path
    with pytest.raises(IntegrityError):
        ledger.recorder.insert_now([stored(event.originator_id, 1)])  # one ORM session
    assert len(positions(ledger)) == 1


def test_a_reader_never_sees_a_position_that_a_later_commit_fills_in(ledger):
    """Commit order equals position order: every snapshot is a prefix of the final log."""
    snapshots: list[list[int]] = []
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            snapshots.append(positions(ledger))

    def write(worker: int) -> None:
        for _ in range(40):
            ledger.recorder.insert_now([stored() for _ in range(1 + worker % 3)])

    reader = threading.Thread(target=read)
    reader.start()
    writers = [threading.Thread(target=write, args=(w,)) for w in range(6)]
    for t in writers:
        t.start()
    for t in writers:
        t.join()
    stop.set()
    reader.join()
    final = positions(ledger)
    assert len(final) == 6 * 40 * 2
    for seen in snapshots:
        assert seen == final[: len(seen)]


def test_readers_see_every_event_across_a_gap_in_positions(ledger):
    taken = stored()
    ledger.recorder.insert_events([taken])
    with pytest.raises(IntegrityError):  # burns a sequence value on PostgreSQL
        ledger.recorder.insert_now([stored(), stored(taken.originator_id, 1)])
    ledger.recorder.insert_events([stored(), stored()])
    found = positions(ledger)
    assert len(found) == 3 and found == sorted(found)
    if is_postgres(ledger.engine):
        assert found[1] - found[0] > 1, "the failed insert should have burned positions"
    paged = [n.id for n in ledger.recorder.select_notifications(start=found[0] + 1, limit=10)]
    assert paged == found[1:]


def test_recorded_at_is_monotone_even_when_the_clock_steps_back(ledger):
    ledger.recorder.insert_events([stored()])
    future = int((time.time() + 3600) * 1_000_000)  # the last writer's clock ran an hour fast
    with ledger.engine.begin() as conn:
        conn.exec_driver_sql(f"UPDATE {CLOCK_TABLE} SET last_us = {future} WHERE id = 1")
    ledger.recorder.insert_events([stored(), stored()])
    ledger.recorder.insert_now([stored()])
    times = recorded_at(ledger)
    assert times == sorted(times)
    assert times[0] < future <= times[1] == times[2] <= times[3]


def test_recorded_at_is_the_database_time_in_microseconds_utc(ledger):
    before = int(time.time() * 1_000_000)
    ledger.recorder.insert_events([stored()])
    after = int(time.time() * 1_000_000)
    (at,) = recorded_at(ledger)
    assert before - 2_000_000 <= at <= after + 2_000_000  # same host: clocks agree within skew


@pytest.mark.parametrize(
    "statement",
    [
        f"UPDATE {EVENTS_TABLE} SET state = state",
        f"DELETE FROM {EVENTS_TABLE}",
    ],
)
def test_the_database_refuses_to_change_or_delete_events(ledger, statement):
    ledger.recorder.insert_events([stored()])
    with pytest.raises(sa.exc.DatabaseError, match="append-only"):
        with ledger.engine.begin() as conn:
            conn.exec_driver_sql(statement)
    assert len(positions(ledger)) == 1


def test_postgres_refuses_truncate(ledger):
    if not is_postgres(ledger.engine):
        pytest.skip("SQLite has no TRUNCATE; DELETE is refused above")
    ledger.recorder.insert_events([stored()])
    with pytest.raises(sa.exc.DatabaseError, match="append-only"):
        with ledger.engine.begin() as conn:
            conn.exec_driver_sql(f"TRUNCATE {EVENTS_TABLE}")


def test_artifacts_are_content_addressed(ledger):
    digest = ledger.artifacts.put(b"model bytes")
    assert ledger.artifacts.put(b"model bytes") == digest  # same content, same row
    assert len(digest) == 64 and ledger.artifacts.get(digest) == b"model bytes"


def test_an_altered_artifact_is_refused_on_load(ledger):
    digest = ledger.artifacts.put(b"model bytes")
    with ledger.engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE ledger_artifacts SET content = :c WHERE digest = :d"),
            {"c": b"model bytez", "d": digest},
        )
    with pytest.raises(ArtifactCorrupt, match="altered"):
        ledger.artifacts.get(digest)


class Homemade:
    """A type skops has never heard of: loading it could run anything."""


def test_a_model_of_untrusted_types_is_refused(ledger):
    import skops.io as sio

    digest = ledger.artifacts.put(sio.dumps({"estimator": Homemade()}))
    with pytest.raises(UntrustedArtifact, match="Homemade"):
        ledger.artifacts.load_model(digest)


def test_a_trusted_model_loads_and_is_cached(ledger):
    from sklearn.linear_model import LogisticRegression

    from ledger.artifacts import dumps_skops

    model = LogisticRegression().fit([[0.0], [1.0]], [0, 1])
    digest = ledger.artifacts.put(dumps_skops(model))
    loaded = ledger.artifacts.load_model(digest)
    assert loaded.predict([[1.0]])[0] == 1
    assert ledger.artifacts.load_model(digest) is loaded


APP_GRANTS = (
    "GRANT CONNECT ON DATABASE {db} TO {role}",
    "GRANT USAGE ON SCHEMA public TO {role}",
    f"GRANT SELECT, INSERT ON {EVENTS_TABLE}, ledger_artifacts TO {{role}}",
    f"GRANT USAGE ON SEQUENCE {EVENTS_TABLE}_id_seq TO {{role}}",
    f"GRANT SELECT, UPDATE ON {CLOCK_TABLE} TO {{role}}",
)


def test_the_application_role_records_with_its_grants_alone_and_cannot_rewrite(ledger, settings):
    """docs/STORAGE.md's grants suffice: start, record, read; UPDATE/DELETE/TRUNCATE denied."""
    if not is_postgres(ledger.engine):
        pytest.skip("roles and grants are PostgreSQL's")
    from ledger.application import Ledger
    from ledger.settings import Settings

    role, db = f"ledger_app_{uuid.uuid4().hex[:8]}", settings.database_url.rsplit("/", 1)[1]
    with ledger.engine.begin() as conn:
        conn.exec_driver_sql(f"CREATE ROLE {role} LOGIN")
        for grant in APP_GRANTS:
            conn.exec_driver_sql(grant.format(db=f'"{db}"', role=role))
    app_url = settings.database_url.replace("postgres@", f"{role}@")
    try:
        app = Ledger(Settings(home=settings.home, database_url=app_url))
        try:
            ids = list(app.recorder.insert_events([stored(), stored()]))  # group commit
            ids += app.recorder.insert_now([stored()])  # an ORM session
            assert positions(app) == ids and app.artifacts.get(app.artifacts.put(b"m")) == b"m"
            for statement in (
                f"UPDATE {EVENTS_TABLE} SET state = state",
                f"DELETE FROM {EVENTS_TABLE}",
                f"TRUNCATE {EVENTS_TABLE}",
                "DELETE FROM ledger_artifacts",
            ):
                with pytest.raises(sa.exc.ProgrammingError, match="permission denied"):
                    with app.engine.begin() as conn:
                        conn.exec_driver_sql(statement)
        finally:
            app.close()
    finally:
        with ledger.engine.begin() as conn:
            conn.exec_driver_sql(f"DROP OWNED BY {role}")
            conn.exec_driver_sql(f"DROP ROLE {role}")
