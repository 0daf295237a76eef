"""Before anything is signed: the head to sign must follow from the last head signed.

A superuser can rewrite an event and recompute every stored chain hash after it; the
chain table alone then looks consistent. Only a head signed before the rewrite tells,
so a new head is signed only after the stored events, rehashed from a signed head on,
are shown to reach exactly the stored hash that is about to be signed.
"""

from __future__ import annotations

from typing import NamedTuple

import sqlalchemy as sa

from ledger.errors import Conflict, InvalidCommand
from ledger.notary.chain import GENESIS, hash_event
from ledger.notary.reads import CHAIN_TABLE, iter_chain_rows, iter_stored_events
from ledger.notary.signing import Digest


class TamperSuspected(Conflict):
    """The chain no longer holds a head already signed: someone rewrote it."""

    code = "tamper_suspected"


class PreviousDigestNeeded(InvalidCommand):
    """Nothing tells this signer what was signed last, so it cannot link a new head to it."""

    code = "previous_digest_needed"


class LinkedHead(NamedTuple):
    """A head proven to follow from every signed head given: what may be signed."""

    position: int
    chain_hash: bytes
    recorded_at: int | None


def linked_head(
    engine: sa.Engine, head: tuple[int, bytes, int | None], signed: list[Digest], at: int
) -> LinkedHead:
    """Rehash the stored events from below the lowest of `signed` and `at` up to the highest.

    Every signed head must be met with its signed hash, and the stored chain hash at `at`
    (the notary's head when `at` is the head's position) with the rehashed one; anything
    else raises TamperSuspected. An empty `signed` links `at` to the start of the chain.
    """
    _refuse_beyond(head[0], signed, at)
    expected: dict[int, tuple[bytes, Digest | None]] = {
        d.position: (bytes.fromhex(d.head_hash), d) for d in signed if d.position > 0
    }
    stored = _stored_hash(engine, head, at)
    if at > 0:
        expected.setdefault(at, (stored, None))
        if expected[at][0] != stored:  # a digest at `at` itself: the stored row must repeat it
            raise _rewritten(expected[at][1], at)
    lowest = min([at, *expected])
    start, previous = _row_before(engine, lowest)
    found: LinkedHead = LinkedHead(0, GENESIS, None)
    for event in iter_stored_events(engine, start + 1, max([at, *expected])):
        _, previous = hash_event(previous, event)
        hit = expected.pop(event.position, None)
        if hit is not None and hit[0] != previous:
            raise _rewritten(hit[1], event.position)
        if event.position == at:
            found = LinkedHead(at, previous, event.recorded_at)
    if expected:
        missing = min(expected)
        raise _rewritten(expected[missing][1], missing, "its event is no longer stored")
    return found


def _refuse_beyond(head_position: int, signed: list[Digest], at: int) -> None:
    """A chain shorter than a signed head was cut back; a position past it is not chained."""
    for digest in signed:
        if digest.position > head_position:
            raise TamperSuspected(
                f"the chain ends at position {head_position}, before the head signed at "
                f"position {digest.position} ({digest.issued_at}); refusing to sign. "
                "Run `ledger verify --digest` with that digest"
            )
    if at > head_position:
        raise InvalidCommand(
            f"position {at} is not chained yet (the chain ends at {head_position})"
        )


def _stored_hash(engine: sa.Engine, head: tuple[int, bytes, int | None], at: int) -> bytes:
    """The chain hash stored at `at`; at the head, the head row must repeat it."""
    if at == 0:
        return GENESIS
    row = next(iter_chain_rows(engine, at, at), None)
    if row is None or row[0] != at:
        raise InvalidCommand(f"no event was chained at position {at}")
    if at == head[0] and bytes(row[2]) != head[1]:
        raise TamperSuspected(
            f"the notary's head row does not repeat its chain row at position {at}: "
            "the chain table was altered; refusing to sign. Run `ledger verify`"
        )
    return bytes(row[2])


def _row_before(engine: sa.Engine, position: int) -> tuple[int, bytes]:
    """Where rehashing starts: the chain row just below `position`, or the chain's start.

    Its stored hash is not trusted: a signed head above it is what the rehash must meet.
    """
    with engine.connect() as conn:
        row = conn.execute(
            sa.text(
                f"SELECT position, chain_hash FROM {CHAIN_TABLE} WHERE position < :p "
                "ORDER BY position DESC LIMIT 1"
            ),
            {"p": position},
        ).first()
    return (int(row[0]), bytes(row[1])) if row else (0, GENESIS)


def _rewritten(digest: Digest | None, position: int, why: str = "") -> TamperSuspected:
    if digest is None:
        return TamperSuspected(
            f"the stored events no longer hash to the chain stored at position {position}: "
            "an event was changed after it was chained; refusing to sign. Run `ledger verify`"
        )
    return TamperSuspected(
        f"the chain no longer holds the head signed at position {position} "
        f"({digest.issued_at}){': ' + why if why else ''}; refusing to sign. "
        "Run `ledger verify --digest` with that digest"
    )
