"""Sealing: a deployment's personal fields leave the plaintext, encrypted under the subject's key."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple, cast

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ledger import ids
from ledger.errors import InvalidCommand
from ledger.privacy.keys import BeforeCreate, Forgotten, MasterKeyMismatch, SubjectKeyStore

SEAL_FORMAT = 1
NONCE_BYTES = 12  # AES-GCM's; fresh for every sealed record
NONCE_TEXT = 16  # its base64: 12 bytes are 16 characters, with no padding
ERASED_TEXT = "erased"
REF_PREFIX = b"ledger subject v1\x00"
Pair = tuple[str, str]  # (subject ref, scope)


class _Erased:
    """The marker `unseal` returns when the subject's key was destroyed."""

    _instance: _Erased | None = None

    def __new__(cls) -> _Erased:
        cls._instance = cls._instance or super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "ERASED"

    def __bool__(self) -> bool:
        return False


ERASED = _Erased()


class SealedRow(NamedTuple):
    """A row as a prediction stores it: the plaintext features, and the sealed personal ones."""

    features: dict[str, Any]  # without the personal fields
    sealed: dict[str, Any] | None  # None: the row has nothing to seal


# Called with the indexes of the rows whose subject has no key yet and the other rows sealed.
BeforeNewKeys = Callable[[list[int], dict[int, SealedRow]], None]


def subject_ref(secret: bytes, subject_id: Any) -> str:
    """A keyed hash of the subject id: stable, and useless to anyone without the secret."""
    message = REF_PREFIX + str(subject_id).encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def sealed_fields(schema: Mapping[str, Any]) -> list[str]:
    """The fields a deployment's schema makes personal: personal features and the subject field."""
    subject = schema.get("subject_field")
    return [f["name"] for f in schema["features"] if f.get("personal") or f["name"] == subject]


def binding_of(deployment: str, request_id: str, client: str = ids.DEFAULT_CLIENT) -> str:
    """Associated data: the prediction id, so a ciphertext moved to another prediction fails."""
    return ids.prediction_id_text(deployment, request_id, client)


class Sealer:
    """Seals and unseals personal fields; one per process, keys cached by the key store."""

    def __init__(self, keys: SubjectKeyStore, ref_secret: bytes):
        self.keys = keys
        self.ref_secret = ref_secret
        self._ref_hmac = hmac.new(
            ref_secret, REF_PREFIX, hashlib.sha256
        )  # copied per ref: no key setup
        self._digest_keys = _DigestKeys()
        self._ciphers = _CipherCache(
            max_age=float(getattr(getattr(keys, "cache", None), "ttl", 2.0))
        )

    def subject_ref(self, subject_id: Any) -> str:
        mac = self._ref_hmac.copy()
        mac.update(str(subject_id).encode())
        return mac.hexdigest()

    def value_hash(self, feature: str, value: Any) -> str:
        """A keyed hash of a personal value for profiles: distinct from subject refs by domain."""
        message = b"ledger personal value v1\x00" + feature.encode() + b"\x00" + str(value).encode()
        return hmac.new(self.ref_secret, message, hashlib.sha256).hexdigest()[:32]

    def seal(
        self,
        schema: Mapping[str, Any],
        features: Mapping[str, Any],
        *,
        deployment: str,
        request_id: str,
    ) -> SealedRow:
        """The plaintext features without the personal ones, and their sealed record or None."""
        return self.seal_many(schema, [features], deployment=deployment, request_ids=[request_id])[
            0
        ]

    def seal_many(
        self,
        schema: Mapping[str, Any],
        rows: Sequence[Mapping[str, Any]],
        *,
        deployment: str,
        request_ids: Sequence[str],
        before_new_keys: BeforeNewKeys | None = None,
        client: str = ids.DEFAULT_CLIENT,
        bindings: Sequence[str] | None = None,
    ) -> list[SealedRow]:
        """Seal a batch: keys of every subject fetched (or created) in one round trip.

        Each row is bound to its prediction id, which the client's namespace derives.

        `before_new_keys(rows, sealed)` runs before a key is created, with the indexes of
        the rows whose subject has none yet and the others already sealed; raising refuses
        the request with no key made. `bindings`: each row's `binding_of`, when the caller
        has derived the prediction ids already.
        """
        fields = sealed_fields(schema)
        if not fields:
            return [SealedRow(dict(row), None) for row in rows]
        refs = self._refs_for(schema, rows, fields, deployment)
        if bindings is None:
            bindings = [binding_of(deployment, r, client) for r in request_ids]
        deadline = self._digest_keys.deadline()

        def before_create(fresh: list[tuple[str, str]], found: dict[Pair, bytes]) -> None:
            if before_new_keys is None:
                return
            new_refs = {ref for ref, _ in fresh}
            old = [i for i, ref in enumerate(refs) if ref not in new_refs]
            ciphers = self._ciphers.get_many(
                {
                    (ref, deployment): found[(ref, deployment)]
                    for ref in {refs[i] for i in old}
                    if ref
                },
                deadline,
            )
            sealed = self._seal_rows(
                [rows[i] for i in old],
                fields,
                [refs[i] for i in old],
                ciphers,
                deployment,
                [bindings[i] for i in old],
            )
            before_new_keys(
                [i for i, ref in enumerate(refs) if ref in new_refs],
                dict(zip(old, sealed, strict=True)),
            )

        keys = self._keys_for([(r, deployment) for r in set(refs) if r is not None], before_create)
        ciphers = self._ciphers.get_many(keys, deadline)
        sealed = self._seal_rows(rows, fields, refs, ciphers, deployment, bindings)
        self._digest_keys.hold(
            {
                record["nonce"]: ciphers[ref]  # type: ignore[index]
                for (_, record), ref in zip(sealed, refs, strict=True)
                if record is not None
            }
        )
        return sealed

    def unseal(
        self, sealed: Mapping[str, Any], binding: str | None = None
    ) -> dict[str, Any] | _Erased:
        """The sealed values, or ERASED when the subject's key was destroyed."""
        if binding is not None and binding != sealed["binding"]:
            raise MasterKeyMismatch(
                "a sealed record is bound to another prediction: the record was moved"
            )
        try:
            key = self.keys.get(sealed["subject_ref"], sealed["scope"])
        except Forgotten:
            return ERASED
        aad = _aad(sealed["scope"], sealed["binding"], sealed["fields"])
        try:
            plain = AESGCM(key).decrypt(_b64(sealed["nonce"]), _b64(sealed["ciphertext"]), aad)
        except InvalidTag:
            raise MasterKeyMismatch(
                "a sealed record does not open with its subject's key"
            ) from None
        return cast(dict[str, Any], orjson.loads(plain))

    def unseal_for_display(self, prediction: Any) -> dict[str, Any]:
        """Features of a Prediction (or its Made event) with sealed fields opened or "erased"."""
        own_id = getattr(prediction, "originator_id", None) or prediction.id
        return self.display(prediction.features, getattr(prediction, "sealed", None), own_id)

    def display(
        self, features: Mapping[str, Any], sealed: Mapping[str, Any] | None, prediction_id: Any
    ) -> dict[str, Any]:
        """The same from raw parts (a projection's decoded state): personal fields or "erased"."""
        if not sealed:
            return dict(features)
        values = self.unseal(sealed, binding=str(prediction_id))
        if values is ERASED:
            return {**features, **dict.fromkeys(sealed["fields"], ERASED_TEXT)}
        return {**features, **values}  # type: ignore[dict-item]

    def body_digest(self, row: Mapping[str, Any], sealed: Mapping[str, Any] | None) -> str:
        """The row's digest for retry checks; keyed by the subject's data key when sealed.

        A plain sha256 of a row holding personal values would let anyone test guesses of
        them (a customer number is easy to enumerate) even after an erasure.
        """
        if not sealed:
            return _plain_digest(row)
        held = self._digest_keys.take_many([sealed["nonce"]])[0]
        return self._keyed_digest(row, sealed, held)

    def body_digests(
        self, rows: Sequence[Mapping[str, Any]], sealed: Sequence[Mapping[str, Any] | None]
    ) -> list[str]:
        """[body_digest(row, record) ...] of a batch: the digest keys held for it taken at once."""
        held = self._digest_keys.take_many([r["nonce"] if r else None for r in sealed])
        return [
            self._keyed_digest(row, record, cipher) if record else _plain_digest(row)
            for row, record, cipher in zip(rows, sealed, held, strict=True)
        ]

    def _keyed_digest(
        self, row: Mapping[str, Any], sealed: Mapping[str, Any], held: _SubjectCipher | None
    ) -> str:
        if held is not None and held.ref == sealed["subject_ref"] and held.scope == sealed["scope"]:
            mac_key = held.mac_key
        else:  # not sealed by this sealer a moment ago: ask the key store
            mac_key = _mac_key(self.keys.get(sealed["subject_ref"], sealed["scope"]))
        canonical = orjson.dumps(row, option=orjson.OPT_SORT_KEYS)
        return "k1:" + hmac.digest(mac_key, canonical, "sha256").hex()

    def destroy(self, subject_ref: str, scope: str | None = None) -> int:
        """Destroy the subject's keys (see SubjectKeyStore.destroy), dropping what this sealer holds."""
        self._digest_keys.drop(subject_ref, scope)
        self._ciphers.drop(subject_ref)
        return self.keys.destroy(subject_ref, scope)

    # -- internals ---------------------------------------------------------------
    def _refs_for(
        self,
        schema: Mapping[str, Any],
        rows: Sequence[Mapping[str, Any]],
        fields: list[str],
        deployment: str,
    ) -> list[str | None]:
        """Each row's subject ref; a subject seen twice in the batch is hashed once."""
        subject_field = schema.get("subject_field")
        seen: dict[str, str] = {}
        refs: list[str | None] = []
        for row in rows:
            subject = row.get(subject_field) if subject_field else None
            if subject is None:
                refs.append(self._no_subject(row, fields, subject_field, deployment))
                continue
            text = str(subject)  # what the ref hashes: 1 and "1" are the same subject, 1.0 is not
            ref = seen.get(text)
            if ref is None:
                ref = seen[text] = self.subject_ref(text)
            refs.append(ref)
        return refs

    @staticmethod
    def _no_subject(
        row: Mapping[str, Any], fields: list[str], subject_field: str | None, deployment: str
    ) -> None:
        """A row without a subject may not carry personal values: they could never be erased."""
        personal = [f for f in fields if row.get(f) is not None]
        if personal:
            fix = (
                f"send the subject field {subject_field!r}"
                if subject_field
                else f"declare a subject_field in deployment {deployment!r}'s schema"
            )
            raise InvalidCommand(
                f"{', '.join(personal)} are personal data and need a subject to be erasable: {fix}",
                field=subject_field or "schema.subject_field",
            )

    def _keys_for(self, pairs: list[Pair], before_create: BeforeCreate) -> dict[Pair, bytes]:
        many = getattr(self.keys, "get_or_create_many", None)
        if many is not None:
            return cast(dict[Pair, bytes], many(pairs, before_create))
        found: dict[Pair, bytes] = {}
        for pair in set(pairs):
            try:
                found[pair] = self.keys.get(*pair)
            except Forgotten:
                pass
        fresh = [pair for pair in set(pairs) if pair not in found]
        if fresh:
            before_create(fresh, found)
        return {**found, **{pair: self.keys.get_or_create(*pair) for pair in fresh}}

    @staticmethod
    def _seal_rows(
        rows: Sequence[Mapping[str, Any]],
        fields: list[str],
        refs: Sequence[str | None],
        ciphers: Mapping[str, _SubjectCipher],
        deployment: str,
        bindings: Sequence[str],
    ) -> list[SealedRow]:
        """Each row sealed under its subject's cipher, with a nonce of its own.

        The rows' nonces are drawn in one call and written as base64 in one call (12 bytes
        are 16 characters, so each row's text is its slice); each row's associated data is
        its binding between the scope's and its fields' parts.
        """
        nonces = os.urandom(NONCE_BYTES * len(rows))
        nonce_texts = _b64e(nonces)
        head = _aad_head(deployment)
        tails: dict[tuple[str, ...], bytes] = {}
        sealed = []
        for index, (row, ref, binding) in enumerate(zip(rows, refs, bindings, strict=True)):
            cipher = ciphers.get(ref) if ref is not None else None
            if cipher is None:  # no subject and no personal values: nothing to hide
                sealed.append(SealedRow(dict(row), None))
                continue
            present = [f for f in fields if f in row]
            tail = tails.get(key := tuple(present))
            if tail is None:
                tail = tails[key] = _aad_tail(present)
            at = index * NONCE_BYTES
            ciphertext = cipher.aead.encrypt(
                nonces[at : at + NONCE_BYTES],
                orjson.dumps({f: row[f] for f in present}),
                head + binding.encode() + tail,
            )
            at = index * NONCE_TEXT
            record = {
                "v": SEAL_FORMAT,
                "subject_ref": ref,
                "scope": deployment,
                "binding": binding,
                "fields": present,
                "nonce": nonce_texts[at : at + NONCE_TEXT],
                "ciphertext": _b64e(ciphertext),
            }
            sealed.append(SealedRow({k: v for k, v in row.items() if k not in present}, record))
        return sealed


class _SubjectCipher:
    """One data key made ready: its AES-GCM context and its body-digest key."""

    __slots__ = ("aead", "deadline", "expires", "key", "mac_key", "ref", "scope")

    def __init__(self, ref: str, scope: str, key: bytes, deadline: float, expires: float = 0.0):
        self.ref, self.scope, self.deadline, self.key, self.expires = (
            ref,
            scope,
            deadline,
            key,
            expires,
        )
        self.aead = AESGCM(key)
        self.mac_key = _mac_key(key)


class _CipherCache:
    """Ready ciphers by (subject, scope), kept no longer than the key cache keeps keys.

    AES-GCM set-up and the digest key cost more than sealing a row. A cipher serves only
    the very key the store just returned (a destroyed, re-created key misses); expired
    ones go as new ones come, as the key cache's do.
    """

    def __init__(self, max_age: float, max_entries: int = 10_000):
        self.max_age, self.max_entries = max_age, max_entries
        self._ready: dict[tuple[str, str], _SubjectCipher] = {}
        self._lock = threading.Lock()

    def get(self, ref: str, scope: str, key: bytes, deadline: float) -> _SubjectCipher:
        return self.get_many({(ref, scope): key}, deadline)[ref]

    def get_many(self, keys: Mapping[Pair, bytes], deadline: float) -> dict[str, _SubjectCipher]:
        """A ready cipher for each (subject, scope)'s key, by subject ref (a batch has one scope)."""
        now = time.monotonic()
        ciphers, made = {}, []
        for (ref, scope), key in keys.items():
            cipher = self._ready.get((ref, scope))
            if cipher is not None and cipher.key == key and cipher.expires > now:
                cipher.deadline = deadline  # its digest keys held for this batch live as long
            else:
                cipher = _SubjectCipher(ref, scope, key, deadline, now + self.max_age)
                made.append(cipher)
            ciphers[ref] = cipher
        if made:
            with self._lock:
                for cipher in made:
                    self._ready.pop((cipher.ref, cipher.scope), None)
                    self._ready[(cipher.ref, cipher.scope)] = cipher
                while self._ready:  # oldest first: each entry lives max_age from insertion
                    oldest = next(iter(self._ready))
                    if len(self._ready) <= self.max_entries and self._ready[oldest].expires > now:
                        break
                    del self._ready[oldest]
        return ciphers

    def drop(self, subject_ref: str) -> None:
        with self._lock:
            for pair in [p for p in self._ready if p[0] == subject_ref]:
                del self._ready[pair]


class _DigestKeys:
    """Body-digest keys of records this sealer just sealed, until the caller digests them.

    A batch may take longer than the key cache's lifetime; without this, every row's
    digest would go back to the key store. Each entry is taken once; entries never
    taken go after `max_age` seconds or beyond `max_entries`, and a destroy drops them.
    """

    def __init__(self, max_entries: int = 200_000, max_age: float = 60.0):
        self.max_entries, self.max_age = max_entries, max_age
        self._held: dict[str, _SubjectCipher] = {}  # by the sealed record's nonce
        self._lock = threading.Lock()

    def deadline(self) -> float:
        return time.monotonic() + self.max_age

    def hold(self, fresh: dict[str, _SubjectCipher]) -> None:
        with self._lock:
            self._held.update(fresh)
            now = time.monotonic()
            while self._held:
                oldest = next(iter(self._held))
                if len(self._held) <= self.max_entries and self._held[oldest].deadline > now:
                    break
                del self._held[oldest]

    def take_many(self, nonces: Sequence[str | None]) -> list[_SubjectCipher | None]:
        """The cipher held for each record's nonce (None: none, or past its deadline)."""
        with self._lock:
            pop = self._held.pop
            held = [None if n is None else pop(n, None) for n in nonces]
        now = time.monotonic()
        return [None if h is None or h.deadline < now else h for h in held]

    def drop(self, subject_ref: str, scope: str | None) -> None:
        with self._lock:
            for nonce in [
                n
                for n, c in self._held.items()
                if c.ref == subject_ref and scope in (None, c.scope)
            ]:
                del self._held[nonce]


def _mac_key(key: bytes) -> bytes:
    return hmac.digest(key, b"ledger body digest v1", "sha256")


def _aad(scope: str, binding: str, fields: Sequence[str]) -> bytes:
    """Associated data: the scope, the binding and the sealed fields' names, NUL-separated."""
    return _aad_head(scope) + binding.encode() + _aad_tail(fields)


def _aad_head(scope: str) -> bytes:
    return b"ledger sealed v1\x00" + scope.encode() + b"\x00"


def _aad_tail(fields: Sequence[str]) -> bytes:
    return b"\x00" + ",".join(fields).encode()


def _plain_digest(row: Mapping[str, Any]) -> str:
    return hashlib.sha256(orjson.dumps(row, option=orjson.OPT_SORT_KEYS)).hexdigest()


def _b64e(raw: bytes) -> str:
    return binascii.b2a_base64(raw, newline=False).decode()


def _b64(text: str) -> bytes:
    return base64.b64decode(text)
