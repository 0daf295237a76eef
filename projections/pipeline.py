"""A rebuild's writes on a second connection, in order, while Python works on the next page.

The machine has two cores: PostgreSQL parsing a page's predictions or taking a COPY of
its outcome rows needs one, the projection's Python the other. A rebuild fills tables
nobody reads until the swap, and a rebuild that dies is started again from empty tables,
so its writes need not commit with the page that made them; they only need to run in
the order they were made (cells are inserted, then added to). Each job commits on its own.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

Job = Callable[[sa.Connection], Any]
_STOP = object()


class Ticket:
    """One submitted job: wait() returns its result or raises its error."""

    def __init__(self, job: Job):
        self.job, self.done = job, threading.Event()
        self.result: Any = None
        self.error: BaseException | None = None

    def wait(self) -> Any:
        self.done.wait()
        if self.error is not None:
            raise self.error
        return self.result


class Writer:
    """One thread and one connection running submitted jobs one after another."""

    def __init__(self, engine: sa.Engine, depth: int = 4):
        self.engine = engine
        self.jobs: queue.Queue[Any] = queue.Queue(depth)  # bounded: at most a few pages' rows held
        self.last: Ticket | None = None
        self.failed: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="rebuild-writer", daemon=True)
        self.thread.start()

    def submit(self, job: Job) -> Ticket:
        if self.failed is not None:
            raise self.failed
        ticket = Ticket(job)
        self.jobs.put(ticket)
        self.last = ticket
        return ticket

    def call(self, job: Job) -> Any:
        """Run a job after every job before it, and wait for its result."""
        return self.submit(job).wait()

    def drain(self) -> None:
        """Wait until every job submitted so far has committed."""
        if self.last is not None:
            self.last.wait()

    def close(self) -> None:
        """Stop the thread after the jobs already queued (their errors are dropped)."""
        self.jobs.put(_STOP)
        self.thread.join()

    def _run(self) -> None:
        while (ticket := self.jobs.get()) is not _STOP:
            try:
                if self.failed is not None:  # the rebuild is abandoned: the later jobs fail alike
                    raise self.failed
                with self.engine.begin() as conn:
                    if conn.dialect.name == "postgresql":  # a crash restarts the rebuild anyway
                        conn.exec_driver_sql("SET LOCAL synchronous_commit = off")
                    ticket.result = ticket.job(conn)
            except (
                BaseException
            ) as error:  # handed to whoever waits for this job or submits the next
                ticket.error = self.failed = error
            ticket.done.set()
