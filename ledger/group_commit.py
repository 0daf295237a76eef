"""Group commit: many callers' events in one transaction, each acknowledged after it.

The event table is written behind one lock, so one transaction per prediction caps out
at a few hundred a second. Callers in a process share commits, leader and followers:
a caller that finds no commit in flight commits its own events at once, in its own
thread; callers arriving meanwhile queue, and when the commit ends the first of them
is woken to commit everything queued. No writer thread: a hand-off to one cost a thread
wake-up and two GIL hand-overs per commit, under a GIL that eight request threads want.
A conflict (a retried request id) is isolated by splitting the batch in halves until
the conflicting item stands alone, so one bad item never sinks the others.
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence

from eventsourcing.persistence import IntegrityError, OperationalError, StoredEvent

Insert = Callable[[Sequence[StoredEvent]], Sequence[int]]


class _Item:
    """One caller's events; a follower blocks on `done` until its commit ends or it is to lead."""

    __slots__ = ("events", "done", "ids", "error", "lead")

    def __init__(self, events: Sequence[StoredEvent]):
        self.events = events
        # A bare lock, not a Future: a caller is woken with one C-level release.
        self.done = threading.Lock()
        self.done.acquire()
        self.ids: Sequence[int] = ()
        self.error: BaseException | None = None
        self.lead = False  # woken to commit what queued, not with a result

    def finish(self, ids: Sequence[int] = (), error: BaseException | None = None) -> None:
        self.ids, self.error = ids, error
        self.done.release()


class GroupCommitter:
    """Batches a process's concurrent inserts: one commit in flight, the next one gathering."""

    def __init__(self, insert: Insert, max_events: int = 2000, on_batch: Callable[[int], None] | None = None):
        self._insert = insert
        self._max_events = max_events
        self._on_batch = on_batch
        self._mutex = threading.Lock()
        self._waiting: deque[_Item] = deque()
        self._leading = False  # a caller is committing; newcomers queue behind it
        self._pid = os.getpid()

    def submit(self, events: Sequence[StoredEvent], timeout: float = 60.0) -> Sequence[int]:
        """Insert the events atomically with others' and return their notification ids."""
        if not events:
            return []
        item = _Item(events)
        if self._join(item) or self._follow(item, timeout):
            self._lead(item)
        if item.error is not None:
            raise item.error
        return item.ids

    def waiting(self) -> int:
        """Callers queued behind the commit in flight."""
        with self._mutex:
            return len(self._waiting)

    def close(self, timeout: float = 10.0) -> None:
        """Wait (a while) for the commits in flight and queued: nothing else runs between calls."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._mutex:
                if not self._leading or self._pid != os.getpid():
                    return
            time.sleep(0.005)

    def _join(self, item: _Item) -> bool:
        """Queue behind the commit in flight, or lead (True) when there is none."""
        with self._mutex:
            if self._pid != os.getpid():  # a forked child has the parent's state, not its callers
                self._waiting, self._leading, self._pid = deque(), False, os.getpid()
            if self._leading:
                self._waiting.append(item)
                return False
            self._leading = True
            return True

    def _follow(self, item: _Item, timeout: float) -> bool:
        """Wait for the item's commit; True when woken to lead the next one instead."""
        if not item.done.acquire(timeout=timeout):
            with self._mutex:
                queued = item in self._waiting
                if queued:
                    self._waiting.remove(item)
            if queued:
                raise OperationalError(f"no commit within {timeout} s; the events were not recorded")
            # Taken by a commit in flight, or made leader a moment ago (released under the mutex).
            if not item.done.acquire(blocking=False):
                raise OperationalError(f"no acknowledgement within {timeout} s; the events may yet be recorded")
        return item.lead

    def _lead(self, first: _Item) -> None:
        """Commit this item with everything queued, then wake the next leader, if any."""
        try:
            self._commit(self._take(first))
        finally:
            with self._mutex:
                if self._waiting:
                    following = self._waiting.popleft()
                    following.lead = True
                    following.done.release()
                else:
                    self._leading = False

    def _take(self, first: _Item) -> list[_Item]:
        batch, count = [first], len(first.events)
        with self._mutex:
            while self._waiting and count < self._max_events:
                item = self._waiting.popleft()
                batch.append(item)
                count += len(item.events)
        return batch

    def _commit(self, batch: list[_Item]) -> None:
        try:
            ids = self._insert([e for item in batch for e in item.events])
        except IntegrityError as error:
            if len(batch) == 1:
                batch[0].finish(error=_conflict(batch[0], error))
                return
            half = len(batch) // 2  # bisect: a lone conflict costs ~2·log2(n) transactions
            self._commit(batch[:half])
            self._commit(batch[half:])
            return
        except BaseException as error:  # every caller of a failed batch learns why
            for item in batch:
                item.finish(error=error)
            return
        if self._on_batch:
            self._on_batch(len(batch))
        start = 0
        for item in batch:
            item.finish(ids[start : start + len(item.events)])
            start += len(item.events)


def _conflict(item: _Item, cause: IntegrityError) -> IntegrityError:
    first = item.events[0]
    error = IntegrityError(
        f"an event for {first.originator_id} at version {first.originator_version} "
        f"(or a later one in the same save) is already recorded"
    )
    error.__cause__ = cause
    return error
