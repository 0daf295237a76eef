"""A projection that cannot apply an event says so: one row per stalled projection.

The runner writes the row in its own transaction (the page's transaction has rolled
back), so every process reads it: `/healthz`, `/metrics` and the staleness headers of
projection reads. The row goes when the projection applies the event it was stuck on.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from ledger import log
from projections.base import BIGINT, positions

REASON_CHARS = 300  # one line an operator reads on /healthz, not a traceback

_meta = sa.MetaData()
stalls = sa.Table(
    "projection_stalls",
    _meta,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("position", BIGINT, nullable=False),  # the projection's position when it last failed
    sa.Column("upto", BIGINT, nullable=False),  # the failing range's end: (position, upto]
    sa.Column("error", sa.String(200), nullable=False),  # the exception's class
    sa.Column("reason", sa.String(REASON_CHARS), nullable=False),
    sa.Column("since", BIGINT, nullable=False),  # µs since the epoch of the first failure
    sa.Column("attempts", sa.Integer, nullable=False),
)


@dataclass(frozen=True)
class Stall:
    """Where a projection is stuck, on what, and since when."""

    position: int
    upto: int
    error: str
    reason: str
    since: int  # µs since the epoch
    attempts: int

    @property
    def event(self) -> int | None:
        """The position of the event it cannot apply, once the runner has narrowed it down."""
        return self.upto if self.upto == self.position + 1 else None


@dataclass(frozen=True)
class Status:
    """One projection as an operator sees it: how far it is, how far behind, stuck or not."""

    name: str
    position: int
    lag: int  # events recorded past its position
    stall: Stall | None


def ensure_stalls(conn: sa.Connection) -> None:
    """The stall table (the caller serialises DDL, as for the position table)."""
    conn.execute(sa.schema.CreateTable(stalls, if_not_exists=True))


def one_line(error: BaseException) -> str:
    """An exception's first line, short, without NUL (PostgreSQL text cannot hold it)."""
    lines = str(error).strip().splitlines() or [""]
    return lines[0].replace("\x00", "\ufffd")[:REASON_CHARS]


def record(engine: sa.Engine, name: str, position: int, upto: int, error: BaseException) -> Stall:
    """Write (or update) the stall row in its own transaction; the first failure's time stays."""
    now = int(time.time() * 1_000_000)
    with engine.begin() as conn:
        ensure_stalls(conn)
        old = read(conn, name)
        stall = Stall(
            position,
            upto,
            type(error).__qualname__[:200],
            one_line(error),
            old.since if old is not None else now,
            (old.attempts if old is not None else 0) + 1,
        )
        values = {**stall.__dict__, "name": name}
        if old is None:
            conn.execute(stalls.insert().values(**values))
        else:
            conn.execute(stalls.update().where(stalls.c.name == name).values(**values))
    return stall


def clear(engine: sa.Engine, name: str) -> None:
    """The projection applied what it was stuck on: drop its row."""
    with engine.begin() as conn:
        conn.execute(stalls.delete().where(stalls.c.name == name))


def read(conn: sa.Connection, name: str) -> Stall | None:
    """The projection's stall row, or None."""
    row = conn.execute(sa.select(*_stall_columns()).where(stalls.c.name == name)).first()
    return None if row is None else _stall(row)


def statuses(conn: sa.Connection) -> tuple[int, list[Status]]:
    """The log's head, and every projection's position, lag and stall (a stall it has
    since passed is not one).

    The head, then one joined read of two small tables; before any runner has made the
    tables: no projection at all."""
    head = log.head(conn)
    for query in (_statuses_query(), sa.select(positions.c.name, positions.c.position)):
        try:
            rows = conn.execute(query).all()
        except (sa.exc.ProgrammingError, sa.exc.OperationalError):
            conn.rollback()  # no stall table yet (runners older than it), or no table at all
            continue
        return head, [_status(head, row) for row in rows]
    return head, []


def _status(head: int, row: Any) -> Status:
    position, stall = int(row[1]), _stall(row[2:] if len(row) > 2 else None)
    if stall is not None and stall.upto <= position:
        stall = None  # a row a dead runner left behind: the projection has passed it since
    return Status(row[0], position, max(0, head - position), stall)


def _stall(row: Any) -> Stall | None:
    if row is None or row[0] is None:
        return None
    return Stall(int(row[0]), int(row[1]), row[2], row[3], int(row[4]), int(row[5]))


def _stall_columns() -> tuple[Any, ...]:
    s = stalls.c
    return (s.position, s.upto, s.error, s.reason, s.since, s.attempts)


def _statuses_query() -> sa.Select[Any]:
    return (
        sa.select(positions.c.name, positions.c.position, *_stall_columns())
        .select_from(positions.outerjoin(stalls, stalls.c.name == positions.c.name))
        .order_by(positions.c.name)
    )
