"""The chain's definition: what is hashed, in which order, and the raw event wire format.

Every field is length-prefixed (a 4-byte big-endian length, then the bytes), so no two
different events can produce the same byte string. Integers are 8-byte big-endian signed,
the originator id its 16 UUID bytes, the topic UTF-8, the state the stored bytes as-is.

    content_hash = SHA-256(LP("ledger-event/v1") LP(recorded_at) LP(originator_id)
                           LP(originator_version) LP(topic) LP(state))
    chain_hash   = SHA-256(LP("ledger-chain/v1") LP(previous chain_hash) LP(position)
                           LP(content_hash))

The first previous hash is 32 zero bytes (GENESIS). The content hash leaves the position
out on purpose: a moved event keeps its content hash, so a swap is named as a reorder.
"""

from __future__ import annotations

import base64
import hashlib
import json
import struct
from typing import Any, NamedTuple

GENESIS = bytes(32)
EVENT_TAG = b"ledger-event/v1"
CHAIN_TAG = b"ledger-chain/v1"
_LEN = struct.Struct(">I")
# LP(tag) LP(recorded_at) LP(originator_id) LP(version) in one pack; topic and state follow.
_CONTENT_HEAD = struct.Struct(f">I{len(EVENT_TAG)}sIqI16sIq")
_CHAIN_HEAD = struct.Struct(f">I{len(CHAIN_TAG)}sI32sIqI")
_topic_prefixes: dict[str, bytes] = {}


class RawEvent(NamedTuple):
    """One stored event exactly as the database holds it."""

    position: int
    recorded_at: int  # microseconds since the epoch, UTC, from the database clock
    originator_id: bytes  # the 16 bytes of the UUID
    originator_version: int
    topic: str
    state: bytes


# The hot paths pass plain DBAPI rows rather than build a RawEvent or a named chain row each.
# PostgreSQL hands bytea over as a memoryview.
EventRow = tuple[int, int, bytes | memoryview, int, str, bytes | memoryview]  # RawEvent's order
ChainRow = tuple[int, bytes, bytes]  # (position, content hash, chain hash)


def _lp_topic(topic: str) -> bytes:
    # Few distinct topics: encoding each once keeps the hot loop to two joins.
    prefix = _topic_prefixes.get(topic)
    if prefix is None:
        encoded = topic.encode("utf-8")
        prefix = _topic_prefixes[topic] = _LEN.pack(len(encoded)) + encoded
    return prefix


def content_hash(
    recorded_at: int, originator_id: bytes | memoryview, version: int, topic: str, state: Any
) -> bytes:
    """SHA-256 over the event's length-prefixed fields (position excluded, see module doc)."""
    if type(originator_id) is not bytes:  # PostgreSQL hands bytea over as a memoryview
        originator_id = bytes(originator_id)
    head = _CONTENT_HEAD.pack(
        len(EVENT_TAG), EVENT_TAG, 8, recorded_at, 16, originator_id, 8, version
    )
    digest = hashlib.sha256(head)
    digest.update(_lp_topic(topic))
    digest.update(_LEN.pack(len(state)))
    digest.update(state)
    return digest.digest()


def chain_hash(previous: bytes, position: int, content: bytes) -> bytes:
    """SHA-256 linking the previous chain hash, the position and the content hash."""
    return hashlib.sha256(
        _CHAIN_HEAD.pack(len(CHAIN_TAG), CHAIN_TAG, 32, previous, 8, position, 32) + content
    ).digest()


def hash_event(previous: bytes, event: EventRow) -> tuple[bytes, bytes]:
    """(content hash, chain hash) of one event following `previous`."""
    position, recorded_at, originator_id, version, topic, state = event
    content = content_hash(recorded_at, originator_id, version, topic, state)
    return content, chain_hash(previous, position, content)


def _uuid_text(raw: bytes) -> str:
    h = raw.hex()  # str(uuid.UUID(bytes=raw)), at a fifth of the cost
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _uuid_bytes(text: Any) -> bytes:
    if (
        not isinstance(text, str)
        or len(text) != 36
        or text[8] + text[13] + text[18] + text[23] != "----"
    ):
        raise ValueError("raw event field 'originator_id' must be a UUID in its 36-character form")
    hex_digits = text.replace("-", "")
    if len(hex_digits) != 32 or not hex_digits.isalnum():  # fromhex would skip whitespace
        raise ValueError("raw event field 'originator_id' must be a UUID in its 36-character form")
    raw = bytes.fromhex(hex_digits)
    if len(raw) != 16:
        raise ValueError("raw event field 'originator_id' must be a UUID in its 36-character form")
    return raw


def raw_event_to_json(event: EventRow) -> dict[str, Any]:
    """The wire form served at GET /v1/ledger/events (one JSON object a line)."""
    position, recorded_at, originator_id, version, topic, state = event
    return {
        "position": position,
        "recorded_at": recorded_at,
        "originator_id": _uuid_text(bytes(originator_id)),
        "originator_version": version,
        "topic": topic,
        "state_b64": base64.b64encode(state).decode("ascii"),
    }


def raw_event_from_json(item: dict[str, Any] | str | bytes) -> RawEvent:
    """Parse one wire object (or line); types are checked, nothing is coerced silently."""
    data = json.loads(item) if isinstance(item, str | bytes) else item
    if not isinstance(data, dict):
        raise ValueError("a raw event must be a JSON object")
    for name in ("position", "recorded_at", "originator_version"):
        if type(data.get(name)) is not int or not -(2**63) <= data[name] < 2**63:
            raise ValueError(f"raw event field {name!r} must be a 64-bit integer")
    if not isinstance(data.get("topic"), str) or not isinstance(data.get("state_b64"), str):
        raise ValueError("raw event fields 'topic' and 'state_b64' must be strings")
    return RawEvent(
        data["position"],
        data["recorded_at"],
        _uuid_bytes(data.get("originator_id")),
        data["originator_version"],
        data["topic"],
        base64.b64decode(data["state_b64"], validate=True),
    )
