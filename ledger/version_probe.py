"""The latest version of one aggregate, read the cheapest way each backend allows.

A worker reads its deployment's version on each request only while its DeploymentWatch
cannot vouch for the cached runtime (0 staleness, a lost listener). Through the pool that
read is three round trips (pre-ping, query, rollback) and ~50% of a
no-recording worker's time (py-spy, bench/http_compare.py). On PostgreSQL it runs on
one long-lived autocommit connection per process instead: one round trip.
"""

from __future__ import annotations

import threading
import uuid
from typing import Any

import sqlalchemy as sa

from ledger import log
from ledger.database import is_postgres


class VersionProbe:
    """max(originator_version) of an originator, on a dedicated connection on PostgreSQL."""

    def __init__(self, engine: sa.Engine):
        self.engine = engine
        self.postgres = is_postgres(engine)
        self._connection: Any = None
        self._lock = threading.Lock()  # one connection per process, one query at a time on it

    def latest(self, originator_id: uuid.UUID) -> int | None:
        if not self.postgres:
            return self._pooled(originator_id)
        with self._lock:
            try:
                return self._query(originator_id)
            except self.engine.dialect.loaded_dbapi.Error:
                self.close()  # a dropped connection: reconnect once, then let the error out
                return self._query(originator_id)

    def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            try:
                connection.close()
            except self.engine.dialect.loaded_dbapi.Error:
                pass

    def _query(self, originator_id: uuid.UUID) -> int | None:
        if self._connection is None:
            args, params = self.engine.dialect.create_connect_args(self.engine.url)
            self._connection = self.engine.dialect.loaded_dbapi.connect(*args, **params)
            self._connection.autocommit = True
        with self._connection.cursor() as cursor:
            cursor.execute(log.LAST_VERSION_SQL, (str(originator_id),))
            version = cursor.fetchone()[0]
            return None if version is None else int(version)

    def _pooled(self, originator_id: uuid.UUID) -> int | None:
        with self.engine.connect() as conn:
            return log.last_version(conn, originator_id)
