"""Personal data in an append-only ledger: sealed per subject, erased by destroying the key.

Call sites (see docs/PRIVACY.md):
- writing a prediction: `plain, sealed = ledger.sealer.seal(schema, features, deployment=name,
  request_id=rid)` (or `seal_many` for a batch), then `Prediction(features=plain, sealed=sealed, ...)`;
- reading one: `ledger.sealer.unseal_for_display(prediction_or_made_event)`;
- training: `trained_subjects_record(ledger.sealer, subject_ids)` as the run's `trained_subjects`;
- erasing: `forget(ledger, subject_id, reason, actor)`.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any
from weakref import WeakKeyDictionary

import sqlalchemy as sa

from ledger.keyfiles import pepper
from ledger.privacy.forget import (
    SUBJECT_FORGOTTEN,
    ForgetResult,
    forget,
    forget_ref,
    models_trained_on,
)
from ledger.privacy.keys import (
    KEYS_TABLE,
    DatabaseKeyStore,
    Forgotten,
    KeyCache,
    LocalMasterKey,
    MasterKey,
    MasterKeyMismatch,
    SubjectKeyStore,
)
from ledger.privacy.sealing import ERASED, ERASED_TEXT, Sealer, sealed_fields, subject_ref
from ledger.settings import Settings

__all__ = [
    "ERASED",
    "ERASED_TEXT",
    "KEYS_TABLE",
    "SUBJECT_FORGOTTEN",
    "DatabaseKeyStore",
    "ForgetResult",
    "Forgotten",
    "KeyCache",
    "LocalMasterKey",
    "MasterKey",
    "MasterKeyMismatch",
    "Sealer",
    "SubjectKeyStore",
    "default_sealer",
    "forget",
    "forget_ref",
    "models_trained_on",
    "sealed_fields",
    "sealer_for",
    "subject_ref",
    "trained_subjects_record",
]


_SEALERS: WeakKeyDictionary[sa.Engine, Sealer] = WeakKeyDictionary()
_SEALERS_LOCK = threading.Lock()


def default_sealer(engine: sa.Engine, settings: Settings) -> Sealer:
    """The process's sealer for this engine: one key cache, so a forget here is seen at once."""
    with _SEALERS_LOCK:
        sealer = _SEALERS.get(engine)
        if sealer is None:
            master = LocalMasterKey.load(
                settings.secrets_dir, settings.master_key, settings.next_master_key
            )
            # As the API-key cache: a forget reaches every worker within the key cache's age.
            cache = KeyCache(ttl_seconds=settings.key_cache_seconds)
            store = DatabaseKeyStore(engine, master, cache)
            store.create_table()
            sealer = Sealer(store, pepper(settings.secrets_dir, settings.pepper))
            _SEALERS[engine] = sealer
        return sealer


def sealer_for(settings: Settings, engine: sa.Engine) -> Sealer:
    """The call api/services.py makes: the same sealer as `Ledger.sealer` for that engine."""
    return default_sealer(engine, settings)


def trained_subjects_record(sealer: Sealer, subject_ids: Iterable[Any]) -> dict[str, Any]:
    """The `trained_subjects` a training run records: refs only, never the ids themselves."""
    refs = sorted({sealer.subject_ref(s) for s in subject_ids if s is not None})
    return {"scheme": "hmac-sha256-v1", "count": len(refs), "refs": refs}
