"""How stale the projections are, as `/healthz`, `/metrics` and every projection read say it.

One small read of the position and stall tables (projections/stalls.py), kept for a
second per worker: a probe every second and a busy read path cost the database one
query per worker per second, not one per request.
"""

from __future__ import annotations

import contextvars
import threading
import time
from typing import Any

import falcon
import sqlalchemy as sa

from ledger.timeline import iso
from projections.stalls import Status, statuses

CACHE_SECONDS = 1.0
POSITION_HEADER = "X-Projection-Position"
LAG_HEADER = "X-Projection-Lag"
STALLED_HEADER = "X-Projection-Stalled"

_read: contextvars.ContextVar[tuple[str, ...]] = contextvars.ContextVar(
    "projections_read", default=()
)


class Statuses:
    """Every projection's position, lag and stall, read at most once a second."""

    def __init__(self, engine: sa.Engine, seconds: float = CACHE_SECONDS):
        self.engine, self.seconds = engine, seconds
        self._lock = threading.Lock()
        self._at = -float("inf")
        self._value: tuple[int, list[Status]] = (0, [])

    def get(self) -> tuple[int, list[Status]]:
        """(the log's head, each projection's status); raises when the database does."""
        with self._lock:
            if time.monotonic() - self._at >= self.seconds:
                with self.engine.connect() as conn:
                    self._value = statuses(conn)
                self._at = time.monotonic()
            return self._value


def stalled_beyond(found: list[Status], grace_seconds: float) -> list[Status]:
    """The projections stalled for longer than the grace."""
    now = time.time() * 1_000_000
    return [s for s in found if s.stall and now - s.stall.since > grace_seconds * 1_000_000]


def describe(status: Status) -> dict[str, Any]:
    """One projection on /healthz: position and lag, and its stall when it has one."""
    answer: dict[str, Any] = {"name": status.name, "position": status.position, "lag": status.lag}
    if status.stall is not None:
        stall = status.stall
        answer["stall"] = {
            "position": stall.position,
            "event": stall.event,
            "error": stall.error,
            "reason": stall.reason,
            "since": iso(stall.since),
            "attempts": stall.attempts,
        }
    return answer


# -- headers on projection reads -----------------------------------------------------------
def note_read(projections: tuple[str, ...]) -> None:
    """This request reads these projections (Services.read_engine calls it)."""
    _read.set(tuple(dict.fromkeys((*_read.get(), *projections))))


class StalenessHeaders:
    """Every answer from projections says their position and lag, and names a stalled one."""

    def __init__(self, statuses_: Statuses):
        self.statuses = statuses_

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        _read.set(())

    def process_response(
        self, req: falcon.Request, resp: falcon.Response, resource: Any, req_succeeded: bool
    ) -> None:
        names = _read.get()
        if not names:
            return
        try:
            _, found = self.statuses.get()
        except Exception:  # noqa: BLE001 - the answer stands without its staleness headers
            return
        shown = [s for s in found if s.name in names]
        if not shown:
            return
        resp.set_header(POSITION_HEADER, ", ".join(f"{s.name}={s.position}" for s in shown))
        resp.set_header(LAG_HEADER, ", ".join(f"{s.name}={s.lag}" for s in shown))
        stalled = [
            f"{s.name}; position={s.position}; since={iso(s.stall.since)}"
            for s in shown
            if s.stall is not None
        ]
        if stalled:
            resp.set_header(STALLED_HEADER, ", ".join(stalled))


def statuses_of(services: Any) -> Statuses:
    """The worker's one Statuses cache (made on first use, on the primary)."""
    found = services.extras.get("statuses")
    if found is None:
        found = services.extras["statuses"] = Statuses(services.ledger.engine)
    return found  # type: ignore[no-any-return]
