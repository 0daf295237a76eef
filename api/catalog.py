"""Which deployments exist (as of a position), cheaply and exactly.

The deployments projection answers up to the position it has applied; the few Created
events recorded after that are read from the log by position range (the primary key),
so a list never scans the whole event table. Without the projection (not built yet),
the Created events are read from the log by topic, which scans it: fine while small.
"""

from __future__ import annotations

import sqlalchemy as sa

from ledger import log
from ledger.domain.deployments import Deployment
from ledger.errors import LedgerError


def deployment_names(engine: sa.Engine, upto: int | None) -> list[str]:
    """Every deployment name created at or before `upto` (None: now), sorted."""
    projected, names = _from_projection(engine, upto)
    if projected is None or upto is None or projected < upto:
        names |= set(created_after(engine, projected or 0, upto))
    return sorted(names)


def _from_projection(engine: sa.Engine, upto: int | None) -> tuple[int | None, set[str]]:
    try:
        from projections.query_catalog import list_deployments
    except ImportError:
        return None, set()
    try:
        answer = list_deployments(engine, upto)
    except LedgerError:  # the read tables are not built yet
        return None, set()
    return int(answer["position"]), {item["name"] for item in answer["items"]}


def created_after(engine: sa.Engine, after: int, upto: int | None) -> list[str]:
    """Names of deployments created after a position (and at or before `upto`)."""
    with engine.connect() as conn:
        created = log.by_topic(log.mapper(), conn, [Deployment.Created], after, upto)
    return [event.name for event in created]


def page(names: list[str], after: str | None, limit: int) -> tuple[list[str], str | None]:
    """The names after the cursor's name, and the name the next page starts after (None at the end)."""
    rest = [n for n in names if after is None or n > after]
    chosen = rest[:limit]
    return chosen, (chosen[-1] if len(rest) > limit else None)
