"""What the entry points call: keys, digests (on demand and on a timer), verification."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ledger.errors import AlreadyExists
from ledger.keyfiles import private_dir
from ledger.notary.link import PreviousDigestNeeded, TamperSuspected, linked_head
from ledger.notary.report import VerificationReport
from ledger.notary.retired import (
    KeyRetired,
    RetiredKey,
    keep_retired,
    retire_legacy_files,
    retired_keys,
    retirement_position,
    zero,
)
from ledger.notary.signing import (
    Digest,
    key_id_for,
    latest_digest_file,
    load_digest,
    load_private_key,
    public_key_text,
    sign_digest,
    signature_valid,
    write_digest_file,
)
from ledger.notary.store import (
    CHAIN_TABLE,
    advance,
    chain_rows,
    event_rows,
    has_notary_tables,
    last_position,
    notary_head,
)
from ledger.notary.verify import verify_events

log = logging.getLogger(__name__)
KEY_FILE_NAME = "signing-key.pem"


def default_key_path(settings: Any) -> Path:
    return Path(settings.secrets_dir) / KEY_FILE_NAME


def public_key_path(private_path: Path) -> Path:
    return Path(private_path).with_suffix(".pub.pem")


def _write_new(path: Path, data: bytes, mode: int) -> None:
    private_dir(path.parent)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())


def _write_key_pair(key: Ed25519PrivateKey, path: Path) -> None:
    _write_new(path, _private_pem(key), 0o600)
    _write_public(key, path)


def _private_pem(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _write_public(key: Ed25519PrivateKey, path: Path) -> None:
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    public_path = public_key_path(path)
    public_path.unlink(missing_ok=True)  # the public half is not secret; it follows the private one
    _write_new(public_path, public, 0o644)


def create_signing_key(ledger: Any, path: Path, actor: str) -> str:
    """Create the key pair once: private half to `path` (0600), public half as an event."""
    path = Path(path)
    if path.exists():
        raise AlreadyExists(
            f"a signing key already exists at {path}; use `ledger signing-key rotate`"
        )
    key = Ed25519PrivateKey.generate()
    _write_key_pair(key, path)
    key_id = key_id_for(key.public_key())
    ledger.record_signing_key(
        key_id=key_id, public_key=public_key_text(key.public_key()), actor=actor
    )
    return key_id


def rotate_signing_key(
    ledger: Any, path: Path, actor: str, keep_passphrase: bytes | None = None
) -> tuple[str, str]:
    """Retire the key at `path` at a recorded position and put its successor there.

    Only the retired key's public half stays (see ledger.notary.retired); its private half
    is overwritten and removed, or kept encrypted under `keep_passphrase` if one is given.
    """
    path = Path(path)
    old = load_private_key(path)
    old_id = key_id_for(old.public_key())
    key = Ed25519PrivateKey.generate()
    staged = path.with_name(path.name + ".new")
    staged.unlink(missing_ok=True)  # a successor never recorded: an earlier rotation failed
    _write_new(staged, _private_pem(key), 0o600)
    new_id = key_id_for(key.public_key())
    try:
        ledger.record_signing_key(
            key_id=new_id,
            public_key=public_key_text(key.public_key()),
            actor=actor,
            replaces=old_id,
        )
    except BaseException:
        staged.unlink(missing_ok=True)
        raise
    retired_at = retirement_position(ledger.engine, old_id)
    keep_retired(path, old, retired_at or 0, keep_passphrase)
    with open(path, "r+b") as old_file:  # held open to overwrite it once it is unlinked
        os.replace(staged, path)
        zero(old_file)
    _write_public(key, path)
    retire_legacy_files(ledger.engine, path)
    return old_id, new_id


def issue_digest(
    engine: sa.Engine,
    key_path: Path,
    digests_dir: Path | None = None,
    previous: Digest | None = None,
    *,
    write: bool = True,
    position: int | None = None,
) -> Digest:
    """The one way anything is signed: catch the chain up, link, sign, record.

    The head (or the chained `position`, for an export) is signed only once the stored
    events, rehashed, lead from every signed head known to it: `previous` and the latest
    digest in `digests_dir`. With neither, the chain is rehashed from its start, and that
    is allowed only when this digest is written into `digests_dir`, starting its record;
    a signer that keeps no record must be given `previous`.
    """
    key = load_private_key(key_path)
    retired = retired_keys(engine, Path(key_path))
    signed = _signed_heads(digests_dir, previous)
    _check_signed_here(signed, key.public_key(), retired)
    if not signed and (digests_dir is None or not write):
        raise PreviousDigestNeeded(
            "no digest to link this head to: give --previous FILE (the last digest issued, "
            "as written into the digest directory or returned by GET /v1/ledger/digest), "
            "or run `ledger digest` without --no-write to start the digest directory"
        )
    advance(engine)
    head = notary_head(engine)
    linked = linked_head(engine, head, signed, head[0] if position is None else position)
    _refuse_if_retired(engine, key.public_key(), retired, linked.position)
    digest = sign_digest(key, linked.position, linked.chain_hash, linked.recorded_at)
    if write and digests_dir is not None:
        write_digest_file(digest, digests_dir)
    return digest


def digest_for_reader(
    engine: sa.Engine, key_path: Path, digests_dir: Path, write_every_seconds: float
) -> Digest:
    """The head, signed, for a reader: a read that writes at most one digest file per interval.

    The latest digest in `digests_dir` is returned as it is when it is at the head. Otherwise
    the head is signed, and written only when no file was written in the last
    `write_every_seconds`: readers asking again and again never fill the directory.
    """
    advance(engine)
    head = notary_head(engine).position
    latest_path = latest_digest_file(digests_dir)
    if latest_path is not None:
        latest = load_digest(latest_path)
        if latest.position == head:
            key = load_private_key(key_path).public_key()
            _check_signed_here([latest], key, retired_keys(engine, Path(key_path)))
            return latest
        age = time.time() - latest_path.stat().st_mtime
        if age < write_every_seconds:
            return issue_digest(engine, key_path, digests_dir, write=False)
    try:
        return issue_digest(engine, key_path, digests_dir)
    except FileExistsError:  # another worker wrote this head in the same second
        return issue_digest(engine, key_path, digests_dir, write=False)


def _signed_heads(digests_dir: Path | None, previous: Digest | None) -> list[Digest]:
    """What this signer knows was signed last: the given digest and the directory's latest."""
    signed = [previous] if previous is not None else []
    latest = latest_digest_file(digests_dir) if digests_dir is not None else None
    if latest is not None:
        signed.append(load_digest(latest))
    return signed


def _check_signed_here(
    signed: list[Digest], current: Ed25519PublicKey, retired: list[RetiredKey]
) -> None:
    """A head to link to must be signed by this signer's key, or by a key it retired before.

    Otherwise a file planted in the digest directory could vouch for a rewritten chain,
    signed by the signing key or by a retired key someone kept.
    """
    own = {key_id_for(current): RetiredKey(key_id_for(current), current, 2**63)}
    own.update({r.key_id: r for r in retired})
    for digest in signed:
        key = own.get(digest.key_id)
        if key is None or not signature_valid(digest, key.public_key):
            raise TamperSuspected(
                f"the digest at position {digest.position} ({digest.issued_at}) to link to is "
                f"not signed by this signer's key ({', '.join(own)}); refusing to sign"
            )
        if digest.position >= key.retired_at:
            raise TamperSuspected(
                f"the digest at position {digest.position} ({digest.issued_at}) to link to is "
                f"signed by key {key.key_id}, retired at position {key.retired_at}: a retired "
                "key vouches for nothing at or after its retirement; refusing to sign"
            )


def _refuse_if_retired(
    engine: sa.Engine, key: Ed25519PublicKey, retired: list[RetiredKey], position: int
) -> None:
    """A retired key signs nothing at or after its retirement (a restored old key file)."""
    key_id = key_id_for(key)
    known = [r.retired_at for r in retired if r.key_id == key_id]
    recorded = retirement_position(engine, key_id)
    retired_at = min([*known, *([recorded] if recorded is not None else [])], default=None)
    if retired_at is not None and position >= retired_at:
        raise KeyRetired(
            f"signing key {key_id} was retired at position {retired_at}: it signs nothing at "
            f"or after it (asked for position {position}); sign with its successor"
        )


def check_continuity(engine: sa.Engine, previous: Digest) -> None:
    """Raise TamperSuspected unless the chain's head still follows from `previous`."""
    advance(engine)
    head = notary_head(engine)
    linked_head(engine, head, [previous], head[0])


class DigestWriter:
    """Writes a signed digest into a directory every `interval_seconds` (for the service)."""

    def __init__(
        self, engine: sa.Engine, key_path: Path, digests_dir: Path, interval_seconds: float = 300
    ):
        self.engine, self.key_path, self.digests_dir = engine, Path(key_path), Path(digests_dir)
        self.interval_seconds = interval_seconds
        self.stop_event = threading.Event()
        self._last: Digest | None = None  # linked to as well: the directory may be emptied

    def write_once(self) -> Digest | None:
        """One digest, unless the head has not moved since the last one."""
        advance(self.engine)
        if self._last is not None and notary_head(self.engine).position == self._last.position:
            return None
        self._last = issue_digest(self.engine, self.key_path, self.digests_dir, self._last)
        return self._last

    def run(self) -> None:
        while not self.stop_event.is_set():
            try:
                self.write_once()
            except Exception:  # keep the timer alive; the next tick retries
                log.exception("writing a chain digest failed")
            self.stop_event.wait(self.interval_seconds)

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self.run, name="digest-writer", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        self.stop_event.set()


def verify_database(
    engine: sa.Engine,
    digests: Iterable[Digest] = (),
    public_key: Ed25519PublicKey | Iterable[Ed25519PublicKey] | None = None,
    page: int = 5000,
) -> VerificationReport:
    """Verify every stored event against the notary's rows and the given digests."""
    notarised = has_notary_tables(engine)
    # One bound for both reads, taken chain first: the notary may run meanwhile, and every
    # chain row at or below it then has its event at or below it. Chain rows past the last
    # event stay inside the bound, so a truncated tail shows as removed.
    upto = max(_chain_end(engine) if notarised else 0, last_position(engine))
    chain = chain_rows(engine, 0, upto, page) if notarised else None
    report = verify_events(event_rows(engine, 0, upto, page), chain, list(digests), public_key)
    if chain is None:
        report.warnings.append("the notary has not run on this database: no chain rows to compare")
    else:
        _check_head_row(engine, report)
    return report


def _chain_end(engine: sa.Engine) -> int:
    position = notary_head(engine).position
    with engine.connect() as conn:
        last_row = conn.exec_driver_sql(
            f"SELECT coalesce(max(position), 0) FROM {CHAIN_TABLE}"
        ).scalar_one()
    return max(position, int(last_row))


def _check_head_row(engine: sa.Engine, report: VerificationReport) -> None:
    """The head row must name the chain's last row and repeat its hash."""
    position, head_hash, _ = notary_head(engine)
    if position == 0:
        return
    with engine.connect() as conn:
        row = conn.execute(
            sa.text(f"SELECT chain_hash FROM {CHAIN_TABLE} WHERE position = :p"), {"p": position}
        ).first()
        last_row = conn.exec_driver_sql(f"SELECT max(position) FROM {CHAIN_TABLE}").scalar_one()
    if row is None or bytes(row[0]) != head_hash or last_row != position:
        report.add(
            "chain_altered", position, "the notary's head row does not match its last chain row"
        )
