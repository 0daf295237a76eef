"""Whether reads are served: every projection has caught up to a target position."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from ledger import log
from projections.base import ProjectionState, read_position
from projections.registry import ALL, BY_NAME

READY_LAG = 100  # events a projection may trail the head by and still count as serving


def catching_up(engine: sa.Engine, target: int, lag: int = READY_LAG) -> list[dict[str, Any]]:
    """The projections not yet serving reads: each one's name, position and the head.

    A projection serves once it has reached `target` (the head when the process started)
    or trails the current head by at most `lag`; one never run, or at another schema
    version, does not (its reads answer 503 `projection_not_ready`)."""
    with engine.connect() as conn:
        head = log.head(conn)
    states = _states(engine)
    behind = []
    for projection in ALL:
        state = states[projection.name]
        position = None if state is None else state.position
        serving = (
            state is not None
            and state.version == projection.version
            and (state.position >= target or head - state.position <= lag)
        )
        if not serving:
            behind.append({"name": projection.name, "position": position, "head": head})
    return behind


def _states(engine: sa.Engine) -> dict[str, ProjectionState | None]:
    """Every projection's state (None before its first run)."""
    with engine.connect() as conn:
        try:
            return {p.name: read_position(conn, p.name) for p in ALL}
        except (sa.exc.ProgrammingError, sa.exc.OperationalError):
            return dict.fromkeys(BY_NAME)  # no runner has created the position table yet
