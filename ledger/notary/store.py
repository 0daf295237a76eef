"""The notary's tables, raw reads of the event table, and `advance`, which extends the chain.

Reads go straight through SQLAlchemy Core in pages by position (keyset, gaps allowed):
no ORM objects and no event decoding, because verification must cover millions of rows.
"""

from __future__ import annotations

import queue
import threading
import weakref
from collections.abc import Iterator
from typing import Any

import psycopg2
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
        conn.execute(sa.text(f"INSERT INTO {NOTARY_TABLE} VALUES (1, 0, :h, NULL) ON CONFLICT (id) DO NOTHING"),
                     {"h": GENESIS})
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


_EVENTS_SQL = (
    "SELECT id, recorded_at, {originator}, originator_version, topic, {state} FROM "
    f"{EVENTS_TABLE} WHERE id >= ? ORDER BY id LIMIT ?"
)
_SQLITE_EVENTS = _EVENTS_SQL.format(originator="originator_id", state="state")
_PG_EVENTS = _EVENTS_SQL.format(originator="uuid_send(originator_id)", state="state")
# bytea leaves PostgreSQL as hex text (twice the bytes, parsed by the client); a UTF-8 state
# sent as text costs a third of that and re-encodes to exactly the stored bytes.
_PG_EVENTS_TEXT = _EVENTS_SQL.format(originator="uuid_send(originator_id)", state="convert_from(state, 'UTF8')")
_CHAIN_SQL = (
    f"SELECT position, content_hash, chain_hash FROM {CHAIN_TABLE} "
    "WHERE position >= ? ORDER BY position LIMIT ?"
)


def _fetch(conn: sa.Connection, sql: str, params: tuple) -> list[tuple]:
    """Plain DBAPI tuples: SQLAlchemy's Row objects cost more than the query itself here."""
    postgres = is_postgres(conn)
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(sql.replace("?", "%s") if postgres else sql, params)
        return list(cursor.fetchall())
    finally:
        cursor.close()


def fetch_events(conn: sa.Connection, lo: int, page: int) -> list[tuple]:
    """Up to `page` stored events from position `lo` on, as RawEvent-ordered tuples."""
    if not is_postgres(conn):
        return _fetch(conn, _SQLITE_EVENTS, (lo, page))
    dbapi = conn.connection.dbapi_connection
    if dbapi.encoding == "UTF8" and dbapi.get_parameter_status("server_encoding") == "UTF8":  # type: ignore[union-attr]
        cursor = dbapi.cursor()  # type: ignore[union-attr]
        try:
            cursor.execute("SAVEPOINT ledger_raw_read")
            cursor.execute(_PG_EVENTS_TEXT.replace("?", "%s"), (lo, page))
            rows = cursor.fetchall()
            cursor.execute("RELEASE SAVEPOINT ledger_raw_read")
            return [(r[0], r[1], bytes(r[2]), r[3], r[4], r[5].encode()) for r in rows]
        except psycopg2.DataError:  # a state that is not UTF-8 text (ciphertext, NUL): take bytes
            cursor.execute("ROLLBACK TO SAVEPOINT ledger_raw_read")
        finally:
            cursor.close()
    return _fetch(conn, _PG_EVENTS, (lo, page))


def _fetch_chain(conn: sa.Connection, lo: int, page: int) -> list[tuple]:
    rows = _fetch(conn, _CHAIN_SQL, (lo, page))
    if rows and type(rows[0][1]) is not bytes:
        # psycopg2's memoryviews have format 'c' and never compare equal to bytes.
        rows = [(r[0], bytes(r[1]), bytes(r[2])) for r in rows]
    return rows


def _pages(engine: sa.Engine, fetch: Any, lo: int, hi: int | None, page: int) -> Iterator[list[tuple]]:
    """Keyset pages by position; each page its own short read, so a long scan holds no locks.

    The upper bound is applied here, not in SQL: a two-sided range on a freshly loaded
    PostgreSQL table (no statistics yet) is planned as scan-everything-then-sort.
    """
    hi = 2**62 if hi is None else hi
    while lo <= hi:
        with engine.connect() as conn:
            rows = fetch(conn, lo, page)
        full = len(rows) == page
        if rows and rows[-1][0] > hi:
            rows = [row for row in rows if row[0] <= hi]
            full = False
        if rows:
            yield rows
        if not full:
            return
        lo = rows[-1][0] + 1


def _prefetched(pages: Iterator[list[tuple]], depth: int = 3) -> Iterator[tuple]:
    """Rows of `pages`, fetched by a helper thread: the drivers release the GIL while the
    database works, so reading the next page overlaps hashing this one."""
    slots: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for rows in pages:
                while not stop.is_set():
                    try:
                        slots.put(rows, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            slots.put(None)
        except BaseException as error:  # handed to the consumer, raised there
            slots.put(error)

    threading.Thread(target=produce, name="ledger-page-reader", daemon=True).start()
    try:
        while (item := slots.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            yield from item
    finally:
        stop.set()


def event_rows(engine: sa.Engine, from_position: int = 0, to_position: int | None = None,
               page: int = 5000) -> Iterator[tuple]:
    """The fast path: plain tuples in RawEvent's field order, read ahead by a helper thread."""
    return _prefetched(_pages(engine, fetch_events, from_position, to_position, page))


def chain_rows(engine: sa.Engine, from_position: int = 0, to_position: int | None = None,
               page: int = 5000) -> Iterator[tuple]:
    """The notary's rows as (position, content hash, chain hash), read ahead."""
    return _prefetched(_pages(engine, _fetch_chain, from_position, to_position, page))


def iter_stored_events(
    engine: sa.Engine, from_position: int = 0, to_position: int | None = None, page: int = 5000
) -> Iterator[RawEvent]:
    """Stored events with from_position <= position <= to_position, in order, undecoded."""
    for rows in _pages(engine, fetch_events, from_position, to_position, page):
        for row in rows:
            yield RawEvent(row[0], row[1], bytes(row[2]), row[3], row[4], bytes(row[5]))


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
    for rows in _pages(engine, _fetch_chain, from_position, to_position, page):
        yield from rows


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
            sa.text(f"UPDATE {NOTARY_TABLE} SET position = :new, head_hash = :h, recorded_at = :r "
                    "WHERE id = 1 AND position = :old"),
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

            execute_values(cursor, f"INSERT INTO {CHAIN_TABLE} VALUES %s", rows, page_size=len(rows))
        else:
            cursor.executemany(f"INSERT INTO {CHAIN_TABLE} VALUES (?, ?, ?)", rows)
    finally:
        cursor.close()


def _take_writer_lock(conn: sa.Connection) -> None:
    if is_postgres(conn):
        conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({NOTARY_LOCK_KEY})")
    else:  # a write first: SQLite's write lock is taken before the head is read
        conn.exec_driver_sql(f"UPDATE {NOTARY_TABLE} SET position = position WHERE id = 1")
