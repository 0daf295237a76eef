"""Identifiers derived from names, so that every worker and host agrees on them."""

from __future__ import annotations

import uuid

NAMESPACE = uuid.UUID("6f1c4c1e-3f0a-5d4b-9b7e-2c1a8e6d0b11")


def deployment_id(name: str) -> uuid.UUID:
    return uuid.uuid5(NAMESPACE, f"deployment:{name}")


def prediction_id(deployment: str, request_id: str) -> uuid.UUID:
    """The store's uniqueness on this id is what dedupes a retried request."""
    return uuid.uuid5(NAMESPACE, f"prediction:{deployment}\x00{request_id}")


def api_key_id(key_id: str) -> uuid.UUID:
    return uuid.uuid5(NAMESPACE, f"api-key:{key_id}")


def signing_key_id(key_id: str) -> uuid.UUID:
    return uuid.uuid5(NAMESPACE, f"signing-key:{key_id}")


def dataset_id(fingerprint: str, role: str, source: str) -> uuid.UUID:
    return uuid.uuid5(NAMESPACE, f"dataset:{fingerprint}:{role}:{source}")


def as_uuid(value: object) -> uuid.UUID:
    """An originator id as read raw from either backend: 16 bytes on SQLite, a UUID or text on PostgreSQL."""
    if isinstance(value, uuid.UUID):
        return value
    if isinstance(value, (bytes, memoryview)):
        return uuid.UUID(bytes=bytes(value))
    return uuid.UUID(str(value))
