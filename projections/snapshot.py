"""One consistent read of one projection: its tables, and the position they answer at."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, NamedTuple

import sqlalchemy as sa

from ledger.errors import LedgerError
from projections.base import Projection, ProjectionState, read_position
from projections.runner import wait_for


class ProjectionNotReady(LedgerError):
    """The read table has not been built yet: run `ledger project --follow`."""

    code = "projection_not_ready"


@dataclass
class Snapshot:
    """A read transaction on a projection: `position` is what every answer is as of."""

    conn: sa.Connection
    tables: dict[str, sa.Table]
    position: int  # the position answered at (the as_of, or the projection's when it is behind)
    projected: int  # how far the projection has applied the log
    requested: int | None  # the as_of asked for, None for "now"

    @property
    def complete(self) -> bool:
        """False when an as_of beyond the projection's position was asked for."""
        return self.requested is None or self.requested <= self.projected

    def stamp(self) -> dict[str, object]:
        """What every response says about the position it answers at."""
        return {
            "position": self.position,
            "complete": self.complete,
            **({"as_of": f"pos:{self.requested}"} if self.requested is not None else {}),
        }

    def fetch(
        self,
        build: Callable[..., sa.Executable],
        key: tuple[Any, ...],
        params: Mapping[str, Any],
        serial: bool = False,
    ) -> list[Any]:
        """Rows of `build(*key)`, compiled once per key and sent through the driver.

        For reads run on every request: building and compiling a statement, and SQLAlchemy's
        cache key for it, cost more client CPU than the database spends answering. Values come
        as the driver gives them (no type processing); parameters are named bindparams.
        `serial`: from this statement on, PostgreSQL plans this read without parallel workers."""
        sql, defaults, names = _compiled(self.conn.dialect, build, key, serial)
        values = {**defaults, **params}
        args = values if names is None else tuple(values[name] for name in names)
        return self.conn.exec_driver_sql(sql, args).fetchall()


@contextmanager
def snapshot(
    engine: sa.Engine, projection: type[Projection], as_of: int | None = None, wait: float = 0.0
) -> Iterator[Snapshot]:
    """Read one projection as of a position (None: as far as it has got).

    With `wait`, a read that must see a position the projection has not reached yet waits
    up to that many seconds for it; after that it answers at the projection's position
    and says so (`complete` false).
    """
    if as_of is not None and wait > 0:
        wait_for(engine, projection.name, as_of, wait)
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn = conn.execution_options(
                isolation_level="REPEATABLE READ", postgresql_readonly=True
            )
        else:
            conn.exec_driver_sql("BEGIN")  # one WAL snapshot for every statement of this read
        with conn.begin() if conn.dialect.name == "postgresql" else _nothing():
            state = _state(conn, projection.name)
            if state is None:
                raise ProjectionNotReady(
                    f"the {projection.name} read tables are not built yet; run `ledger project --follow`"
                )
            projected, generation, version = state
            if version != projection.version:
                raise ProjectionNotReady(
                    f"the {projection.name} read tables are version {version}, this code reads version "
                    f"{projection.version}; run `ledger project --follow` (it rebuilds them) or --rebuild"
                )
            position = projected if as_of is None else min(as_of, projected)
            yield Snapshot(conn, projection.tables_for(generation), position, projected, as_of)
        if conn.dialect.name != "postgresql":
            conn.exec_driver_sql("ROLLBACK")


class _Compiled(NamedTuple):
    """A statement compiled once for a driver."""

    sql: str
    defaults: dict[str, Any]  # the values bound at build time (limits)
    names: tuple[str, ...] | None  # a positional driver's parameter order; None: named


@functools.lru_cache(maxsize=1024)
def _compiled(
    dialect: sa.Dialect, build: Callable[..., sa.Executable], key: tuple[Any, ...], serial: bool
) -> _Compiled:
    """SQL text, the values bound at build time (limits) and, for a positional driver, the order."""
    compiled = build(*key).compile(dialect=dialect)
    sql = str(compiled)
    if (
        serial and dialect.name == "postgresql"
    ):  # in the same round trip; it lasts until the read ends
        sql = f"SET LOCAL max_parallel_workers_per_gather = 0; {sql}"
    order = tuple(compiled.positiontup) if compiled.positional else None
    return _Compiled(sql, dict(compiled.params), order)


@contextmanager
def _nothing() -> Iterator[None]:
    yield


def _state(conn: sa.Connection, name: str) -> ProjectionState | None:
    try:
        return read_position(conn, name)
    except (sa.exc.ProgrammingError, sa.exc.OperationalError):
        return None  # no projection_positions table yet
