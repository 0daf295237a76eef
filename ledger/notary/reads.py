"""Raw reads of the event table and the chain, in pages by position (keyset, gaps allowed).

No ORM objects and no event decoding: verification must cover millions of rows, so pages
come back as plain DBAPI tuples and a helper thread reads the next page while the
caller hashes this one.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import psycopg2
import sqlalchemy as sa

from ledger.database import is_postgres
from ledger.notary.chain import ChainRow, EventRow, RawEvent, raw_event_to_json
from ledger.storage import EVENTS_TABLE

Row = TypeVar("Row", bound=tuple[Any, ...])
CHAIN_TABLE = "ledger_chain"
NOTARY_TABLE = "ledger_notary"

_EVENTS_SQL = (
    "SELECT id, recorded_at, {originator}, originator_version, topic, {state} FROM "
    f"{EVENTS_TABLE} WHERE id >= ? ORDER BY id LIMIT ?"
)
_SQLITE_EVENTS = _EVENTS_SQL.format(originator="originator_id", state="state")
_PG_EVENTS = _EVENTS_SQL.format(originator="uuid_send(originator_id)", state="state")
# bytea leaves PostgreSQL as hex text (twice the bytes, parsed by the client); a UTF-8 state
# sent as text costs a third of that and re-encodes to exactly the stored bytes.
_PG_EVENTS_TEXT = _EVENTS_SQL.format(
    originator="uuid_send(originator_id)", state="convert_from(state, 'UTF8')"
)
_CHAIN_SQL = (
    f"SELECT position, content_hash, chain_hash FROM {CHAIN_TABLE} "
    "WHERE position >= ? ORDER BY position LIMIT ?"
)


def _fetch(conn: sa.Connection, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    """Plain DBAPI tuples: SQLAlchemy's Row objects cost more than the query itself here."""
    postgres = is_postgres(conn)
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(sql.replace("?", "%s") if postgres else sql, params)
        return list(cursor.fetchall())
    finally:
        cursor.close()


def fetch_events(conn: sa.Connection, lo: int, page: int) -> list[EventRow]:
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


# A page of chain rows as one row (positions, one blob of 64-byte pairs): psycopg2 spends
# more per row than the row's 64 bytes are worth. Any hash not 32 bytes long falls back.
_PG_CHAIN_PAGE = (
    "SELECT array_agg(position ORDER BY position), "
    "string_agg(content_hash || chain_hash, ''::bytea ORDER BY position), "
    "bool_and(length(content_hash) = 32 AND length(chain_hash) = 32) "
    f"FROM ({_CHAIN_SQL.replace('?', '%s')}) page"
)


def _fetch_chain(conn: sa.Connection, lo: int, page: int) -> list[ChainRow]:
    if is_postgres(conn):
        positions, blob, well_formed = _fetch(conn, _PG_CHAIN_PAGE, (lo, page))[0]
        if positions is None:
            return []
        if well_formed:
            blob = bytes(blob)
            pairs = range(0, len(blob), 64)
            return [
                (p, blob[i : i + 32], blob[i + 32 : i + 64])
                for p, i in zip(positions, pairs, strict=True)
            ]
    rows = _fetch(conn, _CHAIN_SQL, (lo, page))
    if rows and type(rows[0][1]) is not bytes:
        # psycopg2's memoryviews have format 'c' and never compare equal to bytes.
        rows = [(r[0], bytes(r[1]), bytes(r[2])) for r in rows]
    return rows


def _pages(
    engine: sa.Engine,
    fetch: Callable[[sa.Connection, int, int], list[Row]],
    lo: int,
    hi: int | None,
    page: int,
) -> Iterator[list[Row]]:
    """Keyset pages by position; each page its own short read, so a long scan holds no locks.

    The upper bound is applied here, not in SQL: a two-sided range on a freshly loaded
    PostgreSQL table (no statistics yet) is planned as scan-everything-then-sort.
    """
    hi = 2**62 if hi is None else hi
    while lo <= hi:
        wanted = min(page, hi - lo + 1)  # positions are unique: [lo, hi] holds no more rows
        with engine.connect() as conn:
            rows = fetch(conn, lo, wanted)
        full = len(rows) == wanted
        if rows and rows[-1][0] > hi:
            rows = [row for row in rows if row[0] <= hi]
            full = False
        if rows:
            yield rows
        if not full:
            return
        lo = rows[-1][0] + 1


def _prefetched(pages: Iterator[list[Row]], depth: int = 3) -> Iterator[Row]:
    """Rows of `pages`, fetched by a helper thread: the drivers release the GIL while the
    database works, so reading the next page overlaps hashing this one."""
    slots: queue.Queue[list[Row] | BaseException | None] = queue.Queue(maxsize=depth)
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


def event_rows(
    engine: sa.Engine, from_position: int = 0, to_position: int | None = None, page: int = 5000
) -> Iterator[EventRow]:
    """The fast path: plain tuples in RawEvent's field order, read ahead by a helper thread."""
    return _prefetched(_pages(engine, fetch_events, from_position, to_position, page))


def chain_rows(
    engine: sa.Engine, from_position: int = 0, to_position: int | None = None, page: int = 5000
) -> Iterator[ChainRow]:
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
) -> Iterator[ChainRow]:
    """The notary's rows (position, content hash, chain hash), in order."""
    for rows in _pages(engine, _fetch_chain, from_position, to_position, page):
        yield from rows


def last_position(engine: sa.Engine) -> int:
    """The highest stored position (0 for an empty ledger)."""
    with engine.connect() as conn:
        return int(
            conn.exec_driver_sql(f"SELECT coalesce(max(id), 0) FROM {EVENTS_TABLE}").scalar_one()
        )
