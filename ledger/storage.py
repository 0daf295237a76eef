"""The event table, its database clock and its lean insert path.

eventsourcing-sqlalchemy supplies the recorder; we add a `recorded_at` column set by
the database under the writers' lock (monotone, microseconds since the epoch, UTC), make
the table append-only with triggers, and replace the ORM insert (one object a row) by
one multi-row statement under the same lock, so commit order still equals position.
The writers' lock is the clock row on PostgreSQL (see lean_insert) and SQLite's write lock.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import sqlalchemy as sa
from eventsourcing.persistence import IntegrityError, OperationalError, StoredEvent
from eventsourcing_sqlalchemy.datastore import SQLAlchemyDatastore
from eventsourcing_sqlalchemy.factory import SQLAlchemyFactory
from eventsourcing_sqlalchemy.models import StoredEventRecord  # type: ignore[attr-defined]
from eventsourcing_sqlalchemy.recorders import SQLAlchemyApplicationRecorder
from sqlalchemy import BigInteger, Column, Index, Integer
from sqlalchemy.orm import Session, sessionmaker

from ledger.database import is_postgres
from ledger.deployment_watch import CHANNEL as DEPLOYMENTS_CHANNEL
from ledger.group_commit import GroupCommitter
from ledger.lean_insert import CLOCK_TABLE as CLOCK_TABLE  # `as`: re-exported
from ledger.lean_insert import (
    DBAPI_INTEGRITY_ERRORS,
    DBAPI_OPERATIONAL_ERRORS,
    PG_NOW_US,
    SQLITE_NOW_US,
    BatchWriter,
    insert_postgres,
    insert_sqlite,
)
from ledger.lean_insert import EVENTS_TABLE as EVENTS_TABLE  # `as`: re-exported
from ledger.transcoder import OrjsonTranscoder
from ledger.writer_process import WriterClient

APPLICATION_NAME = "Ledger"


class LedgerEventRecord(StoredEventRecord):  # type: ignore[misc]  # an untyped library module
    """A stored event with the database's recorded-at time (µs since epoch, UTC)."""

    __abstract__ = True
    recorded_at = Column(BigInteger().with_variant(Integer(), "sqlite"), nullable=False)
    # define_record_class copies only the base class's own table args.
    __table_args__ = (
        Index("stored_aggregate_event_index", "originator_id", "originator_version", unique=True),
    )


class LedgerDatastore(SQLAlchemyDatastore):
    base_stored_event_record_cls = LedgerEventRecord


class LedgerRecorder(SQLAlchemyApplicationRecorder):
    """Application recorder with a database clock, a multi-row insert and group commit."""

    committer: GroupCommitter | WriterClient | None = None
    batch_writer: BatchWriter | None = None

    def enable_group_commit(self, **kwargs: Any) -> GroupCommitter:
        """Route inserts through one writer thread with a connection of its own."""
        self.batch_writer = BatchWriter(self.datastore.engine, self.channel_name)  # type: ignore[arg-type]
        self.committer = GroupCommitter(self.batch_writer.insert, **kwargs)
        return self.committer

    def enable_writer_process(self, path: str) -> WriterClient:
        """Route inserts to the host's writer process, listening at `path`."""
        self.committer = WriterClient(path)
        return self.committer

    def close_writer(self) -> None:
        """Stop the writer thread after what is queued, and close its connection."""
        if self.committer is not None:
            self.committer.close()
        if self.batch_writer is not None:
            self.batch_writer.close()

    def insert_events(
        self, stored_events: Sequence[StoredEvent], *, session: Session | None = None, **kwargs: Any
    ) -> Sequence[int] | None:
        if self.committer is not None and session is None and not any(kwargs.values()):
            return self.committer.submit(stored_events)
        return super().insert_events(stored_events, session=session, **kwargs)

    def insert_now(self, stored_events: Sequence[StoredEvent]) -> Sequence[int]:
        """One transaction for these events, bypassing the group committer."""
        with self.transaction(commit=True) as session:
            return self._insert_stored_events(session, stored_events)

    def create_table(self) -> None:
        engine: sa.Engine = self.datastore.engine  # type: ignore[assignment]
        with schema_lock(engine):
            super().create_table()
            with engine.begin() as conn:
                create_clock_and_guards(conn)

    def _insert_stored_events(
        self, session: Session, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int]:
        if not stored_events:
            return []
        conn = session.connection()
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            if is_postgres(conn):
                cursor.execute(f"NOTIFY {self.channel_name}")
                # Delivered at this transaction's commit, to every worker's deployment watch.
                for deployment_id in kwargs.get("notify_deployments", ()):
                    cursor.execute("SELECT pg_notify(%s, %s)", (DEPLOYMENTS_CHANNEL, deployment_id))
                return insert_postgres(cursor, stored_events)
            return insert_sqlite(cursor, stored_events)
        except DBAPI_INTEGRITY_ERRORS as error:  # the raw cursor bypasses SQLAlchemy's mapping
            raise IntegrityError(str(error)) from error
        except DBAPI_OPERATIONAL_ERRORS as error:
            raise OperationalError(str(error)) from error
        finally:
            cursor.close()


def advance_clock(conn: sa.Connection) -> int:
    """Take the next recorded-at from the database clock, never earlier than the last.

    On SQLite this UPDATE is also what takes the database's write lock, before any read.
    """
    if is_postgres(conn):
        sql = f"UPDATE {CLOCK_TABLE} SET last_us = greatest(last_us, {PG_NOW_US}) WHERE id = 1 RETURNING last_us"
    else:
        sql = f"UPDATE {CLOCK_TABLE} SET last_us = max(last_us, {SQLITE_NOW_US}) WHERE id = 1 RETURNING last_us"
    return int(conn.exec_driver_sql(sql).scalar_one())


@contextlib.contextmanager
def schema_lock(engine: sa.Engine) -> Iterator[None]:
    """Serialise start-up DDL: workers that start together would race on the catalog."""
    if not is_postgres(engine):
        yield
        return
    with engine.connect() as conn:
        conn.exec_driver_sql("SELECT pg_advisory_lock(hashtext('ledger_schema'))")
        try:
            yield
        finally:
            conn.exec_driver_sql("SELECT pg_advisory_unlock(hashtext('ledger_schema'))")
            conn.commit()


def create_clock_and_guards(conn: sa.Connection) -> None:
    """The clock row and the triggers that make the event table append-only.

    Only what is missing is created, so that the application's role, which may not
    create or alter anything, starts against a schema its owner has installed.
    """
    if not sa.inspect(conn).has_table(CLOCK_TABLE):
        conn.exec_driver_sql(
            f"CREATE TABLE {CLOCK_TABLE} (id INTEGER PRIMARY KEY, last_us BIGINT NOT NULL)"
        )
    if not conn.exec_driver_sql(f"SELECT count(*) FROM {CLOCK_TABLE}").scalar_one():
        conn.exec_driver_sql(f"INSERT INTO {CLOCK_TABLE} (id, last_us) VALUES (1, 0)")
    if is_postgres(conn):
        _create_postgres_guards(conn)
        return
    for op in ("UPDATE", "DELETE"):
        conn.exec_driver_sql(
            f"CREATE TRIGGER IF NOT EXISTS {EVENTS_TABLE}_no_{op.lower()} "
            f"BEFORE {op} ON {EVENTS_TABLE} "
            f"BEGIN SELECT RAISE(ABORT, 'the ledger is append-only: {op} refused'); END"
        )


def _create_postgres_guards(conn: sa.Connection) -> None:
    installed = {
        row[0]
        for row in conn.exec_driver_sql(
            "SELECT tgname FROM pg_trigger WHERE tgrelid = %(t)s::regclass", {"t": EVENTS_TABLE}
        )
    }
    wanted = {
        f"{EVENTS_TABLE}_no_update_delete": ("UPDATE OR DELETE", "ROW"),
        f"{EVENTS_TABLE}_no_truncate": ("TRUNCATE", "STATEMENT"),
    }
    missing = {name: spec for name, spec in wanted.items() if name not in installed}
    if not missing:
        return  # creating a trigger would lock the table against every insert
    conn.exec_driver_sql(
        "CREATE OR REPLACE FUNCTION ledger_refuse_change() RETURNS trigger AS $$ "
        "BEGIN RAISE EXCEPTION 'the ledger is append-only: %% on %% refused', TG_OP, TG_TABLE_NAME; "
        "END $$ LANGUAGE plpgsql"
    )
    for name, (when, level) in missing.items():
        conn.exec_driver_sql(
            f"CREATE TRIGGER {name} BEFORE {when} ON {EVENTS_TABLE} "
            f"FOR EACH {level} EXECUTE FUNCTION ledger_refuse_change()"
        )


class LedgerFactory(SQLAlchemyFactory):
    """Infrastructure factory: our datastore on an engine we built, and our recorder."""

    datastore_class = LedgerDatastore
    application_recorder_class = LedgerRecorder

    def __init__(self, env: Any, engine: sa.Engine):
        # Skip SQLAlchemyFactory.__init__: it would build its own engine from a URL.
        super(SQLAlchemyFactory, self).__init__(env)
        self._schema_name = None
        self.datastore = LedgerDatastore(session_maker=sessionmaker(bind=engine))
        self._recorders: list[LedgerRecorder] = []

    def transcoder(self) -> OrjsonTranscoder:
        return OrjsonTranscoder()

    def application_recorder(self) -> LedgerRecorder:
        recorder = super().application_recorder()
        self._recorders.append(recorder)  # type: ignore[arg-type]
        return recorder  # type: ignore[return-value]

    def close(self) -> None:
        for recorder in self._recorders:
            recorder.close_writer()
        super().close()
