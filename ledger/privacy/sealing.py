"""Sealing: a deployment's personal fields leave the plaintext, encrypted under the subject's key."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Mapping, Sequence
from typing import Any

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ledger import ids
from ledger.errors import InvalidCommand
from ledger.privacy.keys import Forgotten, MasterKeyMismatch, SubjectKeyStore

SEAL_FORMAT = 1
ERASED_TEXT = "erased"


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


def subject_ref(secret: bytes, subject_id: Any) -> str:
    """A keyed hash of the subject id: stable, and useless to anyone without the secret."""
    message = b"ledger subject v1\x00" + str(subject_id).encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def sealed_fields(schema: Mapping[str, Any]) -> list[str]:
    """The fields a deployment's schema makes personal: personal features and the subject field."""
    subject = schema.get("subject_field")
    return [f["name"] for f in schema["features"] if f.get("personal") or f["name"] == subject]


def binding_of(deployment: str, request_id: str) -> str:
    """Associated data: the prediction id, so a ciphertext moved to another prediction fails."""
    return str(ids.prediction_id(deployment, request_id))


class Sealer:
    """Seals and unseals personal fields; one per process, keys cached by the key store."""

    def __init__(self, keys: SubjectKeyStore, ref_secret: bytes):
        self.keys = keys
        self.ref_secret = ref_secret

    def subject_ref(self, subject_id: Any) -> str:
        return subject_ref(self.ref_secret, subject_id)

    def value_hash(self, feature: str, value: Any) -> str:
        """A keyed hash of a personal value for profiles: distinct from subject refs by domain."""
        message = b"ledger personal value v1\x00" + feature.encode() + b"\x00" + str(value).encode()
        return hmac.new(self.ref_secret, message, hashlib.sha256).hexdigest()[:32]

    def seal(
        self, schema: Mapping[str, Any], features: Mapping[str, Any], *, deployment: str, request_id: str
    ) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """(plaintext features without the personal ones, sealed record or None)."""
        return self.seal_many(schema, [features], deployment=deployment, request_ids=[request_id])[0]

    def seal_many(
        self, schema: Mapping[str, Any], rows: Sequence[Mapping[str, Any]], *, deployment: str,
        request_ids: Sequence[str],
    ) -> list[tuple[dict[str, Any], dict[str, Any] | None]]:
        """Seal a batch: keys of every subject fetched (or created) in one round trip."""
        fields = sealed_fields(schema)
        if not fields:
            return [(dict(row), None) for row in rows]
        refs = [self._ref_for(schema, row, fields, deployment) for row in rows]
        keys = self._keys_for([(r, deployment) for r in refs if r is not None])
        return [
            self._seal_row(row, fields, ref, keys.get((ref, deployment)) if ref else None, deployment, request_id)
            for row, ref, request_id in zip(rows, refs, request_ids, strict=True)
        ]

    def unseal(self, sealed: Mapping[str, Any], binding: str | None = None) -> dict[str, Any] | _Erased:
        """The sealed values, or ERASED when the subject's key was destroyed."""
        if binding is not None and binding != sealed["binding"]:
            raise MasterKeyMismatch("a sealed record is bound to another prediction: the record was moved")
        try:
            key = self.keys.get(sealed["subject_ref"], sealed["scope"])
        except Forgotten:
            return ERASED
        aad = _aad(sealed["scope"], sealed["binding"], sealed["fields"])
        try:
            plain = AESGCM(key).decrypt(_b64(sealed["nonce"]), _b64(sealed["ciphertext"]), aad)
        except InvalidTag:
            raise MasterKeyMismatch("a sealed record does not open with its subject's key") from None
        return orjson.loads(plain)

    def unseal_for_display(self, prediction: Any) -> dict[str, Any]:
        """Features of a Prediction (or its Made event) with sealed fields opened or "erased"."""
        own_id = getattr(prediction, "originator_id", None) or prediction.id
        return self.display(prediction.features, getattr(prediction, "sealed", None), own_id)

    def display(self, features: Mapping[str, Any], sealed: Mapping[str, Any] | None,
                prediction_id: Any) -> dict[str, Any]:
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
        canonical = orjson.dumps(row, option=orjson.OPT_SORT_KEYS)
        if not sealed:
            return hashlib.sha256(canonical).hexdigest()
        key = self.keys.get(sealed["subject_ref"], sealed["scope"])  # cached by the seal just made
        mac_key = hmac.new(key, b"ledger body digest v1", hashlib.sha256).digest()
        return "k1:" + hmac.new(mac_key, canonical, hashlib.sha256).hexdigest()

    # -- internals ---------------------------------------------------------------
    def _ref_for(self, schema: Mapping[str, Any], row: Mapping[str, Any], fields: list[str],
                 deployment: str) -> str | None:
        subject_field = schema.get("subject_field")
        subject = row.get(subject_field) if subject_field else None
        if subject is not None:
            return self.subject_ref(subject)
        personal = [f for f in fields if row.get(f) is not None]
        if personal:
            fix = (f"send the subject field {subject_field!r}" if subject_field
                   else f"declare a subject_field in deployment {deployment!r}'s schema")
            raise InvalidCommand(
                f"{', '.join(personal)} are personal data and need a subject to be erasable: {fix}",
                field=subject_field or "schema.subject_field",
            )
        return None

    def _keys_for(self, pairs: list[tuple[str, str]]) -> dict[tuple[str, str], bytes]:
        many = getattr(self.keys, "get_or_create_many", None)
        if many is not None:
            return many(pairs)
        return {pair: self.keys.get_or_create(*pair) for pair in set(pairs)}

    def _seal_row(
        self, row: Mapping[str, Any], fields: list[str], ref: str | None, key: bytes | None,
        deployment: str, request_id: str,
    ) -> tuple[dict[str, Any], dict[str, Any] | None]:
        if ref is None or key is None:  # no subject and no personal values: nothing to hide
            return dict(row), None
        present = [f for f in fields if f in row]
        plain = {k: v for k, v in row.items() if k not in present}
        binding = binding_of(deployment, request_id)
        nonce = secrets.token_bytes(12)
        payload = orjson.dumps({f: row[f] for f in present})
        ciphertext = AESGCM(key).encrypt(nonce, payload, _aad(deployment, binding, present))
        return plain, {
            "v": SEAL_FORMAT, "subject_ref": ref, "scope": deployment, "binding": binding,
            "fields": present, "nonce": _b64e(nonce), "ciphertext": _b64e(ciphertext),
        }


def _aad(scope: str, binding: str, fields: Sequence[str]) -> bytes:
    return b"\x00".join([b"ledger sealed v1", scope.encode(), binding.encode(), ",".join(fields).encode()])


def _b64e(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def _b64(text: str) -> bytes:
    return base64.b64decode(text)
