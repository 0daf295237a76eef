"""The notary's tables and `advance`, which extends the chain one page per transaction.

Reads live in ledger.notary.reads and are re-exported here.
"""

from __future__ import annotations

import weakref
from typing import NamedTuple

import sqlalchemy as sa

from ledger.database import is_postgres
from ledger.errors import Conflict
from ledger.notary.chain import GENESIS, hash_event
from ledger.notary.reads import (  # noqa: F401 - re-exported: the store's public reads
    CHAIN_TABLE,
    NOTARY_TABLE,
    chain_rows,
    event_rows,
    fetch_events,
    iter_chain_rows,
    iter_raw_events,
    iter_stored_events,
    last_position,
)

__all__ = [
    "CHAIN_TABLE",
    "NOTARY_LOCK_KEY",
    "NOTARY_TABLE",
    "NotaryConflict",
    "NotaryHead",
    "advance",
    "chain_rows",
    "ensure_notary_tables",
    "event_rows",
    "fetch_events",
    "has_notary_tables",
    "iter_chain_rows",
    "iter_raw_events",
    "iter_stored_events",
    "last_position",
    "notary_head",
]

# Any fixed 64-bit number: the PostgreSQL advisory lock that admits one notary writer.
NOTARY_LOCK_KEY = 0x4C45444745524E54
_ensured: weakref.WeakSet[sa.Engine] = weakref.WeakSet()  # engines whose tables exist


class NotaryHead(NamedTuple):
    """Where the chain ends: the last chained event's position, chain hash and recorded-at."""

    position: int
    chain_hash: bytes
    recorded_at: int | None


class NotaryConflict(Conflict):
    """Another notary moved the chain while this one computed a page; retry."""

    code = "notary_conflict"


def _blob(conn: sa.Connection) -> str:
    return "BYTEA" if is_postgres(conn) else "BLOB"


def ensure_notary_tables(engine: sa.Engine) -> None:
    """Create the chain and head tables (idempotent; append-only like the event table)."""
    if engine in _ensured:
        return
    with engine.begin() as conn:
        postgres = is_postgres(conn)
        if postgres:
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({NOTARY_LOCK_KEY})")
        conn.exec_driver_sql(
            f"CREATE TABLE IF NOT EXISTS {CHAIN_TABLE} (position BIGINT PRIMARY KEY, "
            f"content_hash {_blob(conn)} NOT NULL, chain_hash {_blob(conn)} NOT NULL)"
        )
        conn.exec_driver_sql(
            f"CREATE TABLE IF NOT EXISTS {NOTARY_TABLE} (id INTEGER PRIMARY KEY, "
            f"position BIGINT NOT NULL, head_hash {_blob(conn)} NOT NULL, recorded_at BIGINT)"
        )
        conn.execute(
            sa.text(
                f"INSERT INTO {NOTARY_TABLE} VALUES (1, 0, :h, NULL) ON CONFLICT (id) DO NOTHING"
            ),
            {"h": GENESIS},
        )
        _guard_chain_table(conn, postgres)
    _ensured.add(engine)


def _guard_chain_table(conn: sa.Connection, postgres: bool) -> None:
    # The event table's refusal function (ledger.storage) serves the chain table too.
    if postgres:
        conn.exec_driver_sql(
            f"CREATE OR REPLACE TRIGGER {CHAIN_TABLE}_no_update_delete BEFORE UPDATE OR DELETE "
            f"ON {CHAIN_TABLE} FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change()"
        )
        return
    for op in ("UPDATE", "DELETE"):
        conn.exec_driver_sql(
            f"CREATE TRIGGER IF NOT EXISTS {CHAIN_TABLE}_no_{op.lower()} BEFORE {op} ON {CHAIN_TABLE} "
            f"BEGIN SELECT RAISE(ABORT, 'the chain is append-only: {op} refused'); END"
        )


def has_notary_tables(engine: sa.Engine) -> bool:
    return sa.inspect(engine).has_table(CHAIN_TABLE)


def notary_head(engine: sa.Engine) -> NotaryHead:
    """(position, chain hash, recorded-at) of the last chained event; (0, GENESIS, None) if none."""
    ensure_notary_tables(engine)
    with engine.connect() as conn:
        return _read_head(conn)


def _read_head(conn: sa.Connection) -> NotaryHead:
    row = conn.exec_driver_sql(
        f"SELECT position, head_hash, recorded_at FROM {NOTARY_TABLE} WHERE id = 1"
    ).one()
    return NotaryHead(int(row[0]), bytes(row[1]), row[2])


def advance(engine: sa.Engine, page: int = 5000, max_pages: int | None = None) -> int:
    """Chain every stored event not yet chained; returns the new head position.

    Safe to call from many processes: one writer at a time, the others wait, then find
    nothing left to do.
    """
    ensure_notary_tables(engine)
    pages = 0
    while max_pages is None or pages < max_pages:
        moved = _advance_page(engine, page)
        if moved is None:
            break
        pages += 1
    return notary_head(engine).position


def _advance_page(engine: sa.Engine, page: int) -> int | None:
    """Chain one page in one transaction: rows and the head move together, or not at all."""
    with engine.begin() as conn:
        _take_writer_lock(conn)
        old, previous, _ = _read_head(conn)
        events = fetch_events(conn, old + 1, page)
        if not events:
            return None
        rows = []
        for event in events:
            content, previous = hash_event(previous, event)
            rows.append((event[0], content, previous))
        _insert_chain_rows(conn, rows)
        new, recorded_at = events[-1][0], events[-1][1]
        moved = conn.execute(
            sa.text(
                f"UPDATE {NOTARY_TABLE} SET position = :new, head_hash = :h, recorded_at = :r "
                "WHERE id = 1 AND position = :old"
            ),
            {"new": new, "h": previous, "r": recorded_at, "old": old},
        ).rowcount
        if moved != 1:
            raise NotaryConflict("the notary's head moved under this writer; retry")
        return new


def _insert_chain_rows(conn: sa.Connection, rows: list[tuple[int, bytes, bytes]]) -> None:
    # One multi-row statement on PostgreSQL: executemany would be a round trip a row.
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        if is_postgres(conn):
            from psycopg2.extras import execute_values

            execute_values(
                cursor, f"INSERT INTO {CHAIN_TABLE} VALUES %s", rows, page_size=len(rows)
            )
        else:
            cursor.executemany(f"INSERT INTO {CHAIN_TABLE} VALUES (?, ?, ?)", rows)
    finally:
        cursor.close()


def _take_writer_lock(conn: sa.Connection) -> None:
    if is_postgres(conn):
        conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({NOTARY_LOCK_KEY})")
    else:  # a write first: SQLite's write lock is taken before the head is read
        conn.exec_driver_sql(f"UPDATE {NOTARY_TABLE} SET position = position WHERE id = 1")
