"""Group commit: many callers' events in one transaction, each acknowledged after it.

The event table is written behind one lock, so one transaction per prediction caps out
at a few hundred a second. Callers in a process hand their stored events to one writer
thread that drains whatever has queued while the previous commit ran, inserts it as one
transaction and wakes each caller with its notification ids, or with the error that
sank it. A conflict (a retried request id) is isolated by splitting the batch in halves
until the conflicting item stands alone, so one bad item never sinks the others.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable, Sequence
from typing import Protocol

from eventsourcing.persistence import IntegrityError, OperationalError, StoredEvent

Insert = Callable[[Sequence[StoredEvent]], Sequence[int]]


class _Item:
    """One caller's events; the caller blocks on `done` until the writer releases it."""

    __slots__ = ("events", "done", "ids", "error")

    def __init__(self, events: Sequence[StoredEvent]):
        self.events = events
        # A bare lock, not a Future: the writer wakes each caller with one C-level release.
        self.done = threading.Lock()
        self.done.acquire()
        self.ids: Sequence[int] = ()
        self.error: BaseException | None = None

    def finish(self, ids: Sequence[int] = (), error: BaseException | None = None) -> None:
        self.ids, self.error = ids, error
        self.done.release()


_STOP = _Item(())


class GroupCommitter:
    """One writer thread per process that batches the callers' inserts."""

    def __init__(
        self, insert: Insert, max_events: int = 2000, on_batch: Callable[[int], None] | None = None
    ):
        self._insert = insert
        self._max_events = max_events
        self._on_batch = on_batch
        self._queue: queue.SimpleQueue[_Item] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pid = 0

    def submit(self, events: Sequence[StoredEvent], timeout: float = 60.0) -> Sequence[int]:
        """Insert the events atomically with others' and return their notification ids."""
        if not events:
            return []
        self._ensure_writer()
        item = _Item(events)
        self._queue.put(item)
        if not item.done.acquire(timeout=timeout):
            # The writer may still commit these events later: say so, never pretend they failed.
            raise OperationalError(
                f"no acknowledgement within {timeout} s; the events may yet be recorded"
            )
        if item.error is not None:
            raise item.error
        return item.ids

    def close(self) -> None:
        """Stop the writer thread once it has committed what is queued."""
        with self._lock:
            if self._thread is not None and self._pid == os.getpid() and self._thread.is_alive():
                self._queue.put(_STOP)
                self._thread.join(timeout=10)
            self._thread = None

    def _ensure_writer(self) -> None:
        # After a fork the child has the object but not the thread: start one there.
        if self._thread is not None and self._pid == os.getpid():
            return
        with self._lock:
            if self._thread is None or self._pid != os.getpid():
                self._queue = queue.SimpleQueue()
                self._pid = os.getpid()
                self._thread = threading.Thread(target=self._run, name="group-commit", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            batch = [self._queue.get()]
            count = len(batch[0].events)
            while count < self._max_events:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                batch.append(item)
                count += len(item.events)
            stop = any(item is _STOP for item in batch)
            batch = [item for item in batch if item is not _STOP]
            if batch:
                commit_group(self._insert, batch, self._on_batch)
            if stop:
                return


class Waiter(Protocol):
    """One caller's events and how to answer it (a blocked thread, or a socket to reply on)."""

    @property
    def events(self) -> Sequence[StoredEvent]: ...

    def finish(self, ids: Sequence[int] = (), error: BaseException | None = None) -> None: ...


def commit_group(
    insert: Insert, batch: Sequence[Waiter], on_batch: Callable[[int], None] | None = None
) -> None:
    """Insert the callers' events as one transaction and answer each; a conflict is bisected.

    Shared by the writer thread and the writer process (ledger/writer_process.py).
    """
    try:
        ids = insert([e for item in batch for e in item.events])
    except IntegrityError as error:
        if len(batch) == 1:
            batch[0].finish(error=_conflict(batch[0], error))
            return
        half = len(batch) // 2  # bisect: a lone conflict costs ~2·log2(n) transactions
        commit_group(insert, batch[:half], on_batch)
        commit_group(insert, batch[half:], on_batch)
        return
    except BaseException as error:  # every caller of a failed batch learns why
        for item in batch:
            item.finish(error=error)
        return
    if on_batch:
        on_batch(len(batch))
    start = 0
    for item in batch:
        item.finish(ids[start : start + len(item.events)])
        start += len(item.events)


def _conflict(item: Waiter, cause: IntegrityError) -> IntegrityError:
    first = item.events[0]
    error = IntegrityError(
        f"an event for {first.originator_id} at version {first.originator_version} "
        f"(or a later one in the same save) is already recorded"
    )
    error.__cause__ = cause
    return error
