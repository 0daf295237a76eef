"""Reads for one prediction's provenance: caches of what never changes, and one round trip.

Models and datasets have a single event, a deployment at a given version never changes,
and a training run stops changing once completed or failed: each Ledger keeps those in a
bounded LRU (per process, so per API worker). A prediction's own events, the position
and recorded-at of the event that made it, and the notary's chain hash at that position
come back from one query on one connection.
"""

from __future__ import annotations

import functools
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast
from uuid import UUID

import sqlalchemy as sa
from eventsourcing.persistence import StoredEvent

from ledger.database import is_postgres
from ledger.storage import EVENTS_TABLE

T = TypeVar("T")
CHAIN_TABLE = "ledger_chain"  # ledger.notary.reads.CHAIN_TABLE, without importing the notary
_chained: weakref.WeakSet[sa.Engine] = weakref.WeakSet()  # engines known to have the chain table
_companions: weakref.WeakKeyDictionary[sa.Engine, sa.Engine] = weakref.WeakKeyDictionary()
_companions_lock = threading.Lock()


class ReadCache:
    """A bounded LRU of aggregates that no later event can change."""

    def __init__(self, max_entries: int = 1024):
        self._max = max_entries
        self._entries: OrderedDict[Hashable, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(
        self, key: Hashable, load: Callable[[], T], final: Callable[[T], bool] = lambda _: True
    ) -> T:
        """The cached value, else `load()` (kept only when `final` says it can no longer change)."""
        with self._lock:
            if key in self._entries:
                self._entries.move_to_end(key)
                return cast(T, self._entries[key])  # a key holds what its load returned
        value = load()  # outside the lock: a slow read must not hold up other threads' hits
        if final(value):
            with self._lock:
                self._entries[key] = value
                if len(self._entries) > self._max:
                    self._entries.popitem(last=False)
        return value

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


@dataclass(frozen=True)
class PredictionRecord:
    """A prediction as of a position, with where and when it was made and its chain hash."""

    prediction: Any
    position: int
    recorded_at: int
    chain_hash: bytes | None  # None: the notary has not chained that position (yet)
    stamps: dict[int, tuple[int, int]] = field(default_factory=dict)
    """Per event version of the prediction: (position, recorded-at µs), e.g. of each outcome."""


def read_prediction(
    engine: sa.Engine, mapper: Any, prediction_id: UUID, position: int | None = None
) -> PredictionRecord | None:
    """The prediction's events at or before `position` (all when None), decoded; None if none."""
    try:
        return _read_prediction(engine, mapper, prediction_id, position)
    except sa.exc.DBAPIError as error:
        if not error.connection_invalidated:
            raise
        # Unpinged connections (lookup_engine): the server went away since this one was last
        # used; the pool has dropped its connections, so once more on a fresh one.
        return _read_prediction(engine, mapper, prediction_id, position)


def _read_prediction(
    engine: sa.Engine, mapper: Any, prediction_id: UUID, position: int | None
) -> PredictionRecord | None:
    with lookup_engine(engine).connect() as conn:
        postgres = is_postgres(conn)
        key: Any = str(prediction_id) if postgres else prediction_id.bytes
        chained = engine in _chained
        # exec_driver_sql: a third of text()'s CPU here, and still SQLAlchemy's error handling
        rows = conn.exec_driver_sql(
            _events_sql(postgres, chained, position is not None), {"o": key, "p": position}
        ).fetchall()
        if not rows:
            return None
        made = rows[0]
        chain_hash = made[5] if chained else None
        if not chained and made[5]:  # the notary's tables appeared since: remember, then look
            _chained.add(engine)
            chain_hash = conn.exec_driver_sql(
                _driver(f"SELECT chain_hash FROM {CHAIN_TABLE} WHERE position = :p", postgres),
                {"p": made[0]},
            ).scalar()
    events = [
        mapper.to_domain_event(
            StoredEvent(
                originator_id=prediction_id,
                originator_version=row[1],
                topic=row[2],
                state=bytes(row[3]),
            )
        )
        for row in rows
    ]
    prediction = None
    for event in events:  # what the repository does: each event mutates the aggregate in turn
        prediction = event.mutate(prediction)
    return PredictionRecord(
        prediction,
        int(made[0]),
        int(made[4]),
        bytes(chain_hash) if chain_hash is not None else None,
        {int(row[1]): (int(row[0]), int(row[4])) for row in rows},
    )


def lookup_engine(engine: sa.Engine) -> sa.Engine:
    """For PostgreSQL, a companion engine whose connections skip the ledger engine's pre-ping
    and, in autocommit, the rollback on return: a lookup is then one round trip, not three.
    Disposed with the ledger's engine."""
    if not is_postgres(engine):
        return engine  # SQLite: no ping and a local rollback, nothing to save
    with _companions_lock:
        companion = _companions.get(engine)
        if companion is None:
            companion = sa.create_engine(
                engine.url,
                pool_pre_ping=False,
                isolation_level="AUTOCOMMIT",
                pool_size=4,
                max_overflow=4,
            )
            sa.event.listen(engine, "engine_disposed", lambda _engine, c=companion: c.dispose())
            _companions[engine] = companion
    return companion


@functools.cache
def _events_sql(postgres: bool, chained: bool, bounded: bool) -> str:
    """The events by version; the sixth column is the Made row's chain hash, or whether the
    chain table exists when this engine has not seen it yet (a table cannot be joined before
    it exists, and the notary may create it at any time)."""
    if chained:
        sixth = f"(SELECT c.chain_hash FROM {CHAIN_TABLE} c WHERE c.position = e.id AND e.originator_version = 1)"
    elif postgres:
        sixth = f"to_regclass('{CHAIN_TABLE}') IS NOT NULL"
    else:
        sixth = (
            f"EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '{CHAIN_TABLE}')"
        )
    bound = " AND e.id <= :p" if bounded else ""
    return _driver(
        f"SELECT e.id, e.originator_version, e.topic, e.state, e.recorded_at, {sixth} "
        f"FROM {EVENTS_TABLE} e WHERE e.originator_id = :o{bound} ORDER BY e.originator_version",
        postgres,
    )


def _driver(sql: str, postgres: bool) -> str:
    """Named parameters as the driver takes them: psycopg2 %(name)s, sqlite3 :name."""
    return sql.replace(":o", "%(o)s").replace(":p", "%(p)s") if postgres else sql
