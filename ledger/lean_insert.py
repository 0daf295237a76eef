"""The group committer's insert: one connection, few round trips, all inside the table lock.

The writer thread is on the critical path of every caller, and each round trip to the
database hands the GIL back to busy request threads that it must then wait for. So the
writer keeps one DBAPI connection of its own (no pool checkout, no ping, no ORM session)
and sends a batch in one round trip on PostgreSQL (`NOTIFY; clock; INSERT` as one
implicit transaction, the last two prepared once per connection), or for a big batch
`BEGIN; NOTIFY; clock; ids`, a binary COPY and `COMMIT`; on SQLite `BEGIN IMMEDIATE`, the
clock, one executemany, `COMMIT`. The writers' lock (the clock row on
PostgreSQL, the write lock on SQLite) is taken before the rows are numbered, so commit order still equals position order.
"""

from __future__ import annotations

import io
import os
import sqlite3
import struct
import threading
import uuid
from collections.abc import Sequence
from typing import Any

import psycopg2
import sqlalchemy as sa
from eventsourcing.persistence import IntegrityError, OperationalError, StoredEvent

EVENTS_TABLE = "ledger_events"
CLOCK_TABLE = "ledger_clock"
PG_NOW_US = "(extract(epoch from clock_timestamp()) * 1000000)::bigint"
SQLITE_NOW_US = "CAST((julianday('now') - 2440587.5) * 86400000000 AS INTEGER)"
DBAPI_INTEGRITY_ERRORS = (psycopg2.IntegrityError, sqlite3.IntegrityError)
# Anything else the database says (a lost connection, a missing table, a refusal) fails
# the batch as unavailable storage: the API answers 503 and the client retries.
DBAPI_OPERATIONAL_ERRORS = (psycopg2.Error, sqlite3.Error)

# Writers queue on the clock row, not on a table lock: the row lock is held to commit and
# taken before any id is drawn, so commit order equals position order, and the role needs
# no UPDATE on the event table (LOCK ... IN EXCLUSIVE MODE would demand it). Rows arrive
# as four arrays: no per-row Python formatting; ORDINALITY keeps their order.
PG_CLOCK = f"UPDATE {CLOCK_TABLE} SET last_us = greatest(last_us, {PG_NOW_US}) WHERE id = 1"
PG_ROWS = (
    f"INSERT INTO {EVENTS_TABLE} (originator_id, originator_version, topic, state, recorded_at) "
    f"SELECT u.o, u.v, u.t, u.s, (SELECT last_us FROM {CLOCK_TABLE} WHERE id = 1) "
    "FROM unnest({}::uuid[], {}::int[], {}::text[], {}::bytea[]) WITH ORDINALITY AS u(o, v, t, s, n) "
    "ORDER BY u.n RETURNING id"
)
PG_INSERT = f"{PG_CLOCK}; " + PG_ROWS.format("%s", "%s", "%s", "%s")
# The writer's connection prepares both statements once: PostgreSQL then neither parses
# nor plans them per batch, which was about half of its CPU for a one-row batch.
PG_PREPARE = (
    f"PREPARE ledger_clock AS {PG_CLOCK}; "
    "PREPARE ledger_rows(uuid[], int[], text[], bytea[]) AS "
    + PG_ROWS.format("$1", "$2", "$3", "$4")
)
PG_EXECUTE = "EXECUTE ledger_clock; EXECUTE ledger_rows(%s::uuid[], %s, %s, %s)"
# A big batch goes by COPY instead: PostgreSQL parses binary COPY rows several times
# faster than it unnests four arrays, and nothing is formatted per row but a few packs.
# Its ids are drawn under the clock row, so they are as ordered as RETURNING's.
PG_CLOCK_AND_IDS = (
    f"{PG_CLOCK}; SELECT (SELECT last_us FROM {CLOCK_TABLE} WHERE id = 1), "
    f"nextval(pg_get_serial_sequence('{EVENTS_TABLE}', 'id')) "
    "FROM generate_series(1, %s) ORDER BY 2"
)
PG_COPY = (
    f"COPY {EVENTS_TABLE} (id, originator_id, originator_version, topic, state, recorded_at) "
    "FROM STDIN WITH (FORMAT binary)"
)
COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack("!ii", 0, 0)
COPY_TRAILER = struct.pack("!h", -1)
# Six fields; id, originator_id (uuid) and originator_version (both bigint), each after its length.
_COPY_HEAD = struct.Struct("!hiqi16siq")
_COPY_LENGTH = struct.Struct("!i")
SQLITE_CLOCK = f"UPDATE {CLOCK_TABLE} SET last_us = max(last_us, {SQLITE_NOW_US}) WHERE id = 1 RETURNING last_us"
SQLITE_INSERT = (
    f"INSERT INTO {EVENTS_TABLE} (originator_id, originator_version, topic, state, recorded_at) "
    "VALUES (?, ?, ?, ?, ?)"
)


def postgres_arrays(
    events: Sequence[StoredEvent],
) -> tuple[list[str], list[int], list[str], list[bytes]]:
    """The batch as the four arrays PG_INSERT takes."""
    return (
        [str(e.originator_id) for e in events],
        [e.originator_version for e in events],
        [e.topic for e in events],
        [e.state for e in events],
    )


def insert_postgres(cursor: Any, events: Sequence[StoredEvent]) -> list[int]:
    """Take the clock row (the writers' lock), then insert; one round trip."""
    cursor.execute(PG_INSERT, postgres_arrays(events))
    return sorted(row[0] for row in cursor.fetchall())  # ids grow in insertion order


def copy_payload(events: Sequence[StoredEvent], ids: Sequence[int], recorded_at: int) -> bytes:
    """The events as PostgreSQL's binary COPY stream, each under the id drawn for it."""
    at = struct.pack("!iq", 8, recorded_at)
    head, length = _COPY_HEAD.pack, _COPY_LENGTH.pack
    topics: dict[str, bytes] = {}
    parts = [COPY_HEADER]
    for event, position in zip(events, ids, strict=True):
        topic = topics.get(event.topic)
        if topic is None:
            raw = event.topic.encode()
            topic = topics[event.topic] = length(len(raw)) + raw
        parts.append(
            head(6, 8, position, 16, _uuid_bytes(event.originator_id), 8, event.originator_version)
        )
        parts.append(topic)
        parts.append(length(len(event.state)))
        parts.append(event.state)
        parts.append(at)
    parts.append(COPY_TRAILER)
    return b"".join(parts)


def copy_postgres(cursor: Any, events: Sequence[StoredEvent], before: str = "") -> list[int]:
    """Take the clock row, draw the ids (one round trip, after the statements in `before`),
    then COPY the rows; the caller's transaction commits.

    The clock row is the writers' lock, as for PG_INSERT: taken before any id is drawn and
    held to commit, so commit order equals position order, and every row's recorded_at is
    the clock's.
    """
    cursor.execute(before + PG_CLOCK_AND_IDS, (len(events),))
    drawn = cursor.fetchall()
    ids = [row[1] for row in drawn]
    cursor.copy_expert(PG_COPY, io.BytesIO(copy_payload(events, ids, drawn[0][0])))
    return ids


def insert_sqlite(cursor: Any, events: Sequence[StoredEvent]) -> list[int]:
    """Clock, then the rows; the clock UPDATE takes SQLite's write lock before any read."""
    at = cursor.execute(SQLITE_CLOCK).fetchone()[0]
    before = cursor.execute(f"SELECT coalesce(max(id), 0) FROM {EVENTS_TABLE}").fetchone()[0]
    cursor.executemany(
        SQLITE_INSERT,
        [
            (_uuid_bytes(e.originator_id), e.originator_version, e.topic, e.state, at)
            for e in events
        ],
    )
    return list(range(before + 1, before + 1 + len(events)))


def _uuid_bytes(value: uuid.UUID | str) -> bytes:
    return (value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))).bytes


# From this many events a batch goes by COPY (three round trips instead of one): at 100
# events it took about the unnest INSERT's time and a third of the writer's CPU, at 1,000
# about a third of both (python -m bench.copy_threshold).
COPY_MIN_EVENTS = 100


class BatchWriter:
    """Inserts batches for the group committer over one connection it keeps."""

    def __init__(self, engine: sa.Engine, channel: str, copy_min_events: int = COPY_MIN_EVENTS):
        self.engine = engine
        self.postgres = engine.dialect.name.startswith("postgres")
        self.channel = channel
        self.copy_min_events = copy_min_events
        self._notify_and_insert = f"NOTIFY {channel}; {PG_EXECUTE}"
        self._conn: Any = None
        self._pid = 0
        self._lock = threading.Lock()

    def insert(self, events: Sequence[StoredEvent]) -> list[int]:
        """One transaction for these events; their positions, in order."""
        with self._lock:
            conn = None
            try:
                conn = self._connection()  # a new one prepares statements: errors count too
                return (
                    self._insert_postgres(conn, events)
                    if self.postgres
                    else self._insert_sqlite(conn, events)
                )
            except DBAPI_INTEGRITY_ERRORS as error:
                if not self.postgres and conn is not None:  # PostgreSQL rolled back by itself
                    self._rollback(conn)
                raise IntegrityError(str(error)) from error
            except DBAPI_OPERATIONAL_ERRORS as error:
                self._discard()
                raise OperationalError(str(error)) from error
            except BaseException:
                self._discard()
                raise

    def _insert_postgres(self, conn: Any, events: Sequence[StoredEvent]) -> list[int]:
        if len(events) >= self.copy_min_events:
            return self._copy_postgres(conn, events)
        # Several statements in one query string run as one implicit transaction that
        # commits before the answer comes back: clock, insert and commit in one trip.
        with conn.cursor() as cur:
            cur.execute(self._notify_and_insert, postgres_arrays(events))
            return sorted(row[0] for row in cur.fetchall())

    def _copy_postgres(self, conn: Any, events: Sequence[StoredEvent]) -> list[int]:
        with conn.cursor() as cur:
            try:
                ids = copy_postgres(cur, events, before=f"BEGIN; NOTIFY {self.channel}; ")
            except BaseException:
                self._rollback(conn)
                raise
            cur.execute("COMMIT")
            return ids

    def _insert_sqlite(self, conn: Any, events: Sequence[StoredEvent]) -> list[int]:
        cur = conn.cursor()
        try:
            cur.execute("BEGIN IMMEDIATE")
            ids = insert_sqlite(cur, events)
            cur.execute("COMMIT")
        finally:
            cur.close()
        return ids

    def _connection(self) -> Any:
        # After a fork the inherited connection is the parent's: forget it, never close it.
        if self._conn is None or self._pid != os.getpid():
            fairy = self.engine.raw_connection()
            fairy.detach()  # ours for good: the pool forgets it
            dbapi: Any = fairy.dbapi_connection
            if self.postgres:
                dbapi.autocommit = True  # no BEGIN round trip; see _insert_postgres
                with dbapi.cursor() as cur:
                    cur.execute(PG_PREPARE)
            else:
                dbapi.isolation_level = None
            self._conn, self._pid = dbapi, os.getpid()
        return self._conn

    def _rollback(self, conn: Any) -> None:
        try:
            conn.cursor().execute("ROLLBACK")
        except Exception:  # a connection that cannot roll back is not reused
            self._discard()

    def _discard(self) -> None:
        if self._conn is not None and self._pid == os.getpid():
            try:
                self._conn.close()
            except Exception:  # already broken; nothing more to release
                pass
        self._conn = None

    def close(self) -> None:
        """Close the writer's connection (the next insert opens a new one)."""
        with self._lock:
            self._discard()
