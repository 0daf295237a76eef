"""Waiting for file descriptors by poll(2), which has no ceiling on their numbers.

select(2) refuses a descriptor numbered 1024 or more, and a long-lived process (a worker
with many connections, a test run) reaches such numbers: the deployment watch, the
writer's supervisor and a projection's follower would then stop watching.
"""

from __future__ import annotations

import math
import select
from collections.abc import Sequence
from typing import Any

# A closed descriptor (POLLNVAL) or a hung-up one counts as ready: whoever waits finds out.
READY = select.POLLIN | select.POLLPRI | select.POLLERR | select.POLLHUP | select.POLLNVAL


def readable(sources: Sequence[Any], timeout: float | None = None) -> list[Any]:
    """Those of `sources` (descriptors, or objects with fileno()) ready to read within
    `timeout` seconds; None waits until one is."""
    poller = select.poll()
    numbers = [s if isinstance(s, int) else s.fileno() for s in sources]
    for number in numbers:
        poller.register(number, select.POLLIN | select.POLLPRI)
    ms = None if timeout is None else max(0, math.ceil(timeout * 1000))
    ready = {fd for fd, events in poller.poll(ms) if events & READY}
    return [s for s, number in zip(sources, numbers, strict=True) if number in ready]
