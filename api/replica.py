"""Reads on a streaming hot standby, never older than the primary was when the read arrived.

With LEDGER_READ_DATABASE_URL set, the projection reads (prediction index, performance,
model index, data health) run on the standby. Each read first takes the projection's
position on the primary (one indexed read there), then waits until the standby has
replayed at least that far; a standby too far behind is skipped and the primary answers.
So moving reads to a replica never lets an auditor see a state older than the one the
primary had: it only takes their CPU off the primary.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa

from ledger.database import create_engine
from projections.base import read_position

log = logging.getLogger("api.replica")


@dataclass
class ReadRouter:
    """The engine a projection read runs on: the standby once it has caught up, else the primary."""

    primary: sa.Engine
    standby: sa.Engine | None = None
    wait_seconds: float = 1.0  # how long a read waits for the standby before it asks the primary
    observe: Callable[[str], None] = lambda served_by: (
        None
    )  # /metrics counts reads by where they ran

    @classmethod
    def for_url(cls, primary: sa.Engine, url: str, wait_seconds: float = 1.0) -> ReadRouter:
        """A router; with no standby URL every read stays on the primary."""
        return cls(primary, standby_engine(url) if url else None, wait_seconds)

    def engine_for(self, *projections: str) -> sa.Engine:
        """Where to read these projections now, at no older a position than the primary's."""
        if self.standby is None:
            self.observe("primary")
            return self.primary
        floors = self._primary_positions(projections)
        try:
            caught_up = self._caught_up(floors)
        except sa.exc.DBAPIError as error:  # a standby that is down must not take reads with it
            log.warning("standby unavailable, reading on the primary: %s", error)
            caught_up = False
        self.observe("standby" if caught_up else "fallback")
        return self.standby if caught_up else self.primary

    def _caught_up(self, floors: dict[str, int]) -> bool:
        """Poll the standby (one connection, short sleeps: replay lag is usually milliseconds)."""
        assert self.standby is not None
        deadline = time.monotonic() + self.wait_seconds
        with self.standby.connect() as conn:
            while True:
                try:
                    states = {name: read_position(conn, name) for name in floors}
                except (sa.exc.ProgrammingError, sa.exc.OperationalError):
                    states = {}  # the standby has not replayed the position table yet
                conn.rollback()  # a new snapshot for the next poll
                if all(
                    (state := states.get(name)) is not None and state.position >= floor
                    for name, floor in floors.items()
                ):
                    return True
                if time.monotonic() >= deadline:
                    return False
                time.sleep(0.002)

    def close(self) -> None:
        if self.standby is not None:
            self.standby.dispose()

    def _primary_positions(self, projections: tuple[str, ...]) -> dict[str, int]:
        with self.primary.connect() as conn:
            try:
                states = {name: read_position(conn, name) for name in projections}
            except (sa.exc.ProgrammingError, sa.exc.OperationalError):
                return {}  # no projection has run yet: nothing to wait for
        return {name: state.position for name, state in states.items() if state is not None}


def standby_engine(url: str) -> sa.Engine:
    """An engine whose every checkout is read-only.

    A read that set postgresql_readonly hands its connection back reset to an explicit
    READ WRITE, which psycopg2 then sends with every BEGIN, and a standby refuses that.
    """
    engine = create_engine(url, pool_pre_ping=True)
    if engine.dialect.name != "postgresql":
        return engine  # SQLite has no standby; a second engine on the same file still works

    @sa.event.listens_for(engine, "checkout")
    def _read_only(dbapi_connection: object, _record: object, _proxy: object) -> None:
        dbapi_connection.readonly = True  # type: ignore[attr-defined]

    return engine
