"""Personal data in an append-only ledger: sealed per subject, erased by destroying the key.

Call sites (see docs/PRIVACY.md):
- writing a prediction: `plain, sealed = ledger.sealer.seal(schema, features, deployment=name,
  request_id=rid)` (or `seal_many` for a batch), then `Prediction(features=plain, sealed=sealed, ...)`;
- reading one: `ledger.sealer.unseal_for_display(prediction_or_made_event)`;
- training: `trained_subjects_record(ledger.sealer, subject_ids)` as the run's `trained_subjects`;
- erasing: `forget(ledger, subject_id, reason, actor)`.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

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
    "ERASED", "ERASED_TEXT", "KEYS_TABLE", "SUBJECT_FORGOTTEN", "DatabaseKeyStore", "ForgetResult",
    "Forgotten", "KeyCache", "LocalMasterKey", "MasterKey", "MasterKeyMismatch", "Sealer",
    "SubjectKeyStore", "default_sealer", "forget", "forget_ref", "models_trained_on", "sealed_fields",
    "subject_ref", "trained_subjects_record",
]


def default_sealer(engine: sa.Engine, secrets_dir: Path) -> Sealer:
    """Keys in the ledger's database, wrapped by the local master key; refs keyed by the pepper."""
    store = DatabaseKeyStore(engine, LocalMasterKey.from_environment(secrets_dir))
    store.create_table()
    return Sealer(store, pepper(secrets_dir))


def trained_subjects_record(sealer: Sealer, subject_ids: Iterable[Any]) -> dict[str, Any]:
    """The `trained_subjects` a training run records: refs only, never the ids themselves."""
    refs = sorted({sealer.subject_ref(s) for s in subject_ids if s is not None})
    return {"scheme": "hmac-sha256-v1", "count": len(refs), "refs": refs}
