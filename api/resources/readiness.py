"""GET /readyz: 200 once reads are served, 503 with the projections still catching up."""

from __future__ import annotations

from typing import Any

import falcon

from api.errors import RETRY_AFTER_SECONDS, Problem
from ledger import log
from projections.readiness import catching_up


class ReadinessResource:
    """Ready when every projection has reached the head as of the process' start."""

    def __init__(self, services: Any):
        self.engine = services.ledger.engine
        self.target: int | None = None
        try:
            self.target = self._head()
        except Exception:  # noqa: BLE001 - the database may come up later: taken at the first probe
            self.target = None

    def _head(self) -> int:
        with self.engine.connect() as conn:
            return log.head(conn)

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        if self.target is None:
            self.target = self._head()
        behind = catching_up(self.engine, self.target)
        if behind:
            names = ", ".join(p["name"] for p in behind)
            raise Problem(
                503,
                "not_ready",
                f"reads are not served yet: {names} still catching up with the ledger",
                headers={"Retry-After": RETRY_AFTER_SECONDS},
                projections=behind,
            )
        resp.media = {"status": "ready", "position": self.target}


def add_routes(app: falcon.App, services: Any) -> None:
    app.add_route("/readyz", ReadinessResource(services))
