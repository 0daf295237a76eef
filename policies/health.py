"""One pass of the data-health policies: close elapsed feed periods, check new prediction windows.

`ledger health-pass` runs it once; `ledger autopilot` (and `serve`'s sidecars) can call
`run_health_pass(ledger, now)` on a timer.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ledger.application import Ledger
from policies.feeds import close_elapsed_periods
from policies.quality_windows import check_recent_windows


def run_health_pass(
    ledger: Ledger, now: datetime | None = None, window: int | None = None, flush: bool = False
) -> dict[str, Any]:
    """Close every elapsed feed period, then check every full window of new predictions."""
    closed = close_elapsed_periods(ledger, now)
    checks = check_recent_windows(ledger, window=window, flush=flush)
    return {
        "closed_periods": closed,
        "quality_checks": [
            {
                "check_id": str(c.id),
                "deployment": c.deployment,
                "key": c.key,
                "rows": c.covers.get("rows", 0),
                "failing": c.failing,
            }
            for c in checks
        ],
    }
