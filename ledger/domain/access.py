"""Who may act: API keys (hashed) and the public halves of signing keys."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from ledger import ids
from ledger.errors import InvalidCommand
from ledger.timeline import parse_instant

ROLES = ("admin", "predictor", "auditor")


class ApiKey(Aggregate):
    """A bearer key: only an HMAC of its secret is stored."""

    class Issued(Aggregate.Created):
        key_id: str
        role: str
        secret_digest: str
        expires_at: str | None
        label: str
        actor: str

    @staticmethod
    def create_id(key_id: str, **_: Any) -> UUID:
        return ids.api_key_id(key_id)

    @classmethod
    def issue(cls, **kwargs: Any) -> ApiKey:
        if kwargs.get("role") not in ROLES:
            raise InvalidCommand(f"role must be one of {', '.join(ROLES)}", field="role")
        if kwargs.get("expires_at") is not None:
            parse_instant(kwargs["expires_at"], "expires_at")  # a key must say when it ends
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
    ):
        self.key_id = key_id
        self.role = role
        self.secret_digest = secret_digest
        self.expires_at = expires_at
        self.label = label
        self.issued_by = actor
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
