"""What the prediction path needs in one process: the ledger, the scorer and its caches."""

from __future__ import annotations

from dataclasses import dataclass

from ledger.application import Ledger
from ledger.privacy import Sealer, sealer_for
from ledger.settings import Settings
from serving.rows import RowSchemas
from serving.scoring import Scorer


@dataclass
class Serving:
    """One per worker: runtimes and row schemas are cached per deployment version."""

    settings: Settings
    ledger: Ledger
    scorer: Scorer
    row_schemas: RowSchemas
    sealer: Sealer  # personal features never bypass it

    @classmethod
    def build(cls, ledger: Ledger, settings: Settings | None = None) -> Serving:
        """Failing to build the sealer fails start-up: it never opens a leak."""
        settings = settings or ledger.settings
        return cls(
            settings=settings,
            ledger=ledger,
            scorer=Scorer(ledger, staleness_ms=settings.deployment_staleness_ms),
            row_schemas=RowSchemas(),
            sealer=sealer_for(settings, ledger.engine),
        )
