"""Deny by default: a Bearer key, a role the route table allows, a per-key rate limit.

Key lookups are cached per worker for `auth_cache_seconds` (default 2 s), and a key in use
is read again in the background before its entry ends, so a request costs no database
read; a revoked key is therefore refused within that many seconds on every worker (at
once on the worker that revoked it, which calls `KeyCache.clear`).
Rate limits are token buckets in each worker's memory: no database write per request,
and the effective limit is per worker process.
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import falcon
from falcon.routing import StaticRoute

from api.errors import Problem
from api.routes import PATHS, route_for
from ledger.domain.access import granted
from ledger.ids import DEFAULT_CLIENT
from ledger.outcomes import Reporter
from ledger.timeline import parse_instant

CHALLENGE = 'Bearer realm="provenance-ledger"'


@dataclass(frozen=True)
class Principal:
    """Who is calling: the key's id, role, client and grants; `actor` is what events record."""

    key_id: str
    role: str
    expires_at: str | None = None
    client: str = DEFAULT_CLIENT
    grants: frozenset[str] = frozenset()

    @property
    def actor(self) -> str:
        return f"key:{self.key_id}"

    def may(self, capability: str, deployment: str) -> bool:
        return granted(self.grants, capability, deployment)

    @property
    def reporter(self) -> Reporter:
        return Reporter(self.actor, self.client, self.grants)


def principal_of(record: Any) -> Principal:
    """The caller an issued key (ApiKey) stands for."""
    return Principal(
        record.key_id, record.role, record.expires_at, record.client, frozenset(record.grants)
    )


class KeyCache:
    """Bearer key -> Principal (or None), remembered for a few seconds per worker.

    An entry read again in the second half of its life is refreshed by a background thread
    while the request goes on with it, so a steadily used key never waits for the database;
    an entry past its life is read again before answering, which keeps the revocation bound."""

    def __init__(self, authenticate: Any, ttl_seconds: float = 2.0, max_entries: int = 10_000):
        self._authenticate = authenticate
        self._ttl = ttl_seconds
        self._max = max_entries
        self._entries: dict[str, tuple[float, Principal | None]] = {}
        self._refreshing: set[str] = set()
        self._lock = threading.Lock()
        self._generation = 0  # moved by clear(): a read begun before it must not be stored after

    def principal(self, key: str) -> Principal | None:
        digest = hashlib.sha256(key.encode()).hexdigest()  # raw keys are not kept in memory
        now = time.monotonic()
        hit = self._entries.get(digest)
        if hit is None or hit[0] < now:
            hit = self._fetch(digest, key, now)
        elif hit[0] - now < self._ttl / 2:
            self._refresh_ahead(digest, key)
        principal = hit[1]
        if principal and principal.expires_at and _expired(principal.expires_at):
            return None
        return principal

    def _fetch(self, digest: str, key: str, now: float) -> tuple[float, Principal | None]:
        generation = self._generation
        record = self._authenticate(key)
        found = principal_of(record) if record else None
        hit = (now + self._ttl, found)
        with self._lock:
            if generation == self._generation:
                if len(self._entries) >= self._max:
                    self._entries.clear()
                self._entries[digest] = hit
        return hit

    def _refresh_ahead(self, digest: str, key: str) -> None:
        with self._lock:
            if digest in self._refreshing:
                return
            self._refreshing.add(digest)
        threading.Thread(target=self._refresh, args=(digest, key), daemon=True).start()

    def _refresh(self, digest: str, key: str) -> None:
        try:
            self._fetch(digest, key, time.monotonic())  # the life counts from before the read
        except Exception:  # noqa: BLE001 - the entry expires as usual and the next request reads it
            pass
        finally:
            with self._lock:
                self._refreshing.discard(digest)

    def clear(self) -> None:
        with self._lock:
            self._generation += 1
            self._entries.clear()


def _expired(expires_at: str) -> bool:
    return parse_instant(expires_at, "expires_at") <= datetime.now(UTC)


class RateLimiter:
    """A token bucket per key: `rate` requests a second, bursts up to `burst`."""

    def __init__(self, rate: float, burst: float):
        self.rate = rate
        self.burst = burst
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key_id: str) -> float:
        """0 when allowed, else the seconds to wait before the next token."""
        if self.rate <= 0:
            return 0.0
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(key_id, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            if tokens >= 1:
                self._buckets[key_id] = (tokens - 1, now)
                return 0.0
            self._buckets[key_id] = (tokens, now)
            return (1 - tokens) / self.rate


class AuthMiddleware:
    """Authenticates and authorises every routed request against api.routes.ROUTES."""

    def __init__(self, keys: KeyCache, limiter: RateLimiter):
        self.keys = keys
        self.limiter = limiter

    def process_resource(
        self, req: falcon.Request, resp: falcon.Response, resource: Any, params: dict[str, Any]
    ) -> None:
        req.context.principal = None
        req.context.route = None
        if resource is None:
            return  # no route: falcon answers 404
        route = req.context.route = route_for(req.method, req.uri_template)
        if route is None:
            self._unlisted(req, resource)
            return
        if route.public:
            return
        principal = self._authenticate(req)
        if principal.role not in route.roles:
            raise Problem(
                403,
                "forbidden",
                f"{with_article(principal.role)} key may not {req.method} {req.uri_template}; "
                f"allowed: {', '.join(sorted(route.roles))}",
            )
        wait = self.limiter.take(principal.key_id)
        if wait:
            raise Problem(
                429,
                "rate_limited",
                "too many requests for this key; slow down",
                headers={"Retry-After": str(max(1, math.ceil(wait)))},
            )
        req.context.principal = principal

    def _authenticate(self, req: falcon.Request) -> Principal:
        header = req.get_header("Authorization") or ""
        scheme, _, key = header.partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            raise Problem(
                401,
                "unauthenticated",
                "send Authorization: Bearer <key>",
                headers={"WWW-Authenticate": CHALLENGE},
            )
        principal = self.keys.principal(key.strip())
        if principal is None:
            raise Problem(
                401,
                "invalid_key",
                "the key is unknown, revoked or expired",
                headers={"WWW-Authenticate": f'{CHALLENGE}, error="invalid_token"'},
            )
        return principal

    def _unlisted(self, req: falcon.Request, resource: Any) -> None:
        # Static files (docs, dashboard assets) are public; any other unlisted route is refused.
        if isinstance(resource, StaticRoute):
            return
        if req.uri_template in PATHS and not hasattr(resource, f"on_{req.method.lower()}"):
            return  # falcon answers 405 for a method the resource does not have
        raise Problem(
            403,
            "no_route_rule",
            f"{req.method} {req.uri_template} has no row in the route table (api/routes/)",
        )


def with_article(word: str) -> str:
    """'an admin', 'an auditor', 'a predictor'."""
    return f"{'an' if word[:1].lower() in 'aeiou' else 'a'} {word}"
