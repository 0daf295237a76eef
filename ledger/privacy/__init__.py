"""Personal data in an append-only ledger: sealed per subject, erased by destroying the key.

Call sites (see docs/PRIVACY.md):
- writing a prediction: `plain, sealed = ledger.sealer.seal(schema, features, deployment=name,
  request_id=rid)` (or `seal_many` for a batch), then `Prediction(features=plain, sealed=sealed, ...)`;
- reading one: `ledger.sealer.unseal_for_display(prediction_or_made_event)`;
- training: `trained_subjects_record(ledger.sealer, subject_ids)` as the run's `trained_subjects`;
- erasing: `forget(ledger, subject_id, reason, actor)`.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable
from pathlib import Path
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


def default_sealer(engine: sa.Engine, secrets_dir: Path) -> Sealer:
    """The process's sealer for this engine: one key cache, so a forget here is seen at once."""
    with _SEALERS_LOCK:
        sealer = _SEALERS.get(engine)
        if sealer is None:
            ttl = float(
                os.environ.get("LEDGER_KEY_CACHE_SECONDS", 2)
            )  # as the API-key cache: a forget reaches every worker within it
            store = DatabaseKeyStore(
                engine, LocalMasterKey.from_environment(secrets_dir), KeyCache(ttl_seconds=ttl)
            )
            store.create_table()
            sealer = _SEALERS[engine] = Sealer(store, pepper(secrets_dir))
        return sealer


def sealer_for(settings: Any, engine: sa.Engine) -> Sealer:
    """The call api/services.py makes: the same sealer as `Ledger.sealer` for that engine."""
    return default_sealer(engine, settings.secrets_dir)


def trained_subjects_record(sealer: Sealer, subject_ids: Iterable[Any]) -> dict[str, Any]:
    """The `trained_subjects` a training run records: refs only, never the ids themselves."""
    refs = sorted({sealer.subject_ref(s) for s in subject_ids if s is not None})
    return {"scheme": "hmac-sha256-v1", "count": len(refs), "refs": refs}
