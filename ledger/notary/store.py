"""The notary's tables, raw reads of the event table, and `advance`, which extends the chain.

Reads go straight through SQLAlchemy Core in pages by position (keyset, gaps allowed):
no ORM objects and no event decoding, because verification must cover millions of rows.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa

from ledger.errors import Conflict
from ledger.notary.chain import GENESIS, RawEvent, hash_event, raw_event_to_json
from ledger.storage import EVENTS_TABLE, is_postgres

CHAIN_TABLE = "ledger_chain"
NOTARY_TABLE = "ledger_notary"
# Any fixed 64-bit number: the PostgreSQL advisory lock that admits one notary writer.
NOTARY_LOCK_KEY = 0x4C45444745524E54
_ensured: weakref.WeakSet[sa.Engine] = weakref.WeakSet()  # engines whose tables exist


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
        if not conn.exec_driver_sql(f"SELECT count(*) FROM {NOTARY_TABLE}").scalar_one():
            conn.execute(sa.text(f"INSERT INTO {NOTARY_TABLE} VALUES (1, 0, :h, NULL)"), {"h": GENESIS})
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


def _events_sql(conn: sa.Connection) -> sa.TextClause:
    originator = "uuid_send(originator_id)" if is_postgres(conn) else "originator_id"
    return sa.text(
        f"SELECT id, recorded_at, {originator}, originator_version, topic, state FROM {EVENTS_TABLE} "
        "WHERE id >= :lo AND id <= :hi ORDER BY id LIMIT :n"
    )


def _pages(engine: sa.Engine, sql: Any, lo: int, hi: int | None, page: int) -> Iterator[Any]:
    hi = 2**62 if hi is None else hi
    while lo <= hi:
        with engine.connect() as conn:
            query = sql(conn) if callable(sql) else sql
            rows = conn.execute(query, {"lo": lo, "hi": hi, "n": page}).fetchall()
        yield from rows
        if len(rows) < page:
            return
        lo = rows[-1][0] + 1


def iter_stored_events(
    engine: sa.Engine, from_position: int = 0, to_position: int | None = None, page: int = 5000
) -> Iterator[RawEvent]:
    """Stored events with from_position <= position <= to_position, in order, undecoded."""
    for row in _pages(engine, _events_sql, from_position, to_position, page):
        yield RawEvent(*row)


def iter_raw_events(
    engine: sa.Engine, from_position: int = 0, to_position: int | None = None, page: int = 5000
) -> Iterator[dict[str, Any]]:
    """The same events in their wire form (see raw_event_to_json), for the auditor API."""
    for event in iter_stored_events(engine, from_position, to_position, page):
        yield raw_event_to_json(event)


def iter_chain_rows(
    engine: sa.Engine, from_position: int = 0, to_position: int | None = None, page: int = 5000
) -> Iterator[tuple[int, bytes, bytes]]:
    """The notary's rows (position, content hash, chain hash), in order."""
    sql = sa.text(
        f"SELECT position, content_hash, chain_hash FROM {CHAIN_TABLE} "
        "WHERE position >= :lo AND position <= :hi ORDER BY position LIMIT :n"
    )
    for row in _pages(engine, sql, from_position, to_position, page):
        yield row[0], bytes(row[1]), bytes(row[2])


def last_position(engine: sa.Engine) -> int:
    """The highest stored position (0 for an empty ledger)."""
    with engine.connect() as conn:
        return int(conn.exec_driver_sql(f"SELECT coalesce(max(id), 0) FROM {EVENTS_TABLE}").scalar_one())


def notary_head(engine: sa.Engine) -> tuple[int, bytes, int | None]:
    """(position, chain hash, recorded-at) of the last chained event; (0, GENESIS, None) if none."""
    ensure_notary_tables(engine)
    with engine.connect() as conn:
        return _read_head(conn)


def _read_head(conn: sa.Connection) -> tuple[int, bytes, int | None]:
    row = conn.exec_driver_sql(f"SELECT position, head_hash, recorded_at FROM {NOTARY_TABLE} WHERE id = 1").one()
    return int(row[0]), bytes(row[1]), row[2]


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
    return notary_head(engine)[0]


def _advance_page(engine: sa.Engine, page: int) -> int | None:
    """Chain one page in one transaction: rows and the head move together, or not at all."""
    with engine.begin() as conn:
        _take_writer_lock(conn)
        old, previous, _ = _read_head(conn)
        events = conn.execute(_events_sql(conn), {"lo": old + 1, "hi": 2**62, "n": page}).fetchall()
        if not events:
            return None
        rows = []
        for event in events:
            content, previous = hash_event(previous, event)
            rows.append({"p": event[0], "c": content, "h": previous})
        conn.execute(sa.text(f"INSERT INTO {CHAIN_TABLE} VALUES (:p, :c, :h)"), rows)
        new, recorded_at = events[-1][0], events[-1][1]
        moved = conn.execute(
            sa.text(f"UPDATE {NOTARY_TABLE} SET position = :new, head_hash = :h, recorded_at = :r "
                    "WHERE id = 1 AND position = :old"),
            {"new": new, "h": previous, "r": recorded_at, "old": old},
        ).rowcount
        if moved != 1:
            raise NotaryConflict("the notary's head moved under this writer; retry")
        return new


def _take_writer_lock(conn: sa.Connection) -> None:
    if is_postgres(conn):
        conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({NOTARY_LOCK_KEY})")
    else:  # a write first: SQLite's write lock is taken before the head is read
        conn.exec_driver_sql(f"UPDATE {NOTARY_TABLE} SET position = position WHERE id = 1")
