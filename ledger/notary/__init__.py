"""Tamper evidence: a hash chain over the global order, signed digests, and a verifier.

Public surface (import from here):
- chain:   RawEvent, hash_event, raw_event_to_json, raw_event_from_json, GENESIS
- store:   advance, notary_head, iter_raw_events, iter_stored_events, iter_chain_rows
- signing: Digest, sign_digest, load_digest, load_public_key, write_digest_file
- service: create_signing_key, rotate_signing_key, issue_digest (the only signing path),
           DigestWriter, verify_database, check_continuity
- retired: KeyRetired (a retired key asked to sign), retirement_position
- link:    linked_head, TamperSuspected, PreviousDigestNeeded (what signing refuses)
- verify:  verify_events -> VerificationReport; remote: iter_events_from_url
"""

from ledger.notary.chain import (
    GENESIS,
    RawEvent,
    hash_event,
    raw_event_from_json,
    raw_event_to_json,
)
from ledger.notary.link import PreviousDigestNeeded, TamperSuspected, linked_head
from ledger.notary.remote import iter_events_from_url
from ledger.notary.report import Problem, VerificationReport
from ledger.notary.retired import KeyRetired, retirement_position
from ledger.notary.service import (
    DigestWriter,
    check_continuity,
    create_signing_key,
    default_key_path,
    digest_for_reader,
    issue_digest,
    rotate_signing_key,
    verify_database,
)
from ledger.notary.signing import (
    Digest,
    latest_digest_file,
    load_digest,
    load_public_key,
    sign_digest,
    write_digest_file,
)
from ledger.notary.store import (
    advance,
    ensure_notary_tables,
    iter_chain_rows,
    iter_raw_events,
    iter_stored_events,
    notary_head,
)
from ledger.notary.verify import verify_events

__all__ = [
    "Digest",
    "DigestWriter",
    "GENESIS",
    "KeyRetired",
    "PreviousDigestNeeded",
    "Problem",
    "RawEvent",
    "TamperSuspected",
    "VerificationReport",
    "advance",
    "check_continuity",
    "create_signing_key",
    "default_key_path",
    "digest_for_reader",
    "ensure_notary_tables",
    "hash_event",
    "issue_digest",
    "iter_chain_rows",
    "iter_events_from_url",
    "iter_raw_events",
    "iter_stored_events",
    "linked_head",
    "latest_digest_file",
    "load_digest",
    "load_public_key",
    "notary_head",
    "raw_event_from_json",
    "raw_event_to_json",
    "retirement_position",
    "rotate_signing_key",
    "sign_digest",
    "verify_database",
    "verify_events",
    "write_digest_file",
]
