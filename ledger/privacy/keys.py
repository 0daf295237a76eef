"""Per-subject data keys, wrapped by a master key that never enters the database.

Destroying a subject's key row is what erases its personal data (crypto-shredding):
the ciphertext stays in the append-only event log, unreadable forever.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Protocol

import sqlalchemy as sa
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy.dialects import sqlite

from ledger.errors import LedgerError, StorageUnavailable
from ledger.keyfiles import read_or_create, read_secret

KEYS_TABLE = "ledger_subject_keys"
KEY_FILE, NEXT_KEY_FILE = "master.key", "master.key.next"
WRAP_FORMAT = 1


class Forgotten(LedgerError):
    """The subject's key was destroyed: its personal data is erased."""

    code = "forgotten"


class MasterKeyMismatch(StorageUnavailable):
    """A wrapped key does not open with this master key: a configuration error, never an erasure."""

    code = "master_key_mismatch"


# Called with the (subject, scope) pairs about to get a new key and the keys found so far.
BeforeCreate = Callable[[list[tuple[str, str]], dict[tuple[str, str], bytes]], None]


class MasterKey(Protocol):
    """Wraps and unwraps data keys; an external KMS can implement this."""

    def wrap(self, subject_ref: str, data_key: bytes) -> bytes: ...

    def unwrap(self, subject_ref: str, wrapped: bytes) -> bytes: ...

    def rewrap(self, subject_ref: str, wrapped: bytes) -> bytes | None:
        """The key wrapped under the current master key; None if it already is."""
        ...


class SubjectKeyStore(Protocol):
    """Data keys per (subject, scope); `destroy` must make them unrecoverable."""

    def get_or_create(self, subject_ref: str, scope: str = "") -> bytes: ...

    def get(self, subject_ref: str, scope: str = "") -> bytes: ...

    def destroy(self, subject_ref: str, scope: str | None = None) -> int: ...

    def scopes(self, subject_ref: str) -> list[str]: ...

    def subjects_in(self, scope: str) -> set[str]: ...

    def purge(self) -> None: ...


class LocalMasterKey:
    """AES-256-GCM key wrap under a key from LEDGER_MASTER_KEY or `<secrets>/master.key` (0600).

    During a rotation it also holds the key being replaced: it wraps under the next key and
    unwraps under either, chosen by the key id each wrapped key carries.
    """

    def __init__(self, key: bytes, previous: Sequence[bytes] = ()):
        self._aead, self.key_id = _cipher(key), _key_id(key)
        self._openers = {_key_id(k): _cipher(k) for k in previous}
        self._openers[self.key_id] = self._aead

    @classmethod
    def load(
        cls, secrets_dir: Path, configured_hex: str = "", next_hex: str = ""
    ) -> LocalMasterKey:
        """The configured keys (Settings, checked at start), else the key files.

        The next key is read first: a rotation that finishes in between replaces master.key
        by it, so this process still holds the key every row is wrapped under.
        """
        upcoming = bytes.fromhex(next_hex) if next_hex else _existing(secrets_dir / NEXT_KEY_FILE)
        current = bytes.fromhex(configured_hex) if configured_hex else _key_file(secrets_dir)
        if upcoming is None or upcoming == current:
            return cls(current)
        return cls(upcoming, previous=[current])

    def wrap(self, subject_ref: str, data_key: bytes) -> bytes:
        nonce = secrets.token_bytes(12)
        # The subject ref is associated data: a wrapped key copied to another row will not open.
        sealed = self._aead.encrypt(nonce, data_key, subject_ref.encode())
        return bytes([WRAP_FORMAT]) + self.key_id + nonce + sealed

    def unwrap(self, subject_ref: str, wrapped: bytes) -> bytes:
        opener = self._openers.get(wrapped[1:9]) if wrapped[:1] == bytes([WRAP_FORMAT]) else None
        if opener is None:
            raise MasterKeyMismatch(
                "a subject key was wrapped by another master key: set LEDGER_MASTER_KEY or "
                "<secrets_dir>/master.key to the key this database was created with"
            )
        try:
            return opener.decrypt(wrapped[9:21], wrapped[21:], subject_ref.encode())
        except InvalidTag:
            raise MasterKeyMismatch(
                f"the wrapped key of subject {subject_ref[:12]}… is corrupt"
            ) from None

    def rewrap(self, subject_ref: str, wrapped: bytes) -> bytes | None:
        if wrapped[:1] == bytes([WRAP_FORMAT]) and wrapped[1:9] == self.key_id:
            return None
        return self.wrap(subject_ref, self.unwrap(subject_ref, wrapped))


def _cipher(key: bytes) -> AESGCM:
    if len(key) != 32:
        raise MasterKeyMismatch("the master key must be 32 bytes (64 hex characters)")
    return AESGCM(key)


def _key_id(key: bytes) -> bytes:
    return hashlib.sha256(b"ledger master key id\x00" + key).digest()[:8]


def _key_file(secrets_dir: Path) -> bytes:
    try:
        return read_or_create(secrets_dir / KEY_FILE)
    except FileExistsError:  # another process created it a moment ago
        return read_or_create(secrets_dir / KEY_FILE)


def _existing(path: Path) -> bytes | None:
    try:
        return read_secret(path)
    except FileNotFoundError:
        return None


class KeyCache:
    """Unwrapped keys of this process, bounded in size and age (other processes may destroy)."""

    def __init__(self, max_keys: int = 100_000, ttl_seconds: float = 2.0):
        self.max_keys, self.ttl = max_keys, ttl_seconds
        self._keys: OrderedDict[tuple[str, str], tuple[bytes, float]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[str, str]) -> bytes | None:
        return self.get_many([key]).get(key)

    def get_many(self, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], bytes]:
        """The live keys among these (one lock for a batch's subjects)."""
        found = {}
        with self._lock:
            now = time.monotonic()
            for key in keys:
                hit = self._keys.get(key)
                if hit is None or hit[1] < now:
                    self._keys.pop(key, None)
                    continue
                self._keys.move_to_end(key)
                found[key] = hit[0]
        return found

    def put(self, key: tuple[str, str], value: bytes) -> None:
        self.put_many({key: value})

    def put_many(self, keys: Mapping[tuple[str, str], bytes]) -> None:
        with self._lock:
            expires = time.monotonic() + self.ttl
            for key, value in keys.items():
                self._keys[key] = (value, expires)
                self._keys.move_to_end(key)
            while len(self._keys) > self.max_keys:
                self._keys.popitem(last=False)

    def drop(self, subject_ref: str) -> None:
        with self._lock:
            for key in [k for k in self._keys if k[0] == subject_ref]:
                del self._keys[key]


class DatabaseKeyStore:
    """Wrapped data keys in their own table (not the event log: deleting a row is the point)."""

    def __init__(self, engine: sa.Engine, master: MasterKey, cache: KeyCache | None = None):
        self.engine, self.master = engine, master
        self.cache = cache or KeyCache()

    def create_table(self) -> None:
        blob = "BYTEA" if self._postgres else "BLOB"
        with self._begin() as conn:
            conn.exec_driver_sql(
                f"CREATE TABLE IF NOT EXISTS {KEYS_TABLE} (subject_ref VARCHAR(64) NOT NULL, "
                f"scope VARCHAR(200) NOT NULL, wrapped_key {blob} NOT NULL, created_at BIGINT NOT NULL, "
                "PRIMARY KEY (subject_ref, scope))"
            )

    def get_or_create(self, subject_ref: str, scope: str = "") -> bytes:
        return self.get_or_create_many([(subject_ref, scope)])[(subject_ref, scope)]

    def get_or_create_many(
        self, wanted: list[tuple[str, str]], before_create: BeforeCreate | None = None
    ) -> dict[tuple[str, str], bytes]:
        """Keys for many (subject, scope) pairs: one read and at most one insert.

        `before_create(new_pairs, found)` runs before any key is made and may refuse (raise):
        a request refused then leaves no key behind, not even one for an erased subject.
        """
        unique = set(wanted)
        found = self.cache.get_many(unique)
        missing = [k for k in unique if k not in found]
        if not missing:
            return found
        rows = self._select(missing)
        found.update(self._remember_many(rows))
        fresh = [k for k in missing if k not in rows]
        if fresh:
            if before_create is not None:
                before_create(fresh, found)
            made = self._insert(fresh)
            found.update(self._remember_many(made))
        return found

    def get(self, subject_ref: str, scope: str = "") -> bytes:
        cached = self.cache.get((subject_ref, scope))
        if cached is not None:
            return cached
        rows = self._select([(subject_ref, scope)])
        if not rows:
            raise Forgotten(f"subject {subject_ref[:12]}… has no key in scope {scope!r}: erased")
        return self._remember(subject_ref, scope, rows[(subject_ref, scope)])

    def destroy(self, subject_ref: str, scope: str | None = None) -> int:
        """Delete the subject's keys (in one scope, or all); returns how many were deleted."""
        self.cache.drop(subject_ref)
        sql = f"DELETE FROM {KEYS_TABLE} WHERE subject_ref = :s"
        params = {"s": subject_ref}
        if scope is not None:
            sql, params = sql + " AND scope = :c", {**params, "c": scope}
        with self._begin() as conn:
            if not self._postgres:
                conn.exec_driver_sql("PRAGMA secure_delete=ON")  # zero the freed bytes in the page
            return conn.execute(sa.text(sql), params).rowcount

    def purge(self) -> None:
        """Make destroyed keys physically go: rewrite the key table (PostgreSQL) or fold the WAL (SQLite).

        PostgreSQL keeps a deleted row until no older transaction can see it; run this from
        the autopilot, not per request: it locks the key table while it rewrites it.
        """
        if self._postgres:
            with _guarded(self.engine.connect) as conn:
                conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql(
                    f"VACUUM FULL {KEYS_TABLE}"
                )
            return
        with _guarded(self.engine.connect) as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")

    @property
    def _postgres(self) -> bool:
        return self.engine.dialect.name.startswith("postgres")

    def scopes(self, subject_ref: str) -> list[str]:
        sql = f"SELECT scope FROM {KEYS_TABLE} WHERE subject_ref = :s ORDER BY scope"
        with self._connect() as conn:
            return [r[0] for r in conn.execute(sa.text(sql), {"s": subject_ref})]

    def subjects_in(self, scope: str) -> set[str]:
        """Subjects with a live key in this scope (a deployment)."""
        sql = f"SELECT subject_ref FROM {KEYS_TABLE} WHERE scope = :c"
        with self._connect() as conn:
            return {r[0] for r in conn.execute(sa.text(sql), {"c": scope})}

    def rewrap(self, page: int = 500) -> int:
        """Re-wrap every key not under the current master key; one transaction per page.

        Each wrapped key names its master key, so a rotation stopped halfway resumes where
        it stopped. A row changed meanwhile (a forget) is left as it now is.
        """
        done, after = 0, ("", "")
        while True:
            with self._begin() as conn:
                rows = conn.execute(_PAGE, {"s": after[0], "c": after[1], "n": page}).all()
                for ref, scope, wrapped in rows:
                    fresh = self.master.rewrap(ref, bytes(wrapped))
                    if fresh is not None:
                        params = {"s": ref, "c": scope, "old": bytes(wrapped), "new": fresh}
                        done += conn.execute(_REWRAP, params).rowcount
            if len(rows) < page:
                return done
            after = (rows[-1][0], rows[-1][1])

    # -- internals ---------------------------------------------------------------
    def _remember(self, subject_ref: str, scope: str, wrapped: bytes) -> bytes:
        return self._remember_many({(subject_ref, scope): wrapped})[(subject_ref, scope)]

    def _remember_many(
        self, wrapped: Mapping[tuple[str, str], bytes]
    ) -> dict[tuple[str, str], bytes]:
        keys = {pair: self.master.unwrap(pair[0], bytes(w)) for pair, w in wrapped.items()}
        self.cache.put_many(keys)
        return keys

    def _insert(self, fresh: list[tuple[str, str]]) -> dict[tuple[str, str], bytes]:
        """One multi-row insert of new wrapped keys; where another process won the race, its key."""
        now = int(time.time() * 1_000_000)
        wrapped = {k: self.master.wrap(k[0], secrets.token_bytes(32)) for k in fresh}
        with self._begin() as conn:
            inserted = (_insert_postgres if self._postgres else _insert_sqlite)(conn, wrapped, now)
        lost = [k for k in fresh if k not in inserted]
        return {**{k: wrapped[k] for k in inserted}, **(self._select(lost) if lost else {})}

    def _select(self, pairs: list[tuple[str, str]]) -> dict[tuple[str, str], bytes]:
        refs = sorted({s for s, _ in pairs})
        wanted, found = set(pairs), {}
        with self._connect() as conn:
            for chunk in _chunks(refs, 100_000 if self._postgres else 500):
                for s, c, w in conn.execute(self._select_sql(), {"refs": chunk}):
                    if (s, c) in wanted:
                        found[(s, c)] = bytes(w)
        return found

    def _select_sql(self) -> sa.TextClause:
        columns = f"SELECT subject_ref, scope, wrapped_key FROM {KEYS_TABLE} WHERE subject_ref"
        if self._postgres:  # one array parameter: no expanding IN to compile per call
            return sa.text(f"{columns} = ANY(:refs)")
        return sa.text(f"{columns} IN :refs").bindparams(sa.bindparam("refs", expanding=True))

    def _begin(self) -> AbstractContextManager[sa.Connection]:
        return _guarded(self.engine.begin)

    def _connect(self) -> AbstractContextManager[sa.Connection]:
        return _guarded(self.engine.connect)


# The key table as SQLAlchemy Core sees it, for SQLite's batched insert.
_KEYS = sa.Table(
    KEYS_TABLE,
    sa.MetaData(),
    sa.Column("subject_ref", sa.String(64), primary_key=True),
    sa.Column("scope", sa.String(200), primary_key=True),
    sa.Column("wrapped_key", sa.LargeBinary, nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
)


_PAGE = sa.text(
    f"SELECT subject_ref, scope, wrapped_key FROM {KEYS_TABLE} "
    "WHERE subject_ref > :s OR (subject_ref = :s AND scope > :c) "
    "ORDER BY subject_ref, scope LIMIT :n"
)
_REWRAP = sa.text(
    f"UPDATE {KEYS_TABLE} SET wrapped_key = :new "
    "WHERE subject_ref = :s AND scope = :c AND wrapped_key = :old"
)


def _insert_postgres(
    conn: sa.Connection, wrapped: dict[tuple[str, str], bytes], now: int
) -> set[tuple[str, str]]:
    """The keys as three arrays in one statement: no per-row parameter handling."""
    sql = (
        f"INSERT INTO {KEYS_TABLE} (subject_ref, scope, wrapped_key, created_at) "
        "SELECT s, c, w, %(t)s FROM unnest(%(s)s::varchar[], %(c)s::varchar[], %(w)s::bytea[]) AS u(s, c, w) "
        "ON CONFLICT DO NOTHING RETURNING subject_ref, scope"
    )
    params = {
        "s": [s for s, _ in wrapped],
        "c": [c for _, c in wrapped],
        "w": list(wrapped.values()),
        "t": now,
    }
    return {(s, c) for s, c in conn.exec_driver_sql(sql, params)}


def _insert_sqlite(
    conn: sa.Connection, wrapped: dict[tuple[str, str], bytes], now: int
) -> set[tuple[str, str]]:
    """Batched by SQLAlchemy (insertmanyvalues); keys another process made first are skipped."""
    params = [
        {"subject_ref": s, "scope": c, "wrapped_key": w, "created_at": now}
        for (s, c), w in wrapped.items()
    ]
    insert = (
        sqlite.insert(_KEYS).on_conflict_do_nothing().returning(_KEYS.c.subject_ref, _KEYS.c.scope)
    )
    return set(conn.execute(insert, params).tuples())


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


@contextmanager
def _guarded(
    opener: Callable[[], AbstractContextManager[sa.Connection]],
) -> Iterator[sa.Connection]:
    """A key store outage becomes StorageUnavailable, so a prediction fails cleanly (503)."""
    try:
        with opener() as conn:
            yield conn
    except sa.exc.IntegrityError:
        raise
    except sa.exc.DBAPIError as error:
        raise StorageUnavailable(f"the subject key store is unavailable: {error.orig}") from error
