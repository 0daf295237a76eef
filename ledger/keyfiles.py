"""Server secrets kept outside the database: the API-key pepper."""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def read_or_create(path: Path, nbytes: int = 32) -> bytes:
    """A random secret in a file readable only by its owner, created on first use."""
    if path.exists():
        return bytes.fromhex(path.read_text().strip())
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_bytes(nbytes)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, value.hex().encode())
    finally:
        os.close(fd)
    return value


def pepper(secrets_dir: Path, configured: str = "") -> bytes:
    """The configured pepper (Settings.pepper), else the one in `<secrets_dir>/pepper`."""
    if configured:
        return configured.encode()
    try:
        return read_or_create(secrets_dir / "pepper")
    except FileExistsError:  # another process created it a moment ago
        return read_or_create(secrets_dir / "pepper")
