"""The API key cache: refreshed ahead in the background, never kept past its life or a clear()."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace

from api.auth import KeyCache


class Keys:
    """A key table the cache reads through; `gate` holds a read until the test lets it go."""

    def __init__(self) -> None:
        self.role: str | None = "predictor"
        self.reads = 0
        self.gate = threading.Event()
        self.gate.set()

    def authenticate(self, key: str) -> SimpleNamespace | None:
        self.reads += 1
        role = self.role
        self.gate.wait(5)
        return (
            SimpleNamespace(key_id="k1", role=role, expires_at=None, client="c", grants=[])
            if role
            else None
        )


def wait_until(condition, seconds: float = 2.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)


def test_a_key_used_in_the_second_half_of_its_life_is_read_again_in_the_background() -> None:
    keys = Keys()
    cache = KeyCache(keys.authenticate, ttl_seconds=2.0)
    assert cache.principal("secret").role == "predictor" and keys.reads == 1
    time.sleep(1.2)
    keys.gate.clear()  # the background read blocks: the request must not wait for it
    started = time.monotonic()
    assert cache.principal("secret").role == "predictor"
    assert time.monotonic() - started < 0.5
    keys.gate.set()
    wait_until(lambda: keys.reads == 2)
    assert keys.reads == 2
    time.sleep(1.2)  # past the first read's life, within the refreshed one's: no wait
    keys.gate.clear()
    started = time.monotonic()
    assert cache.principal("secret").role == "predictor"
    assert time.monotonic() - started < 0.5
    keys.gate.set()


def test_an_entry_past_its_life_is_read_before_answering() -> None:
    keys = Keys()
    cache = KeyCache(keys.authenticate, ttl_seconds=0.1)
    assert cache.principal("secret") is not None
    keys.role = None  # revoked
    time.sleep(0.15)
    assert cache.principal("secret") is None


def test_a_read_begun_before_clear_is_not_kept_after_it() -> None:
    keys = Keys()
    cache = KeyCache(keys.authenticate, ttl_seconds=2.0)
    cache.principal("secret")
    time.sleep(1.2)
    keys.gate.clear()
    cache.principal("secret")  # starts a background read that sees the key still valid
    wait_until(lambda: keys.reads == 2)
    keys.role = None  # this worker revokes the key and clears its cache
    cache.clear()
    keys.gate.set()
    time.sleep(0.05)  # the stale read finishes after the clear
    assert cache.principal("secret") is None
