"""Every projection, by name: what `ledger project` runs and rebuilds."""

from __future__ import annotations

from projections.base import Projection
from projections.deployments import DeploymentsProjection
from projections.health import HealthProjection
from projections.models import ModelsProjection
from projections.predictions import PredictionsProjection

ALL: tuple[type[Projection], ...] = (
    DeploymentsProjection,
    ModelsProjection,
    PredictionsProjection,
    HealthProjection,
)
BY_NAME: dict[str, type[Projection]] = {p.name: p for p in ALL}


def named(name: str) -> type[Projection]:
    from ledger.errors import InvalidCommand

    if name not in BY_NAME:
        raise InvalidCommand(
            f"no projection {name!r}; use one of {', '.join(BY_NAME)}", field="name"
        )
    return BY_NAME[name]
