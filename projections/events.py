"""Raw reading of the event table: pages in position order, decoded without the library.

Reading 50,000 events in pages of 1,000, the library's query cost ~26 µs a row and its
decoding ~14 µs an event; a Core query plus orjson read them about 3x faster, which is
what lets a rebuild keep up.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson
import sqlalchemy as sa

from ledger.storage import EVENTS_TABLE

PREFIX = "ledger.domain."
DEPLOYMENT = PREFIX + "deployments:Deployment."
MODEL = PREFIX + "models:Model."
TRAINING = PREFIX + "training:TrainingRun."
DATASET = PREFIX + "datasets:Dataset."
PREDICTION = PREFIX + "predictions:Prediction."

events_table = sa.table(
    EVENTS_TABLE,
    sa.column("id"),
    sa.column("originator_id"),
    sa.column("originator_version"),
    sa.column("topic"),
    sa.column("state"),
    sa.column("recorded_at"),
)


@dataclass(frozen=True, slots=True)
class Event:
    """One stored event as the projections see it: position, who, what, when."""

    position: int
    originator_id: str
    version: int
    topic: str
    state: dict[str, Any]
    recorded_at: int

    @property
    def kind(self) -> str:
        """The class name after the module, e.g. `Prediction.Made`."""
        return self.topic.rsplit(":", 1)[1]


def originator_str(value: Any) -> str:
    """SQLite stores the uuid as 16 bytes, PostgreSQL as a uuid: both become text."""
    if isinstance(value, (bytes, memoryview)):
        return str(uuid.UUID(bytes=bytes(value)))
    return str(value)


def decode(row: Any) -> Event:
    state = row[4]
    return Event(
        position=row[0],
        originator_id=originator_str(row[1]),
        version=row[2],
        topic=row[3],
        state=orjson.loads(state),  # bytes or a memoryview (psycopg2's bytea): orjson takes both
        recorded_at=row[5],
    )


def head(conn: sa.Connection) -> int:
    """The highest position stored (committed ids below it are final: see docs/PROJECTIONS.md)."""
    return int(
        conn.execute(sa.select(sa.func.coalesce(sa.func.max(events_table.c.id), 0))).scalar_one()
    )


def read_page(
    conn: sa.Connection, after: int, upto: int, limit: int, topics: Iterable[str] | None = None
) -> tuple[list[Any], int]:
    """Raw rows after `after` in id order, and the position the page reaches.

    The id range asked for is at most `limit` wide: on a table whose statistics lag
    (a ledger that just grew) PostgreSQL otherwise picks a bitmap scan of everything
    after `after` and a sort, for every page.
    """
    t = events_table
    high = min(upto, after + limit)
    # PostgreSQL sends the uuid as text: psycopg2 would build a UUID object only to str() it
    originator = (
        sa.cast(t.c.originator_id, sa.Text)
        if conn.dialect.name == "postgresql"
        else t.c.originator_id
    )
    query = sa.select(
        t.c.id, originator, t.c.originator_version, t.c.topic, t.c.state, t.c.recorded_at
    ).where(t.c.id > after, t.c.id <= high)
    if topics is not None:
        query = query.where(t.c.topic.in_(sorted(topics)))
    rows = list(conn.execute(query.order_by(t.c.id)))
    return rows, high


def recorded_at_of(conn: sa.Connection, position: int) -> int:
    """The recorded-at of the last event at or before a position (0 before the first)."""
    query = sa.select(events_table.c.recorded_at).where(events_table.c.id <= position)
    value = conn.execute(query.order_by(events_table.c.id.desc()).limit(1)).scalar()
    return int(value or 0)
