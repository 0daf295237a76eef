"""What the entry points call: keys, digests (on demand and on a timer), verification."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ledger.errors import AlreadyExists, Conflict
from ledger.notary.report import VerificationReport
from ledger.notary.signing import (
    Digest,
    key_id_for,
    latest_digest_file,
    load_digest,
    load_private_key,
    public_key_text,
    sign_digest,
    write_digest_file,
)
from ledger.notary.store import (
    CHAIN_TABLE,
    advance,
    chain_rows,
    event_rows,
    has_notary_tables,
    iter_chain_rows,
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
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())


def _write_key_pair(key: Ed25519PrivateKey, path: Path) -> None:
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    _write_new(path, private, 0o600)
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


def rotate_signing_key(ledger: Any, path: Path, actor: str) -> tuple[str, str]:
    """Retire the key at `path` (kept beside it, renamed) and record its successor."""
    path = Path(path)
    old_id = key_id_for(load_private_key(path).public_key())
    retired = path.with_name(f"signing-key.{old_id}.retired.pem")
    os.replace(path, retired)
    key = Ed25519PrivateKey.generate()
    try:
        _write_key_pair(key, path)
    except OSError:
        os.replace(retired, path)
        raise
    new_id = key_id_for(key.public_key())
    ledger.record_signing_key(
        key_id=new_id, public_key=public_key_text(key.public_key()), actor=actor, replaces=old_id
    )
    return old_id, new_id


class TamperSuspected(Conflict):
    """The chain no longer holds a head already signed: someone rewrote it."""

    code = "tamper_suspected"


def issue_digest(
    engine: sa.Engine,
    key_path: Path,
    digests_dir: Path | None = None,
    previous: Digest | None = None,
) -> Digest:
    """Catch the chain up, sign its head, and write it to `digests_dir` when given.

    Refuses to sign a chain that no longer passes through the last digest issued
    (`previous`, by default the latest file in `digests_dir`): a rewritten chain must not
    be certified after the fact.
    """
    key = load_private_key(key_path)
    if previous is None and digests_dir is not None:
        latest = latest_digest_file(digests_dir)
        previous = load_digest(latest) if latest else None
    advance(engine)
    if previous is not None:
        check_continuity(engine, previous)
    position, head_hash, recorded_at = notary_head(engine)
    digest = sign_digest(key, position, head_hash, recorded_at)
    if digests_dir is not None:
        write_digest_file(digest, digests_dir)
    return digest


def check_continuity(engine: sa.Engine, previous: Digest) -> None:
    """The chain row at the digest's position must still carry the signed head."""
    if previous.position == 0:
        return
    row = next(iter_chain_rows(engine, previous.position, previous.position), None)
    if row is None or row[0] != previous.position or row[2].hex() != previous.head_hash:
        raise TamperSuspected(
            f"the chain no longer holds the head signed at position {previous.position} "
            f"({previous.issued_at}); refusing to sign. Run `ledger verify --digest` with that digest"
        )


class DigestWriter:
    """Writes a signed digest into a directory every `interval_seconds` (for the service)."""

    def __init__(
        self, engine: sa.Engine, key_path: Path, digests_dir: Path, interval_seconds: float = 300
    ):
        self.engine, self.key_path, self.digests_dir = engine, Path(key_path), Path(digests_dir)
        self.interval_seconds = interval_seconds
        self.stop_event = threading.Event()
        self._last_position: int | None = None

    def write_once(self) -> Digest | None:
        """One digest, unless the head has not moved since the last one."""
        advance(self.engine)
        if notary_head(self.engine).position == self._last_position:
            return None
        digest = issue_digest(self.engine, self.key_path, self.digests_dir)
        self._last_position = digest.position
        return digest

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
