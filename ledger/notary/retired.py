"""What a rotation leaves behind: the retired key's public half and where it was retired.

A retired key signs nothing. Rotation removes its private half (or keeps it only encrypted
with a passphrase, when the operator asks), and the position of its SigningKey.Rotated
event bounds what its signature vouches for: heads before that position, none at or after.
The public half stays beside the signing key, named with that position, so old digests
still link and verify (`ledger verify --pubkey` takes the file as it is).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import BinaryIO, NamedTuple

import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ledger import ids
from ledger.database import is_postgres
from ledger.errors import Conflict, InvalidCommand
from ledger.notary.signing import key_id_for, load_private_key, load_public_key
from ledger.notary.verify import KEY_ROTATED_TOPIC
from ledger.storage import EVENTS_TABLE

_RETIRED_NAME = re.compile(r"signing-key\.[0-9a-f]{16}\.retired-(\d+)\.pub\.pem")
# Before rotation removed private halves, it kept them beside the key under this name.
_LEGACY_GLOB = "signing-key.*.retired.pem"


class RetiredKey(NamedTuple):
    """A key rotated out: it vouches only for heads before `retired_at`."""

    key_id: str
    public_key: Ed25519PublicKey
    retired_at: int  # the position of the event that retired it


class KeyRetired(Conflict):
    """A retired key was asked to sign a head at or after its retirement."""

    code = "signing_key_retired"


def retired_path(key_path: Path, key_id: str, retired_at: int, suffix: str = "pub.pem") -> Path:
    return Path(key_path).with_name(f"signing-key.{key_id}.retired-{retired_at}.{suffix}")


def retirement_position(engine: sa.Engine, key_id: str) -> int | None:
    """The position of the event that retired `key_id`, as the chain's events record it."""
    originator = ids.signing_key_id(key_id)
    with engine.connect() as conn:
        param: object = str(originator) if is_postgres(conn) else originator.bytes
        found = conn.execute(
            sa.text(f"SELECT min(id) FROM {EVENTS_TABLE} WHERE originator_id = :o AND topic = :t"),
            {"o": param, "t": KEY_ROTATED_TOPIC},
        ).scalar()
    return None if found is None else int(found)


def retired_keys(engine: sa.Engine, key_path: Path) -> list[RetiredKey]:
    """The keys retired beside `key_path`: their public records, and legacy private files."""
    found = []
    for path in sorted(Path(key_path).parent.glob("signing-key.*.retired-*.pub.pem")):
        match = _RETIRED_NAME.fullmatch(path.name)
        if match:
            public = load_public_key(path)
            found.append(RetiredKey(key_id_for(public), public, int(match[1])))
    for path in sorted(Path(key_path).parent.glob(_LEGACY_GLOB)):
        public = load_private_key(path).public_key()
        key_id = key_id_for(public)
        # No record of where it was retired: the chain says; failing that, it vouches for nothing.
        found.append(RetiredKey(key_id, public, retirement_position(engine, key_id) or 0))
    return found


def keep_retired(
    key_path: Path, key: Ed25519PrivateKey, retired_at: int, passphrase: bytes | None = None
) -> list[Path]:
    """Write the retired key's public half, and its private half only encrypted, if asked."""
    key_id = key_id_for(key.public_key())
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    written = [_write(retired_path(key_path, key_id, retired_at), public, 0o644)]
    if passphrase is not None:
        if not passphrase:
            raise InvalidCommand("a retired key is kept only under a non-empty passphrase")
        private = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(passphrase),
        )
        path = retired_path(key_path, key_id, retired_at, "encrypted.pem")
        written.append(_write(path, private, 0o600))
    return written


def retire_legacy_files(engine: sa.Engine, key_path: Path) -> None:
    """Replace private halves an older rotation left in plain text by their public records."""
    for path in sorted(Path(key_path).parent.glob(_LEGACY_GLOB)):
        key = load_private_key(path)
        retired_at = retirement_position(engine, key_id_for(key.public_key())) or 0
        keep_retired(key_path, key, retired_at)
        scrub_and_remove(path)


def scrub_and_remove(path: Path) -> None:
    """Overwrite a private key file, then unlink it."""
    try:
        with open(path, "r+b") as handle:
            zero(handle)
    except OSError:
        pass
    Path(path).unlink(missing_ok=True)


def zero(handle: BinaryIO) -> None:
    """Overwrite an open file with zeros (best effort: a copy-on-write disk may keep the old)."""
    size = os.fstat(handle.fileno()).st_size
    handle.seek(0)
    handle.write(b"\0" * size)
    handle.flush()
    os.fsync(handle.fileno())


def _write(path: Path, data: bytes, mode: int) -> Path:
    path.unlink(missing_ok=True)  # a rerun after a failure rewrites the same record
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    return path
