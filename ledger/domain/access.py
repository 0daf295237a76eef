"""Who may act: API keys (hashed) of named clients, and the public halves of signing keys."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from ledger import ids
from ledger.errors import InvalidCommand, NotAuthorized
from ledger.timeline import parse_instant, parse_past_micros

ROLES = ("admin", "predictor", "auditor")
# What a client may do on a deployment beyond its own predictions: predict there (a client
# with no predict grant predicts on every deployment), report outcomes for any client's
# predictions there, read any client's predictions there, load history there (give each
# prediction the historic instant it occurred at: docs/ARCHITECTURE.md, "Historic instants").
LOAD_HISTORY = "load-history"
CAPABILITIES = ("predict", "report-outcomes", "read", LOAD_HISTORY)
OCCURRED_AT_FIELD = "occurred_at"
CLIENT_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,62}")
DEPLOYMENT_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")


def own_client(key_id: str) -> str:
    """The client of a key issued without one: its own, named after the key."""
    return f"key-{key_id}"


def check_client(client: str) -> str:
    if not CLIENT_NAME.fullmatch(client):
        raise InvalidCommand(
            f"client {client!r} is not a client name: 1-63 of a-z, 0-9, '.', '_', '-', "
            "starting with a letter or digit",
            field="client",
        )
    return client


def parse_grants(grants: Iterable[str]) -> list[str]:
    """`deployment:capability` grants, checked, each once, in order."""
    out: list[str] = []
    for grant in grants:
        deployment, _, capability = grant.rpartition(":")
        if not DEPLOYMENT_NAME.fullmatch(deployment) or capability not in CAPABILITIES:
            raise InvalidCommand(
                f"grant {grant!r} is not deployment:capability with a capability of "
                f"{', '.join(CAPABILITIES)}",
                field="grants",
            )
        if grant not in out:
            out.append(grant)
    return out


def granted(grants: Iterable[str], capability: str, deployment: str) -> bool:
    return f"{deployment}:{capability}" in grants


def may_predict(grants: Iterable[str], deployment: str) -> bool:
    """Predict grants narrow a key to their deployments; a key without any predicts anywhere."""
    predict = [g for g in grants if g.endswith(":predict")]
    return not predict or f"{deployment}:predict" in predict


def historic_instant(grants: Iterable[str], deployment: str, text: str | None) -> int | None:
    """The historic instant (µs) a caller gives for what it records, None when it gives none.

    Only a key granted `<deployment>:load-history` may give one, and only an instant that
    has passed (give or take the clock-skew tolerance); recorded-at is the database's, never
    the caller's.
    """
    if text is None:
        return None
    grant = f"{deployment}:{LOAD_HISTORY}"
    if not granted(grants, LOAD_HISTORY, deployment):
        raise NotAuthorized(
            f"{OCCURRED_AT_FIELD} (a historic instant) is for loaders of history: ask an admin "
            f"for a key granted {grant}",
            field=OCCURRED_AT_FIELD,
            grant=grant,
        )
    return parse_past_micros(text, OCCURRED_AT_FIELD)


class ApiKey(Aggregate):
    """A bearer key: only an HMAC of its secret is stored."""

    class Issued(Aggregate.Created):
        class_version = 2
        key_id: str
        role: str
        secret_digest: str
        expires_at: str | None
        label: str
        actor: str
        client: str  # whose request ids and predictions the key's are
        grants: list[str]  # deployment:capability

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            # Keys from before clients made every prediction in the namespace that derives
            # ids from (deployment, request id) alone: the default client's.
            state["client"] = ids.DEFAULT_CLIENT
            state["grants"] = []

    @staticmethod
    def create_id(key_id: str, **_: Any) -> UUID:
        return ids.api_key_id(key_id)

    @classmethod
    def issue(cls, **kwargs: Any) -> ApiKey:
        if kwargs.get("role") not in ROLES:
            raise InvalidCommand(f"role must be one of {', '.join(ROLES)}", field="role")
        if kwargs.get("expires_at") is not None:
            parse_instant(kwargs["expires_at"], "expires_at")  # a key must say when it ends
        kwargs["client"] = check_client(kwargs.get("client") or own_client(kwargs["key_id"]))
        kwargs["grants"] = parse_grants(kwargs.get("grants") or ())
        return cls(**kwargs)

    @event(Issued)
    def __init__(
        self,
        key_id: str,
        role: str,
        secret_digest: str,
        expires_at: str | None,
        label: str,
        actor: str,
        client: str,
        grants: list[str],
    ):
        self.key_id = key_id
        self.role = role
        self.secret_digest = secret_digest
        self.expires_at = expires_at
        self.label = label
        self.issued_by = actor
        self.client = client
        self.grants = list(grants)
        self.revoked = False

    class Revoked(Aggregate.Event):
        reason: str
        actor: str

    def revoke(self, reason: str, actor: str) -> None:
        if self.revoked:
            raise InvalidCommand(f"key {self.key_id} is already revoked")
        self._revoked(reason=reason, actor=actor)

    @event(Revoked)
    def _revoked(self, reason: str, actor: str) -> None:
        self.revoked = True


class SigningKey(Aggregate):
    """The public half of an Ed25519 key that signs chain digests."""

    class Created(Aggregate.Created):
        key_id: str
        algorithm: str
        public_key: str
        replaces: str | None
        actor: str

    @staticmethod
    def create_id(key_id: str, **_: Any) -> UUID:
        return ids.signing_key_id(key_id)

    @event(Created)
    def __init__(
        self, key_id: str, algorithm: str, public_key: str, replaces: str | None, actor: str
    ):
        self.key_id = key_id
        self.algorithm = algorithm
        self.public_key = public_key
        self.replaces = replaces
        self.retired = False

    class Rotated(Aggregate.Event):
        successor: str
        actor: str

    def rotate(self, successor: str, actor: str) -> None:
        if self.retired:
            raise InvalidCommand(f"signing key {self.key_id} was already rotated")
        self._rotated(successor=successor, actor=actor)

    @event(Rotated)
    def _rotated(self, successor: str, actor: str) -> None:
        self.retired = True
