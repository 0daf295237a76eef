"""The event log's one door: every read of the stored events outside the recorder.

Decoded reads (`page`, `by_originator`, `by_topic`, `events`) map each stored event
through the application's mapper, so an event class's upcasters (`class_version` and
`upcast_vN_vM` static methods) reach every reader. Raw reads (`raw_page`, `rows`) and the
SQL builders (`states_sql`, `originators_sql`) are the fast paths of rebuilds
and exports: they hand back the stored JSON, which their callers read field by field as
today's class version has it: `fields` applies the class's upcasters to an older state, as
the mapper does, and the SQL builders, which read fields inside the database, refuse to
build (StaleReader) for a class past version 1.

Events are named by their classes, never by topic strings: `topic(Prediction.Made)`.
Above the ledger nothing else names the event table or a topic (tests/unit/test_log_door.py).
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

import orjson
import sqlalchemy as sa
from eventsourcing.application import Application
from eventsourcing.persistence import Mapper, StoredEvent
from eventsourcing.utils import get_topic, resolve_topic

from ledger.database import is_postgres
from ledger.lean_insert import EVENTS_TABLE
from ledger.transcoder import OrjsonTranscoder

EVENTS = sa.table(
    EVENTS_TABLE,
    sa.column("id"),
    sa.column("originator_id"),
    sa.column("originator_version"),
    sa.column("topic"),
    sa.column("state"),
    sa.column("recorded_at"),
)
CHANNEL = EVENTS_TABLE  # the recorder NOTIFYs on a channel named after its table

# SQLite stores the uuid as 16 bytes: text in SQL costs less than uuid.UUID in Python.
_HEX = "hex(originator_id)"
SQLITE_UUID_TEXT = (
    "lower("
    + "||'-'||".join(
        f"substr({_HEX}, {a}, {n})" for a, n in ((1, 8), (9, 4), (13, 4), (17, 4), (21, 12))
    )
    + ")"
)


class LogRow(NamedTuple):
    """One stored event as the table holds it; the originator as text on both backends."""

    position: int
    originator_id: str
    originator_version: int
    topic: str
    state: bytes  # or a memoryview (psycopg2's bytea): orjson and bytes() take both
    recorded_at: int


class StaleReader(RuntimeError):
    """A reader of stored JSON met an event of a class version it was not written for."""


@functools.cache
def topic(cls: type) -> str:
    """The topic the mapper stores for an event class."""
    return get_topic(cls)


def topics(classes: Iterable[type]) -> list[str]:
    """The topics of these event classes, sorted (stable SQL text)."""
    return sorted({topic(cls) for cls in classes})


def kind(cls: type) -> str:
    """The class name after the module, e.g. `Prediction.Made`: what `Event.kind` compares."""
    return topic(cls).rsplit(":", 1)[1]


def class_version(cls: type) -> int:
    """The version the mapper writes for new events of this class (1 unless declared)."""
    return int(getattr(cls, "class_version", 1))


def written_for(cls: type, version: int = 1) -> None:
    """Refuse a reader of stored JSON written for another version of the class than today's."""
    if class_version(cls) != version:
        raise StaleReader(
            f"{kind(cls)} is at class version {class_version(cls)}; this reader reads the stored "
            f"JSON of version {version} and would bypass the upcasters: read it through the mapper"
        )


def fields(row: LogRow) -> dict[str, Any]:
    """A raw row's stored JSON as today's class version has it: the class's own upcasters
    (`upcast_vN_vN+1`) applied to an older state, as the mapper applies them."""
    state: dict[str, Any] = orjson.loads(row.state)
    stored = state.pop("class_version", 1)  # the mapper writes it only above 1
    cls = _event_class(row.topic)
    while stored < class_version(cls):
        getattr(cls, f"upcast_v{stored}_v{stored + 1}")(state)
        stored += 1
    if stored != class_version(cls):
        raise StaleReader(
            f"event {row.position} ({row.topic}) is stored at class version {stored}, newer "
            f"than this code's {class_version(cls)}: upgrade before reading it"
        )
    return state


@functools.cache
def _event_class(topic_: str) -> type:
    return resolve_topic(topic_)  # type: ignore[no-any-return]


def originator_text(value: Any) -> str:
    """SQLite stores the uuid as 16 bytes, PostgreSQL as a uuid: both become text."""
    if isinstance(value, (bytes, memoryview)):
        return str(uuid.UUID(bytes=bytes(value)))
    return str(value)


def originator_key(conn: sa.Connection, originator_id: Any) -> Any:
    """An originator id as each backend compares it: text on PostgreSQL, 16 bytes on SQLite."""
    value = originator_id if isinstance(originator_id, uuid.UUID) else uuid.UUID(str(originator_id))
    return str(value) if is_postgres(conn) else value.bytes


# -- raw rows ----------------------------------------------------------------------
def query(
    conn: sa.Connection,
    *,
    after: int = 0,
    upto: int | None = None,
    classes: Iterable[type] | None = None,
    originators: Sequence[Any] | None = None,
    version: int | None = None,
    recorded_from: int | None = None,
    recorded_before: int | None = None,
    recorded_at: int | None = None,
    limit: int | None = None,
) -> sa.Select[Any]:
    """The stored events matching every filter given, in position order, as LogRow columns."""
    t = EVENTS
    where = [t.c.id > after]
    if upto is not None:
        where.append(t.c.id <= upto)
    if classes is not None:
        where.append(t.c.topic.in_(topics(classes)))
    if originators is not None:
        where.append(t.c.originator_id.in_([originator_key(conn, o) for o in originators]))
    if version is not None:
        where.append(t.c.originator_version == version)
    if recorded_from is not None:
        where.append(t.c.recorded_at >= recorded_from)
    if recorded_before is not None:
        where.append(t.c.recorded_at < recorded_before)
    if recorded_at is not None:
        where.append(t.c.recorded_at == recorded_at)
    select = sa.select(*_columns(conn)).where(*where).order_by(t.c.id)
    return select if limit is None else select.limit(limit)


def rows(conn: sa.Connection, **filters: Any) -> list[LogRow]:
    """The raw rows `query` selects (same filters)."""
    return list(map(LogRow._make, conn.execute(query(conn, **filters))))


def raw_page(
    conn: sa.Connection, after: int, upto: int, limit: int, classes: Iterable[type] | None = None
) -> tuple[list[LogRow], int]:
    """Raw rows after `after` in id order, and the position the page reaches.

    The id range asked for is at most `limit` wide: on a table whose statistics lag
    (a ledger that just grew) PostgreSQL otherwise picks a bitmap scan of everything
    after `after` and a sort, for every page.
    """
    high = min(upto, after + limit)
    return rows(conn, after=after, upto=high, classes=classes), high


def _columns(conn: sa.Connection) -> tuple[Any, ...]:
    t = EVENTS
    # PostgreSQL sends the uuid as text: psycopg2 would build a UUID object only to str() it
    if is_postgres(conn):
        originator: Any = sa.cast(t.c.originator_id, sa.Text)
    else:
        originator = sa.literal_column(SQLITE_UUID_TEXT)
    return (
        t.c.id.label("position"),
        originator.label("originator_id"),
        t.c.originator_version,
        t.c.topic,
        t.c.state,
        t.c.recorded_at,
    )


# -- decoded events ------------------------------------------------------------------
@functools.cache
def mapper() -> Mapper[uuid.UUID]:
    """A mapper like the application's (its transcoder and transcodings), for readers without one."""
    transcoder = OrjsonTranscoder()
    Application.register_transcodings(None, transcoder)  # type: ignore[arg-type]  # uses no state
    return Mapper(transcoder)


def decode(mapper: Mapper[Any], row: LogRow) -> Any:
    """The domain event of a raw row, upcast to its class's current version by the mapper."""
    return mapper.to_domain_event(
        StoredEvent(
            originator_id=uuid.UUID(row.originator_id),
            originator_version=row.originator_version,
            topic=row.topic,
            state=bytes(row.state),
        )
    )


def events(mapper: Mapper[Any], conn: sa.Connection, **filters: Any) -> list[Any]:
    """The domain events `query` selects (same filters), in position order."""
    return [decode(mapper, row) for row in rows(conn, **filters)]


def page(
    mapper: Mapper[Any],
    conn: sa.Connection,
    after: int,
    upto: int,
    limit: int,
    classes: Iterable[type] | None = None,
) -> tuple[list[Any], int]:
    """The domain events of `raw_page`, and the position the page reaches."""
    found, high = raw_page(conn, after, upto, limit, classes)
    return [decode(mapper, row) for row in found], high


def by_originator(
    mapper: Mapper[Any],
    conn: sa.Connection,
    originator_id: Any,
    classes: Iterable[type] | None = None,
    upto: int | None = None,
) -> list[Any]:
    """One aggregate's events (of these classes), up to a position, in version order."""
    return events(mapper, conn, originators=[originator_id], classes=classes, upto=upto)


def by_topic(
    mapper: Mapper[Any],
    conn: sa.Connection,
    classes: Iterable[type],
    after: int = 0,
    upto: int | None = None,
    limit: int | None = None,
) -> list[Any]:
    """The events of these classes in positions (after, upto], at most `limit` of them."""
    return events(mapper, conn, classes=classes, after=after, upto=upto, limit=limit)


# -- positions -------------------------------------------------------------------------
def head(conn: sa.Connection) -> int:
    """The highest position stored (committed ids below it are final: see docs/PROJECTIONS.md)."""
    return int(conn.execute(sa.select(sa.func.coalesce(sa.func.max(EVENTS.c.id), 0))).scalar_one())


def recorded_at_of(conn: sa.Connection, position: int) -> int:
    """The recorded-at of the last event at or before a position (0 before the first)."""
    return int(conn.execute(recorded_at_of_query(position)).scalar() or 0)


def recorded_at_of_query(position: Any) -> sa.Select[Any]:
    """`recorded_at_of` as a query, to nest as a scalar subquery (position may be a bindparam)."""
    e = EVENTS
    return sa.select(e.c.recorded_at).where(e.c.id <= position).order_by(e.c.id.desc()).limit(1)


def time_of(conn: sa.Connection, position: int) -> int:
    """The recorded-at of the event at exactly this position."""
    query = sa.select(EVENTS.c.recorded_at).where(EVENTS.c.id == position)
    return int(conn.execute(query).scalar_one())


LAST_VERSION_SQL = f"SELECT max(originator_version) FROM {EVENTS_TABLE} WHERE originator_id = %s"
"""psycopg2 SQL for an aggregate's latest version, on a raw cursor (one round trip)."""


def last_version(conn: sa.Connection, originator_id: uuid.UUID) -> int | None:
    """An aggregate's latest version (None if it has no event)."""
    query = sa.select(sa.func.max(EVENTS.c.originator_version)).where(
        EVENTS.c.originator_id == originator_key(conn, originator_id)
    )
    version = conn.execute(query).scalar_one()
    return None if version is None else int(version)


def count(conn: sa.Connection, classes: Iterable[type]) -> int:
    """How many events of these classes are stored."""
    query = sa.select(sa.func.count()).where(EVENTS.c.topic.in_(topics(classes)))
    return int(conn.execute(query).scalar_one())


def originators(conn: sa.Connection, classes: Iterable[type]) -> list[str]:
    """Every originator with an event of these classes, once each, as text."""
    query = sa.select(EVENTS.c.originator_id).where(EVENTS.c.topic.in_(topics(classes)))
    return [originator_text(o) for (o,) in conn.execute(query.group_by(EVENTS.c.originator_id))]


# -- SQL for the fast paths -----------------------------------------------------------------
# Read tables hold no U+0000 (PostgreSQL's jsonb and text cannot; SQLite's JSON functions cut
# the text there): the JSON escape \u0000 reads as \ufffd, but not an escaped backslash's text
# "\\u0000". Only states holding the escape pay for the rewrite. The escape's bytes are
# spelled with decode (immutable, folded into a constant when planned): convert_to is only
# stable, so PostgreSQL evaluated it again for every row (about 2 µs a row: a twentieth of
# the predictions copy, projections/made_sql.py).
NUL_SAFE_STATE = {
    "postgresql": (
        r"CASE WHEN position(decode('5c7530303030', 'hex') in state) > 0 "
        r"THEN regexp_replace(convert_from(state, 'UTF8'), '(?<!\\)((?:\\\\)*)\\u0000', "
        r"'\1\\ufffd', 'g') ELSE convert_from(state, 'UTF8') END"
    ),
    # escaped backslashes parked on U+0001 (stored JSON escapes every control character)
    "sqlite": (
        r"CASE WHEN instr(state, X'5C7530303030') > 0 THEN replace(replace(replace("
        r"CAST(state AS TEXT), '\\', char(1)), '\u0000', '\ufffd'), char(1), '\\') "
        r"ELSE CAST(state AS TEXT) END"
    ),
}


def states_sql(conn: sa.Connection, cls: type, version: int = 1) -> tuple[str, dict[str, Any]]:
    """SQL text selecting `id, originator_id, recorded_at, s` of the events of `cls` in
    positions (:after, :upto], `s` the stored JSON (jsonb on PostgreSQL, text on SQLite),
    with its bind values (add `after` and `upto`).

    Its callers read fields of `s` as class version `version` wrote them, so it refuses to
    build for a class at another version. That covers every row: the mapper writes no
    `class_version` below 2, so while a class is at version 1 none of its rows has another.
    """
    if version != 1:
        raise StaleReader("SQL over stored JSON reads class version 1 only: use the mapper")
    written_for(cls, version)
    if is_postgres(conn):
        state = f"({NUL_SAFE_STATE['postgresql']})::jsonb"
    else:
        state = f"({NUL_SAFE_STATE['sqlite']})"
    sql = (
        f"SELECT id, originator_id, recorded_at, {state} AS s FROM {EVENTS_TABLE} "
        "WHERE id > :after AND id <= :upto AND topic = :topic"
    )
    return sql, {"topic": topic(cls)}


def originators_sql(cls: type) -> tuple[str, dict[str, Any]]:
    """psycopg2 SQL for the distinct originators (as text, column `id`) with an event of
    `cls` in positions (%(after)s, %(upto)s], with its bind values (add `after` and `upto`)."""
    sql = (
        f"SELECT DISTINCT originator_id::text AS id FROM {EVENTS_TABLE} "
        "WHERE id > %(after)s AND id <= %(upto)s AND topic = %(topic)s"
    )
    return sql, {"topic": topic(cls)}
