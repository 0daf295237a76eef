"""Ed25519 signing keys and signed digests of the chain's head.

A digest signs these exact bytes (ASCII, each line ending in a line feed):

    provenance-ledger digest v1
    position=<decimal>
    head_hash=<64 lowercase hex>
    recorded_at=<ISO-8601 UTC with microseconds, or "none" for an empty ledger>
    issued_at=<ISO-8601 UTC with microseconds>
    key_id=<16 lowercase hex: the first 8 bytes of SHA-256 over the raw public key>
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import re
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ledger.errors import InvalidCommand
from ledger.keyfiles import PRIVATE_FILE, private_dir
from ledger.timeline import parse_micros

PAYLOAD_HEADER = "provenance-ledger digest v1"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_HEX64 = re.compile(r"[0-9a-f]{64}")
_HEX16 = re.compile(r"[0-9a-f]{16}")


def us_to_iso(us: int | None) -> str | None:
    """Microseconds since the epoch as ISO-8601 UTC, exact to the microsecond."""
    if us is None:
        return None
    return (_EPOCH + timedelta(microseconds=us)).isoformat(timespec="microseconds")


def iso_to_us(text: str) -> int:
    return parse_micros(text, "instant")


def raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def public_key_text(key: Ed25519PublicKey) -> str:
    """The form recorded in SigningKey events and in digests: base64 of the 32 raw bytes."""
    return base64.b64encode(raw_public(key)).decode("ascii")


def public_key_from_text(text: str) -> Ed25519PublicKey:
    try:
        raw = base64.b64decode(text, validate=True)
        return Ed25519PublicKey.from_public_bytes(raw)
    except (binascii.Error, ValueError) as error:
        raise InvalidCommand(f"not an Ed25519 public key (base64 of 32 bytes): {error}") from None


def key_id_for(key: Ed25519PublicKey) -> str:
    """A key's id is its fingerprint, so an id cannot be claimed by another key."""
    return hashlib.sha256(raw_public(key)).hexdigest()[:16]


def load_public_key(path: Path) -> Ed25519PublicKey:
    """A pinned public key: a PEM file, or a file holding the base64 form."""
    data = Path(path).read_bytes()
    if b"BEGIN" in data:
        key = serialization.load_pem_public_key(data)
        if not isinstance(key, Ed25519PublicKey):
            raise InvalidCommand(f"{path} is not an Ed25519 public key")
        return key
    return public_key_from_text(data.decode("ascii").strip())


def load_private_key(path: Path) -> Ed25519PrivateKey:
    if not Path(path).exists():
        raise InvalidCommand(f"no signing key at {path}: run `ledger signing-key init` first")
    key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise InvalidCommand(f"{path} is not an Ed25519 private key")
    return key


@dataclass(frozen=True)
class Digest:
    """A signed statement: the chain's head at `position` was `head_hash`."""

    position: int
    head_hash: str
    recorded_at: str | None
    issued_at: str
    key_id: str
    public_key: str
    signature: str

    def payload(self) -> bytes:
        """The exact bytes signed (see the module docstring)."""
        lines = [
            PAYLOAD_HEADER,
            f"position={self.position}",
            f"head_hash={self.head_hash}",
            f"recorded_at={self.recorded_at or 'none'}",
            f"issued_at={self.issued_at}",
            f"key_id={self.key_id}",
        ]
        return ("\n".join(lines) + "\n").encode("ascii")

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Any) -> Digest:
        """Parse and check the shape; the signature is checked by the verifier."""
        if not isinstance(data, dict):
            raise InvalidCommand("a digest must be a JSON object")
        try:
            digest = cls(**{name: data[name] for name in cls.__dataclass_fields__})
        except KeyError as missing:
            raise InvalidCommand(f"the digest has no {missing} field") from None
        digest.check_shape()
        return digest

    def check_shape(self) -> None:
        if type(self.position) is not int or self.position < 0:
            raise InvalidCommand("digest position must be a non-negative integer")
        if not isinstance(self.head_hash, str) or not _HEX64.fullmatch(self.head_hash):
            raise InvalidCommand("digest head_hash must be 64 lowercase hex digits")
        if not isinstance(self.key_id, str) or not _HEX16.fullmatch(self.key_id):
            raise InvalidCommand("digest key_id must be 16 lowercase hex digits")
        for name in ("issued_at", "public_key", "signature"):
            if not isinstance(getattr(self, name), str):
                raise InvalidCommand(f"digest {name} must be a string")
        iso_to_us(self.issued_at)
        if self.recorded_at is not None:
            iso_to_us(self.recorded_at)


def sign_digest(
    key: Ed25519PrivateKey,
    position: int,
    head_hash: bytes,
    recorded_at_us: int | None,
    issued_at: datetime | None = None,
) -> Digest:
    """Sign the head of the chain."""
    public = key.public_key()
    unsigned = Digest(
        position=position,
        head_hash=head_hash.hex(),
        recorded_at=us_to_iso(recorded_at_us),
        issued_at=(issued_at or datetime.now(UTC)).isoformat(timespec="microseconds"),
        key_id=key_id_for(public),
        public_key=public_key_text(public),
        signature="",
    )
    signature = base64.b64encode(key.sign(unsigned.payload())).decode("ascii")
    return Digest(**{**asdict(unsigned), "signature": signature})


def signature_valid(digest: Digest, key: Ed25519PublicKey) -> bool:
    """True when `key` signed exactly this digest's payload."""
    try:
        key.verify(base64.b64decode(digest.signature, validate=True), digest.payload())
        return True
    except (InvalidSignature, binascii.Error, ValueError):
        return False


def write_digest_file(digest: Digest, directory: Path) -> Path:
    """Write a new digest file; existing ones are never overwritten."""
    directory = Path(directory)
    private_dir(directory)
    stamp = digest.issued_at.replace("-", "").replace(":", "").replace("+0000", "Z")
    path = directory / f"digest-{digest.position:012d}-{stamp}.json"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
    with os.fdopen(fd, "w") as out:
        json.dump(digest.to_json(), out, indent=2)
        out.write("\n")
        out.flush()
        os.fsync(out.fileno())
    return path


def load_digest(path: Path) -> Digest:
    try:
        return Digest.from_json(json.loads(Path(path).read_text()))
    except json.JSONDecodeError as error:
        raise InvalidCommand(f"{path} is not a JSON digest: {error}") from None


def latest_digest_file(directory: Path) -> Path | None:
    """The digest with the highest position in a directory (names sort by position)."""
    files = sorted(Path(directory).glob("digest-*.json")) if Path(directory).is_dir() else []
    return files[-1] if files else None
