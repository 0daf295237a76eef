"""Identifiers derived from names, so that every worker and host agrees on them."""

from __future__ import annotations

import hashlib
import uuid

NAMESPACE = uuid.UUID("6f1c4c1e-3f0a-5d4b-9b7e-2c1a8e6d0b11")
_NAMESPACE_BYTES = NAMESPACE.bytes


def deployment_id(name: str) -> uuid.UUID:
    return uuid.uuid5(NAMESPACE, f"deployment:{name}")


# The client whose namespace keys issued before clients existed share: its ids derive as
# they always did, from (deployment, request id) alone, so every earlier prediction keeps its id.
DEFAULT_CLIENT = "default"


def _prediction_name(deployment: str, request_id: str, client: str) -> str:
    """Request ids are the client's own: another client's same id names another prediction."""
    if client == DEFAULT_CLIENT:
        return f"prediction:{deployment}\x00{request_id}"
    # A distinct prefix: no (deployment, request id) of the default namespace can spell this.
    return f"client-prediction:{client}\x00{deployment}\x00{request_id}"


def prediction_id(deployment: str, request_id: str, client: str = DEFAULT_CLIENT) -> uuid.UUID:
    """The store's uniqueness on this id is what dedupes a retried request."""
    return prediction_ids(deployment, [request_id], client)[0]


def prediction_ids(
    deployment: str, request_ids: list[str], client: str = DEFAULT_CLIENT
) -> list[uuid.UUID]:
    """prediction_id of each of a batch's request ids, the name's shared head (the request id
    comes last) encoded once."""
    head = _NAMESPACE_BYTES + _prediction_name(deployment, "", client).encode()
    return [uuid.UUID(int=_uuid5_int(head + r.encode())) for r in request_ids]


def prediction_id_text(deployment: str, request_id: str, client: str = DEFAULT_CLIENT) -> str:
    """str(prediction_id(...)) without building a UUID object: sealing binds every batch row to it."""
    h = f"{_uuid5_int(_NAMESPACE_BYTES + _prediction_name(deployment, request_id, client).encode()):032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


# The bits uuid.UUID(version=5) sets: the version nibble (5) and the RFC 4122 variant (10).
_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))
_VERSION_5 = (5 << 76) | (0x8000 << 48)


def _uuid5_int(name: bytes) -> int:
    """uuid.uuid5's integer, for a name already led by the namespace's bytes."""
    return int.from_bytes(hashlib.sha1(name).digest()[:16]) & _CLEAR | _VERSION_5


def outcome_claim_id(deployment: str, outcome_id: str, client: str = DEFAULT_CLIENT) -> uuid.UUID:
    """Outcome ids are the reporting client's, scoped per deployment like request ids."""
    if client == DEFAULT_CLIENT:
        return uuid.uuid5(NAMESPACE, f"outcome:{deployment}\x00{outcome_id}")
    return uuid.uuid5(NAMESPACE, f"client-outcome:{client}\x00{deployment}\x00{outcome_id}")


def api_key_id(key_id: str) -> uuid.UUID:
    return uuid.uuid5(NAMESPACE, f"api-key:{key_id}")


def history_id() -> uuid.UUID:
    """The ledger's one History aggregate: every load of historic data is an event of it."""
    return uuid.uuid5(NAMESPACE, "history")


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


def explanation_id(prediction_id: str, actor: str, day: str) -> uuid.UUID:
    """One record per prediction, caller and day: a repeated read finds it."""
    return uuid.uuid5(NAMESPACE, f"explanation:{prediction_id}\x00{actor}\x00{day}")
