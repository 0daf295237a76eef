"""Which deployments may have changed, known in each process without a query per request.

A worker caches each deployment's runtime; it must serve a promotion, a retirement or a
policy change within a bound of its commit without reading the database on every request.
A watch gives each deployment a stamp that moves whenever the deployment may have changed,
or None when the watch cannot vouch for anything. A caller reads the stamp *before* it
reads the deployment, keeps it beside what it read, and trusts that while `fresh` says so;
otherwise it reads the version again (one indexed query) as it would without a watch.

`fresh` holds only under a lease: a check of the database sent at time t renews it to
t + bound, and it is renewed every third of the bound. Every change committed before t has
been applied to the stamps when the lease is renewed, so while it runs nothing older than
the bound is missing. A lost connection ends the lease at once; a new connection moves
every stamp, so each cached deployment is read again once.

PostgreSQL: every save of a Deployment NOTIFYs `ledger_deployments` with its id in the
transaction that inserts its events (Ledger.save routes it off the group committer, and
LedgerRecorder sends the NOTIFY), delivered at commit; a prediction's insert pays nothing
(a row trigger with a WHEN on the topic cost +0.8 µs of server CPU per inserted row:
docs/ARCHITECTURE.md). One thread per process LISTENs on a connection of its
own; its heartbeat is `SELECT 1`, because the server hands a listener the notifications
that arrived during a command before that command's ReadyForQuery.

SQLite (one host): the same thread, every third of the bound, asks its own connection for
PRAGMA data_version, which moves only when another connection has committed, and then
reads the latest version of each deployment the process has cached (one index seek each).
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any
from uuid import UUID

import sqlalchemy as sa

from ledger.database import is_postgres
from ledger.fd_wait import readable
from ledger.lean_insert import EVENTS_TABLE

log = logging.getLogger("ledger.deployment_watch")

CHANNEL = "ledger_deployments"
_WATCHES: weakref.WeakSet[DeploymentWatch] = weakref.WeakSet()  # this process's
APPLICATION_NAME = "ledger-deployment-watch"  # how pg_stat_activity names its connection
RETRY_SECONDS = 0.2  # between attempts to reconnect: the fallback serves meanwhile
SQLITE_VERSIONS = (
    f"SELECT originator_id, max(originator_version) FROM {EVENTS_TABLE} "
    "WHERE originator_id = ? GROUP BY originator_id"
)


class DeploymentWatch:
    """Stamps per deployment, kept by one background thread per process (started lazily)."""

    def __init__(self, engine: sa.Engine, bound_seconds: float):
        self.engine = engine
        self.bound = bound_seconds
        self.postgres = is_postgres(engine)
        # Each connection to an in-memory SQLite database is a database of its own.
        self._in_memory = not self.postgres and engine.url.database in (None, "", ":memory:")
        self._lease_until = 0.0  # monotonic; 0: not vouching
        self._epoch = 0  # moves on every new connection
        self._changes: dict[UUID, int] = {}  # moves on every change seen
        self._versions: dict[UUID, int | None] = {}  # SQLite: versions of what is cached
        self._recheck = False  # SQLite: a new deployment is cached, read versions next tick
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._wake_r, self._wake_w = -1, -1
        _after_fork(self)
        _WATCHES.add(self)
        # Closing the ledger disposes its engine: the thread goes with it (then every
        # request reads the version, as without a watch).
        sa.event.listen(engine, "engine_disposed", lambda _engine: self.close())

    def fresh(self, deployment_id: UUID, stamp: tuple[int, int] | None) -> bool:
        """Whether what was read under `stamp` is still the deployment (within the bound)."""
        return (
            stamp is not None
            and time.monotonic() < self._lease_until
            and stamp == (self._epoch, self._changes.get(deployment_id, 0))
        )

    def stamp(self, deployment_id: UUID) -> tuple[int, int] | None:
        """Read before reading the deployment; None while the watch vouches for nothing."""
        self._start()
        if time.monotonic() >= self._lease_until:
            return None
        return (self._epoch, self._changes.get(deployment_id, 0))

    def track(self, deployment_id: UUID, version: int | None) -> None:
        """This process caches the deployment at this version (SQLite reads its version)."""
        if not self.postgres:
            with self._lock:
                self._versions[deployment_id] = version
                self._recheck = True

    @property
    def live(self) -> bool:
        return time.monotonic() < self._lease_until

    def close(self) -> None:
        """Stop the thread and close its connection."""
        self._stop.set()
        if self._wake_w >= 0:
            os.write(self._wake_w, b"x")
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
        self._lease_until = 0.0
        for fd in (self._wake_r, self._wake_w):
            if fd >= 0:
                os.close(fd)
        self._wake_r, self._wake_w = -1, -1

    # -- the thread ------------------------------------------------------------------
    def _start(self) -> None:
        if self._thread is None and not self._stop.is_set() and not self._in_memory:
            with self._lock:
                if self._thread is None:
                    self._wake_r, self._wake_w = os.pipe()
                    self._thread = threading.Thread(
                        target=self._run, name="deployment-watch", daemon=True
                    )
                    self._thread.start()

    def _forked(self) -> None:
        # The parent's thread and its connection are not ours: forget them, close nothing.
        self._lease_until, self._thread, self._epoch = 0.0, None, self._epoch + 1
        self._lock = threading.Lock()
        self._wake_r, self._wake_w = -1, -1

    def _run(self) -> None:
        connected = True  # so that the first failure is logged
        while not self._stop.is_set():
            conn = None
            try:
                conn = self._connect()
                self._epoch += 1  # after LISTEN: whatever is read from now on is watched
                connected = True
                self._serve(conn)
            except Exception as error:  # noqa: BLE001 - any failure: fall back, reconnect
                if connected and not self._stop.is_set():  # once per outage, not per retry
                    log.warning("deployment watch lost its connection, reconnecting: %s", error)
                connected = False
            finally:
                self._lease_until = 0.0
                if conn is not None:
                    _close_quietly(conn)
            self._wait(RETRY_SECONDS)

    def _connect(self) -> Any:
        pooled = self.engine.raw_connection()
        pooled.detach()  # ours alone, never back to the pool
        conn: Any = pooled.dbapi_connection
        if self.postgres:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute(f"SET application_name = {APPLICATION_NAME!r}")
                cur.execute(f"LISTEN {CHANNEL}")
        else:
            conn.isolation_level = None
        return conn

    def _serve(self, conn: Any) -> None:
        tick = self.bound / 3
        data_version = None
        while not self._stop.is_set():
            sent = time.monotonic()
            if self.postgres:
                with conn.cursor() as cur:
                    cur.execute("SELECT 1")  # notifications that came meanwhile arrive first
                self._notified(conn)
            else:
                data_version = self._poll_sqlite(conn, data_version)
            self._lease_until = sent + self.bound
            due = sent + tick
            while (left := due - time.monotonic()) > 0 and not self._stop.is_set():
                if self.postgres:
                    if conn in readable([conn, self._wake_r], left):
                        conn.poll()
                        self._notified(conn)
                else:
                    self._wait(left)

    def _notified(self, conn: Any) -> None:
        while conn.notifies:
            note = conn.notifies.pop(0)
            self._changed(UUID(note.payload))

    def _changed(self, deployment_id: UUID) -> None:
        self._changes[deployment_id] = self._changes.get(deployment_id, 0) + 1

    def _poll_sqlite(self, conn: sqlite3.Connection, seen: int | None) -> int:
        data_version = int(conn.execute("PRAGMA data_version").fetchone()[0])
        with self._lock:
            recheck, self._recheck = self._recheck, False
            tracked = list(self._versions)
        if data_version == seen and not recheck:
            return data_version  # nobody else committed since the last read
        latest = {}
        for deployment_id in tracked:
            row = conn.execute(SQLITE_VERSIONS, (deployment_id.bytes,)).fetchone()
            latest[deployment_id] = None if row is None else int(row[1])
        with self._lock:
            for deployment_id, version in latest.items():
                if self._versions.get(deployment_id, version) != version:
                    self._versions[deployment_id] = version
                    self._changed(deployment_id)
        return data_version

    def _wait(self, seconds: float) -> None:
        if readable([self._wake_r], seconds):
            self._stop.set()


def _close_quietly(conn: Any) -> None:
    try:
        conn.close()
    except Exception:  # noqa: BLE001 - already broken; nothing more to release
        pass


def _after_fork(watch: DeploymentWatch) -> None:
    ref: Callable[[], DeploymentWatch | None] = weakref.ref(watch)

    def forked() -> None:
        alive = ref()
        if alive is not None:
            alive._forked()

    os.register_at_fork(after_in_child=forked)


def saved(url: sa.URL, deployment_ids: list[UUID]) -> None:
    """This process committed these deployments: its own watches see it now, not within the
    bound (read-your-writes: the demo's loader scores right after it adds a challenger)."""
    for watch in list(_WATCHES):
        if watch.engine.url == url:
            with watch._lock:
                for deployment_id in deployment_ids:
                    watch._changed(deployment_id)
