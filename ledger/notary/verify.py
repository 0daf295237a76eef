"""The verifier: a pure function from raw events (plus optional chain rows and digests)
to a report naming the first position that is not what was recorded.

Nothing from the input is trusted unless recomputation or a signature proves it:
positions must strictly increase, a digest's position must be covered by the events,
and the head recomputed from the events must equal the signed head.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterable
from typing import Any, NamedTuple

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ledger import ids
from ledger.notary.chain import (
    GENESIS,
    ChainRow,
    EventRow,
    RawEvent,
    chain_hash,
    content_hash,
    raw_event_from_json,
)
from ledger.notary.report import Mismatch, Problem, VerificationReport
from ledger.notary.signing import (
    Digest,
    iso_to_us,
    key_id_for,
    public_key_from_text,
    public_key_text,
    signature_valid,
)

KEY_CREATED_TOPIC = "ledger.domain.access:SigningKey.Created"
KEY_ROTATED_TOPIC = "ledger.domain.access:SigningKey.Rotated"
MAX_REMEMBERED_MISMATCHES = 10_000


class ChainHead(NamedTuple):
    """The chain recomputed up to a digest's position."""

    chain_hash: bytes
    recorded_at: int | None  # None only for the empty chain (position 0)


class RecordedKey(NamedTuple):
    """A signing key as the events record it."""

    position: int  # of the event that recorded it
    public_key: str  # its text form (public_key_text)


Heads = dict[int, ChainHead | None]  # digest position -> the recomputed head there, once reached


class _Keyring:
    """Signing keys the events themselves record, and where each was retired.

    The recorded keys stand in for pinned ones only when none are pinned; retirements
    hold either way, since a pinned list says which keys, not until when.
    """

    def __init__(self) -> None:
        self.keys: dict[str, RecordedKey] = {}
        self._retired: dict[bytes, int] = {}  # SigningKey originator -> position of its rotation

    def observe(self, event: RawEvent) -> None:
        try:
            state = json.loads(bytes(event.state))
        except ValueError:
            return  # a damaged event is reported by the hash comparison
        if event.topic == KEY_CREATED_TOPIC and isinstance(state.get("key_id"), str):
            recorded = RecordedKey(event.position, str(state.get("public_key")))
            self.keys.setdefault(state["key_id"], recorded)
        elif event.topic == KEY_ROTATED_TOPIC:
            self._retired.setdefault(bytes(event.originator_id), event.position)

    def retired_at(self, key_id: str) -> int | None:
        """The position of the event that retired `key_id`, if the events hold one."""
        return self._retired.get(ids.signing_key_id(key_id).bytes)


def verify_events(
    raw_events: Iterable[EventRow | dict[str, Any]],
    chain_rows: Iterable[ChainRow] | None = None,
    digest: Digest | Iterable[Digest] | None = None,
    public_key: Ed25519PublicKey | Iterable[Ed25519PublicKey] | None = None,
) -> VerificationReport:
    """Recompute the chain over `raw_events` (in position order, from the first event).

    `public_key`: the pinned key(s) digests must be signed by; None trusts the signing keys
    the events themselves record (weaker: reported as a warning).
    """
    digests = [digest] if isinstance(digest, Digest) else list(digest or ())
    pinned = _pinned(public_key)
    report = VerificationReport(chain_compared=chain_rows is not None)
    report.key_pinned = bool(digests) and pinned is not None
    heads: Heads = {d.position: None for d in digests}
    keyring = _Keyring()
    _walk(raw_events, chain_rows, heads, keyring, report)
    _name_reorders(report)
    for checked in sorted(digests, key=lambda d: d.position):
        _check_digest(checked, heads, keyring, pinned, report)
    if digests and pinned is None:
        report.warnings.append(
            "no pinned public key: digests were checked against keys the ledger itself records, "
            "which an attacker with database access could replace; pass --pubkey"
        )
    return report


def _walk(
    events: Iterable[Any],
    chain_rows: Iterable[ChainRow] | None,
    heads: Heads,
    keyring: _Keyring,
    report: VerificationReport,
) -> None:
    """The hot loop: one pass, two SHA-256 calls an event."""
    rows = iter(chain_rows) if chain_rows is not None else None
    row = next(rows, None) if rows is not None else None
    previous, last, last_at, count = GENESIS, -1, -(2**63), 0
    key_topics = (KEY_CREATED_TOPIC, KEY_ROTATED_TOPIC)
    try:
        for event in events:
            if type(event) is dict:
                event = raw_event_from_json(event)
            position, recorded_at, originator, version, topic, state = event
            if type(position) is not int or position <= last:
                report.add(
                    "out_of_order",
                    last + 1,
                    f"position {position!r} follows {last}: must strictly increase",
                )
                break
            content = content_hash(recorded_at, originator, version, topic, state)
            previous = chain_hash(previous, position, content)
            if rows is not None:
                row = _compare_row(rows, row, position, content, previous, report)
            elif recorded_at < last_at:  # the database clock never steps back
                report.add(
                    "clock_regressed",
                    position,
                    "recorded earlier than the event before it: moved or altered",
                )
            if position in heads:
                heads[position] = ChainHead(previous, recorded_at)
            if topic in key_topics:
                keyring.observe(RawEvent(*event))
            last, last_at, count = position, recorded_at, count + 1
    except (
        ValueError,
        TypeError,
        struct.error,
    ) as error:  # a malformed stream proves nothing after it
        report.add("malformed", last + 1, f"unreadable event after position {last}: {error}")
    _rest_removed(rows, row, report)
    report.events, report.head_position, report.head_hash = count, max(last, 0), previous


def _rest_removed(rows: Any, row: Any, report: VerificationReport) -> None:
    while row is not None:
        report.add("removed", row[0], "the notary chained an event here; the events end before it")
        row = next(rows, None)


def _compare_row(
    rows: Any, row: Any, position: int, content: bytes, chained: bytes, report: VerificationReport
) -> Any:
    """Match one event to the notary's row at its position; returns the next row."""
    while row is not None and row[0] < position:
        report.add("removed", row[0], "the notary chained an event here; it is no longer stored")
        row = next(rows, None)
    if row is None:
        report.unchained += 1  # after the notary's last row: not chained yet, not wrong
        return None
    if row[0] > position:
        report.add("inserted", position, "no event was chained here, yet one is stored now")
        return row
    if row[1] != content:
        report.add("changed", position, "the stored event differs from the one the notary chained")
        if len(report.mismatches) < MAX_REMEMBERED_MISMATCHES:
            report.mismatches[position] = Mismatch(content, bytes(row[1]))
    elif row[2] != chained and not report.problems:
        report.add(
            "chain_altered",
            position,
            "the event matches but the notary's chain hash here does not: the chain table was altered",
        )
    report.chained += 1
    return next(rows, None)


def _name_reorders(report: VerificationReport) -> None:
    """Name what a content mismatch really is: a moved event, or a shift by one.

    The content hash leaves the position out, so an event the notary chained at q and now
    found at p is recognised; the whole tail moved up by one means an insertion at p,
    down by one a removal at p (an attacker who renumbers rather than leaves a gap).
    """
    chained_at = {recorded: pos for pos, (_, recorded) in report.mismatches.items()}
    found_at = {found: pos for pos, (found, _) in report.mismatches.items()}
    for problem in report.problems:
        if problem.kind != "changed" or problem.position not in report.mismatches:
            continue
        p = problem.position
        found, recorded = report.mismatches[p]
        source = chained_at.get(found)
        following = report.mismatches.get(p + 1, Mismatch(b"", b""))
        if source is None and chained_at.get(following.found) == p:
            report.reclassify(
                problem, "inserted", "a forged event here pushed the later events up by one"
            )
        elif source == p + 1 and recorded not in found_at:
            report.reclassify(
                problem, "removed", "the event chained here is gone; the later ones moved down"
            )
        elif source is not None and source != p:
            report.reclassify(
                problem, "reordered", f"holds the event the notary chained at position {source}"
            )


def _pinned(keys: Any) -> dict[str, Ed25519PublicKey] | None:
    if keys is None:
        return None
    keys = [keys] if isinstance(keys, Ed25519PublicKey) else list(keys)
    return {key_id_for(key): key for key in keys}


def _check_digest(
    digest: Digest,
    heads: Heads,
    keyring: _Keyring,
    pinned: dict[str, Ed25519PublicKey] | None,
    report: VerificationReport,
) -> None:
    """Signature first (against a pinned or recorded key), then the recomputed head."""
    failure = _signature_failure(digest, keyring, pinned)
    if failure is None:
        failure = _head_failure(digest, heads, report)
    report.record_digest(digest, failure)


def _signature_failure(
    digest: Digest, keyring: _Keyring, pinned: dict[str, Ed25519PublicKey] | None
) -> Problem | None:
    if pinned is not None:
        key = pinned.get(digest.key_id)
        if key is None:
            return Problem(
                "digest_key",
                digest.position,
                f"signed by key {digest.key_id}, which is not pinned ({', '.join(pinned) or 'none'})",
            )
    else:
        recorded = keyring.keys.get(digest.key_id)
        if recorded is None or recorded.position > digest.position:
            return Problem(
                "digest_key",
                digest.position,
                f"key {digest.key_id} is not recorded in the ledger at or before the digest",
            )
        key = public_key_from_text(recorded.public_key)
        if key_id_for(key) != digest.key_id:
            return Problem(
                "digest_key",
                digest.position,
                f"the recorded key {digest.key_id} has another fingerprint",
            )
    if digest.public_key != public_key_text(key) or not signature_valid(digest, key):
        return Problem(
            "digest_signature",
            digest.position,
            f"the signature by key {digest.key_id} is not valid",
        )
    retired_at = keyring.retired_at(digest.key_id)
    if retired_at is not None and digest.position >= retired_at:
        return Problem(
            "digest_key_retired",
            digest.position,
            f"signed by key {digest.key_id}, retired at position {retired_at}: a retired key "
            "vouches for no head at or after its retirement",
        )
    return None


def _head_failure(digest: Digest, heads: Heads, report: VerificationReport) -> Problem | None:
    if digest.position == 0:
        expected: ChainHead | None = ChainHead(GENESIS, None)
    else:
        expected = heads.get(digest.position)
    if expected is None:
        if digest.position > report.head_position:
            return Problem(
                "digest_not_covered",
                digest.position,
                f"the events end at position {report.head_position}, before the digest's",
            )
        return Problem("removed", digest.position, "the event the signed head ends at is missing")
    recorded_at = None if digest.recorded_at is None else iso_to_us(digest.recorded_at)
    if expected.chain_hash.hex() != digest.head_hash or expected.recorded_at != recorded_at:
        return Problem(
            "digest_mismatch",
            digest.position,
            "the chain recomputed from the stored events differs from the signed head",
        )
    return None
