"""API-key digests: a scheme tag, then an HMAC of the key's secret.

`v2:<hex>` is keyed by HKDF(pepper, "api-key-v2"). An untagged digest (keys issued before the
tag) is keyed by the pepper itself; it stays valid because the Issued event is never rewritten.
"""

from __future__ import annotations

import hashlib
import hmac

from ledger.keyfiles import derived_key

API_KEY_LABEL = "api-key-v2"
SCHEME = "v2:"


class KeyDigests:
    """Makes and checks API-key digests under one pepper."""

    def __init__(self, pepper: bytes):
        self._legacy = pepper
        self._current = derived_key(pepper, API_KEY_LABEL)

    def digest(self, key: str) -> str:
        """What an Issued event stores for a new key."""
        return SCHEME + hmac.new(self._current, key.encode(), hashlib.sha256).hexdigest()

    def matches(self, stored: str, key: str) -> bool:
        """Whether `key` is the secret behind a stored digest of either scheme."""
        if stored.startswith(SCHEME):
            return hmac.compare_digest(stored, self.digest(key))
        legacy = hmac.new(self._legacy, key.encode(), hashlib.sha256).hexdigest()
        return hmac.compare_digest(stored, legacy)
