"""What resources are given: settings, the ledger, the scorer and the per-worker caches.

`create_app` builds one Services and hands it to each module's `add_routes(app, services)`;
resources keep the parts they need. Nothing here opens a connection at import time.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from api.auth import KeyCache, RateLimiter
from api.replica import ReadRouter
from api.staleness import note_read
from ledger.application import Ledger
from ledger.privacy import Sealer
from ledger.settings import Settings
from serving.rows import RowSchemas
from serving.scoring import Scorer
from serving.service import Serving


@dataclass
class Services:
    """The dependencies every resource may be given."""

    settings: Settings
    ledger: Ledger
    serving: Serving
    keys: KeyCache
    limiter: RateLimiter
    reads: ReadRouter | None = None  # always built by build(); None only for hand-made Services
    # Other processes (gunicorn's other workers, other hosts) serve this ledger too.
    other_servers: bool = False
    extras: dict[str, Any] = field(default_factory=dict)  # other modules' shared objects

    @classmethod
    def build(
        cls,
        settings: Settings | None = None,
        ledger: Ledger | None = None,
        other_servers: bool = False,
    ) -> Services:
        settings = settings or (ledger.settings if ledger is not None else None)
        if settings is None:
            raise TypeError("Services.build needs the settings or a ledger built with them")
        ledger = ledger or Ledger(settings)
        return cls(
            settings=settings,
            ledger=ledger,
            serving=Serving.build(ledger, settings),
            keys=KeyCache(ledger.authenticate, ttl_seconds=settings.auth_cache_seconds),
            limiter=RateLimiter(settings.rate_limit_per_second, settings.rate_limit_burst),
            reads=ReadRouter.for_url(
                ledger.engine, settings.read_database_url, settings.standby_wait_seconds
            ),
            other_servers=other_servers,
        )

    @property
    def scorer(self) -> Scorer:
        return self.serving.scorer

    @property
    def row_schemas(self) -> RowSchemas:
        return self.serving.row_schemas

    @property
    def sealer(self) -> Sealer:
        return self.serving.sealer

    def deployment_changed(self, name: str) -> None:
        """This worker committed a change to a deployment: it serves the change at once, and
        where other processes serve too, the answer waits out the staleness bound, within
        which each of them serves it; so every request sent after the answer is served by it."""
        self.scorer.forget(name)
        if self.other_servers:
            time.sleep(self.settings.deployment_staleness_ms / 1000)

    def read_engine(self, *projections: str) -> Any:
        """The engine for reading these projections: the standby when configured and caught up."""
        note_read(projections)  # the answer's staleness headers (api/staleness.py)
        return self.reads.engine_for(*projections) if self.reads is not None else self.ledger.engine

    def close(self) -> None:
        if self.reads is not None:
            self.reads.close()
        self.serving.scorer.close()
        self.ledger.close()
