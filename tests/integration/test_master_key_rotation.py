"""`ledger master-key rotate`: subject keys re-wrapped under a new master key, events untouched."""

from __future__ import annotations

from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from api.cli import main
from ledger.application import Ledger
from ledger.keyfiles import pepper, read_secret
from ledger.privacy import ERASED, DatabaseKeyStore, KeyCache, LocalMasterKey, MasterKeyMismatch
from ledger.privacy.keys import KEY_FILE, NEXT_KEY_FILE
from ledger.privacy.rotation import prepare_next_key, rotate_master_key
from ledger.privacy.sealing import Sealer
from ledger.settings import Settings
from tests.integration.test_privacy_erasure import make_deployment, predict

SUBJECTS = [f"subject-{n}" for n in range(7)]


def populate(ledger: Ledger) -> dict[str, dict[str, Any]]:
    """One sealed prediction per subject: {subject: its sealed record}."""
    make_deployment(ledger)
    return {
        subject: predict(
            ledger,
            f"r-{subject}",
            {"customer_id": subject, "full_name": f"Name {subject}", "plan": "basic", "tenure": 3},
        ).sealed
        for subject in SUBJECTS
    }


def sealer_with(ledger: Ledger, key: bytes) -> Sealer:
    """A sealer holding this master key only, with nothing cached."""
    store = DatabaseKeyStore(ledger.engine, LocalMasterKey(key), KeyCache())
    return Sealer(store, pepper(ledger.settings.secrets_dir))


def events(ledger: Ledger) -> list[tuple[int, str, bytes]]:
    notes = ledger.recorder.select_notifications(None, 100_000, inclusive_of_start=True)
    return [(n.id, n.topic, n.state) for n in notes]


def rotate(settings: Settings, database_url: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("LEDGER_HOME", str(settings.home))
    return CliRunner().invoke(main, ["--db", database_url, "master-key", "rotate"])


def test_after_a_rotation_only_the_new_master_key_opens_any_sealed_field(
    ledger: Ledger, settings: Settings, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    sealed = populate(ledger)
    secrets_dir = Path(settings.secrets_dir)
    old, before = read_secret(secrets_dir / KEY_FILE), events(ledger)

    done = rotate(settings, database_url, monkeypatch)

    assert done.exit_code == 0, done.output
    assert f"re-wrapped {len(SUBJECTS)} subject key(s)" in done.output
    new = read_secret(secrets_dir / KEY_FILE)
    assert new != old and not (secrets_dir / NEXT_KEY_FILE).exists()
    assert events(ledger) == before
    for subject, record in sealed.items():
        assert sealer_with(ledger, new).unseal(record)["customer_id"] == subject
        with pytest.raises(MasterKeyMismatch):
            sealer_with(ledger, old).unseal(record)

    with closing(Ledger(settings)) as restarted:  # a process started after the rotation
        assert restarted.forget_subject(SUBJECTS[0], "request", "t").already_forgotten is False
        assert restarted.sealer.unseal(sealed[SUBJECTS[0]]) is ERASED
        assert restarted.sealer.unseal(sealed[SUBJECTS[1]])["customer_id"] == SUBJECTS[1]


class CrashingMasterKey:
    """A master key whose process dies while re-wrapping its `crash_at`-th key."""

    def __init__(self, inner: LocalMasterKey, crash_at: int):
        self.inner, self.crash_at, self.calls = inner, crash_at, 0

    def wrap(self, subject_ref: str, data_key: bytes) -> bytes:
        return self.inner.wrap(subject_ref, data_key)

    def unwrap(self, subject_ref: str, wrapped: bytes) -> bytes:
        return self.inner.unwrap(subject_ref, wrapped)

    def rewrap(self, subject_ref: str, wrapped: bytes) -> bytes | None:
        self.calls += 1
        if self.calls == self.crash_at:
            raise KeyboardInterrupt("the process was stopped")
        return self.inner.rewrap(subject_ref, wrapped)


def test_a_rotation_stopped_halfway_stays_readable_and_finishes_when_run_again(
    ledger: Ledger, settings: Settings
) -> None:
    sealed = populate(ledger)
    secrets_dir = Path(settings.secrets_dir)
    old = read_secret(secrets_dir / KEY_FILE)
    prepare_next_key(settings)
    both = LocalMasterKey.load(secrets_dir)
    crashing = DatabaseKeyStore(ledger.engine, CrashingMasterKey(both, crash_at=6), KeyCache())
    with pytest.raises(KeyboardInterrupt):
        crashing.rewrap(page=2)  # two pages committed, the third rolled back

    with closing(Ledger(settings)) as midway:  # holds the old and the next key
        for subject, record in sealed.items():
            assert midway.sealer.unseal(record)["customer_id"] == subject

    done = rotate_master_key(ledger.engine, settings, page=2)
    assert done == (len(SUBJECTS) - 4, True)
    new = read_secret(secrets_dir / KEY_FILE)
    for subject, record in sealed.items():
        assert sealer_with(ledger, new).unseal(record)["customer_id"] == subject
        with pytest.raises(MasterKeyMismatch):
            sealer_with(ledger, old).unseal(record)


def test_a_configured_master_key_needs_the_next_one_configured_too(
    settings: Settings, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEDGER_MASTER_KEY", "11" * 32)
    refused = rotate(settings, database_url, monkeypatch)
    assert refused.exit_code == 1 and "set LEDGER_NEXT_MASTER_KEY" in refused.output
