"""Group commit: many callers' events in one transaction, each acknowledged after it.

The event table is written behind one lock, so one transaction per prediction caps out
at a few hundred a second. Callers in a process hand their stored events to one writer
thread that drains whatever has queued while the previous commit ran, inserts it as one
transaction and wakes each caller with its notification ids, or with the error that
sank it. A conflict (a retried request id) is isolated by retrying items one by one, so
one bad item never sinks the others.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field

from eventsourcing.persistence import IntegrityError, StoredEvent

Insert = Callable[[Sequence[StoredEvent]], Sequence[int]]


@dataclass
class _Item:
    events: Sequence[StoredEvent]
    future: Future = field(default_factory=Future)


class GroupCommitter:
    """One writer thread per process that batches the callers' inserts."""

    def __init__(self, insert: Insert, max_events: int = 2000, on_batch: Callable[[int], None] | None = None):
        self._insert = insert
        self._max_events = max_events
        self._on_batch = on_batch
        self._queue: queue.SimpleQueue[_Item] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pid = 0

    def submit(self, events: Sequence[StoredEvent], timeout: float | None = 60.0) -> Sequence[int]:
        """Insert the events atomically with others' and return their notification ids."""
        if not events:
            return []
        self._ensure_writer()
        item = _Item(events)
        self._queue.put(item)
        return item.future.result(timeout=timeout)

    def _ensure_writer(self) -> None:
        # After a fork the child has the object but not the thread: start one there.
        if self._thread is not None and self._pid == os.getpid() and self._thread.is_alive():
            return
        with self._lock:
            if self._thread is None or self._pid != os.getpid() or not self._thread.is_alive():
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
            self._commit(batch)

    def _commit(self, batch: list[_Item]) -> None:
        try:
            ids = self._insert([e for item in batch for e in item.events])
        except IntegrityError:
            if len(batch) == 1:
                batch[0].future.set_exception(_fresh_integrity_error(batch[0]))
                return
            for item in batch:
                self._commit([item])
            return
        except BaseException as error:  # every caller of a failed batch learns why
            for item in batch:
                item.future.set_exception(error)
            return
        if self._on_batch:
            self._on_batch(len(batch))
        start = 0
        for item in batch:
            item.future.set_result(list(ids[start : start + len(item.events)]))
            start += len(item.events)


def _fresh_integrity_error(item: _Item) -> IntegrityError:
    first = item.events[0]
    return IntegrityError(
        f"an event for {first.originator_id} at version {first.originator_version} is already recorded"
    )
