"""A released runner lock is free at once for the next taker, on both backends."""

from __future__ import annotations

from ledger.application import Ledger
from projections.locks import runner_lock


def test_a_released_lock_is_free_at_once(ledger: Ledger) -> None:
    for _ in range(50):  # a pass that ends and the next that starts at once (autopilot --loop)
        first = runner_lock(ledger.engine, "autopilot")
        assert first.acquire(wait=False)
        assert not runner_lock(ledger.engine, "autopilot").acquire(wait=False)
        first.release()
        second = runner_lock(ledger.engine, "autopilot")
        assert second.acquire(wait=False)
        second.release()
