"""Exactly one runner per projection: a lock held for as long as the runner runs.

PostgreSQL: a session advisory lock on a dedicated connection, which also LISTENs on
the channel the recorder NOTIFYs after each insert; losing that connection loses the
lock, so the runner stops. SQLite: an fcntl lock on a file beside the database (the
kernel drops it when the process dies, even by kill -9).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import time
from typing import Any

import sqlalchemy as sa

from ledger.database import is_postgres
from ledger.fd_wait import readable
from ledger.log import CHANNEL


class LockLost(Exception):
    """The runner's lock connection is gone: another runner may hold the lock now."""


def lock_key(name: str) -> int:
    """A stable signed 64-bit key for pg_advisory_lock from a projection name."""
    digest = hashlib.sha256(f"ledger-projection:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class AdvisoryLock:
    """pg_try_advisory_lock on a connection of its own, kept (and listening) while held."""

    def __init__(self, engine: sa.Engine, name: str):
        self.engine, self.name, self.key = engine, name, lock_key(name)
        self.conn: Any = None
        self.held = False

    def acquire(self, wait: bool = True, poll: float = 0.2) -> bool:
        pooled = self.engine.raw_connection()
        pooled.detach()  # ours alone, never back to the pool
        self.conn = pooled.dbapi_connection
        self.conn.autocommit = True
        while True:
            if self._query("SELECT pg_try_advisory_lock(%s)", self.key):
                self.held = True
                self._query(f"LISTEN {CHANNEL}")
                return True
            if not wait:
                self.release()
                return False
            time.sleep(poll)

    def _query(self, sql: str, *args: Any) -> Any:
        try:
            with self.conn.cursor() as cur:
                cur.execute(sql, args or None)
                return cur.fetchone()[0] if cur.description else None
        except Exception as error:  # psycopg2 raises several classes for a dead connection
            raise LockLost(f"lock connection of projection {self.name} lost: {error}") from error

    def check(self) -> None:
        if self.conn is None or self.conn.closed or self._query("SELECT 1") != 1:
            raise LockLost(f"projection {self.name} no longer holds its lock")

    def wait(self, timeout: float) -> None:
        """Sleep until a NOTIFY on the events channel, or the timeout."""
        try:
            if readable([self.conn], timeout):
                self.conn.poll()
                self.conn.notifies.clear()
        except Exception as error:
            raise LockLost(f"lock connection of projection {self.name} lost: {error}") from error

    def release(self) -> None:
        if self.conn is not None and not self.conn.closed:
            if self.held:  # the server drops a closed session's locks only when its backend exits,
                try:  # a moment later: unlock first, so whoever asks next finds the lock free
                    self._query("SELECT pg_advisory_unlock(%s)", self.key)
                except LockLost:
                    pass  # the connection is gone, and with it the lock
            self.conn.close()
        self.conn, self.held = None, False


class FileLock:
    """An exclusive fcntl lock on `<database>.<name>.lock`."""

    def __init__(self, path: str, name: str):
        self.path = f"{path}.{name.replace(':', '-')}.lock"
        self.name = name
        self.fd: int | None = None

    def acquire(self, wait: bool = True, poll: float = 0.2) -> bool:
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        while True:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                if not wait:
                    self.release()
                    return False
                time.sleep(poll)

    def check(self) -> None:
        if self.fd is None:
            raise LockLost(f"projection {self.name} no longer holds its lock")

    def wait(self, timeout: float) -> None:
        time.sleep(timeout)  # SQLite has no NOTIFY: poll

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing the descriptor drops the flock
        self.fd = None


def runner_lock(engine: sa.Engine, name: str) -> AdvisoryLock | FileLock:
    if is_postgres(engine):
        return AdvisoryLock(engine, name)
    path = engine.url.database
    if not path or path == ":memory:":
        raise ValueError("a projection runner needs a file database or PostgreSQL")
    return FileLock(os.path.abspath(path), name)
