"""Master-key rotation: every subject key re-wrapped under a new master key; no event changes.

`ledger master-key rotate` (docs/PRIVACY.md): a next key is made if none is configured
(`<secrets_dir>/master.key.next`), every key row not under it is re-wrapped, then the next key
replaces `master.key` and the old key is gone. Each wrapped key names its master key, so a
rotation that stopped halfway is finished by running it again.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import NamedTuple

import sqlalchemy as sa

from ledger.errors import InvalidSetting, LedgerError
from ledger.keyfiles import write_secret
from ledger.privacy.keys import KEY_FILE, NEXT_KEY_FILE, DatabaseKeyStore, LocalMasterKey
from ledger.settings import Settings


class RotationUnfinished(LedgerError):
    """Keys are still being wrapped under the old master key by processes that lack the next."""

    code = "rotation_unfinished"


class Rotation(NamedTuple):
    """What a rotation did: rows re-wrapped, and whether `master.key` now holds the new key."""

    rewrapped: int
    promoted: bool


def prepare_next_key(settings: Settings) -> Path | None:
    """The next key's file, made now; None when a next key already exists."""
    if settings.next_master_key:
        return None
    if settings.master_key:
        raise InvalidSetting(
            "LEDGER_MASTER_KEY is set: set LEDGER_NEXT_MASTER_KEY to the new key (64 hex) "
            "for the rotation, then make it LEDGER_MASTER_KEY"
        )
    path = Path(settings.secrets_dir) / NEXT_KEY_FILE
    try:
        write_secret(path, secrets.token_bytes(32))
    except FileExistsError:  # a rotation that stopped halfway: keep its key
        return None
    return path


def rotate_master_key(
    engine: sa.Engine, settings: Settings, page: int = 500, passes: int = 5
) -> Rotation:
    """Re-wrap every subject key under the next master key, then make it the master key."""
    prepare_next_key(settings)
    master = LocalMasterKey.load(
        settings.secrets_dir, settings.master_key, settings.next_master_key
    )
    store = DatabaseKeyStore(engine, master)
    store.create_table()
    rewrapped = 0
    for _ in range(passes):
        count = store.rewrap(page)
        rewrapped += count
        if count == 0:
            break
    else:
        raise RotationUnfinished(
            "processes holding only the old master key keep adding keys: restart them (they "
            "load the next key), then run `ledger master-key rotate` again"
        )
    store.purge()  # the old wrapped values leave the WAL (SQLite) and dead rows (PostgreSQL)
    return Rotation(rewrapped, promoted=_promote(settings))


def _promote(settings: Settings) -> bool:
    """The next key file becomes master.key in one rename; configured keys are the operator's."""
    if settings.next_master_key:
        return False
    directory = Path(settings.secrets_dir)
    os.replace(directory / NEXT_KEY_FILE, directory / KEY_FILE)
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)  # the rename itself survives a crash
    finally:
        os.close(fd)
    return True
