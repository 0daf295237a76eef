"""Server secrets kept outside the database: the pepper and the keys derived from it.

The pepper is hex wherever it comes from (`<secrets_dir>/pepper` or LEDGER_PEPPER). Its
bytes are the subject-reference key (scheme v1, recorded in events; see docs/PRIVACY.md) and
the input of HKDF for every other use, each under its own label.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

PRIVATE_DIR, PRIVATE_FILE = 0o700, 0o600


def private_dir(path: Path) -> Path:
    """Create a directory and its missing parents readable only by the owner; leave existing ones."""
    for missing in reversed([p for p in (path, *path.parents) if not p.exists()]):
        missing.mkdir(mode=PRIVATE_DIR, exist_ok=True)
    return path


def create_private_file(path: Path) -> None:
    """An empty file readable only by the owner, if none is there (e.g. a new SQLite database)."""
    private_dir(path.parent)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE))
    except FileExistsError:
        pass


def write_secret(path: Path, value: bytes) -> None:
    """A new secret file (hex, 0600, synced); never overwrites one."""
    private_dir(path.parent)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
    try:
        os.write(fd, value.hex().encode())
        os.fsync(fd)
    finally:
        os.close(fd)


def read_secret(path: Path) -> bytes:
    return bytes.fromhex(path.read_text().strip())


def read_or_create(path: Path, nbytes: int = 32) -> bytes:
    """A random secret in a file readable only by its owner, created on first use."""
    if path.exists():
        return read_secret(path)
    value = secrets.token_bytes(nbytes)
    write_secret(path, value)
    return value


def pepper(secrets_dir: Path, configured_hex: str = "") -> bytes:
    """The configured pepper (Settings.pepper, checked hex at start), else `<secrets_dir>/pepper`."""
    if configured_hex:
        return bytes.fromhex(configured_hex)
    try:
        return read_or_create(secrets_dir / "pepper")
    except FileExistsError:  # another process created it a moment ago
        return read_or_create(secrets_dir / "pepper")


def derived_key(pepper_bytes: bytes, label: str) -> bytes:
    """A 32-byte key for one use of the pepper: keys under different labels are independent."""
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=label.encode())
    return hkdf.derive(pepper_bytes)
