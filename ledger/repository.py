"""Aggregates read back from their stored events, or an error that says they cannot be.

An event whose stored state no longer decodes, or no longer fits its class, is either an
edit made behind the ledger's back or a record this version cannot read. Either way the
caller gets `EventUnreadable` naming the aggregate, never an internal error with no name;
`ledger verify` then locates an altered event by its position.
"""

from __future__ import annotations

import logging
from typing import Any

from eventsourcing.application import AggregateNotFoundError, Repository
from eventsourcing.persistence import OperationalError

from ledger.errors import EventUnreadable, LedgerError

log = logging.getLogger("ledger.repository")

# What rebuilding an aggregate from a state that does not fit its class raises: the mapper's
# decoding error (a ValueError), or a missing or mistyped attribute met while mutating.
UNREADABLE = (ValueError, KeyError, TypeError, AttributeError)


class LedgerRepository(Repository[Any]):
    def get(self, aggregate_id: Any, **kwargs: Any) -> Any:
        try:
            return super().get(aggregate_id, **kwargs)
        except (AggregateNotFoundError, OperationalError, LedgerError):
            raise
        except UNREADABLE as error:
            log.error("aggregate %s cannot be read back: %r", aggregate_id, error)
            raise EventUnreadable(
                f"the stored events of {aggregate_id} cannot be read back: they were altered, "
                "or written by a version this one cannot read; `ledger verify` locates an "
                "altered event"
            ) from error
